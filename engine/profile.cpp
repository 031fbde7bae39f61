#include "engine/profile.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "engine/device.h"
#include "engine/error.h"

namespace r2c {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

namespace profile_detail {

// One mark per region boundary: a CUDA event, or the host clock on the CPU.
struct State {
    struct Mark {
        std::unique_ptr<cuda::TimingEvent> event;
        Clock::time_point time;
    };
    struct Region {
        std::string name;
        Mark begin, end;
        bool closed = false;
    };

    Device device;
    int depth = 0;  // open regions
    Mark start;
    std::vector<Region> regions;

    Mark mark() const {
        Mark m;
        if (device == Device::CUDA) {
            m.event = std::make_unique<cuda::TimingEvent>();
            m.event->record();
        } else {
            m.time = Clock::now();
        }
        return m;
    }
    double ms(const Mark& from, const Mark& to) const {
        if (device == Device::CUDA) return to.event->ms_since(*from.event);
        return std::chrono::duration<double, std::milli>(to.time - from.time).count();
    }
};

namespace {
thread_local State* tl_profiler = nullptr;
}  // namespace

}  // namespace profile_detail

using profile_detail::State;
using profile_detail::tl_profiler;

double OpProfile::ops_ms() const {
    double sum = 0;
    for (const OpTime& t : ops)
        sum += t.ms;
    return sum;
}

OpProfiler::OpProfiler(Device device) : state_(std::make_unique<State>()) {
    R2C_CHECK(tl_profiler == nullptr, "OpProfiler: one is already open on this thread");
    state_->device = device;
    state_->start = state_->mark();
    tl_profiler = state_.get();
}

OpProfiler::~OpProfiler() {
    if (tl_profiler == state_.get()) tl_profiler = nullptr;
}

OpProfile OpProfiler::results() {
    if (tl_profiler == state_.get()) tl_profiler = nullptr;
    const State::Mark stop = state_->mark();
    OpProfile out;
    out.total_ms = state_->ms(state_->start, stop);
    std::map<std::string, OpTime> by_name;
    for (const State::Region& r : state_->regions) {
        if (!r.closed) continue;
        OpTime& t = by_name[r.name];
        t.op = r.name;
        ++t.calls;
        t.ms += state_->ms(r.begin, r.end);
    }
    state_->regions.clear();
    for (auto& [name, t] : by_name)
        out.ops.push_back(std::move(t));
    std::stable_sort(out.ops.begin(), out.ops.end(),
                     [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
    return out;
}

namespace profile_detail {

bool recording() {
    return tl_profiler != nullptr;
}

void enter(const std::function<std::string()>& name) {
    State* p = tl_profiler;
    if (p == nullptr) return;
    if (p->depth++ == 0) {
        p->regions.push_back({name(), p->mark(), {}});
    }
}

void leave() {
    State* p = tl_profiler;
    if (p == nullptr || p->depth == 0) return;
    if (--p->depth == 0) {
        p->regions.back().end = p->mark();
        p->regions.back().closed = true;
    }
}

}  // namespace profile_detail

}  // namespace r2c
