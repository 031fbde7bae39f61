// Time per op, to find what a training step spends its time on (`r2c bench --profile`). While an
// OpProfiler is open on a thread, each outermost op of that thread adds its time to an entry named for the
// op and the tensor it ran on: an op's forward pass (its OpScope), or an autograd node's backward pass
// with the passing on of its gradients. Ops that an op runs inside itself count as its own time. On CUDA
// the times are the device's: events recorded on the engine's stream around each op and read when
// results() waits for the device, so the work is queued as it otherwise would be. A step replayed from a
// CUDA graph runs no op code, so profile without graphs. On the CPU the times are wall-clock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace r2c {

namespace profile_detail {
struct State;
}  // namespace profile_detail

struct OpTime {
    std::string op;  // "tanh on float32[1,128,64,64] cuda", "oper_conv2d backward on float32[...] cuda"
    std::int64_t calls = 0;
    double ms = 0;  // all calls together
};

struct OpProfile {
    std::vector<OpTime> ops;  // the slowest first
    double total_ms = 0;      // from the profiler's opening to results(): the ops and all else
    double ops_ms() const;
};

class OpProfiler {
  public:
    explicit OpProfiler(Device device);  // throws when one is already open on this thread
    ~OpProfiler();
    OpProfiler(const OpProfiler&) = delete;
    OpProfiler& operator=(const OpProfiler&) = delete;

    // Stops recording and returns the profile; on CUDA it waits for the device.
    OpProfile results();

  private:
    std::unique_ptr<profile_detail::State> state_;
};

namespace profile_detail {
bool recording();  // an OpProfiler is recording on this thread
// Regions nest: enter() evaluates `name` only for an outermost one; leave() closes the innermost. A region
// still open when results() is called is left out.
void enter(const std::function<std::string()>& name);
void leave();

// A region for the lifetime of the object, when a profiler records at its construction: what OpScope and
// autograd's backward pass open. `name` is called only for an outermost region.
class Region {
  public:
    template <class Name>
    explicit Region(const Name& name) : on_(recording()) {
        if (on_) enter(name);
    }
    ~Region() {
        if (on_) leave();
    }
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;

  private:
    bool on_;
};
}  // namespace profile_detail

}  // namespace r2c
