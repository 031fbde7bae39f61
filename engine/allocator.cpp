#include "engine/allocator.h"

#include <cstdlib>
#include <new>

#include "engine/error.h"

namespace r2c {

CachingAllocator::CachingAllocator(RawAlloc raw_alloc, RawFree raw_free)
    : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {}

CachingAllocator::~CachingAllocator() {
    empty_cache();
    // Blocks still live belong to tensors that outlive the allocator (static destruction order); they are
    // returned to the raw allocator here so nothing leaks.
    for (auto& [ptr, size] : live_) raw_free_(ptr);
}

void* CachingAllocator::allocate(std::size_t bytes) {
    const std::size_t size = ((bytes == 0 ? 1 : bytes) + kGranule - 1) / kGranule * kGranule;
    std::lock_guard<std::mutex> lock(mu_);
    // Smallest cached block that fits and wastes at most half of itself.
    auto it = free_blocks_.lower_bound(size);
    if (it != free_blocks_.end() && it->first <= 2 * size) {
        const std::size_t got = it->first;
        void* ptr = it->second;
        free_blocks_.erase(it);
        stats_.bytes_cached -= got;
        live_[ptr] = got;
        stats_.bytes_in_use += got;
        if (stats_.bytes_in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.bytes_in_use;
        return ptr;
    }
    void* ptr = raw_alloc_(size);
    if (ptr == nullptr && !free_blocks_.empty()) {
        for (auto& [s, p] : free_blocks_) raw_free_(p);
        free_blocks_.clear();
        stats_.bytes_cached = 0;
        ptr = raw_alloc_(size);
    }
    if (ptr == nullptr) return nullptr;
    ++stats_.raw_allocations;
    live_[ptr] = size;
    stats_.bytes_in_use += size;
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
    stats_.bytes_in_use -= size;
    free_blocks_.emplace(size, ptr);
    stats_.bytes_cached += size;
}

void CachingAllocator::empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, ptr] : free_blocks_) raw_free_(ptr);
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

void host_free(void* ptr) { std::free(ptr); }

}  // namespace r2c
