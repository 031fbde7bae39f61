// CUDA graphs of the engine's work (engine/graph.h): stream capture on cuda::stream() in relaxed mode (the
// caching allocator may call cudaMalloc while a capture runs), memory in one private pool per sequence.
#include <vector>

#include "engine/graph.h"
#include "kernels/check.cuh"

namespace r2c::cuda {

namespace {
thread_local bool tl_capturing = false;
}  // namespace

struct GraphSequence::State {
    CachingAllocator::PoolId pool = 0;
    std::vector<cudaGraphExec_t> graphs;
    AllocationTrace rehearsals;
};

GraphSequence::GraphSequence() : state_(new State) {}

GraphSequence::~GraphSequence() {
    if (state_->pool == 0) return;
    // A replay may still be running on the pool's memory.
    detail::count_host_wait();
    cudaStreamSynchronize(detail::launch_stream(nullptr));
    for (cudaGraphExec_t g : state_->graphs)
        cudaGraphExecDestroy(g);
    allocator().drop_pool(state_->pool);
}

bool capturing() {
    return tl_capturing;
}

void GraphSequence::capture(const std::function<void()>& work) {
    R2C_CHECK(!tl_capturing, "cuda::GraphSequence::capture: a capture is already running on this thread");
    const cudaStream_t s = detail::launch_stream(nullptr);
    CachingAllocator& alloc = allocator();
    const bool planned = state_->pool == 0 && !state_->rehearsals.records.empty();
    // The rehearsals' memory, cached now, goes back first: the plan's segment replaces it.
    if (planned) alloc.empty_cache();
    state_->pool = alloc.open_pool(state_->pool);
    if (planned) {
        alloc.plan_pool(state_->pool, state_->rehearsals);
        state_->rehearsals = AllocationTrace();  // the plan holds what it needs
    }
    const cudaError_t began = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
    if (began != cudaSuccess) {
        alloc.close_pool();
        R2C_CUDA_CHECK(began, "cuda::GraphSequence::capture");
    }
    tl_capturing = true;
    cudaGraph_t graph = nullptr;
    // Ends a capture that `work` left with an error; returns how the capture itself ended.
    const auto abandon = [&] {
        const cudaError_t ended = cudaStreamEndCapture(s, &graph);
        if (graph != nullptr) cudaGraphDestroy(graph);
        cudaGetLastError();
        tl_capturing = false;
        alloc.close_pool();
        return ended;
    };
    try {
        work();
    } catch (const Error& e) {
        if (abandon() == cudaSuccess) throw;
        throw Error(detail::concat("cuda::GraphSequence::capture: ", e.what(),
                                   " (the captured work must not wait for the device)"));
    } catch (...) {
        abandon();
        throw;
    }
    tl_capturing = false;
    const cudaError_t ended = cudaStreamEndCapture(s, &graph);
    alloc.close_pool();
    if (ended != cudaSuccess) {
        if (graph != nullptr) cudaGraphDestroy(graph);
        cudaGetLastError();
        throw Error(detail::concat("cuda::GraphSequence::capture: the capture failed: ",
                                   cudaGetErrorName(ended), " (", cudaGetErrorString(ended),
                                   "); the captured work waited for the device or used the legacy stream"));
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiateWithFlags(&exec, graph, 0);
    cudaGraphDestroy(graph);
    R2C_CUDA_CHECK(made, "cuda::GraphSequence::capture (instantiating the graph)");
    state_->graphs.push_back(exec);
}

void GraphSequence::rehearse(const std::function<void()>& work) {
    R2C_CHECK(state_->pool == 0, "cuda::GraphSequence::rehearse: a graph was captured already");
    CachingAllocator& alloc = allocator();
    alloc.trace_into(&state_->rehearsals);
    try {
        work();
    } catch (...) {
        alloc.trace_into(nullptr);
        throw;
    }
    alloc.trace_into(nullptr);
}

int GraphSequence::size() const {
    return static_cast<int>(state_->graphs.size());
}

void GraphSequence::replay(int i) {
    R2C_CHECK(i >= 0 && i < size(), "cuda::GraphSequence::replay: graph ", i, " of ", size());
    R2C_CUDA_CHECK(
        cudaGraphLaunch(state_->graphs[static_cast<std::size_t>(i)], detail::launch_stream(nullptr)),
        "cuda::GraphSequence::replay");
}

}  // namespace r2c::cuda
