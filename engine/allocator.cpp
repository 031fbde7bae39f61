#include "engine/allocator.h"

#include <cstdlib>
#include <iterator>
#include <new>

#include "engine/error.h"

namespace r2c {

CachingAllocator::CachingAllocator(RawAlloc raw_alloc, RawFree raw_free)
    : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {}

CachingAllocator::~CachingAllocator() {
    empty_cache();
    for (auto& [id, blocks] : pools_)
        for (auto& [size, ptr] : blocks)
            raw_free_(ptr);
    // Blocks still live belong to tensors that outlive the allocator (static destruction order); they are
    // returned to the raw allocator here so nothing leaks.
    for (auto& [ptr, size] : live_)
        raw_free_(ptr);
}

// Smallest block of `from` that fits and wastes at most half of itself, taken out; nullptr when none.
void* CachingAllocator::take_cached(std::multimap<std::size_t, void*>& from, std::size_t size) {
    auto it = from.lower_bound(size);
    if (it == from.end() || it->first > 2 * size) return nullptr;
    void* ptr = it->second;
    live_[ptr] = it->first;
    from.erase(it);
    return ptr;
}

void* CachingAllocator::allocate(std::size_t bytes) {
    const std::size_t size = ((bytes == 0 ? 1 : bytes) + kGranule - 1) / kGranule * kGranule;
    std::lock_guard<std::mutex> lock(mu_);
    // A block of the open pool is already counted in use.
    if (open_ != 0)
        if (void* ptr = take_cached(pools_[open_], size)) return ptr;
    void* ptr = take_cached(free_blocks_, size);
    if (ptr != nullptr) {
        stats_.bytes_cached -= live_[ptr];
    } else {
        ptr = raw_alloc_(size);
        // Out of memory: the cache is returned and the allocation tried again, except while a pool is open
        // (a CUDA graph capture), since freeing device memory waits for the device, which breaks a capture.
        if (ptr == nullptr && !free_blocks_.empty() && open_ == 0) {
            for (auto& [s, p] : free_blocks_)
                raw_free_(p);
            free_blocks_.clear();
            stats_.bytes_cached = 0;
            ptr = raw_alloc_(size);
        }
        if (ptr == nullptr) return nullptr;
        ++stats_.raw_allocations;
        live_[ptr] = size;
    }
    if (open_ != 0) owner_[ptr] = open_;
    stats_.bytes_in_use += live_[ptr];
    if (stats_.bytes_in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.bytes_in_use;
    return ptr;
}

void CachingAllocator::release(void* ptr) {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    R2C_CHECK(it != live_.end(), "CachingAllocator::release: pointer was not allocated here");
    const std::size_t size = it->second;
    live_.erase(it);
    auto owned = owner_.find(ptr);
    if (owned == owner_.end() && open_ != 0) owned = owner_.emplace(ptr, open_).first;
    if (owned != owner_.end()) {
        pools_[owned->second].emplace(size, ptr);
        return;
    }
    stats_.bytes_in_use -= size;
    free_blocks_.emplace(size, ptr);
    stats_.bytes_cached += size;
}

CachingAllocator::PoolId CachingAllocator::open_pool(PoolId id) {
    std::lock_guard<std::mutex> lock(mu_);
    R2C_CHECK(open_ == 0, "CachingAllocator::open_pool: pool ", open_, " is still open");
    if (id == 0) id = next_pool_++;
    R2C_CHECK(id < next_pool_, "CachingAllocator::open_pool: no pool ", id);
    pools_[id];
    open_ = id;
    return id;
}

void CachingAllocator::close_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = 0;
}

void CachingAllocator::drop_pool(PoolId id) {
    std::lock_guard<std::mutex> lock(mu_);
    R2C_CHECK(id != open_, "CachingAllocator::drop_pool: pool ", id, " is open");
    const auto pool = pools_.find(id);
    if (pool == pools_.end()) return;
    for (auto& [size, ptr] : pool->second) {
        owner_.erase(ptr);
        stats_.bytes_in_use -= size;
        free_blocks_.emplace(size, ptr);
        stats_.bytes_cached += size;
    }
    pools_.erase(pool);
    for (auto it = owner_.begin(); it != owner_.end();)
        it = it->second == id ? owner_.erase(it) : std::next(it);
}

void CachingAllocator::empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, ptr] : free_blocks_)
        raw_free_(ptr);
    free_blocks_.clear();
    stats_.bytes_cached = 0;
}

AllocatorStats CachingAllocator::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
}

void CachingAllocator::reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_in_use = stats_.bytes_in_use;
}

void* host_allocate(std::size_t bytes) {
    const std::size_t size = ((bytes == 0 ? 1 : bytes) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}

void host_free(void* ptr) {
    std::free(ptr);
}

}  // namespace r2c
