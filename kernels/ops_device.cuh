// Device-side building blocks of the kernels behind kernels/ops.h: grid-stride loops, deterministic
// warp and block sums, and one single-block reduction to a scalar.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/check.cuh"

namespace r2c::cuda::ops_detail {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements with kThreads threads each (at least 1, at most 65535).
inline unsigned elementwise_grid(std::size_t n) {
    const std::size_t blocks = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < 65535 ? (blocks == 0 ? 1 : blocks) : 65535);
}

__device__ __forceinline__ std::size_t global_index() {
    return blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
}
__device__ __forceinline__ std::size_t grid_stride() {
    return std::size_t(gridDim.x) * blockDim.x;
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int off = 16; off > 0; off /= 2)
        v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// The sum of v over a block of kThreads threads, returned to every thread. The order is fixed (warps by
// shuffle, then the warp totals in order), so the result is the same on every run. Every thread must
// call it; it may be called repeatedly.
template <class T>
__device__ T block_sum(T v) {
    __shared__ T partial[kThreads / 32];
    v = warp_sum(v);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < kThreads / 32; ++w)
        total += partial[w];
    __syncthreads();  // partial may be reused by the next call
    return total;
}

// out[0] = (sum over i < n of term(i)) / divisor, in double, by one block (the outputs it serves are
// scalars of at most a few images: one block keeps the order fixed without a second pass).
template <class Term>
__global__ void __launch_bounds__(kThreads)
    reduce_kernel(Term term, std::size_t n, double divisor, float* out) {
    double s = 0;
    for (std::size_t i = threadIdx.x; i < n; i += kThreads)
        s += term(i);
    s = block_sum(s);
    if (threadIdx.x == 0) out[0] = static_cast<float>(s / divisor);
}

template <class Term>
void reduce(Term term, std::size_t n, double divisor, float* out, void* stream, const char* name) {
    R2C_LAUNCH(1, kThreads, 0, detail::launch_stream(stream), reduce_kernel<Term>)(term, n, divisor, out);
    R2C_CUDA_LAUNCH_CHECK(name);
}

}  // namespace r2c::cuda::ops_detail
