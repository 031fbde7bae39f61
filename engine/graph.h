// CUDA graphs of the engine's work: the ops a piece of host code queues on cuda::stream() are captured
// once and then replayed with one launch, without running the host code (its op dispatch, autograd and
// kernel launches) again. Implemented by kernels/graph.cu in a CUDA build and by engine/no_cuda.cpp without.
//
// A replay repeats the captured work exactly: the same kernels with the same arguments, on the same
// addresses. So everything a captured piece reads that changes from one replay to the next must be read
// from device memory that stays where it is (inputs copied into fixed tensors before a replay, scalars the
// host writes into pinned memory, as the Adam step's coefficients are), and the host must not wait for the
// device (no copy to the host) inside a captured piece: such a call fails the capture with an error.
// Memory allocated during a capture belongs to the sequence's private pool of the caching allocator
// (engine/allocator.h), so that no tensor outside the sequence is ever overwritten by a replay. Where the
// work of the captures has first been run as rehearsals, the pool is planned from the rehearsals'
// allocations: the memory of the graphs is then one segment about as large as what they hold at once.
#pragma once

#include <functional>
#include <memory>

namespace r2c::cuda {

// Graphs captured one after another that are always replayed in that order, sharing one memory pool.
class GraphSequence {
  public:
    GraphSequence();
    ~GraphSequence();  // waits for the replays in flight, then returns the pool's memory to the cache
    GraphSequence(const GraphSequence&) = delete;
    GraphSequence& operator=(const GraphSequence&) = delete;

    // Captures what `work` queues on cuda::stream() as the next graph of the sequence; nothing of it runs
    // (replay(size() - 1) runs it). On an error inside `work` or a capture failure, the error is rethrown
    // and the sequence is left as it was before the call.
    void capture(const std::function<void()>& work);
    int size() const;
    // Queues graph i on cuda::stream().
    void replay(int i);
    // Runs `work` (its kernels queued as usual, nothing captured) and records its allocations, to plan the
    // pool by at the first capture. The rehearsals, in order, are meant to allocate as the captures to
    // come will, in the same order; where they do not, the plan is only less useful, never wrong. Only
    // before the first capture.
    void rehearse(const std::function<void()>& work);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

// Whether the calling thread is capturing a graph now.
bool capturing();

}  // namespace r2c::cuda
