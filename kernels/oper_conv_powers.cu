// The materialised power stack [x, x^2, .., x^Q] and its chain rule: what running an operational layer
// through an ordinary convolution library costs on top of the convolution (see the cuDNN peers in
// benchmarks/bench_oper_conv_cuda.cpp). One thread per input element, x read once.
#include "kernels/check.cuh"
#include "kernels/oper_conv.h"

namespace r2c::cuda {

namespace {

constexpr int kThreads = 256;

// Element i = (n*C + c)*hw + p of x goes to xq[((n*Q + q)*C + c)*hw + p] for q = 0..Q-1.
__global__ void power_stack_kernel(const float* x, float* xq, std::size_t total, std::size_t chw,
                                   int q_count) {
    for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
         i += std::size_t(gridDim.x) * blockDim.x) {
        const std::size_t n = i / chw, r = i % chw;
        float* out = xq + n * q_count * chw + r;
        const float v = x[i];
        float p = v;
        for (int q = 0; q < q_count; ++q) {
            out[q * chw] = p;
            p *= v;
        }
    }
}

__global__ void power_stack_backward_kernel(const float* x, const float* dxq, float* dx, std::size_t total,
                                            std::size_t chw, int q_count) {
    for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
         i += std::size_t(gridDim.x) * blockDim.x) {
        const std::size_t n = i / chw, r = i % chw;
        const float* g = dxq + n * q_count * chw + r;
        const float v = x[i];
        float s = 0.f, p = 1.f;
        for (int q = 0; q < q_count; ++q) {
            s += (q + 1) * p * g[q * chw];
            p *= v;
        }
        dx[i] = s;
    }
}

unsigned blocks(std::size_t total) {
    const std::size_t b = (total + kThreads - 1) / kThreads;
    return static_cast<unsigned>(b < 65535 ? (b == 0 ? 1 : b) : 65535);
}

void check_args(const char* op, const void* a, const void* b, const void* c, int n, int ch, int hw, int q) {
    R2C_CHECK(n >= 1 && ch >= 1 && hw >= 1 && q >= 1, op, ": sizes must be positive (N=", n, ", C=", ch,
              ", hw=", hw, ", Q=", q, ")");
    R2C_CHECK(a != nullptr && b != nullptr && c != nullptr, op, ": null pointer (N=", n, ", C=", ch,
              ", hw=", hw, ", Q=", q, ")");
}

}  // namespace

void oper_power_stack(const float* x, float* xq, int N, int C, int hw, int Q, void* stream) {
    check_args("oper_power_stack", x, xq, xq, N, C, hw, Q);
    const std::size_t chw = std::size_t(C) * hw, total = std::size_t(N) * chw;
    R2C_LAUNCH(blocks(total), kThreads, 0, detail::launch_stream(stream), power_stack_kernel)
    (x, xq, total, chw, Q);
    R2C_CUDA_LAUNCH_CHECK("power_stack_kernel");
}

void oper_power_stack_backward(const float* x, const float* dxq, float* dx, int N, int C, int hw, int Q,
                               void* stream) {
    check_args("oper_power_stack_backward", x, dxq, dx, N, C, hw, Q);
    const std::size_t chw = std::size_t(C) * hw, total = std::size_t(N) * chw;
    R2C_LAUNCH(blocks(total), kThreads, 0, detail::launch_stream(stream), power_stack_backward_kernel)
    (x, dxq, dx, total, chw, Q);
    R2C_CUDA_LAUNCH_CHECK("power_stack_backward_kernel");
}

}  // namespace r2c::cuda
