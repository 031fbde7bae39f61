// Tensors, the caching allocator (exercised on the CPU with malloc standing in for cudaMalloc) and the
// finite check.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "engine/allocator.h"
#include "engine/asan.h"
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

constexpr std::size_t kMiB = std::size_t(1) << 20;

// A caching allocator over malloc; `raw` holds the segments it has taken from malloc and not returned.
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
                           },
                           true};
};

}  // namespace

TEST_CASE("the caching allocator reuses memory across sizes and counts raw allocations", "[allocator]") {
    MallocAllocator m;
    CachingAllocator& alloc = m.alloc;
    // A "training step" allocating the same sizes three times: small requests share one segment, taken in
    // the first step only.
    for (int step = 0; step < 3; ++step) {
        void* a = alloc.allocate(1000);
        void* b = alloc.allocate(5000);
        void* c = alloc.allocate(1000);
        CHECK(a != c);
        CHECK(static_cast<char*>(b) == static_cast<char*>(a) + 1024);
        alloc.release(a);
        alloc.release(b);
        alloc.release(c);
    }
    CHECK(alloc.stats().raw_allocations == 1);
    CHECK(alloc.stats().bytes_in_use == 0);
    CHECK(alloc.stats().bytes_cached == CachingAllocator::kSmallSegment);
    CHECK(alloc.stats().peak_in_use == 1024 + 5120 + 1024);

    // A freed large block serves smaller requests, split; freed again, the parts merge and serve the whole.
    void* big = alloc.allocate(8 * kMiB);
    CHECK(alloc.stats().raw_allocations == 2);
    alloc.release(big);
    void* three = alloc.allocate(3 * kMiB);
    void* five = alloc.allocate(5 * kMiB - 1);
    CHECK(three == big);
    CHECK(static_cast<char*>(five) == static_cast<char*>(big) + 3 * kMiB);
    CHECK(alloc.stats().bytes_in_use == 8 * kMiB);
    alloc.release(three);
    void* two = alloc.allocate(2 * kMiB);  // the smallest free block that fits: three's
    CHECK(two == big);
    alloc.release(two);
    alloc.release(five);
    CHECK(alloc.allocate(8 * kMiB) == big);
    CHECK(alloc.stats().raw_allocations == 2);
    // A large request gets a segment rounded up to kLargeRound; what is left over a small request never
    // takes (small and large requests keep to their own segments), and only a large one once it exceeds
    // kSmall.
    auto* odd = static_cast<char*>(alloc.allocate(3 * kMiB + 1));
    CHECK(alloc.stats().raw_allocations == 3);
    CHECK(alloc.stats().bytes_in_use == 8 * kMiB + 4 * kMiB);  // the 1 MiB - 512 left over: not split off
    alloc.release(odd);
    auto* tiny = static_cast<char*>(alloc.allocate(100));
    CHECK((tiny < odd || tiny >= odd + 4 * kMiB));
    CHECK(alloc.stats().raw_allocations == 3);
    alloc.release(tiny);
    alloc.release(big);
    alloc.empty_cache();
    CHECK(alloc.stats().bytes_cached == 0);
    CHECK(m.raw.empty());
    CHECK_THROWS_AS(alloc.release(reinterpret_cast<void*>(&m)), Error);
}

TEST_CASE("out of memory, the caching allocator empties its cache and retries, except in a capture",
          "[allocator]") {
    std::size_t budget = 8 * kMiB;
    std::map<void*, std::size_t> sizes;
    int frees = 0;
    CachingAllocator alloc(
        [&](std::size_t n) -> void* {
            if (n > budget) return nullptr;
            budget -= n;
            void* p = std::malloc(n);
            sizes[p] = n;
            return p;
        },
        [&](void* p) {
            ++frees;
            budget += sizes[p];
            sizes.erase(p);
            std::free(p);
        });
    void* a = alloc.allocate(3 * kMiB);  // a segment of 4 MiB each
    void* b = alloc.allocate(3 * kMiB);
    alloc.release(a);
    alloc.release(b);
    SECTION("no pool open") {
        void* big = alloc.allocate(6 * kMiB);  // fits only after both cached segments are returned
        CHECK(big != nullptr);
        CHECK(frees == 2);
        CHECK(alloc.allocate(3 * kMiB) == nullptr);  // truly out of memory: nullptr, not a crash
        alloc.release(big);
    }
    SECTION("a pool open") {
        // In a capture, cudaFree would wait for the device and break it: the allocation fails instead.
        const CachingAllocator::PoolId pool = alloc.open_pool();
        CHECK(alloc.allocate(6 * kMiB) == nullptr);
        CHECK(frees == 0);
        CHECK(alloc.stats().bytes_cached == 8 * kMiB);
        alloc.close_pool();
        alloc.drop_pool(pool);
    }
    alloc.empty_cache();
    CHECK(sizes.empty());
}

TEST_CASE("a private pool keeps its blocks from every allocation outside it", "[allocator]") {
    MallocAllocator m;
    CachingAllocator& alloc = m.alloc;
    void* before = alloc.allocate(1024);
    void* cached = alloc.allocate(1024);
    alloc.release(cached);

    // A "capture": takes the shared cache's memory, releases a block of its own and the block that was live
    // before it; all three now belong to the pool, the rest of the segment to the shared cache.
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
    CHECK(alloc.stats().bytes_cached == CachingAllocator::kSmallSegment - (1024 + 4096 + 1024));

    // Outside the pool nothing of it is handed out, not even its released blocks.
    void* outside = alloc.allocate(4096);
    void* outside2 = alloc.allocate(1024);
    for (void* p : {outside, outside2})
        for (void* mine : {before, a, scratch})
            CHECK(p != mine);
    alloc.release(outside);
    alloc.release(outside2);
    const std::size_t raw_before = alloc.stats().raw_allocations;

    // Reopened, the pool serves from its own blocks first; its free neighbours never merge with the cache's.
    alloc.open_pool(pool);
    void* again = alloc.allocate(4096);
    CHECK(again == scratch);
    alloc.release(again);
    alloc.close_pool();
    CHECK(alloc.stats().raw_allocations == raw_before);
    CHECK_THROWS_AS(alloc.open_pool(pool + 1), Error);

    // Dropped, its released blocks go back to the shared cache, and its live block once released; the
    // segment is whole again.
    alloc.drop_pool(pool);
    CHECK(alloc.stats().bytes_in_use == 1024);
    alloc.release(a);
    CHECK(alloc.stats().bytes_in_use == 0);
    CHECK(alloc.stats().bytes_cached == CachingAllocator::kSmallSegment);
    auto* first = static_cast<char*>(alloc.allocate(CachingAllocator::kSmall));
    void* second = alloc.allocate(CachingAllocator::kSmall);
    CHECK(first == before);
    CHECK(second == first + CachingAllocator::kSmall);
    CHECK(alloc.stats().raw_allocations == raw_before);
    alloc.release(first);
    alloc.release(second);
    alloc.empty_cache();
    CHECK(m.raw.empty());
}

TEST_CASE("a planned pool places its allocations where the plan from their trace put them", "[allocator]") {
    MallocAllocator m;
    CachingAllocator& alloc = m.alloc;
    // The work: x and y overlap in time, z takes x's place once x is gone, w outlives the work.
    const auto work = [&](bool search) {
        if (search) alloc.release(alloc.allocate(kMiB + 512));  // a search on first use: its rehearsal only
        void* x = alloc.allocate(4 * kMiB);
        void* y = alloc.allocate(2 * kMiB);
        alloc.release(x);
        void* z = alloc.allocate(4 * kMiB);
        void* w = alloc.allocate(1000);
        alloc.release(y);
        alloc.release(z);
        return std::vector<void*>{x, y, z, w};
    };
    AllocationTrace trace;
    alloc.trace_into(&trace);
    const std::vector<void*> rehearsed = work(true);
    alloc.trace_into(nullptr);
    alloc.release(rehearsed[3]);
    REQUIRE(trace.records.size() == 5);
    CHECK(trace.records[1].size == 4 * kMiB);
    CHECK(trace.records[1].end == trace.records[3].begin - 1);  // x released just before z
    CHECK(trace.records[4].size == 1024);
    CHECK(trace.records[4].end == AllocationTrace::kLive);
    alloc.empty_cache();

    const CachingAllocator::PoolId pool = alloc.open_pool();
    const std::size_t raw = alloc.stats().raw_allocations;
    alloc.plan_pool(pool, trace);
    // One segment: x (then z) at 0, y at 4 MiB, w at 6 MiB; 6 MiB + 1024 rounded up to kLargeRound.
    CHECK(alloc.stats().raw_allocations == raw + 1);
    CHECK(alloc.stats().bytes_in_use == 8 * kMiB);
    CHECK(alloc.stats().plan_records == 5);
    CHECK_THROWS_WITH(alloc.plan_pool(pool, trace), Catch::Contains("has a plan already"));
    CHECK_THROWS_WITH(alloc.plan_pool(pool + 1, trace), Catch::Contains("no pool"));

    char* base = nullptr;     // the plan's segment
    std::vector<char*> live;  // what the work leaves allocated
    SECTION("allocations as rehearsed, less the search, take their planned places") {
        std::vector<char*> got;
        for (void* p : work(false))
            got.push_back(static_cast<char*>(p));
        base = got[0];
        CHECK(alloc.stats().planned == 4);
        CHECK(got[1] == base + 4 * kMiB);
        CHECK(got[2] == base);
        CHECK(got[3] == base + 6 * kMiB);
        CHECK(alloc.stats().raw_allocations == raw + 1);
        live = {got[3]};
    }
    SECTION("an allocation whose place is still taken, or of a size not planned, is served as usual") {
        auto* x = static_cast<char*>(alloc.allocate(4 * kMiB));
        auto* y = static_cast<char*>(alloc.allocate(2 * kMiB));
        auto* z = static_cast<char*>(alloc.allocate(4 * kMiB));  // x not released: z's place is taken
        auto* v = static_cast<char*>(alloc.allocate(3 * kMiB));  // no record of 3 MiB
        auto* w = static_cast<char*>(alloc.allocate(1000));      // the plan goes on after them
        base = x;
        CHECK(alloc.stats().planned == 3);
        CHECK(y == base + 4 * kMiB);
        CHECK(w == base + 6 * kMiB);
        CHECK((z + 4 * kMiB <= base || z >= base + 8 * kMiB));
        CHECK((v + 3 * kMiB <= base || v >= base + 8 * kMiB));
        CHECK((z + 4 * kMiB <= v || v + 3 * kMiB <= z));
        CHECK(alloc.stats().raw_allocations == raw + 3);
        alloc.release(x);
        alloc.release(z);
        alloc.release(v);
        live = {y, w};
    }
    alloc.close_pool();
    // While the pool lasts, its planned memory, even where released, serves nothing outside it.
    alloc.release(live[0]);
    auto* outside = static_cast<char*>(alloc.allocate(2 * kMiB));
    CHECK((outside + 2 * kMiB <= base || outside >= base + 8 * kMiB));
    alloc.release(outside);
    // Dropped, the plan's segment is an ordinary one: whole again once its last block is released.
    alloc.drop_pool(pool);
    for (std::size_t i = 1; i < live.size(); ++i)
        alloc.release(live[i]);
    CHECK(alloc.stats().bytes_in_use == 0);
    const std::size_t raw_after = alloc.stats().raw_allocations;
    void* whole = alloc.allocate(8 * kMiB);
    CHECK(whole == base);
    CHECK(alloc.stats().raw_allocations == raw_after);
    alloc.release(whole);
    alloc.empty_cache();
    CHECK(m.raw.empty());
}

namespace {

// Runs allocations (true) and releases (false) of the given sizes in order, traced, then again in a pool
// planned from the trace; checks that every one took its planned place, and returns the plan's bytes and
// each allocation's offset from allocation `base`.
std::pair<std::size_t, std::vector<std::size_t>> planned_layout(
    const std::vector<std::size_t>& size, const std::vector<std::pair<bool, std::size_t>>& events,
    std::size_t base) {
    MallocAllocator m;
    CachingAllocator& alloc = m.alloc;
    const auto work = [&] {
        std::vector<char*> p(size.size());
        for (const auto& [allocation, i] : events) {
            if (allocation)
                p[i] = static_cast<char*>(alloc.allocate(size[i]));
            else
                alloc.release(p[i]);
        }
        return p;
    };
    AllocationTrace trace;
    alloc.trace_into(&trace);
    work();
    alloc.trace_into(nullptr);
    alloc.empty_cache();
    const CachingAllocator::PoolId pool = alloc.open_pool();
    alloc.plan_pool(pool, trace);
    const std::size_t bytes = alloc.stats().bytes_in_use;
    const std::vector<char*> p = work();
    alloc.close_pool();
    CHECK(alloc.stats().planned == size.size());
    std::vector<std::size_t> offset;
    for (char* q : p)
        offset.push_back(static_cast<std::size_t>(q - p[base]));
    alloc.drop_pool(pool);
    alloc.empty_cache();
    CHECK(m.raw.empty());
    return {bytes, offset};
}

}  // namespace

TEST_CASE("a pool's plan puts each allocation in the smallest gap that holds it", "[allocator]") {
    constexpr std::size_t u = 2 * kMiB;
    // Largest first: #3 at 0, #4 at 5, #0 at 10, #2 at 14, then #6 in the gap of 4 at 10 (#0 is gone by
    // then) rather than the lower one of 5 at 0 (#3 is gone too), which #5 takes after #1 went to 18. At the
    // lowest offset free, #6 would take 0 and #5 go on top: 22.
    const auto [bytes, offset] = planned_layout({4 * u, 2 * u, 4 * u, 5 * u, 5 * u, 2 * u, 4 * u},
                                                {{true, 0},
                                                 {true, 1},
                                                 {true, 2},
                                                 {true, 3},
                                                 {true, 4},
                                                 {false, 3},
                                                 {true, 5},
                                                 {false, 0},
                                                 {true, 6},
                                                 {false, 5},
                                                 {false, 6},
                                                 {false, 2},
                                                 {false, 1},
                                                 {false, 4}},
                                                3);
    CHECK(bytes == 20 * u);
    CHECK(offset == std::vector<std::size_t>{10 * u, 18 * u, 14 * u, 0, 5 * u, 0, 10 * u});
}

TEST_CASE("a pool's plan takes the tightest of its orders, each layout settled down", "[allocator]") {
    constexpr std::size_t u = 2 * kMiB;
    // #0 and #1 of 4, #2 and #3 of 3; at most #1, #2 and #3 at once: 10. The largest first in the order
    // made puts #0 at 0, #1 at 4, #2 at 0 (#0 is gone) and #3 above both others, at 8: 11, and no record
    // can move down. The longer-lived of equal sizes first puts #1 at 0, #0 at 4, #2 at 4 and #3 at 7: 10.
    const auto [bytes, offset] = planned_layout(
        {4 * u, 4 * u, 3 * u, 3 * u},
        {{true, 0}, {true, 1}, {false, 0}, {true, 2}, {true, 3}, {false, 3}, {false, 1}, {false, 2}}, 1);
    CHECK(bytes == 10 * u);
    CHECK(offset == std::vector<std::size_t>{4 * u, 0, 4 * u, 7 * u});
    // At most 12 at once (#0, #1, #2 and #4 in the middle). Every order leaves a top of 13 or more; the
    // largest first puts #4 at 0, #5 and #0 at 5, #3 at 8, #2 at 10 and #1 at 12, and settling, the lowest
    // first, moves #3 down to 0 (free throughout its short life) and then #1 down to 8: 12.
    const auto [settled, settled_offset] = planned_layout({3 * u, 1 * u, 2 * u, 2 * u, 5 * u, 5 * u},
                                                          {{true, 0},
                                                           {true, 1},
                                                           {true, 2},
                                                           {true, 3},
                                                           {false, 3},
                                                           {true, 4},
                                                           {false, 0},
                                                           {false, 1},
                                                           {true, 5},
                                                           {false, 4},
                                                           {false, 2},
                                                           {false, 5}},
                                                          4);
    CHECK(settled == 12 * u);
    CHECK(settled_offset == std::vector<std::size_t>{5 * u, 8 * u, 10 * u, 0, 0, 5 * u});
}

TEST_CASE("under AddressSanitizer, host memory the allocator has never handed out is poisoned",
          "[allocator]") {
#ifdef R2C_ASAN
    MallocAllocator m;
    CachingAllocator& alloc = m.alloc;
    auto* p = static_cast<char*>(alloc.allocate(1000));
    CHECK(__asan_region_is_poisoned(p, 1000) == nullptr);
    CHECK(__asan_address_is_poisoned(p + 1000));  // past the request, within the block's rounding
    CHECK(__asan_address_is_poisoned(p + 4096));  // the rest of the segment
    alloc.release(p);
    // In a pool a block is readable whole: a replay writes what its capture's tensors covered.
    const CachingAllocator::PoolId pool = alloc.open_pool();
    auto* q = static_cast<char*>(alloc.allocate(3000));
    CHECK(q == p);
    CHECK(__asan_region_is_poisoned(q, 3072) == nullptr);
    CHECK(__asan_address_is_poisoned(q + 3072));
    alloc.release(q);
    alloc.close_pool();
    alloc.drop_pool(pool);
    alloc.empty_cache();
    CHECK(m.raw.empty());
#else
    test::skip("not an AddressSanitizer build");
#endif
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

TEST_CASE("cat_batch joins parts along the first dimension", "[tensor]") {
    const Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector({5, 6}, {1, 2});
    const Tensor ab = cat_batch({a, b, Tensor::empty({0, 2})});
    CHECK(ab.shape() == Shape{3, 2});
    CHECK(ab.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
    CHECK_THROWS_WITH(cat_batch({a, Tensor::zeros({1, 3})}), Catch::Contains("does not match float32[2,2]"));
    CHECK_THROWS_WITH(cat_batch({a, Tensor::zeros({1, 2}, DType::F64)}), Catch::Contains("does not match"));
    CHECK_THROWS_WITH(cat_batch({}), Catch::Contains("no tensors"));
}

TEST_CASE("cat_batch on CUDA copies every bit of each part in one launch per 32 parts", "[tensor][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    // 41 parts (two launches), an empty one among them; lengths of 3 elements times 1 to 700 items, so that
    // parts move in 16-byte words where their length and place allow and in 4-byte words elsewhere, across
    // chunk edges. A NaN with a payload, an infinity and a negative zero must arrive as the same bits.
    for (const DType dt : {DType::F32, DType::F64}) {
        INFO(dtype_name(dt));
        Rng rng(3);
        std::vector<Tensor> parts, on_device;
        for (int i = 0; i < 41; ++i) {
            const std::int64_t items = i == 7 ? 0 : 1 + (i * 97) % 700;
            parts.push_back(Tensor::uniform({items, 3}, -2, 2, rng, dt));
        }
        const std::uint64_t payload_nan = 0x7ff8000000001234u;
        const double specials[] = {-0.0, HUGE_VAL};
        if (dt == DType::F64) {
            std::memcpy(parts[3].data<double>(), &payload_nan, sizeof payload_nan);
            std::memcpy(parts[3].data<double>() + 1, specials, sizeof specials);
        } else {
            const auto nan32 = static_cast<std::uint32_t>(0x7fc01234u);
            std::memcpy(parts[3].data<float>(), &nan32, sizeof nan32);
            parts[3].data<float>()[1] = -0.0f;
            parts[3].data<float>()[2] = HUGE_VALF;
        }
        for (const Tensor& p : parts)
            on_device.push_back(p.to(Device::CUDA));
        const Tensor expected = cat_batch(parts);
        const std::uint64_t launches = cuda::kernel_launches(), copies = cuda::memory_operations();
        const Tensor joined = cat_batch(on_device);
        CHECK(cuda::kernel_launches() - launches == 2);
        CHECK(cuda::memory_operations() == copies);
        REQUIRE(joined.shape() == expected.shape());
        const Tensor back = joined.to(Device::CPU);
        CHECK(std::memcmp(back.raw_data(), expected.raw_data(), expected.nbytes()) == 0);
    }
}

TEST_CASE("cuda::gather copies parts of any byte length and writes nothing past them", "[tensor][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    // Lengths that admit 16-, 4- and 1-byte words. The output starts one byte into a poisoned buffer, so a
    // part lies on the 16-byte grid only where the lengths before it bring it back.
    const std::vector<std::size_t> lengths = {15, 1, 48, 4097, 3, 16, 16, 2, 5000, 1};
    std::vector<unsigned char> all;
    std::vector<Tensor> parts;  // keeps the device buffers alive
    std::vector<const void*> data;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        std::vector<unsigned char> bytes(lengths[i]);
        for (std::size_t k = 0; k < bytes.size(); ++k)
            bytes[k] = static_cast<unsigned char>((i * 131 + k * 7 + 1) % 251);
        all.insert(all.end(), bytes.begin(), bytes.end());
        parts.push_back(Tensor::empty({static_cast<std::int64_t>(lengths[i])}, DType::F32, Device::CUDA));
        cuda::copy(parts.back().raw_data(), bytes.data(), bytes.size(), cuda::CopyKind::HostToDevice);
        data.push_back(parts.back().raw_data());
    }
    const Tensor out =
        Tensor::full({static_cast<std::int64_t>(all.size() / 4 + 2)}, std::nan(""), DType::F32, Device::CUDA);
    std::vector<unsigned char> before(out.nbytes()), after(out.nbytes());
    cuda::copy(before.data(), out.raw_data(), before.size(), cuda::CopyKind::DeviceToHost);
    cuda::gather(static_cast<char*>(out.raw_data()) + 1, data, lengths);
    cuda::copy(after.data(), out.raw_data(), after.size(), cuda::CopyKind::DeviceToHost);
    const auto end = static_cast<std::ptrdiff_t>(1 + all.size());
    CHECK(after[0] == before[0]);
    CHECK(std::equal(all.begin(), all.end(), after.begin() + 1));
    CHECK(std::equal(after.begin() + end, after.end(), before.begin() + end));
    CHECK_THROWS_WITH(cuda::gather(out.raw_data(), data, {1, 2}), Catch::Contains("10 parts but 2 sizes"));
}
