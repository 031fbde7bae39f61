// CUDA runtime glue: device discovery, the engine's stream, the process-wide caching allocator, copies,
// and the two elementwise kernels the engine itself needs (fill, axpy for gradient accumulation).
#include <atomic>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "engine/device.h"
#include "kernels/check.cuh"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

bool compiled() {
    return true;
}

bool available() {
    static const bool ok = [] {
        int n = 0;
        return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    }();
    return ok;
}

std::string describe() {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) return std::string("no usable device (") + cudaGetErrorString(err) + ")";
    if (n == 0) return "no device";
    std::ostringstream s;
    for (int i = 0; i < n; ++i) {
        cudaDeviceProp p{};
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
        s << "cuda:" << i << " " << p.name << ", compute capability " << p.major << "." << p.minor << ", "
          << (p.totalGlobalMem >> 20) << " MiB, " << p.multiProcessorCount << " SMs";
        if (i + 1 < n) s << "\n";
    }
    return s.str();
}

void* stream() {
    R2C_CHECK(available(), "cuda::stream: no CUDA device is available");
    // Blocking: work on the legacy default stream (the synchronous copies) waits for it, and it for them.
    static const cudaStream_t s = [] {
        cudaStream_t created = nullptr;
        R2C_CUDA_CHECK(cudaStreamCreate(&created), "cuda::stream");
        return created;
    }();
    return s;  // never destroyed: work may be queued during static destruction
}

#ifdef R2C_CUDA_EMULATION
constexpr bool kDeviceMemoryOnHost = true;  // the emulator's device memory: AddressSanitizer can watch it
#else
constexpr bool kDeviceMemoryOnHost = false;
#endif

CachingAllocator& allocator() {
    R2C_CHECK(available(), "cuda::allocator: no CUDA device is available");
    static CachingAllocator* alloc = new CachingAllocator(
        [](std::size_t bytes) -> void* {
            void* p = nullptr;
            if (cudaMalloc(&p, bytes) != cudaSuccess) {
                cudaGetLastError();  // clear the sticky out-of-memory status
                return nullptr;
            }
            return p;
        },
        [](void* p) { cudaFree(p); }, kDeviceMemoryOnHost);
    return *alloc;  // never destroyed: tensors may be released during static destruction
}

namespace {

std::atomic<std::uint64_t> waits{0};
std::atomic<std::uint64_t> launches{0};
std::atomic<std::uint64_t> memory_ops{0};

}  // namespace

std::uint64_t host_waits() {
    return waits.load();
}

std::uint64_t kernel_launches() {
    return launches.load();
}

std::uint64_t memory_operations() {
    return memory_ops.load();
}

}  // namespace r2c::cuda

void r2c::detail::count_cuda_launch() {
    ++cuda::launches;
}

void r2c::detail::count_memory_operation() {
    ++cuda::memory_ops;
}

void r2c::detail::count_host_wait() {
    ++cuda::waits;
}

namespace r2c::cuda {

void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) {
    if (bytes == 0) return;
    if (kind == CopyKind::DeviceToDevice) {
        detail::count_memory_operation();
        R2C_CUDA_CHECK(
            cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, detail::launch_stream(nullptr)),
            "cuda::copy");
        return;
    }
    if (kind == CopyKind::DeviceToHost) ++waits;
    const cudaMemcpyKind k = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                             : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                              : cudaMemcpyDeviceToDevice;
    R2C_CUDA_CHECK(cudaMemcpy(dst, src, bytes, k), "cuda::copy");
}

struct Uploader::State {
    cudaStream_t stream = nullptr;
    cudaEvent_t queued = nullptr;  // the engine stream's work up to an upload
    struct Slot {
        void* staging = nullptr;  // pinned
        std::size_t capacity = 0;
        cudaEvent_t copied = nullptr;
    };
    std::vector<Slot> slots;
};

Uploader::Uploader(int slots) : state_(new State) {
    R2C_CHECK(slots >= 1, "cuda::Uploader: needs at least one slot, got ", slots);
    try {
        R2C_CUDA_CHECK(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "cuda::Uploader");
        R2C_CUDA_CHECK(cudaEventCreateWithFlags(&state_->queued, cudaEventDisableTiming), "cuda::Uploader");
        state_->slots.resize(static_cast<std::size_t>(slots));
        for (State::Slot& s : state_->slots)
            R2C_CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming), "cuda::Uploader");
    } catch (...) {
        release(state_);
        throw;
    }
}

Uploader::~Uploader() {
    release(state_);
}

// Waits for the copies in flight, then frees what exists of the state.
void Uploader::release(State* state) {
    if (state->stream != nullptr) {
        ++waits;
        cudaStreamSynchronize(state->stream);
    }
    for (State::Slot& s : state->slots) {
        if (s.copied != nullptr) cudaEventDestroy(s.copied);
        if (s.staging != nullptr) cudaFreeHost(s.staging);
    }
    if (state->queued != nullptr) cudaEventDestroy(state->queued);
    if (state->stream != nullptr) cudaStreamDestroy(state->stream);
    delete state;
}

void Uploader::upload(int slot, const std::vector<Part>& parts) {
    R2C_CHECK(slot >= 0 && slot < static_cast<int>(state_->slots.size()), "cuda::Uploader::upload: slot ",
              slot, " of ", state_->slots.size());
    State::Slot& s = state_->slots[static_cast<std::size_t>(slot)];
    std::size_t total = 0;
    for (const Part& p : parts)
        total += p.bytes;
    // The slot's previous copy has left the staging buffer before it is refilled.
    ++waits;
    R2C_CUDA_CHECK(cudaEventSynchronize(s.copied), "cuda::Uploader::upload");
    if (total > s.capacity) {
        if (s.staging != nullptr) R2C_CUDA_CHECK(cudaFreeHost(s.staging), "cuda::Uploader::upload");
        s.staging = nullptr;
        s.capacity = 0;
        R2C_CUDA_CHECK(cudaMallocHost(&s.staging, total),
                       detail::concat("cuda::Uploader::upload (pinned staging of ", total, " bytes)"));
        s.capacity = total;
    }
    R2C_CUDA_CHECK(cudaEventRecord(state_->queued, detail::launch_stream(nullptr)), "cuda::Uploader::upload");
    R2C_CUDA_CHECK(cudaStreamWaitEvent(state_->stream, state_->queued, 0), "cuda::Uploader::upload");
    char* stage = static_cast<char*>(s.staging);
    for (const Part& p : parts) {
        std::memcpy(stage, p.src, p.bytes);
        detail::count_memory_operation();
        R2C_CUDA_CHECK(cudaMemcpyAsync(p.dst, stage, p.bytes, cudaMemcpyHostToDevice, state_->stream),
                       "cuda::Uploader::upload");
        stage += p.bytes;
    }
    R2C_CUDA_CHECK(cudaEventRecord(s.copied, state_->stream), "cuda::Uploader::upload");
}

void Uploader::acquire(int slot) {
    R2C_CHECK(slot >= 0 && slot < static_cast<int>(state_->slots.size()), "cuda::Uploader::acquire: slot ",
              slot, " of ", state_->slots.size());
    R2C_CUDA_CHECK(cudaStreamWaitEvent(detail::launch_stream(nullptr),
                                       state_->slots[static_cast<std::size_t>(slot)].copied, 0),
                   "cuda::Uploader::acquire");
}

PinnedBuffer::PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
    R2C_CUDA_CHECK(cudaMallocHost(&data_, bytes == 0 ? 1 : bytes),
                   detail::concat("cuda::PinnedBuffer (", bytes, " bytes)"));
}

PinnedBuffer::~PinnedBuffer() {
    cudaFreeHost(data_);
}

void PinnedBuffer::upload(void* dst) const {
    if (bytes_ == 0) return;
    detail::count_memory_operation();
    R2C_CUDA_CHECK(
        cudaMemcpyAsync(dst, data_, bytes_, cudaMemcpyHostToDevice, detail::launch_stream(nullptr)),
        "cuda::PinnedBuffer::upload");
}

TimingEvent::TimingEvent() {
    cudaEvent_t e = nullptr;
    R2C_CUDA_CHECK(cudaEventCreate(&e), "cuda::TimingEvent");
    event_ = e;
}

TimingEvent::~TimingEvent() {
    cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

void TimingEvent::record() {
    R2C_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), detail::launch_stream(nullptr)),
                   "cuda::TimingEvent::record");
}

double TimingEvent::ms_since(const TimingEvent& start) const {
    ++waits;
    R2C_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)), "cuda::TimingEvent::ms_since");
    float ms = 0;
    R2C_CUDA_CHECK(
        cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.event_), static_cast<cudaEvent_t>(event_)),
        "cuda::TimingEvent::ms_since");
    return ms;
}

namespace {

using namespace ops_detail;

template <typename T>
__global__ void fill_kernel(T* dst, std::size_t n, T value) {
    for (std::size_t i = global_index(); i < n; i += grid_stride())
        dst[i] = value;
}

template <typename T>
__global__ void axpy_kernel(T* y, const T* x, std::size_t n, T alpha) {
    for (std::size_t i = global_index(); i < n; i += grid_stride())
        y[i] += alpha * x[i];
}

}  // namespace

void fill(void* dst, std::size_t n, double value, DType dtype) {
    if (n == 0) return;
    if (dtype == DType::F32)
        R2C_LAUNCH(elementwise_grid(n), kThreads, 0, detail::launch_stream(nullptr), fill_kernel<float>)
    (static_cast<float*>(dst), n, static_cast<float>(value));
    else R2C_LAUNCH(elementwise_grid(n), kThreads, 0, detail::launch_stream(nullptr), fill_kernel<double>)(
        static_cast<double*>(dst), n, value);
    R2C_CUDA_LAUNCH_CHECK("cuda::fill");
}

void axpy(void* y, const void* x, std::size_t n, double alpha, DType dtype) {
    if (n == 0) return;
    if (dtype == DType::F32)
        R2C_LAUNCH(elementwise_grid(n), kThreads, 0, detail::launch_stream(nullptr), axpy_kernel<float>)
    (static_cast<float*>(y), static_cast<const float*>(x), n, static_cast<float>(alpha));
    else R2C_LAUNCH(elementwise_grid(n), kThreads, 0, detail::launch_stream(nullptr), axpy_kernel<double>)(
        static_cast<double*>(y), static_cast<const double*>(x), n, alpha);
    R2C_CUDA_LAUNCH_CHECK("cuda::axpy");
}

}  // namespace r2c::cuda
