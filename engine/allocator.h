// Memory for tensor storage. Host memory is 64-byte aligned. Device memory goes through one caching
// allocator per process: freed memory is kept and handed out again, so a training step whose shapes
// repeat performs no raw device allocation after its first iteration. Captured CUDA graphs
// (engine/graph.h) keep their memory in private pools of the same allocator.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

namespace r2c {

struct AllocatorStats {
    std::size_t bytes_in_use = 0;     // handed out and not yet released, or held by a private pool
    std::size_t bytes_cached = 0;     // held in the cache, free for reuse
    std::size_t peak_in_use = 0;      // high-water mark of bytes_in_use since the last reset_peak()
    std::size_t raw_allocations = 0;  // calls to the raw allocator so far
    std::size_t plan_records = 0;     // allocations the pools' plans have laid out
    std::size_t planned = 0;          // allocations served at the place a pool's plan gave them
};

// The allocations of a piece of work in order, each with its size and the events (allocations and
// releases, counted from 0) at which it was made and released: what a pool's plan is made from.
struct AllocationTrace {
    static constexpr std::uint64_t kLive = ~std::uint64_t(0);  // not released while recorded
    struct Record {
        std::size_t size;  // rounded up to CachingAllocator::kGranule
        std::uint64_t begin, end;
    };
    std::vector<Record> records;
    std::uint64_t clock = 0;
    std::unordered_map<void*, std::size_t> open;  // a recorded block not yet released -> its record
};

// A caching allocator over any raw allocate/free pair (cudaMalloc/cudaFree in practice; tests use malloc).
// Raw allocations are segments: requests up to kSmall bytes share segments of kSmallSegment bytes, larger
// ones get a segment of their own rounded up to kLargeRound. A request takes the smallest free block that
// fits (of its size class), split when the rest is worth keeping (at least kGranule for small blocks,
// more than kSmall for large ones); a released block merges with free neighbours of its segment. So freed
// memory serves requests of other sizes, which the activations and gradients of a training step make many of.
class CachingAllocator {
  public:
    using RawAlloc = std::function<void*(std::size_t)>;  // returns nullptr when out of memory
    using RawFree = std::function<void(void*)>;

    // `host_addressable`: the raw blocks are host memory (malloc in tests, the CUDA emulator's device).
    // Under AddressSanitizer the bytes of a segment that have never been handed out are then poisoned, so
    // that an access past a block's requested size into them is reported. (Memory once handed out is not
    // poisoned again: work queued on a stream before a release may still read it.)
    CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, bool host_addressable = false);
    ~CachingAllocator();
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // Returns a block of at least `bytes` bytes (rounded up to kGranule); nullptr when the raw allocator
    // fails even after the cache was emptied (or at once while a pool is open: see below).
    void* allocate(std::size_t bytes);
    void release(void* ptr);
    // Returns the segments no block of which is in use or held by a pool.
    void empty_cache();
    AllocatorStats stats() const;
    void reset_peak();

    // Private pools, for the memory of captured CUDA graphs, whose replays write the same addresses every
    // time. While a pool is open, every block handed out or released joins it, and a released block of a
    // pool serves only allocations made while that pool is open again: no tensor outside the graphs of a
    // pool ever shares memory their replays write. Graphs that always replay in the order they were
    // captured may share one pool. Blocks of a pool count as in use until the pool is dropped. While a pool
    // is open no block goes back to the raw allocator: cudaFree waits for the device, which a capture
    // forbids.
    using PoolId = std::uint64_t;
    // Opens a new pool (id 0) or reopens pool `id`; returns its id. One pool is open at a time.
    PoolId open_pool(PoolId id = 0);
    void close_pool();
    // Ends a pool: its released blocks return to the shared cache, and so do its live ones once released.
    void drop_pool(PoolId id);

    // Records every allocation and release into `trace` from now on; nullptr stops. Recording may stop and
    // resume into the same trace: a block released meanwhile stays live in it.
    void trace_into(AllocationTrace* trace);
    // Plans pool `id` (which has no plan yet) from a trace of the work it will hold: the pool's next
    // allocations, in order, are placed in one segment, allocated now, at offsets laid out from the trace's
    // sizes and lifetimes (each in the smallest gap free throughout its lifetime that holds it, in a few
    // orders: the largest first with three ways of ordering equal sizes, and the longest-lived first; each
    // layout then settled, every record moved down to the lowest place free throughout its lifetime; the
    // tightest taken), so the segment needs about as many bytes as the work holds at once, where cached
    // blocks would fragment.
    // Without memory for the segment, the pool is left without a plan.
    // Allocations are matched to records in order, by size, within kPlanWindow records of the last match;
    // one without a match, or whose place is still taken, is served as usual. The segment counts as in use
    // until the pool is dropped.
    void plan_pool(PoolId id, const AllocationTrace& trace);

    static constexpr std::size_t kGranule = 512;
    static constexpr std::size_t kSmall = std::size_t(1) << 20;
    static constexpr std::size_t kSmallSegment = std::size_t(2) << 20;
    static constexpr std::size_t kLargeRound = std::size_t(2) << 20;
    static constexpr std::size_t kPlanWindow = 32;

  private:
    struct Block;
    // Free blocks by size, then by segment and place (a fixed order, so that runs repeat).
    struct BySize {
        bool operator()(const Block* a, const Block* b) const;
    };
    using FreeSet = std::set<Block*, BySize>;

    RawAlloc raw_alloc_;
    RawFree raw_free_;
    bool host_addressable_;
    mutable std::mutex mu_;
    std::map<PoolId, std::array<FreeSet, 2>> free_;  // pool (0: the shared cache) -> [small, large] blocks
    std::unordered_map<void*, Block*> live_;         // handed-out block -> its record
    std::map<std::uint64_t, Block*> segments_;       // segment -> its first block
    // A pool's plan: the sizes and offsets of its next allocations, and the segment that holds them. Its
    // free blocks stay out of the free sets while the plan lasts.
    struct Plan {
        std::vector<std::size_t> sizes, offsets;
        std::size_t bytes = 0, next = 0;
        Block* first = nullptr;  // the segment's first block
    };
    std::map<PoolId, Plan> plans_;
    AllocationTrace* trace_ = nullptr;
    PoolId open_ = 0;  // the open pool, 0 when none
    PoolId next_pool_ = 1;
    std::uint64_t next_segment_ = 0;
    AllocatorStats stats_;

    FreeSet& free_set(const Block* b);
    Block* take_free(PoolId pool, bool small, std::size_t size);
    Block* new_segment(std::size_t size, bool small);
    void split(Block* b, std::size_t size);
    void cut(Block* b, std::size_t size);
    Block* take_planned(std::size_t size);
    void make_free(Block* b);
    void count(const Block* b, int sign);
    void release_free_segments();
    void poison_region(void* p, std::size_t bytes, bool on) const;
};

void* host_allocate(std::size_t bytes);
void host_free(void* ptr);

}  // namespace r2c
