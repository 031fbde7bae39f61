// Device-side building blocks of the kernels behind kernels/ops.h (and kernels/oper_conv_powers.cu):
// grid-stride loops, deterministic warp and block sums, one single-block reduction to a scalar, and the
// index arithmetic of padded frames.
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

// A padded frame of one dimension of length `len`: position p of the frame shows pixel p - pad, and where
// that lies outside [0, len), its mirror image (reflect; no edge repeat, pad < len) or a zero.
// The pixel frame position p shows, or -1 for a zero.
__device__ __forceinline__ int frame_source(int p, int pad, int len, bool reflect) {
    const int s = p - pad;
    if (s >= 0 && s < len) return s;
    if (!reflect) return -1;
    return s < 0 ? -s : 2 * (len - 1) - s;
}
// The positions of a frame of `frame` positions that show pixel s, in increasing order (at most 3: the
// mirror in the pad before, s itself, the mirror in the pad after); returns how many, written to out.
__device__ __forceinline__ int frame_positions(int s, int pad, int len, int frame, bool reflect, int* out) {
    int k = 0;
    if (reflect && s >= 1 && s <= pad) out[k++] = pad - s;
    if (pad + s < frame) out[k++] = pad + s;
    const int after = pad + 2 * (len - 1) - s;
    if (reflect && s <= len - 2 && after >= pad + len && after < frame) out[k++] = after;
    return k;
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int off = 16; off > 0; off /= 2)
        v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// The sum of v over a block of kBlock threads, returned to every thread. The order is fixed (warps by
// shuffle, then the warp totals in order), so the result is the same on every run. Every thread must
// call it; it may be called repeatedly.
template <class T, int kBlock = kThreads>
__device__ T block_sum(T v) {
    static_assert(kBlock % 32 == 0 && kBlock <= 1024, "a block of whole warps");
    __shared__ T partial[kBlock / 32];
    v = warp_sum(v);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < kBlock / 32; ++w)
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
