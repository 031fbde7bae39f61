#include "engine/allocator.h"

#include <cstdlib>
#include <new>
#include <vector>

#include "engine/asan.h"
#include "engine/error.h"

namespace r2c {

// One block of a segment: handed out (in live_), or free (in one free set).
struct CachingAllocator::Block {
    char* ptr = nullptr;
    std::size_t size = 0;
    std::uint64_t segment = 0;
    bool small = false;
    bool free = false;
    PoolId pool = 0;        // 0: the shared cache
    Block* prev = nullptr;  // the neighbours in the segment, by address
    Block* next = nullptr;
};

bool CachingAllocator::BySize::operator()(const Block* a, const Block* b) const {
    if (a->size != b->size) return a->size < b->size;
    if (a->segment != b->segment) return a->segment < b->segment;
    return a->ptr < b->ptr;
}

CachingAllocator::CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, bool host_addressable)
    : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)), host_addressable_(host_addressable) {}

CachingAllocator::~CachingAllocator() {
    // Blocks still live belong to tensors that outlive the allocator (static destruction order); their
    // segments are returned to the raw allocator too, so nothing leaks.
    for (auto& [id, first] : segments_) {
        char* base = first->ptr;
        std::size_t bytes = 0;
        for (Block* b = first; b != nullptr;) {
            Block* next = b->next;
            bytes += b->size;
            delete b;
            b = next;
        }
        poison_region(base, bytes, false);
        raw_free_(base);
    }
}

void CachingAllocator::poison_region(void* p, std::size_t bytes, bool on) const {
#ifdef R2C_ASAN
    if (!host_addressable_) return;
    if (on)
        ASAN_POISON_MEMORY_REGION(p, bytes);
    else
        ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#else
    (void)p;
    (void)bytes;
    (void)on;
#endif
}

CachingAllocator::FreeSet& CachingAllocator::free_set(const Block* b) {
    return free_[b->pool][b->small ? 0 : 1];
}

// A block counts as cached while free in the shared cache, and as in use otherwise (handed out, or held
// by a pool).
void CachingAllocator::count(const Block* b, int sign) {
    std::size_t& counter = b->free && b->pool == 0 ? stats_.bytes_cached : stats_.bytes_in_use;
    if (sign > 0)
        counter += b->size;
    else
        counter -= b->size;
}

// The smallest free block of `pool` and the size class that holds `size` bytes, taken out of its set;
// nullptr when none.
CachingAllocator::Block* CachingAllocator::take_free(PoolId pool, bool small, std::size_t size) {
    const auto it = free_.find(pool);
    if (it == free_.end()) return nullptr;
    FreeSet& set = it->second[small ? 0 : 1];
    Block key;
    key.size = size;
    const auto found = set.lower_bound(&key);
    if (found == set.end()) return nullptr;
    Block* b = *found;
    set.erase(found);
    return b;
}

// A new segment for a request of `size` bytes, as one free block of the shared cache (not in a set);
// nullptr when the raw allocator fails.
CachingAllocator::Block* CachingAllocator::new_segment(std::size_t size, bool small) {
    const std::size_t bytes = small ? kSmallSegment : (size + kLargeRound - 1) / kLargeRound * kLargeRound;
    void* raw = raw_alloc_(bytes);
    if (raw == nullptr) return nullptr;
    ++stats_.raw_allocations;
    auto* b = new Block;
    b->ptr = static_cast<char*>(raw);
    b->size = bytes;
    b->segment = next_segment_++;
    b->small = small;
    b->free = true;
    segments_[b->segment] = b;
    poison_region(b->ptr, bytes, true);
    return b;
}

// Cuts the block b, just taken out of the free sets, down to `size` bytes when the rest is worth a block of
// its own, which stays free in b's pool.
void CachingAllocator::split(Block* b, std::size_t size) {
    const std::size_t rest = b->size - size;
    if (b->small ? rest < kGranule : rest <= kSmall) return;
    auto* r = new Block(*b);
    r->free = true;
    r->ptr = b->ptr + size;
    r->size = rest;
    r->prev = b;
    if (b->next != nullptr) b->next->prev = r;
    b->next = r;
    b->size = size;
    count(r, +1);
    make_free(r);
}

// Puts the free block b into its set, merged with the free neighbours of the same pool.
void CachingAllocator::make_free(Block* b) {
    for (Block* n : {b->next, b->prev}) {
        if (n == nullptr || !n->free || n->pool != b->pool) continue;
        free_set(n).erase(n);
        Block* left = n == b->prev ? n : b;
        Block* right = n == b->prev ? b : n;
        left->size += right->size;
        left->next = right->next;
        if (right->next != nullptr) right->next->prev = left;
        delete right;
        b = left;
    }
    free_set(b).insert(b);
}

void CachingAllocator::release_free_segments() {
    for (FreeSet& set : free_[0]) {
        for (auto it = set.begin(); it != set.end();) {
            Block* b = *it;
            if (b->prev != nullptr || b->next != nullptr) {
                ++it;
                continue;
            }
            it = set.erase(it);
            count(b, -1);
            segments_.erase(b->segment);
            poison_region(b->ptr, b->size, false);
            raw_free_(b->ptr);
            delete b;
        }
    }
}

void* CachingAllocator::allocate(std::size_t bytes) {
    const std::size_t size = ((bytes == 0 ? 1 : bytes) + kGranule - 1) / kGranule * kGranule;
    const bool small = size <= kSmall;
    std::lock_guard<std::mutex> lock(mu_);
    Block* b = open_ != 0 ? take_free(open_, small, size) : nullptr;
    if (b == nullptr) b = take_free(0, small, size);
    if (b == nullptr) {
        b = new_segment(size, small);
        // Out of memory: the cache is returned and the allocation tried again, except while a pool is open
        // (a CUDA graph capture), since freeing device memory waits for the device, which breaks a capture.
        if (b == nullptr && open_ == 0) {
            release_free_segments();
            b = new_segment(size, small);
        }
        if (b == nullptr) return nullptr;
        count(b, +1);
    }
    count(b, -1);
    b->free = false;
    split(b, size);
    if (open_ != 0) b->pool = open_;
    count(b, +1);
    live_[b->ptr] = b;
    // Memory once handed out stays readable: work queued before a release may still read it. A block of a
    // pool is readable whole, since a replay writes what the capture's tensors covered.
    poison_region(b->ptr, b->pool != 0 ? b->size : bytes, false);
    if (stats_.bytes_in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.bytes_in_use;
    return b->ptr;
}

void CachingAllocator::release(void* ptr) {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    R2C_CHECK(it != live_.end(), "CachingAllocator::release: pointer was not allocated here");
    Block* b = it->second;
    live_.erase(it);
    count(b, -1);
    b->free = true;
    if (open_ != 0 && b->pool == 0) b->pool = open_;
    count(b, +1);
    make_free(b);
}

CachingAllocator::PoolId CachingAllocator::open_pool(PoolId id) {
    std::lock_guard<std::mutex> lock(mu_);
    R2C_CHECK(open_ == 0, "CachingAllocator::open_pool: pool ", open_, " is still open");
    if (id == 0) id = next_pool_++;
    R2C_CHECK(id < next_pool_, "CachingAllocator::open_pool: no pool ", id);
    free_[id];
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
    const auto pool = free_.find(id);
    if (id == 0 || pool == free_.end()) return;
    for (auto& [ptr, b] : live_)
        if (b->pool == id) b->pool = 0;
    std::vector<Block*> released;
    for (FreeSet& set : pool->second)
        released.insert(released.end(), set.begin(), set.end());
    free_.erase(pool);
    for (Block* b : released) {
        count(b, -1);
        b->pool = 0;
        count(b, +1);
        make_free(b);
    }
}

void CachingAllocator::empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    release_free_segments();
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
