// Memory for tensor storage. Host memory is 64-byte aligned. Device memory goes through one caching
// allocator per process: freed blocks are kept and handed out again, so a training step whose shapes
// repeat performs no raw device allocation after its first iteration.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace r2c {

struct AllocatorStats {
    std::size_t bytes_in_use = 0;   // handed out and not yet released
    std::size_t bytes_cached = 0;   // held in the cache, free for reuse
    std::size_t peak_in_use = 0;    // high-water mark of bytes_in_use since the last reset_peak()
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
    // fails even after the cache was emptied.
    void* allocate(std::size_t bytes);
    void release(void* ptr);
    void empty_cache();
    AllocatorStats stats() const;
    void reset_peak();

    static constexpr std::size_t kGranule = 512;

private:
    RawAlloc raw_alloc_;
    RawFree raw_free_;
    mutable std::mutex mu_;
    std::multimap<std::size_t, void*> free_blocks_;    // size -> block
    std::unordered_map<void*, std::size_t> live_;     // block -> size
    AllocatorStats stats_;
};

void* host_allocate(std::size_t bytes);
void host_free(void* ptr);

}  // namespace r2c
