#include "engine/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <numeric>
#include <utility>
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
    bool planned = false;   // in the segment of a pool's plan: never in a free set while the plan lasts
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

// Cuts the block b down to `size` bytes; the rest becomes a free block of b's pool (in no set yet, and
// counted nowhere).
void CachingAllocator::cut(Block* b, std::size_t size) {
    auto* r = new Block(*b);
    r->free = true;
    r->ptr = b->ptr + size;
    r->size = b->size - size;
    r->prev = b;
    if (b->next != nullptr) b->next->prev = r;
    b->next = r;
    b->size = size;
}

// Cuts the block b, just taken out of the free sets, down to `size` bytes when the rest is worth a block of
// its own, which stays free in b's pool.
void CachingAllocator::split(Block* b, std::size_t size) {
    const std::size_t rest = b->size - size;
    if (b->small ? rest < kGranule : rest <= kSmall) return;
    cut(b, size);
    count(b->next, +1);
    make_free(b->next);
}

// Puts the free block b into its set (none while it is planned), merged with the free neighbours of the
// same pool and kind.
void CachingAllocator::make_free(Block* b) {
    for (Block* n : {b->next, b->prev}) {
        if (n == nullptr || !n->free || n->pool != b->pool || n->planned != b->planned) continue;
        if (!n->planned) free_set(n).erase(n);
        Block* left = n == b->prev ? n : b;
        Block* right = n == b->prev ? b : n;
        left->size += right->size;
        left->next = right->next;
        if (right->next != nullptr) right->next->prev = left;
        delete right;
        b = left;
    }
    if (!b->planned) free_set(b).insert(b);
}

// The open pool's next planned allocation of `size` bytes, at its planned place; nullptr when there is
// none or its place is taken. The next is the first of that size among the kPlanWindow records from the
// last one served: what the work allocates beyond its rehearsal is served as usual, and records the
// rehearsal made beyond the work (a search on first use, say) are passed over.
CachingAllocator::Block* CachingAllocator::take_planned(std::size_t size) {
    const auto it = plans_.find(open_);
    if (it == plans_.end()) return nullptr;
    Plan& plan = it->second;
    const std::size_t end = std::min(plan.sizes.size(), plan.next + kPlanWindow);
    std::size_t k = plan.next;
    while (k < end && plan.sizes[k] != size)
        ++k;
    if (k == end) return nullptr;
    plan.next = k + 1;
    char* at = plan.first->ptr + plan.offsets[k];
    Block* b = plan.first;
    while (b != nullptr && b->ptr + b->size <= at)
        b = b->next;
    if (b == nullptr || !b->free || b->ptr + b->size < at + size) return nullptr;
    // Both cuts stay within the pool: the counts do not change.
    if (b->ptr < at) {
        cut(b, static_cast<std::size_t>(at - b->ptr));
        b = b->next;
    }
    if (b->size > size) cut(b, size);
    ++stats_.planned;
    return b;
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
    Block* b = open_ != 0 ? take_planned(size) : nullptr;
    if (b != nullptr) {
        b->free = false;
    } else {
        if (open_ != 0) b = take_free(open_, small, size);
        if (b == nullptr) b = take_free(0, small, size);
        if (b == nullptr) {
            b = new_segment(size, small);
            // Out of memory: the cache is returned and the allocation tried again, except while a pool is
            // open (a CUDA graph capture), since freeing device memory waits for the device, which breaks a
            // capture.
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
    }
    live_[b->ptr] = b;
    if (trace_ != nullptr) {
        trace_->open[b->ptr] = trace_->records.size();
        trace_->records.push_back({size, trace_->clock++, AllocationTrace::kLive});
    }
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
    if (trace_ != nullptr) {
        const auto t = trace_->open.find(ptr);
        if (t != trace_->open.end()) {
            trace_->records[t->second].end = trace_->clock++;
            trace_->open.erase(t);
        }
    }
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
    // The plan's segment becomes an ordinary one.
    const auto plan = plans_.find(id);
    if (plan != plans_.end()) {
        for (Block* b = plan->second.first; b != nullptr; b = b->next) {
            if (b->free) released.push_back(b);
            b->planned = false;
        }
        plans_.erase(plan);
    }
    for (Block* b : released) {
        count(b, -1);
        b->pool = 0;
        count(b, +1);
        make_free(b);
    }
}

void CachingAllocator::trace_into(AllocationTrace* trace) {
    std::lock_guard<std::mutex> lock(mu_);
    trace_ = trace;
}

namespace {

using Records = std::vector<AllocationTrace::Record>;

// Offsets for the records, placed in `order`: each in the smallest gap that is free throughout its
// lifetime and holds it (the lowest of equal ones), else above what overlaps it in time; and the bytes
// they span.
struct Layout {
    std::vector<std::size_t> offsets;
    std::size_t bytes = 0;
};
using Ranges = std::vector<std::pair<std::size_t, std::size_t>>;

// Into `taken`, sorted: [offset, end) of the records of `among` other than i that overlap record i in time.
void overlapping(const Records& r, const Layout& l, std::size_t i, const std::vector<std::size_t>& among,
                 Ranges& taken) {
    taken.clear();
    for (const std::size_t j : among)
        if (j != i && r[j].begin < r[i].end && r[i].begin < r[j].end)
            taken.emplace_back(l.offsets[j], l.offsets[j] + r[j].size);
    std::sort(taken.begin(), taken.end());
}

Layout place(const Records& r, const std::vector<std::size_t>& order) {
    Layout l;
    l.offsets.resize(r.size());
    std::vector<std::size_t> placed;
    Ranges taken;
    for (const std::size_t i : order) {
        overlapping(r, l, i, placed, taken);
        std::size_t above = 0, offset = 0, gap = 0;
        for (const auto& [from, to] : taken) {
            if (from >= above + r[i].size && (gap == 0 || from - above < gap)) {
                offset = above;
                gap = from - above;
            }
            above = std::max(above, to);
        }
        if (gap == 0) offset = above;
        l.offsets[i] = offset;
        l.bytes = std::max(l.bytes, offset + r[i].size);
        placed.push_back(i);
    }
    return l;
}

// Moves each record, the lowest first, down to the lowest offset free throughout its lifetime, which can
// only lower the layout's top.
void settle(const Records& r, Layout& l) {
    std::vector<std::size_t> by_offset(r.size());
    std::iota(by_offset.begin(), by_offset.end(), std::size_t(0));
    std::stable_sort(by_offset.begin(), by_offset.end(),
                     [&](std::size_t a, std::size_t b) { return l.offsets[a] < l.offsets[b]; });
    Ranges taken;
    for (const std::size_t i : by_offset) {
        overlapping(r, l, i, by_offset, taken);
        std::size_t above = 0;
        for (const auto& [from, to] : taken) {
            if (from >= above + r[i].size) break;
            above = std::max(above, to);
        }
        l.offsets[i] = std::min(l.offsets[i], above);
    }
    l.bytes = 0;
    for (std::size_t i = 0; i < r.size(); ++i)
        l.bytes = std::max(l.bytes, l.offsets[i] + r[i].size);
}

// The orders a plan tries, as the best of them differs from trace to trace: the largest first, equal sizes
// in the order made, the longest-lived first or the latest released first; and the longest-lived first,
// equal lifetimes the largest first.
std::vector<std::vector<std::size_t>> orders(const Records& r) {
    const auto life = [&](std::size_t a) { return r[a].end - r[a].begin; };  // kLive: the longest
    const auto sorted = [&](auto before) {
        std::vector<std::size_t> order(r.size());
        std::iota(order.begin(), order.end(), std::size_t(0));
        std::stable_sort(order.begin(), order.end(), before);
        return order;
    };
    return {sorted([&](std::size_t a, std::size_t b) { return r[a].size > r[b].size; }),
            sorted([&](std::size_t a, std::size_t b) {
                return r[a].size > r[b].size || (r[a].size == r[b].size && life(a) > life(b));
            }),
            sorted([&](std::size_t a, std::size_t b) {
                return r[a].size > r[b].size || (r[a].size == r[b].size && r[a].end > r[b].end);
            }),
            sorted([&](std::size_t a, std::size_t b) {
                return life(a) > life(b) || (life(a) == life(b) && r[a].size > r[b].size);
            })};
}

}  // namespace

void CachingAllocator::plan_pool(PoolId id, const AllocationTrace& trace) {
    std::lock_guard<std::mutex> lock(mu_);
    R2C_CHECK(free_.count(id) == 1 && id != 0, "CachingAllocator::plan_pool: no pool ", id);
    R2C_CHECK(plans_.count(id) == 0, "CachingAllocator::plan_pool: pool ", id, " has a plan already");
    const Records& r = trace.records;
    // The tightest of the orders' layouts (the first of equal ones).
    const std::vector<std::vector<std::size_t>> tried = orders(r);
    Layout best = place(r, tried[0]);
    settle(r, best);
    for (std::size_t k = 1; k < tried.size(); ++k) {
        Layout l = place(r, tried[k]);
        settle(r, l);
        if (l.bytes < best.bytes) best = std::move(l);
    }
    Plan plan;
    plan.sizes.resize(r.size());
    for (std::size_t i = 0; i < r.size(); ++i)
        plan.sizes[i] = r[i].size;
    plan.offsets = std::move(best.offsets);
    plan.bytes = best.bytes;
    if (plan.bytes == 0) return;
    Block* s = new_segment(plan.bytes, false);
    if (s == nullptr) return;  // the pool is served as usual
    s->pool = id;
    s->planned = true;
    count(s, +1);
    plan.first = s;
    stats_.plan_records += r.size();
    plans_[id] = std::move(plan);
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
