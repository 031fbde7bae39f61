// The CUDA emulator: the part of the CUDA runtime and device language that kernels/ uses, implemented on
// the CPU, so that every kernel (launchers included) builds with a host C++ compiler and runs, unchanged,
// in tests on machines without a GPU (-DR2C_CUDA_EMULATION=ON; docs/kernels.md, "Emulation").
//
// Execution model: the blocks of a grid run one after another (in parallel over OpenMP threads when
// available); the threads of a block run as cooperative fibers on one OS thread, switched at
// __syncthreads and at warp shuffles, which complete only when every live thread of the block (warp)
// has arrived. __shared__ variables are per OS thread, hence per block. "Device" memory is host memory.
// Between block barriers each warp in turn runs as far as it can, its lanes in turn between shuffles, in
// order of index or in the reverse order (R2C_EMULATOR_ORDER=reverse, or set_order); blocks likewise.
// Of two threads that touch the same memory with no barrier between, one order runs the reader first,
// so a missing barrier changes the results in at least one order: run a kernel's tests in both.
// What it cannot show: speed, memory coalescing, memory-model reordering, and, unless built with
// AddressSanitizer (-DR2C_SANITIZE=address), faults the hardware would raise: an out-of-bounds access then
// reads host memory. Under ASan, an access past the size a cudaMalloc asked for is reported (the rest of
// the allocation's rounding is poisoned); shared memory is not checked.
// Streams: the legacy default stream (nullptr) runs everything at once. On a created stream, asynchronous
// copies and memsets are queued and run only when something orders them: a later launch on that stream,
// an event of it waited for (cudaEventSynchronize, cudaStreamWaitEvent), cudaStreamSynchronize,
// cudaDeviceSynchronize, or, for a blocking stream (cudaStreamCreate), any work on the legacy stream.
// So a reader that forgets to wait for an asynchronous copy sees the old contents, as it may on a GPU.
// Graphs: while a created stream is being captured, its launches, copies and memsets are recorded (kernel
// arguments by value, copy sources by address) and a graph launch runs them again in order. As on a GPU,
// work on the legacy stream, synchronisation and waits on events from outside the capture fail it
// (cudaErrorStreamCaptureImplicit, ...Unsupported, ...Isolation), and cudaMalloc is refused unless the
// capture mode is relaxed.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};

// The built-in indices of the running thread (set by the scheduler before each switch).
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---- Runtime API ----

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureIsolation = 905,
    cudaErrorStreamCaptureImplicit = 906,
};
using cudaError = cudaError_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;
constexpr unsigned cudaStreamNonBlocking = 1;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
constexpr unsigned cudaEventDisableTiming = 2;
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2,
};
struct CUgraph_st;
using cudaGraph_t = CUgraph_st*;
struct CUgraphExec_st;
using cudaGraphExec_t = CUgraphExec_st*;

struct cudaDeviceProp {
    char name[256];
    std::size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
    int maxThreadsPerBlock;
};

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaMalloc(void** p, std::size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, std::size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* p, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph,
                                          unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

template <class T>
cudaError_t cudaMalloc(T** p, std::size_t bytes) {
    return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}

// ---- Device functions ----

using std::isfinite;
using std::isinf;
using std::isnan;

inline float __fdividef(float a, float b) {
    return a / b;
}
inline float __expf(float x) {
    return std::exp(x);
}
inline float __logf(float x) {
    return std::log(x);
}
inline float rsqrtf(float x) {
    return 1.f / std::sqrt(x);
}
inline double rsqrt(double x) {
    return 1.0 / std::sqrt(x);
}
template <class T>
T __ldg(const T* p) {
    return *p;
}

namespace r2c_emu {

// The emulated device's memory size in bytes (R2C_EMULATOR_MEMORY_MB, 8 GiB by default); tests shrink it
// to provoke out-of-memory errors.
void set_memory_limit(std::size_t bytes);
std::size_t memory_in_use();

// The order in which the threads of a block (and the blocks of a grid) run between barriers.
enum class Order { Forward, Reverse };
void set_order(Order order);
Order order();

// Whether kernels run. Skipped (R2C_EMULATOR_KERNELS=skip, or set_kernels_skipped), a launch is checked,
// counted and captured as before but computes nothing; copies and memsets still run, except that a copy to
// the host delivers zeros (no NaN found, every loss zero). What device memory holds is then meaningless,
// but every allocation and launch of host code whose course does not depend on it happens as on a GPU, at
// the speed of the host code alone: the peak memory and the launch counts of a whole training step at its
// real size, on a machine without a GPU.
void set_kernels_skipped(bool skipped);
bool kernels_skipped();

// Fiber synchronisation points (emulator.cpp).
void syncthreads();
// Deposits `bytes` of this lane's value, waits for the whole warp, and copies lane `src`'s value into
// out (this lane's own when src is outside the warp or past the end of a partial warp).
void warp_exchange(const void* value, void* out, std::size_t bytes, int src_lane);

template <class T>
T shuffle(T v, int src_lane) {
    T out;
    warp_exchange(&v, &out, sizeof(T), src_lane);
    return out;
}

// Atomic read-modify-write on host memory shared between the OS threads that run blocks.
template <class T, class F>
T atomic_update(T* p, F f) {
    T old;
    std::memcpy(&old, p, sizeof(T));
    for (;;) {
        T desired = f(old);  // not const: clang takes only a pointer to non-const here
        if (__atomic_compare_exchange(p, &old, &desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return old;
    }
}

}  // namespace r2c_emu

inline void __syncthreads() {
    r2c_emu::syncthreads();
}
inline void __syncwarp(unsigned = 0xffffffffu) {
    const int none = 0;
    int ignored;
    r2c_emu::warp_exchange(&none, &ignored, sizeof(int), -1);
}
template <class T>
T __shfl_sync(unsigned, T v, int src, int width = warpSize) {
    const int lane = static_cast<int>(threadIdx.x % warpSize);
    return r2c_emu::shuffle(v, lane / width * width + src % width);
}
template <class T>
T __shfl_down_sync(unsigned, T v, unsigned delta, int width = warpSize) {
    const int lane = static_cast<int>(threadIdx.x % warpSize);
    const int src = lane % width + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : lane;
    return r2c_emu::shuffle(v, src);
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask, int width = warpSize) {
    const int lane = static_cast<int>(threadIdx.x % warpSize);
    const int src = lane ^ mask;
    return r2c_emu::shuffle(v, src / width == lane / width ? src : lane);
}

template <class T>
T atomicAdd(T* p, T v) {
    return r2c_emu::atomic_update(p, [v](T old) { return old + v; });
}
inline float atomicMax(float* p, float v) {
    return r2c_emu::atomic_update(p, [v](float old) { return old > v ? old : v; });
}

// ---- Kernel launches: R2C_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...) ----

namespace r2c_emu {

// Runs body once per thread of every block (emulator.cpp); records launch errors for cudaGetLastError.
void run_grid(dim3 grid, dim3 block, void (*body)(void*), void* ctx);
// Runs what is queued before a launch on `stream` (see Streams above).
void before_launch(cudaStream_t stream);
// When `stream` is being captured, records `run` (a launch of that configuration) and returns true; also
// true, with the capture failed, for a launch on the legacy stream while a blocking stream is captured.
bool capture_launch(cudaStream_t stream, dim3 grid, dim3 block, std::function<void()> run);

template <class... P>
struct Launch {
    dim3 grid, block;
    cudaStream_t stream;
    void (*kernel)(P...);

    static void run(dim3 grid, dim3 block, void (*kernel)(P...), std::tuple<P...>* params) {
        struct Ctx {
            void (*kernel)(P...);
            std::tuple<P...>* params;
        } ctx{kernel, params};
        run_grid(
            grid, block,
            [](void* c) {
                Ctx* x = static_cast<Ctx*>(c);
                std::apply(x->kernel, *x->params);
            },
            &ctx);
    }

    template <class... A>
    void operator()(A&&... args) const {
        auto params = std::make_shared<std::tuple<P...>>(std::forward<A>(args)...);
        const dim3 g = grid, b = block;
        void (*k)(P...) = kernel;
        if (capture_launch(stream, grid, block, [g, b, k, params] { run(g, b, k, params.get()); })) return;
        before_launch(stream);
        run(grid, block, kernel, params.get());
    }
};

template <class... P>
Launch<P...> launch(dim3 grid, dim3 block, std::size_t, cudaStream_t stream, void (*kernel)(P...)) {
    return {grid, block, stream, kernel};
}

}  // namespace r2c_emu
