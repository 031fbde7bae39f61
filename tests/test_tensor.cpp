// Tensors, the caching allocator (exercised on the CPU with malloc standing in for cudaMalloc) and the
// finite check.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

#include "engine/allocator.h"
#include "engine/device.h"
#include "engine/finite.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/support.h"

using namespace r2c;

TEST_CASE("factories fill, convert and copy", "[tensor]") {
    Tensor t = Tensor::full({2, 3}, 1.5, DType::F32);
    CHECK(t.numel() == 6);
    CHECK(t.nbytes() == 24);
    CHECK(t.to_vector() == std::vector<double>(6, 1.5));
    Tensor d = t.to(DType::F64);
    CHECK(d.dtype() == DType::F64);
    CHECK(d.to_vector() == std::vector<double>(6, 1.5));
    Tensor c = d.clone();
    c.data<double>()[0] = 7;
    CHECK(d.to_vector()[0] == 1.5);  // clone does not share storage
    Tensor v = d.view({3, 2});
    v.data<double>()[1] = 9;
    CHECK(d.to_vector()[1] == 9);  // view does
    CHECK(t.str() == "float32[2,3] cpu");
}

TEST_CASE("tensor errors name the problem", "[tensor]") {
    Tensor t = Tensor::zeros({2, 2}, DType::F32);
    CHECK_THROWS_WITH(t.data<double>(), Catch::Contains("float32[2,2]") && Catch::Contains("float64"));
    CHECK_THROWS_WITH(t.item(), Catch::Contains("exactly one element"));
    CHECK_THROWS_WITH(t.view({3}), Catch::Contains("[3]"));
    CHECK_THROWS_WITH(Tensor::from_vector({1, 2, 3}, {2, 2}), Catch::Contains("3 values"));
    CHECK_THROWS_AS(Tensor().shape(), Error);
}

TEST_CASE("the random stream is fixed by the seed", "[tensor]") {
    Rng a(42), b(42), c(43);
    for (int i = 0; i < 100; ++i) {
        const double x = a.uniform();
        CHECK(x == b.uniform());
        CHECK(x >= 0.0);
        CHECK(x < 1.0);
    }
    CHECK(a.next_u64() != c.next_u64());
    // The first value for seed 0 is pinned so that a change of generator cannot go unnoticed.
    Rng z(0);
    CHECK(z.next_u64() == 0x99ec5f36cb75f2b4ULL);
}

namespace {

// A caching allocator over malloc; `raw` holds the blocks it has taken from malloc and not returned.
struct MallocAllocator {
    std::set<void*> raw;
    CachingAllocator alloc{[this](std::size_t n) {
                               void* p = std::malloc(n);
                               raw.insert(p);
                               return p;
                           },
                           [this](void* p) {
                               raw.erase(p);
                               std::free(p);
                           }};
};

}  // namespace

TEST_CASE("the caching allocator reuses blocks and counts raw allocations", "[allocator]") {
    MallocAllocator m;
    CachingAllocator& alloc = m.alloc;
    const std::set<void*>& raw = m.raw;
    // A "training step" allocating the same sizes three times: raw allocations only in the first.
    for (int step = 0; step < 3; ++step) {
        void* a = alloc.allocate(1000);
        void* b = alloc.allocate(5000);
        void* c = alloc.allocate(1000);
        CHECK(a != c);
        alloc.release(a);
        alloc.release(b);
        alloc.release(c);
    }
    CHECK(alloc.stats().raw_allocations == 3);
    CHECK(alloc.stats().bytes_in_use == 0);
    CHECK(alloc.stats().peak_in_use == 1024 + 5120 + 1024);
    // A cached block at most twice the rounded request is reused; a larger one is not.
    void* half = alloc.allocate(100);  // 512 bytes: the cached 1024-byte block serves
    CHECK(alloc.stats().raw_allocations == 3);
    void* small = alloc.allocate(2000);  // 2048 bytes: the cached 5120-byte block is too large
    CHECK(alloc.stats().raw_allocations == 4);
    alloc.release(half);
    alloc.release(small);
    alloc.empty_cache();
    CHECK(alloc.stats().bytes_cached == 0);
    CHECK(raw.empty());
    CHECK_THROWS_AS(alloc.release(reinterpret_cast<void*>(&m)), Error);
}

TEST_CASE("out of memory, the caching allocator empties its cache and retries, except in a capture",
          "[allocator]") {
    std::size_t budget = 4096;
    int frees = 0;
    CachingAllocator alloc(
        [&](std::size_t n) -> void* {
            if (n > budget) return nullptr;
            budget -= n;
            return std::malloc(n);
        },
        [&](void* p) {
            ++frees;
            budget += 2048;  // every block freed in this test is 2048 bytes
            std::free(p);
        });
    void* a = alloc.allocate(2048);
    void* b = alloc.allocate(2048);
    alloc.release(a);
    alloc.release(b);
    SECTION("no pool open") {
        void* big = alloc.allocate(4096);  // fits only after both cached blocks are returned
        CHECK(big != nullptr);
        CHECK(frees == 2);
        CHECK(alloc.allocate(1) == nullptr);  // truly out of memory: nullptr, not a crash
        alloc.release(big);
    }
    SECTION("a pool open") {
        // In a capture, cudaFree would wait for the device and break it: the allocation fails instead.
        const CachingAllocator::PoolId pool = alloc.open_pool();
        CHECK(alloc.allocate(4096) == nullptr);
        CHECK(frees == 0);
        CHECK(alloc.stats().bytes_cached == 4096);
        alloc.close_pool();
        alloc.drop_pool(pool);
    }
}

TEST_CASE("a private pool keeps its blocks from every allocation outside it", "[allocator]") {
    MallocAllocator m;
    CachingAllocator& alloc = m.alloc;
    void* before = alloc.allocate(1024);
    void* cached = alloc.allocate(1024);
    alloc.release(cached);

    // A "capture": takes the shared cache's block, makes a new one, releases one of its own and the block
    // that was live before it; all four now belong to the pool.
    const CachingAllocator::PoolId pool = alloc.open_pool();
    void* a = alloc.allocate(1024);
    CHECK(a == cached);
    void* scratch = alloc.allocate(4096);
    alloc.release(scratch);
    void* reused = alloc.allocate(4096);  // within the pool, a released block serves again
    CHECK(reused == scratch);
    alloc.release(reused);
    alloc.release(before);
    alloc.close_pool();
    CHECK(alloc.stats().bytes_in_use == 1024 + 4096 + 1024);
    CHECK(alloc.stats().bytes_cached == 0);

    // Outside the pool nothing of it is handed out, not even its released blocks.
    void* outside = alloc.allocate(4096);
    void* outside2 = alloc.allocate(1024);
    CHECK(outside != scratch);
    CHECK(outside2 != before);
    CHECK(outside2 != a);
    alloc.release(outside);
    alloc.release(outside2);
    const std::size_t raw_before = alloc.stats().raw_allocations;

    // Reopened, the pool serves from its own blocks first.
    alloc.open_pool(pool);
    void* again = alloc.allocate(4096);
    CHECK(again == scratch);
    alloc.release(again);
    alloc.close_pool();
    CHECK(alloc.stats().raw_allocations == raw_before);
    CHECK_THROWS_AS(alloc.open_pool(pool + 1), Error);

    // Dropped, its released blocks go back to the shared cache, and its live block once released.
    alloc.drop_pool(pool);
    CHECK(alloc.stats().bytes_in_use == 1024);
    alloc.release(a);
    CHECK(alloc.stats().bytes_in_use == 0);
    void* shared = alloc.allocate(4096);
    CHECK((shared == scratch || shared == outside));
    alloc.release(shared);
    alloc.empty_cache();
    CHECK(m.raw.empty());
}

TEST_CASE("CUDA tensors round-trip through device memory", "[tensor][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    Rng rng(1);
    Tensor h = Tensor::uniform({3, 5, 7}, -1, 1, rng);
    const AllocatorStats before = cuda::allocator().stats();
    Tensor d = h.to(Device::CUDA);
    CHECK(d.device() == Device::CUDA);
    CHECK(d.to(Device::CPU).to_vector() == h.to_vector());
    Tensor f = Tensor::full({1000}, 2.5, DType::F32, Device::CUDA);
    CHECK(f.to_vector() == std::vector<double>(1000, 2.5));
    CHECK(cuda::allocator().stats().bytes_in_use > before.bytes_in_use);
}

TEST_CASE("nonfinite_flags flags the tensors holding a NaN or an infinity, on the CPU and on CUDA",
          "[tensor][finite]") {
    // More tensors than one CUDA launch takes, sizes around its chunk of 1024, the bad value at either end,
    // undefined tensors among them.
    const std::vector<std::int64_t> sizes = {1, 1023, 1024, 1025, 3000};
    std::vector<Tensor> ts;
    std::vector<double> expected;
    for (int i = 0; i < 40; ++i) {
        if (i % 13 == 6) {
            ts.push_back(Tensor());
            expected.push_back(0);
        }
        std::vector<double> v(static_cast<std::size_t>(sizes[i % sizes.size()]), 0.5);
        const int kind = i % 4;  // 0: finite, 1: NaN last, 2: +inf first, 3: -inf last
        if (kind == 1) v.back() = std::nan("");
        if (kind == 2) v.front() = HUGE_VAL;
        if (kind == 3) v.back() = -HUGE_VAL;
        ts.push_back(Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}, DType::F32));
        expected.push_back(kind != 0 ? 1 : 0);
    }
    const Tensor on_cpu = nonfinite_flags(ts, Device::CPU);
    CHECK(on_cpu.shape() == Shape{static_cast<std::int64_t>(ts.size())});
    CHECK(on_cpu.to_vector() == expected);
    CHECK_THROWS_WITH(nonfinite_flags(ts, Device::CUDA), Catch::Contains("tensor 0 is float32[1] cpu"));
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    std::vector<Tensor> on_device;
    for (const Tensor& t : ts)
        on_device.push_back(t.defined() ? t.to(Device::CUDA) : Tensor());
    const std::uint64_t waits = cuda::host_waits();
    const Tensor flags = nonfinite_flags(on_device, Device::CUDA);
    CHECK(cuda::host_waits() == waits);  // the flags stay on the device
    CHECK(flags.device() == Device::CUDA);
    CHECK(flags.to_vector() == expected);
}
