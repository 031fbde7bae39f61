// Instance normalisation forward and backward (kernels/ops.h): one block per (sample, channel) plane.
#include "kernels/activation.cuh"
#include "kernels/ops.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

// Two passes over the plane (the mean, then the squared deviations from it), so that float32 keeps full
// precision on large planes whose mean is far from zero.
__global__ void __launch_bounds__(kThreads)
    instance_norm_forward_kernel(const float* x, const float* gamma, const float* beta, int c, int m,
                                 float eps, OperActivation act, float* y, float* xhat, float* rstd) {
    const std::size_t offset = static_cast<std::size_t>(blockIdx.x) * m;
    const float* xp = x + offset;
    float s = 0.f;
    for (int i = threadIdx.x; i < m; i += kThreads)
        s += xp[i];
    const float mean = block_sum(s) / static_cast<float>(m);
    float q = 0.f;
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const float d = xp[i] - mean;
        q += d * d;
    }
    const float r = 1.f / sqrtf(block_sum(q) / static_cast<float>(m) + eps);
    const float g = gamma[blockIdx.x % c], b = beta[blockIdx.x % c];
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const float h = (xp[i] - mean) * r;
        xhat[offset + i] = h;
        y[offset + i] = activate(g * h + b, act);
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// The gradient at the normalised value: dy through the activation, act' read off its output y.
__device__ __forceinline__ float pre_activation_grad(const float* dy, const float* y, OperActivation act,
                                                     std::size_t i) {
    return act == OperActivation::None ? dy[i] : dy[i] * activation_derivative(y[i], act);
}

// Per plane p, with g = dy * act'(y): sums[p] = sum g, sums[planes + p] = sum g * xhat, and dx when
// requested.
__global__ void __launch_bounds__(kThreads)
    instance_norm_plane_kernel(const float* dy, const float* y, OperActivation act, const float* xhat,
                               const float* rstd, const float* gamma, int c, int m, float* dx, float* sums) {
    const std::size_t offset = static_cast<std::size_t>(blockIdx.x) * m;
    float sg = 0.f, sgx = 0.f;
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const float g = pre_activation_grad(dy, y, act, offset + i);
        sg += g;
        sgx += g * xhat[offset + i];
    }
    sg = block_sum(sg);
    sgx = block_sum(sgx);
    if (threadIdx.x == 0) {
        sums[blockIdx.x] = sg;
        sums[gridDim.x + blockIdx.x] = sgx;
    }
    if (dx == nullptr) return;
    const float scale = gamma[blockIdx.x % c] * rstd[blockIdx.x];
    const float mean_g = sg / static_cast<float>(m), mean_gx = sgx / static_cast<float>(m);
    for (int i = threadIdx.x; i < m; i += kThreads)
        dx[offset + i] =
            scale * (pre_activation_grad(dy, y, act, offset + i) - mean_g - xhat[offset + i] * mean_gx);
}

// dbeta[ch] and dgamma[ch]: the plane sums of channel ch added over the batch in order.
__global__ void instance_norm_channel_kernel(const float* sums, int n, int c, float* dgamma, float* dbeta) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    const int planes = n * c;
    float gb = 0.f, gg = 0.f;
    for (int s = 0; s < n; ++s) {
        gb += sums[s * c + ch];
        gg += sums[planes + s * c + ch];
    }
    dbeta[ch] = gb;
    dgamma[ch] = gg;
}

}  // namespace

void instance_norm_forward(const float* x, const float* gamma, const float* beta, int n, int c, int m,
                           float eps, OperActivation act, float* y, float* xhat, float* rstd, void* stream) {
    if (n * c == 0) return;
    R2C_LAUNCH(n * c, kThreads, 0, detail::launch_stream(stream), instance_norm_forward_kernel)
    (x, gamma, beta, c, m, eps, act, y, xhat, rstd);
    R2C_CUDA_LAUNCH_CHECK("instance_norm_forward_kernel");
}

void instance_norm_backward(const float* dy, const float* y, OperActivation act, const float* xhat,
                            const float* rstd, const float* gamma, int n, int c, int m, float* dx,
                            float* dgamma, float* dbeta, float* plane_sums, void* stream) {
    if (c == 0) return;
    const auto s = detail::launch_stream(stream);
    if (n > 0) {
        R2C_LAUNCH(n * c, kThreads, 0, s, instance_norm_plane_kernel)
        (dy, y, act, xhat, rstd, gamma, c, m, dx, plane_sums);
        R2C_CUDA_LAUNCH_CHECK("instance_norm_plane_kernel");
    }
    R2C_LAUNCH((c + kThreads - 1) / kThreads, kThreads, 0, s, instance_norm_channel_kernel)
    (plane_sums, n, c, dgamma, dbeta);
    R2C_CUDA_LAUNCH_CHECK("instance_norm_channel_kernel");
}

}  // namespace r2c::cuda
