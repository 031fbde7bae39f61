// The CUDA emulator's scheduler and runtime (kernels/emulator/cuda_runtime.h describes the model).
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_runtime.h"

// Under AddressSanitizer every switch between fiber stacks is announced to it (else it takes the jump of the
// stack pointer for an overflow), and the bytes of a cudaMalloc block past the size asked for are poisoned,
// so that an emulated kernel reading or writing past the end of its buffers is reported, as
// compute-sanitizer's memcheck would on a GPU.
#include "engine/asan.h"
#ifdef R2C_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

thread_local uint3 threadIdx{0, 0, 0};
thread_local uint3 blockIdx{0, 0, 0};
thread_local dim3 blockDim;
thread_local dim3 gridDim;

// A created stream: its queued asynchronous copies and memsets, and how many were ever queued and run;
// while it is captured, the work recorded so far and whether the capture has failed.
struct CUstream_st {
    bool blocking = true;
    std::deque<std::function<void()>> queue;
    std::uint64_t queued = 0, done = 0;
    bool capturing = false, invalidated = false;
    cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
    std::vector<std::function<void()>> recorded;
};
// A captured graph and an instantiated one: the recorded work, in order.
struct CUgraph_st {
    std::vector<std::function<void()>> nodes;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> nodes;
};
// A recorded event: the stream it was recorded on (null: nothing to wait for) and its queue position; for
// timing, the host time when the work queued before it had run (kernels run when launched).
struct CUevent_st {
    cudaStream_t stream = nullptr;
    std::uint64_t position = 0;
    bool timing = true, recorded = false;
    std::chrono::steady_clock::time_point time;
};

namespace r2c_emu {

namespace {

constexpr std::size_t kStackBytes = 64 * 1024;
constexpr unsigned kMaxThreads = 1024;
constexpr std::size_t kLaneBytes = 16;

enum class State { Runnable, AtBarrier, AtWarp, Done };

}  // namespace
}  // namespace r2c_emu

// Fiber contexts. On x86-64 a switch saves the callee-saved registers and the FP control words on the
// current stack and swaps stack pointers (no system call, unlike swapcontext, which saves the signal
// mask: a block of 256 threads with a barrier per tile costs thousands of switches). Elsewhere ucontext.
extern "C" void r2c_emu_fiber_main();
#if defined(__x86_64__)
extern "C" void r2c_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .pushsection .text
    .globl r2c_emu_switch
    .type r2c_emu_switch, @function
r2c_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size r2c_emu_switch, .-r2c_emu_switch
    .globl r2c_emu_fiber_start
    .type r2c_emu_fiber_start, @function
r2c_emu_fiber_start:
    call r2c_emu_fiber_main@PLT
    ud2
    .size r2c_emu_fiber_start, .-r2c_emu_fiber_start
    .popsection
)");
extern "C" void r2c_emu_fiber_start();
#endif

namespace r2c_emu {
namespace {

#if defined(__x86_64__)
struct Context {
    void* sp = nullptr;
    const void* stack = nullptr;  // the lowest address of the context's stack and its size, for ASan
    std::size_t stack_bytes = 0;
};

// A fresh context whose first switch enters r2c_emu_fiber_main on the given stack: the frame that
// r2c_emu_switch pops (FP control words, six registers, return address), with the stack 16-byte aligned
// at the call.
void init_context(Context& c, char* stack, std::size_t bytes) {
    auto top = reinterpret_cast<std::uintptr_t>(stack + bytes) & ~std::uintptr_t(15);
    auto* slot = reinterpret_cast<void**>(top - 8);
    *slot = reinterpret_cast<void*>(&r2c_emu_fiber_start);
    for (int i = 1; i <= 6; ++i)
        slot[-i] = nullptr;
    auto* control = reinterpret_cast<std::uint32_t*>(slot - 7);
    control[0] = 0x1f80;  // MXCSR: all exceptions masked, round to nearest
    control[1] = 0x037f;  // x87 control word: the same
    c.sp = slot - 7;
    c.stack = stack;
    c.stack_bytes = bytes;
}

void raw_switch(Context& from, Context& to) {
    r2c_emu_switch(&from.sp, to.sp);
}
#else
struct Context {
    ucontext_t uc;
    const void* stack = nullptr;
    std::size_t stack_bytes = 0;
};

void init_context(Context& c, char* stack, std::size_t bytes) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = bytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, r2c_emu_fiber_main, 0);
    c.stack = stack;
    c.stack_bytes = bytes;
}

void raw_switch(Context& from, Context& to) {
    swapcontext(&from.uc, &to.uc);
}
#endif

// Switches from the running context to `to`; `from_ends` when the running fiber never resumes.
void switch_context(Context& from, Context& to, bool from_ends = false) {
#ifdef R2C_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(from_ends ? nullptr : &fake_stack, to.stack, to.stack_bytes);
    raw_switch(from, to);
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
    (void)from_ends;
    raw_switch(from, to);
#endif
}

// The first thing a fiber runs: under ASan, completes the switch into it and learns the stack of the
// context that started it (the OS thread's), to switch back to.
void enter_fiber(Context& main) {
#ifdef R2C_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &main.stack, &main.stack_bytes);
#else
    (void)main;
#endif
}

struct Fiber {
    Context ctx;
    State state = State::Runnable;
    int parity = 0;  // which of the two exchange buffers this lane's next warp exchange uses
};

// The threads of the block being run on this OS thread.
struct Block {
    Context main;
    std::vector<Fiber> fibers;
    std::unique_ptr<char[]> stacks;
    std::size_t stack_count = 0;
    std::vector<unsigned char> exchange;  // [warp][parity][lane][kLaneBytes]
    int current = 0;
    void (*body)(void*) = nullptr;
    void* ctx = nullptr;
};

thread_local Block* tl_block = nullptr;
thread_local cudaError_t tl_last_error = cudaSuccess;

std::atomic<Order> g_order{[] {
    const char* order = std::getenv("R2C_EMULATOR_ORDER");
    return order != nullptr && std::string(order) == "reverse" ? Order::Reverse : Order::Forward;
}()};

std::atomic<bool> g_skip_kernels{[] {
    const char* kernels = std::getenv("R2C_EMULATOR_KERNELS");
    return kernels != nullptr && std::string(kernels) == "skip";
}()};

void suspend(State s) {
    Block* b = tl_block;
    Fiber& f = b->fibers[b->current];
    f.state = s;
    switch_context(f.ctx, b->main);
}

void set_thread_index(unsigned t) {
    threadIdx = {t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y)};
}

// Releases the lanes of warp w waiting at a warp exchange once every live lane has reached it; false
// when it is not complete.
bool release_warp(Block& b, int w) {
    const int n = static_cast<int>(b.fibers.size());
    const int first = w * warpSize, end = std::min(n, first + warpSize);
    bool any = false;
    for (int i = first; i < end; ++i) {
        if (b.fibers[i].state == State::AtWarp) any = true;
        if (b.fibers[i].state != State::AtWarp && b.fibers[i].state != State::Done) return false;
    }
    for (int i = first; i < end; ++i)
        if (b.fibers[i].state == State::AtWarp) b.fibers[i].state = State::Runnable;
    return any;
}

// Releases the threads waiting at the block barrier once every live thread has reached it; false when
// it is not complete.
bool release_block(Block& b) {
    bool any = false;
    for (const Fiber& f : b.fibers) {
        if (f.state == State::AtBarrier) any = true;
        if (f.state != State::AtBarrier && f.state != State::Done) return false;
    }
    for (Fiber& f : b.fibers)
        if (f.state == State::AtBarrier) f.state = State::Runnable;
    return any;
}

// Runs the threads of one block to completion; false on a deadlock (threads waiting at barriers that
// the others never reach). Between block barriers each warp in turn runs as far as it can, its lanes in
// turn between warp exchanges: every access of one warp comes before every access of the next (of the
// previous, in reverse order), so an access that needs a barrier and lacks one sees the wrong data in
// one of the two orders.
bool run_block(Block& b, unsigned threads) {
    if (b.stack_count < threads) {
        b.stacks.reset(new char[threads * kStackBytes]);
        b.stack_count = threads;
    }
    b.fibers.assign(threads, Fiber{});
    const int warps = static_cast<int>((threads + warpSize - 1) / warpSize);
    b.exchange.assign(std::size_t(warps) * 2 * warpSize * kLaneBytes, 0);
    for (unsigned i = 0; i < threads; ++i)
        init_context(b.fibers[i].ctx, b.stacks.get() + i * kStackBytes, kStackBytes);
    const bool reverse = g_order == Order::Reverse;
    const int n = static_cast<int>(threads);
    for (;;) {
        bool ran = false;
        for (int k = 0; k < warps; ++k) {
            const int w = reverse ? warps - 1 - k : k;
            const int first = w * warpSize, end = std::min(n, first + warpSize);
            do {
                for (int j = first; j < end; ++j) {
                    const int i = reverse ? first + end - 1 - j : j;
                    if (b.fibers[i].state != State::Runnable) continue;
                    b.current = i;
                    set_thread_index(static_cast<unsigned>(i));
                    switch_context(b.main, b.fibers[i].ctx);
                    ran = true;
                }
            } while (release_warp(b, w));
        }
        bool live = false;
        for (const Fiber& f : b.fibers)
            if (f.state != State::Done) live = true;
        if (!live) return true;
        if (!release_block(b) && !ran) {
#ifdef R2C_ASAN
            // The deadlocked threads are abandoned inside their frames, whose redzones stay poisoned; the
            // next kernel's threads on these stacks must not inherit them.
            ASAN_UNPOISON_MEMORY_REGION(b.stacks.get(), b.stack_count * kStackBytes);
#endif
            return false;
        }
    }
}

std::mutex g_memory_mutex;

}  // namespace

void set_order(Order order) {
    g_order = order;
}

Order order() {
    return g_order;
}

void set_kernels_skipped(bool skipped) {
    g_skip_kernels = skipped;
}

bool kernels_skipped() {
    return g_skip_kernels;
}

// Whether a capture that is not in relaxed mode runs (it fails: cudaMalloc is not allowed there).
bool capture_forbids_malloc();

namespace {

std::unordered_map<void*, std::size_t> g_allocations;
std::size_t g_allocated = 0;

std::atomic<std::size_t> g_limit{[] {
    const char* mb = std::getenv("R2C_EMULATOR_MEMORY_MB");
    return (mb != nullptr ? std::strtoull(mb, nullptr, 10) : std::size_t(8192)) << 20;
}()};

std::size_t memory_limit() {
    return g_limit;
}

cudaError_t fail(cudaError_t e) {
    tl_last_error = e;
    return e;
}

}  // namespace

void set_memory_limit(std::size_t bytes) {
    g_limit = bytes;
}

std::size_t memory_in_use() {
    std::lock_guard<std::mutex> lock(g_memory_mutex);
    return g_allocated;
}

void syncthreads() {
    suspend(State::AtBarrier);
}

void warp_exchange(const void* value, void* out, std::size_t bytes, int src_lane) {
    Block* b = tl_block;
    const int me = b->current;
    const int warp = me / warpSize, lane = me % warpSize;
    Fiber& f = b->fibers[me];
    unsigned char* buf = b->exchange.data() + (std::size_t(warp) * 2 + f.parity) * warpSize * kLaneBytes;
    std::memcpy(buf + lane * kLaneBytes, value, bytes);
    f.parity ^= 1;
    suspend(State::AtWarp);
    const int n = static_cast<int>(b->fibers.size());
    const int src = warp * warpSize + src_lane;
    const bool valid = src_lane >= 0 && src_lane < warpSize && src < n;  // lanes past a partial warp's end
    std::memcpy(out, buf + (valid ? src_lane : lane) * kLaneBytes, bytes);
}

namespace {

bool valid_config(dim3 grid, dim3 block) {
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    return threads != 0 && threads <= kMaxThreads && block.z <= 64 && grid.x != 0 && grid.y != 0 &&
           grid.z != 0 && grid.y <= 65535 && grid.z <= 65535 && grid.x <= 0x7fffffffu;
}

}  // namespace

void run_grid(dim3 grid, dim3 block, void (*body)(void*), void* ctx) {
    if (!valid_config(grid, block)) {
        tl_last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (g_skip_kernels) return;
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    const long long blocks = 1ll * grid.x * grid.y * grid.z;
    const bool reverse = g_order == Order::Reverse;
    bool deadlock = false;
#pragma omp parallel for schedule(dynamic) reduction(|| : deadlock)
    for (long long k = 0; k < blocks; ++k) {
        const long long i = reverse ? blocks - 1 - k : k;
        thread_local Block b;
        tl_block = &b;
        b.body = body;
        b.ctx = ctx;
        gridDim = grid;
        blockDim = block;
        blockIdx = {static_cast<unsigned>(i % grid.x), static_cast<unsigned>(i / grid.x % grid.y),
                    static_cast<unsigned>(i / (1ll * grid.x * grid.y))};
        if (!run_block(b, static_cast<unsigned>(threads))) {
            std::fprintf(stderr, "CUDA emulator: block (%u,%u,%u) deadlocked at a barrier\n", blockIdx.x,
                         blockIdx.y, blockIdx.z);
            deadlock = true;
        }
    }
    if (deadlock) tl_last_error = cudaErrorLaunchFailure;
}

}  // namespace r2c_emu

// Runs one CUDA thread of the current block, then hands control back for good.
extern "C" void r2c_emu_fiber_main() {
    r2c_emu::Block* b = r2c_emu::tl_block;
    r2c_emu::enter_fiber(b->main);
    b->body(b->ctx);
    r2c_emu::Fiber& f = b->fibers[b->current];
    f.state = r2c_emu::State::Done;
    r2c_emu::switch_context(f.ctx, b->main, true);
}

using r2c_emu::fail;

cudaError_t cudaGetDeviceCount(int* count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice);
    *prop = {};
    std::snprintf(prop->name, sizeof prop->name, "%s",
                  r2c_emu::kernels_skipped()
                      ? "CUDA emulator on the CPU, kernels skipped (memory and counts only)"
                      : "CUDA emulator on the CPU");
    prop->totalGlobalMem = r2c_emu::memory_limit();
    prop->major = 8;
    prop->minor = 0;
    // R2C_EMULATOR_SMS: the count a GPU reports (132 for an H100 or H200), for the kernels' launch shapes
    // and the memory they size by it (the weight gradients' split-K slabs).
    const char* sms = std::getenv("R2C_EMULATOR_SMS");
    const long n = sms != nullptr ? std::strtol(sms, nullptr, 10) : 4;
    prop->multiProcessorCount = n >= 1 && n <= 1024 ? static_cast<int>(n) : 4;
    prop->maxThreadsPerBlock = static_cast<int>(r2c_emu::kMaxThreads);
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return fail(cudaErrorInvalidDevice);
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock:
            *value = p.maxThreadsPerBlock;
            return cudaSuccess;
        case cudaDevAttrMultiProcessorCount:
            *value = p.multiProcessorCount;
            return cudaSuccess;
        case cudaDevAttrComputeCapabilityMajor:
            *value = p.major;
            return cudaSuccess;
        case cudaDevAttrComputeCapabilityMinor:
            *value = p.minor;
            return cudaSuccess;
    }
    return fail(cudaErrorInvalidValue);
}

cudaError_t cudaGetLastError() {
    const cudaError_t e = r2c_emu::tl_last_error;
    r2c_emu::tl_last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError() {
    return r2c_emu::tl_last_error;
}

const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess:
            return "cudaSuccess";
        case cudaErrorInvalidValue:
            return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation:
            return "cudaErrorMemoryAllocation";
        case cudaErrorInvalidConfiguration:
            return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevice:
            return "cudaErrorInvalidDevice";
        case cudaErrorInvalidResourceHandle:
            return "cudaErrorInvalidResourceHandle";
        case cudaErrorLaunchFailure:
            return "cudaErrorLaunchFailure";
        case cudaErrorStreamCaptureUnsupported:
            return "cudaErrorStreamCaptureUnsupported";
        case cudaErrorStreamCaptureInvalidated:
            return "cudaErrorStreamCaptureInvalidated";
        case cudaErrorStreamCaptureIsolation:
            return "cudaErrorStreamCaptureIsolation";
        case cudaErrorStreamCaptureImplicit:
            return "cudaErrorStreamCaptureImplicit";
    }
    return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess:
            return "no error";
        case cudaErrorInvalidValue:
            return "invalid argument";
        case cudaErrorMemoryAllocation:
            return "out of memory";
        case cudaErrorInvalidConfiguration:
            return "invalid configuration argument";
        case cudaErrorInvalidDevice:
            return "invalid device ordinal";
        case cudaErrorInvalidResourceHandle:
            return "invalid resource handle";
        case cudaErrorLaunchFailure:
            return "unspecified launch failure";
        case cudaErrorStreamCaptureUnsupported:
            return "operation not permitted when stream is capturing";
        case cudaErrorStreamCaptureInvalidated:
            return "operation failed due to a previous error during capture";
        case cudaErrorStreamCaptureIsolation:
            return "dependency created on uncaptured work in another stream";
        case cudaErrorStreamCaptureImplicit:
            return "operation would make the legacy stream depend on a capturing blocking stream";
    }
    return "unknown error";
}

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
    if (r2c_emu::capture_forbids_malloc()) return cudaErrorStreamCaptureUnsupported;
    const std::size_t rounded = (bytes + 255) / 256 * 256;
    std::lock_guard<std::mutex> lock(r2c_emu::g_memory_mutex);
    if (rounded == 0 || r2c_emu::g_allocated + rounded > r2c_emu::memory_limit())
        return fail(rounded == 0 ? cudaErrorInvalidValue : cudaErrorMemoryAllocation);
    *p = std::aligned_alloc(256, rounded);
    if (*p == nullptr) return fail(cudaErrorMemoryAllocation);
#ifdef R2C_ASAN
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(*p) + bytes, rounded - bytes);
#endif
    r2c_emu::g_allocations[*p] = rounded;
    r2c_emu::g_allocated += rounded;
    return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
    if (p == nullptr) return cudaSuccess;
    std::lock_guard<std::mutex> lock(r2c_emu::g_memory_mutex);
    const auto it = r2c_emu::g_allocations.find(p);
    if (it == r2c_emu::g_allocations.end()) return fail(cudaErrorInvalidValue);
    r2c_emu::g_allocated -= it->second;
    r2c_emu::g_allocations.erase(it);
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, std::size_t bytes) {
    *p = std::malloc(bytes == 0 ? 1 : bytes);
    return *p != nullptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* p) {
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
    std::lock_guard<std::mutex> lock(r2c_emu::g_memory_mutex);
    *total_bytes = r2c_emu::memory_limit();
    *free_bytes = *total_bytes - r2c_emu::g_allocated;
    return cudaSuccess;
}

namespace r2c_emu {
namespace {

std::mutex g_stream_mutex;
std::set<cudaStream_t> g_streams;  // the live created streams

// Runs the queued work of s until `position` items of it have run.
void run_queue(cudaStream_t s, std::uint64_t position) {
    while (s->done < position && !s->queue.empty()) {
        std::function<void()> item = std::move(s->queue.front());
        s->queue.pop_front();
        item();
        ++s->done;
    }
}

void run_all(cudaStream_t s) {
    run_queue(s, s->queued);
}

// Fails the capture of s (under g_stream_mutex) with error e.
cudaError_t fail_capture(cudaStream_t s, cudaError_t e) {
    s->invalidated = true;
    return fail(e);
}

// Work on the legacy stream would wait for the blocking streams, which a capture forbids: fails their
// captures and returns the error, or cudaSuccess when none is being captured (under g_stream_mutex).
cudaError_t legacy_blocked_locked() {
    cudaError_t e = cudaSuccess;
    for (cudaStream_t s : g_streams)
        if (s->blocking && s->capturing) e = fail_capture(s, cudaErrorStreamCaptureImplicit);
    return e;
}

// Work on the legacy stream first completes the work queued on every blocking stream; it fails while one
// of them is being captured.
cudaError_t before_legacy_work() {
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    if (const cudaError_t e = legacy_blocked_locked()) return e;
    for (cudaStream_t s : g_streams)
        if (s->blocking) run_all(s);
    return cudaSuccess;
}

// Records f in a captured stream, queues it on another created stream, or runs it at once on the legacy
// stream.
cudaError_t enqueue(cudaStream_t stream, std::function<void()> f) {
    if (stream == nullptr) {
        if (const cudaError_t e = before_legacy_work()) return e;
        f();
        return cudaSuccess;
    }
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    if (g_streams.count(stream) == 0) return fail(cudaErrorInvalidValue);
    if (stream->capturing) {
        stream->recorded.push_back(std::move(f));
        return cudaSuccess;
    }
    stream->queue.push_back(std::move(f));
    ++stream->queued;
    return cudaSuccess;
}

}  // namespace

bool capture_launch(cudaStream_t stream, dim3 grid, dim3 block, std::function<void()> run) {
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    if (stream == nullptr) return legacy_blocked_locked() != cudaSuccess;
    if (g_streams.count(stream) == 0 || !stream->capturing) return false;
    if (!valid_config(grid, block))
        tl_last_error = cudaErrorInvalidConfiguration;
    else
        stream->recorded.push_back(std::move(run));
    return true;
}

bool capture_forbids_malloc() {
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    for (cudaStream_t s : g_streams)
        if (s->capturing && s->mode != cudaStreamCaptureModeRelaxed) {
            fail_capture(s, cudaErrorStreamCaptureUnsupported);
            return true;
        }
    return false;
}

void before_launch(cudaStream_t stream) {
    if (stream == nullptr) {
        before_legacy_work();
        return;
    }
    std::lock_guard<std::mutex> lock(g_stream_mutex);
    if (g_streams.count(stream) != 0) run_all(stream);
}

}  // namespace r2c_emu

namespace r2c_emu {
namespace {
// A copy; with kernels skipped, a copy to the host delivers zeros instead of the meaningless contents of
// device memory, so that host code reading results (finite flags, losses) takes its ordinary course.
void copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return;
    if (kind == cudaMemcpyDeviceToHost && kernels_skipped())
        std::memset(dst, 0, bytes);
    else
        std::memmove(dst, src, bytes);
}
}  // namespace
}  // namespace r2c_emu

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
    if (const cudaError_t e = r2c_emu::before_legacy_work()) return e;
    r2c_emu::copy(dst, src, bytes, kind);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    return r2c_emu::enqueue(stream, [=] { r2c_emu::copy(dst, src, bytes, kind); });
}

cudaError_t cudaMemset(void* p, int value, std::size_t bytes) {
    if (const cudaError_t e = r2c_emu::before_legacy_work()) return e;
    if (bytes != 0) std::memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream) {
    return r2c_emu::enqueue(stream, [=] {
        if (bytes != 0) std::memset(p, value, bytes);
    });
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
    return cudaStreamCreateWithFlags(stream, 0);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
    *stream = new CUstream_st;
    (*stream)->blocking = (flags & cudaStreamNonBlocking) == 0;
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    r2c_emu::g_streams.insert(*stream);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    if (r2c_emu::g_streams.erase(stream) == 0) return r2c_emu::fail(cudaErrorInvalidValue);
    r2c_emu::run_all(stream);  // as on a GPU, work queued before the destruction still completes
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (stream == nullptr) return r2c_emu::before_legacy_work();
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    if (r2c_emu::g_streams.count(stream) == 0) return r2c_emu::fail(cudaErrorInvalidValue);
    if (stream->capturing) return r2c_emu::fail_capture(stream, cudaErrorStreamCaptureUnsupported);
    r2c_emu::run_all(stream);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
    *event = new CUevent_st;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
    *event = new CUevent_st;
    (*event)->timing = (flags & cudaEventDisableTiming) == 0;
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (stream == nullptr)
        if (const cudaError_t e = r2c_emu::before_legacy_work()) return e;
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    if (stream != nullptr && r2c_emu::g_streams.count(stream) == 0)
        return r2c_emu::fail(cudaErrorInvalidValue);
    // Events inside a capture (cross-stream dependencies of a graph) are not emulated.
    if (stream != nullptr && stream->capturing)
        return r2c_emu::fail_capture(stream, cudaErrorStreamCaptureUnsupported);
    event->stream = stream;
    event->position = stream == nullptr ? 0 : stream->queued;
    if (event->timing) {
        if (stream != nullptr) r2c_emu::run_all(stream);
        event->time = std::chrono::steady_clock::now();
    }
    event->recorded = true;
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    if (!start->timing || !end->timing) return r2c_emu::fail(cudaErrorInvalidResourceHandle);
    if (!start->recorded || !end->recorded) return r2c_emu::fail(cudaErrorInvalidResourceHandle);
    *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    if (event->stream != nullptr && r2c_emu::g_streams.count(event->stream) != 0)
        r2c_emu::run_queue(event->stream, event->position);
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
    {
        std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
        // The event was recorded outside the capture: a dependency across its boundary.
        if (stream != nullptr && r2c_emu::g_streams.count(stream) != 0 && stream->capturing)
            return r2c_emu::fail_capture(stream, cudaErrorStreamCaptureIsolation);
    }
    // Nothing runs later than at once here, so waiting is running the event's stream up to it.
    return cudaEventSynchronize(event);
}

cudaError_t cudaDeviceSynchronize() {
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    for (cudaStream_t s : r2c_emu::g_streams)
        if (s->capturing) return r2c_emu::fail_capture(s, cudaErrorStreamCaptureUnsupported);
    for (cudaStream_t s : r2c_emu::g_streams)
        r2c_emu::run_all(s);
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    if (stream == nullptr) return r2c_emu::fail(cudaErrorStreamCaptureUnsupported);  // the legacy stream
    if (r2c_emu::g_streams.count(stream) == 0 || stream->capturing)
        return r2c_emu::fail(cudaErrorInvalidValue);
    r2c_emu::run_all(stream);  // what was queued before belongs to no graph
    stream->capturing = true;
    stream->invalidated = false;
    stream->mode = mode;
    stream->recorded.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
    std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
    *graph = nullptr;
    if (stream == nullptr || r2c_emu::g_streams.count(stream) == 0 || !stream->capturing)
        return r2c_emu::fail(cudaErrorInvalidValue);
    stream->capturing = false;
    std::vector<std::function<void()>> nodes = std::move(stream->recorded);
    stream->recorded.clear();
    if (stream->invalidated) return r2c_emu::fail(cudaErrorStreamCaptureInvalidated);
    *graph = new CUgraph_st{std::move(nodes)};
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
    if (graph == nullptr) return r2c_emu::fail(cudaErrorInvalidValue);
    *exec = new CUgraphExec_st{graph->nodes};
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (exec == nullptr) return r2c_emu::fail(cudaErrorInvalidValue);
    {
        std::lock_guard<std::mutex> lock(r2c_emu::g_stream_mutex);
        if (stream != nullptr && (r2c_emu::g_streams.count(stream) == 0 || stream->capturing))
            return r2c_emu::fail(cudaErrorInvalidValue);
    }
    r2c_emu::before_launch(stream);
    for (const std::function<void()>& node : exec->nodes)
        node();
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}
