// CUDA runtime glue: device discovery, the process-wide caching allocator, copies, and the two
// elementwise kernels the engine itself needs (fill, axpy for gradient accumulation).
#include <cstdint>
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
    if (err != cudaSuccess) return std::string("CUDA: no usable device (") + cudaGetErrorString(err) + ")";
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
        [](void* p) { cudaFree(p); });
    return *alloc;  // never destroyed: tensors may be released during static destruction
}

void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) {
    if (bytes == 0) return;
    const cudaMemcpyKind k = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                             : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                              : cudaMemcpyDeviceToDevice;
    R2C_CUDA_CHECK(cudaMemcpy(dst, src, bytes, k), "cuda::copy");
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
    if (dtype == DType::F32) R2C_LAUNCH(elementwise_grid(n), kThreads, 0, nullptr, fill_kernel<float>)
    (static_cast<float*>(dst), n, static_cast<float>(value));
    else R2C_LAUNCH(elementwise_grid(n), kThreads, 0, nullptr, fill_kernel<double>)(static_cast<double*>(dst),
                                                                                    n, value);
    R2C_CUDA_LAUNCH_CHECK("cuda::fill");
}

void axpy(void* y, const void* x, std::size_t n, double alpha, DType dtype) {
    if (n == 0) return;
    if (dtype == DType::F32) R2C_LAUNCH(elementwise_grid(n), kThreads, 0, nullptr, axpy_kernel<float>)
    (static_cast<float*>(y), static_cast<const float*>(x), n, static_cast<float>(alpha));
    else R2C_LAUNCH(elementwise_grid(n), kThreads, 0, nullptr, axpy_kernel<double>)(
        static_cast<double*>(y), static_cast<const double*>(x), n, alpha);
    R2C_CUDA_LAUNCH_CHECK("cuda::axpy");
}

}  // namespace r2c::cuda
