// The op profiler (engine/profile.h): each outermost op counted once, by op and shape, its forward and
// backward passes apart, ops inside an op counted as its own, and the times those of the work; on the CPU
// and, where a CUDA device is present (a GPU or the emulator), on CUDA with device events.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/profile.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Matchers::Contains;

namespace {

std::map<std::string, OpTime> by_name(const OpProfile& p) {
    std::map<std::string, OpTime> out;
    for (const OpTime& t : p.ops)
        out[t.op] = t;
    return out;
}

// tanh twice on one shape, then mul and sum, and backward through all of it, under a profiler.
void check_profile(Device device) {
    const std::string dev = device == Device::CUDA ? "cuda" : "cpu";
    Rng rng(3);
    const Tensor x = test::rand({2, 3, 8, 8}, rng).to(DType::F32).to(device).set_requires_grad(true);
    const Tensor big = Tensor::uniform({1 << 20}, -1, 1, rng).to(DType::F32).to(device);
    const Tensor warm = tanh(big);  // first use of the device and the allocator before timing

    OpProfiler profiler(device);
    const Tensor y = tanh(x);
    const Tensor z = mul(y, tanh(x));
    const Tensor big_y = tanh(big);
    backward(sum(z));
    const OpProfile p = profiler.results();

    const auto ops = by_name(p);
    const std::string shape = "float32[2,3,8,8] " + dev;
    REQUIRE(ops.count("tanh on " + shape) == 1);
    CHECK(ops.at("tanh on " + shape).calls == 2);
    CHECK(ops.at("mul on " + shape).calls == 1);
    CHECK(ops.at("sum on " + shape).calls == 1);
    CHECK(ops.at("tanh on float32[1048576] " + dev).calls == 1);
    // Backward: one region per node, named by the gradient it received.
    CHECK(ops.at("sum backward on float32[1] " + dev).calls == 1);
    CHECK(ops.at("mul backward on " + shape).calls == 1);
    CHECK(ops.at("tanh backward on " + shape).calls == 2);
    CHECK(p.ops.size() == 7);

    // Times: the big tanh takes measurable time, nothing is negative, the ops fit in the total (up to the
    // rounding of CUDA's float milliseconds), and the slowest comes first.
    CHECK(ops.at("tanh on float32[1048576] " + dev).ms > 0);
    for (const OpTime& t : p.ops)
        CHECK(t.ms >= 0);
    CHECK(p.ops_ms() <= p.total_ms * (1 + 1e-5));
    for (std::size_t i = 1; i < p.ops.size(); ++i)
        CHECK(p.ops[i - 1].ms >= p.ops[i].ms);

    // After results() nothing more is recorded, and a new profiler may open.
    (void)tanh(x);
    OpProfiler next(device);
    CHECK(next.results().ops.empty());
}

}  // namespace

TEST_CASE("an op profile on the CPU counts each outermost op once, by op and shape, forward and backward",
          "[profile]") {
    check_profile(Device::CPU);
}

TEST_CASE("an op profile on CUDA times the ops with device events", "[profile][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    check_profile(Device::CUDA);
}

TEST_CASE("ops an op runs inside itself count as its own time", "[profile]") {
    Rng rng(4);
    const Tensor x = test::rand({4, 4}, rng, -1, 1, false);
    OpProfiler profiler(Device::CPU);
    {
        const OpScope outer("outer_op", x);
        (void)tanh(x);
        (void)mul(x, x);
    }
    (void)tanh(x);
    const auto ops = by_name(profiler.results());
    CHECK(ops.size() == 2);
    CHECK(ops.at("outer_op on float64[4,4] cpu").calls == 1);
    CHECK(ops.at("tanh on float64[4,4] cpu").calls == 1);
}

TEST_CASE("one op profiler at a time per thread; a region still open is left out", "[profile]") {
    Rng rng(5);
    const Tensor x = test::rand({4, 4}, rng, -1, 1, false);
    OpProfiler profiler(Device::CPU);
    CHECK_THROWS_WITH(OpProfiler(Device::CPU), Contains("already open"));
    const OpScope open("still_open", x);
    (void)tanh(x);  // inside the open region: its time, not an op of its own
    CHECK(profiler.results().ops.empty());
}
