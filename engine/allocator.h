// Memory for tensor storage. Host memory is 64-byte aligned. Device memory goes through one caching
// allocator per process: freed blocks are kept and handed out again, so a training step whose shapes
// repeat performs no raw device allocation after its first iteration. Captured CUDA graphs
// (engine/graph.h) keep their memory in private pools of the same allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace r2c {

struct AllocatorStats {
    std::size_t bytes_in_use = 0;     // handed out and not yet released, or held by a private pool
    std::size_t bytes_cached = 0;     // held in the cache, free for reuse
    std::size_t peak_in_use = 0;      // high-water mark of bytes_in_use since the last reset_peak()
    std::size_t raw_allocations = 0;  // calls to the raw allocator so far
};

// A caching allocator over any raw allocate/free pair (cudaMalloc/cudaFree in practice; tests use malloc).
class CachingAllocator {
  public:
    using RawAlloc = std::function<void*(std::size_t)>;  // returns nullptr when out of memory
    using RawFree = std::function<void(void*)>;

    CachingAllocator(RawAlloc raw_alloc, RawFree raw_free);
    ~CachingAllocator();
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // Returns a block of at least `bytes` bytes (rounded up to kGranule); nullptr when the raw allocator
    // fails even after the cache was emptied (or at once while a pool is open: see below).
    void* allocate(std::size_t bytes);
    void release(void* ptr);
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

    static constexpr std::size_t kGranule = 512;

  private:
    RawAlloc raw_alloc_;
    RawFree raw_free_;
    mutable std::mutex mu_;
    std::multimap<std::size_t, void*> free_blocks_;              // size -> block
    std::unordered_map<void*, std::size_t> live_;                // block -> size
    std::map<PoolId, std::multimap<std::size_t, void*>> pools_;  // pool -> its released blocks
    std::unordered_map<void*, PoolId> owner_;                    // block -> the pool it belongs to
    PoolId open_ = 0;                                            // the open pool, 0 when none
    PoolId next_pool_ = 1;
    AllocatorStats stats_;

    void* take_cached(std::multimap<std::size_t, void*>& from, std::size_t size);
};

void* host_allocate(std::size_t bytes);
void host_free(void* ptr);

}  // namespace r2c
