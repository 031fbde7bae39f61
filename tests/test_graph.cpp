// CUDA graphs of the engine's work (engine/graph.h): a replay recomputes what was captured from the data
// it finds then, bit for bit as the ops would; a capture that would wait for the device fails with an error
// and leaves nothing behind; memory of a capture is never handed to a tensor outside it; captures after
// rehearsals take their memory where the plan from the rehearsals put it; a replayed Adam step takes the
// scalars of its own iteration.
#include <catch2/catch.hpp>

#include <set>
#include <vector>

#include "engine/adam.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/graph.h"
#include "engine/ops.h"
#include "tests/support.h"

using namespace r2c;

namespace {

Tensor random_cuda(const Shape& shape, Rng& rng) {
    return Tensor::uniform(shape, -1, 1, rng, DType::F32, Device::CUDA);
}

// A few ops with an intermediate that is released inside the work.
Tensor work_on(const Tensor& x, const Tensor& w) {
    const Tensor h = tanh(mul(x, w));
    return add(leaky_relu(h), mul_scalar(x, 0.5));
}

}  // namespace

TEST_CASE("a replayed graph recomputes the captured ops from the inputs it finds", "[graph][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    Rng rng(3);
    Tensor x = Tensor::empty({5, 37}, DType::F32, Device::CUDA);
    const Tensor w = random_cuda({5, 37}, rng);
    x.copy_from(random_cuda({5, 37}, rng));
    cuda::GraphSequence graphs;
    Tensor y;
    const std::uint64_t launches = cuda::kernel_launches();
    graphs.capture([&] { y = work_on(x, w); });
    CHECK(graphs.size() == 1);
    const std::uint64_t captured = cuda::kernel_launches() - launches;
    CHECK(captured >= 4);
    for (int replay = 0; replay < 3; ++replay) {
        INFO("replay " << replay);
        const Tensor input = random_cuda({5, 37}, rng);
        const std::uint64_t copies = cuda::memory_operations();
        x.copy_from(input);
        CHECK(cuda::memory_operations() == copies + 1);  // a device-to-device copy is one
        const std::uint64_t before = cuda::kernel_launches();
        graphs.replay(0);
        CHECK(cuda::kernel_launches() == before);        // no kernel launched one by one
        CHECK(cuda::memory_operations() == copies + 1);  // nor a copy or fill
        CHECK(y.to_vector() == work_on(input, w).to_vector());
    }
}

TEST_CASE("a capture that waits for the device fails, names the problem and changes nothing",
          "[graph][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    Rng rng(4);
    const Tensor x = random_cuda({64}, rng);
    cuda::GraphSequence graphs;
    CHECK_THROWS_WITH(graphs.capture([&] { (void)sum(x).item(); }),
                      Catch::Contains("GraphSequence::capture"));
    CHECK(graphs.size() == 0);
    CHECK_FALSE(cuda::capturing());
    // An op's own error inside a capture comes out as it is.
    const Tensor other = random_cuda({3}, rng);
    CHECK_THROWS_WITH(graphs.capture([&] { (void)add(x, other); }),
                      Catch::Contains("add") && !Catch::Contains("GraphSequence"));
    CHECK(graphs.size() == 0);
    // The engine runs as before, and a later capture succeeds.
    const std::vector<double> expected = tanh(x).to_vector();
    Tensor y;
    graphs.capture([&] { y = tanh(x); });
    graphs.replay(0);
    CHECK(y.to_vector() == expected);
}

TEST_CASE("memory of a capture is never handed to a tensor outside it", "[graph][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    Rng rng(5);
    const Tensor x = random_cuda({256}, rng), w = random_cuda({256}, rng);
    const std::size_t in_use = cuda::allocator().stats().bytes_in_use;
    {
        cuda::GraphSequence graphs;
        Tensor y;
        std::set<const void*> seen;
        graphs.capture([&] {
            const Tensor a = mul(x, w);  // released inside the capture
            seen.insert(a.raw_data());
            y = tanh(a);
        });
        seen.insert(y.raw_data());
        // Eager tensors of the same size, while the capture's blocks are free in the cache's eyes.
        std::vector<Tensor> outside;
        for (int i = 0; i < 8; ++i) {
            outside.push_back(mul(x, w));
            CHECK(seen.count(outside.back().raw_data()) == 0);
        }
        graphs.replay(0);
        CHECK(y.to_vector() == tanh(mul(x, w)).to_vector());
        CHECK(cuda::allocator().stats().bytes_in_use > in_use);
    }
    // The sequence and its tensors gone, the pool's memory is back in the shared cache.
    CHECK(cuda::allocator().stats().bytes_in_use == in_use);
}

TEST_CASE("captures after rehearsals take their memory at the places planned from them", "[graph][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    Rng rng(6);
    Tensor x = Tensor::empty({7, 129}, DType::F32, Device::CUDA);
    const Tensor w = random_cuda({7, 129}, rng);
    x.copy_from(random_cuda({7, 129}, rng));
    CachingAllocator& alloc = cuda::allocator();
    const std::size_t in_use = alloc.stats().bytes_in_use;
    Tensor y, z;  // outlive the sequence: released after its pool is dropped
    const auto first = [&] { y = work_on(x, w); };
    const auto second = [&] { z = work_on(y, w); };
    AllocationTrace trace;
    alloc.trace_into(&trace);
    first();
    second();
    alloc.trace_into(nullptr);
    const std::size_t allocations = trace.records.size();
    CHECK(allocations >= 8);
    {
        cuda::GraphSequence graphs;
        graphs.rehearse(first);
        graphs.rehearse(second);
        const AllocatorStats before = alloc.stats();
        graphs.capture(first);
        graphs.capture(second);
        CHECK(alloc.stats().plan_records - before.plan_records == allocations);
        CHECK(alloc.stats().planned - before.planned == allocations);
        CHECK_THROWS_WITH(graphs.rehearse(first), Catch::Contains("captured already"));
        for (int replay = 0; replay < 2; ++replay) {
            INFO("replay " << replay);
            const Tensor input = random_cuda({7, 129}, rng);
            x.copy_from(input);
            graphs.replay(0);
            graphs.replay(1);
            CHECK(z.to_vector() == work_on(work_on(input, w), w).to_vector());
        }
    }
    y = Tensor();
    z = Tensor();
    CHECK(alloc.stats().bytes_in_use == in_use);
}

TEST_CASE("a replayed Adam step takes the scalars of its own iteration", "[graph][cuda][adam]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    Rng rng(6);
    const Tensor start = random_cuda({3, 300}, rng);
    AdamOptions o;
    o.schedule = LinearDecay(1e-2, 6, 1);  // the rate changes every step
    Tensor p_eager = Tensor::empty(start.shape(), DType::F32, Device::CUDA);
    Tensor p_graph = Tensor::empty(start.shape(), DType::F32, Device::CUDA);
    p_eager.copy_from(start);
    p_graph.copy_from(start);
    p_eager.set_requires_grad(true);
    p_graph.set_requires_grad(true);
    Adam eager({p_eager}, o), graphed({p_graph}, o);
    const auto step = [](Adam& opt, const Tensor& p) {
        opt.zero_grad();
        sum(mul(mul(p, p), p)).backward();  // gradients that change with p
        opt.step();
    };
    cuda::GraphSequence graphs;
    for (int i = 0; i < 5; ++i) {
        INFO("step " << i);
        step(eager, p_eager);
        if (i == 0)
            step(graphed, p_graph);  // eager first, as the trainer does
        else if (i == 1)
            graphs.capture([&] { step(graphed, p_graph); });
        else
            graphed.step_replayed();
        if (i >= 1) graphs.replay(0);
        CHECK(graphed.iterations() == eager.iterations());
        CHECK(p_graph.to_vector() == p_eager.to_vector());
    }
}
