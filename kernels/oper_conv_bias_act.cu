// The small kernels the variants share: the bias gradient (one deterministic reduction, written to all Q
// bias vectors, whose gradients are equal), the sum of a weight gradient's split-K parts (in their order),
// and the derivative of the fused activation.
#include "kernels/check.cuh"
#include "kernels/oper_conv_launch.cuh"
#include "kernels/ops_device.cuh"

namespace r2c::cuda::oper_detail {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off /= 2)
        v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// One block per channel c: db[q, c] = sum_{n, i} dz[(n*channels + c)*hw + i], for q = 0..Q-1.
__global__ void __launch_bounds__(kThreads)
    bias_grad_kernel(const float* dz, float* db, int n, int channels, int hw, int q_count) {
    const int c = blockIdx.x;
    float s = 0.f;
    for (int b = 0; b < n; ++b) {
        const float* p = dz + static_cast<std::size_t>(b * channels + c) * hw;
        for (int i = threadIdx.x; i < hw; i += kThreads)
            s += p[i];
    }
    __shared__ float partial[kThreads / 32];
    s = warp_sum(s);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        s = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.f;
        s = warp_sum(s);
        if (threadIdx.x == 0)
            for (int q = 0; q < q_count; ++q)
                db[q * channels + c] = s;
    }
}

// dw[i] = slabs[i] + slabs[n + i] + ... in the order of the parts.
__global__ void sum_parts_kernel(const float* slabs, int parts, std::size_t n, float* dw) {
    for (std::size_t i = ops_detail::global_index(); i < n; i += ops_detail::grid_stride()) {
        float s = slabs[i];
        for (int z = 1; z < parts; ++z)
            s += slabs[z * n + i];
        dw[i] = s;
    }
}

// dz = dy * act'(z), act' read off y = act(z) (kernels/activation.cuh).
__global__ void activation_backward_kernel(OperActivation act, const float* y, const float* dy, float* dz,
                                           std::size_t n) {
    for (std::size_t i = ops_detail::global_index(); i < n; i += ops_detail::grid_stride())
        dz[i] = act == OperActivation::None ? dy[i] : dy[i] * activation_derivative(y[i], act);
}

}  // namespace

void bias_grad(const float* dz, float* db, int n, int channels, int hw, int q, cudaStream_t stream) {
    R2C_LAUNCH(channels, kThreads, 0, stream, bias_grad_kernel)(dz, db, n, channels, hw, q);
    R2C_CUDA_LAUNCH_CHECK("bias_grad_kernel");
}

void sum_parts(const float* slabs, int parts, std::size_t n, float* dw, cudaStream_t stream) {
    if (n == 0) return;
    R2C_LAUNCH(ops_detail::elementwise_grid(n), ops_detail::kThreads, 0, stream, sum_parts_kernel)
    (slabs, parts, n, dw);
    R2C_CUDA_LAUNCH_CHECK("sum_parts_kernel");
}

void activation_backward(OperActivation act, const float* y, const float* dy, float* dz, std::size_t n,
                         cudaStream_t stream) {
    if (n == 0) return;
    R2C_LAUNCH(ops_detail::elementwise_grid(n), ops_detail::kThreads, 0, stream, activation_backward_kernel)
    (act, y, dy, dz, n);
    R2C_CUDA_LAUNCH_CHECK("activation_backward_kernel");
}

}  // namespace r2c::cuda::oper_detail

namespace r2c::cuda {

void oper_bias_backward(const float* dz, float* db, int N, int C, int hw, int Q, void* stream) {
    R2C_CHECK(N >= 1 && C >= 1 && hw >= 1 && Q >= 1, "oper_bias_backward: sizes must be positive (N=", N,
              ", C=", C, ", hw=", hw, ", Q=", Q, ")");
    R2C_CHECK(dz != nullptr && db != nullptr, "oper_bias_backward: null pointer");
    oper_detail::bias_grad(dz, db, N, C, hw, Q, detail::launch_stream(stream));
}

}  // namespace r2c::cuda
