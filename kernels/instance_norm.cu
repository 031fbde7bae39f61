// Instance normalisation forward and backward (kernels/ops.h): one block per (sample, channel) plane.
// A plane of more than kThreads and at most kPlaneThreads * kMaxPerThread values (R2C-GAN's 128x128 planes)
// is held in registers by a block of kPlaneThreads threads, so that each kernel reads its inputs from
// memory once, all loads of a thread in flight together; other planes are walked by kThreads threads, as
// often as each pass needs.
#include <type_traits>

#include "kernels/activation.cuh"
#include "kernels/ops.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

constexpr int kPlaneThreads = 1024;
constexpr int kMaxPerThread = 16;

// The values per thread of a plane of m values held in registers (a power of two, so that few kernels are
// built), or 0 where the plane is walked instead.
int values_per_thread(int m) {
    if (m <= kThreads || m > kPlaneThreads * kMaxPerThread) return 0;
    int per = 1;
    while (per * kPlaneThreads < m)
        per *= 2;
    return per;
}

// Runs f(std::integral_constant<int, per>{}) for per = values_per_thread(m) and returns true, or returns
// false where the plane is walked.
template <class F>
bool with_values_per_thread(int m, const F& f) {
    switch (values_per_thread(m)) {
        case 1:
            return f(std::integral_constant<int, 1>{}), true;
        case 2:
            return f(std::integral_constant<int, 2>{}), true;
        case 4:
            return f(std::integral_constant<int, 4>{}), true;
        case 8:
            return f(std::integral_constant<int, 8>{}), true;
        case 16:
            return f(std::integral_constant<int, 16>{}), true;
        default:
            return false;
    }
}

// Element j * kPlaneThreads + threadIdx.x of the plane is a thread's value j.
__device__ __forceinline__ int resident_index(int j) {
    return j * kPlaneThreads + static_cast<int>(threadIdx.x);
}

// z + residual[i], or z where there is no residual.
__device__ __forceinline__ float with_residual(float z, const float* residual, std::size_t i) {
    return residual == nullptr ? z : z + residual[i];
}

// Two passes over the plane (the mean, then the squared deviations from it), so that float32 keeps full
// precision on large planes whose mean is far from zero.
__global__ void __launch_bounds__(kThreads)
    instance_norm_forward_kernel(const float* x, const float* gamma, const float* beta, const float* residual,
                                 int c, int m, float eps, OperActivation act, float* y, float* xhat,
                                 float* rstd) {
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
        y[offset + i] = activate(with_residual(g * h + b, residual, offset + i), act);
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// The same from registers: the plane is read once, then the mean and the squared deviations from it are
// summed over the values held.
template <int kPer>
__global__ void __launch_bounds__(kPlaneThreads)
    instance_norm_forward_resident_kernel(const float* x, const float* gamma, const float* beta,
                                          const float* residual, int c, int m, float eps, OperActivation act,
                                          float* y, float* xhat, float* rstd) {
    const std::size_t offset = static_cast<std::size_t>(blockIdx.x) * m;
    float v[kPer];
#pragma unroll
    for (int j = 0; j < kPer; ++j)
        v[j] = resident_index(j) < m ? x[offset + resident_index(j)] : 0.f;
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < kPer; ++j)
        s += v[j];
    const float mean = block_sum<float, kPlaneThreads>(s) / static_cast<float>(m);
    float q = 0.f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
        const float d = resident_index(j) < m ? v[j] - mean : 0.f;
        q += d * d;
    }
    const float r = 1.f / sqrtf(block_sum<float, kPlaneThreads>(q) / static_cast<float>(m) + eps);
    const float g = gamma[blockIdx.x % c], b = beta[blockIdx.x % c];
    const float* res = residual == nullptr ? nullptr : residual + offset;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
        if (resident_index(j) >= m) continue;
        const float h = (v[j] - mean) * r;
        xhat[offset + resident_index(j)] = h;
        y[offset + resident_index(j)] = activate(with_residual(g * h + b, res, resident_index(j)), act);
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// The gradient at the normalised value: dy through the activation, act' read off its output y.
__device__ __forceinline__ float pre_activation_grad(const float* dy, const float* y, OperActivation act,
                                                     std::size_t i) {
    return act == OperActivation::None ? dy[i] : dy[i] * activation_derivative(y[i], act);
}

// What dx = scale * (g - mean_g - xhat * mean_gx) takes of plane blockIdx.x, from the block's sums of g
// and g * xhat, which thread 0 records in sums.
struct DxTerms {
    float scale, mean_g, mean_gx;
};
__device__ __forceinline__ DxTerms plane_terms(float sg, float sgx, const float* rstd, const float* gamma,
                                               int c, int m, float* sums) {
    if (threadIdx.x == 0) {
        sums[blockIdx.x] = sg;
        sums[gridDim.x + blockIdx.x] = sgx;
    }
    return {gamma[blockIdx.x % c] * rstd[blockIdx.x], sg / static_cast<float>(m),
            sgx / static_cast<float>(m)};
}

// Per plane p, with g = dy * act'(y): sums[p] = sum g, sums[planes + p] = sum g * xhat, and dx and g
// itself (dres) when requested.
__global__ void __launch_bounds__(kThreads)
    instance_norm_plane_kernel(const float* dy, const float* y, OperActivation act, const float* xhat,
                               const float* rstd, const float* gamma, int c, int m, float* dx, float* dres,
                               float* sums) {
    const std::size_t offset = static_cast<std::size_t>(blockIdx.x) * m;
    float sg = 0.f, sgx = 0.f;
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const float g = pre_activation_grad(dy, y, act, offset + i);
        if (dres != nullptr) dres[offset + i] = g;
        sg += g;
        sgx += g * xhat[offset + i];
    }
    const DxTerms t = plane_terms(block_sum(sg), block_sum(sgx), rstd, gamma, c, m, sums);
    if (dx == nullptr) return;
    for (int i = threadIdx.x; i < m; i += kThreads)
        dx[offset + i] =
            t.scale * (pre_activation_grad(dy, y, act, offset + i) - t.mean_g - xhat[offset + i] * t.mean_gx);
}

// The same from registers: dy, y and xhat are read once.
template <int kPer>
__global__ void __launch_bounds__(kPlaneThreads)
    instance_norm_plane_resident_kernel(const float* dy, const float* y, OperActivation act,
                                        const float* xhat, const float* rstd, const float* gamma, int c,
                                        int m, float* dx, float* dres, float* sums) {
    const std::size_t offset = static_cast<std::size_t>(blockIdx.x) * m;
    float g[kPer], h[kPer];
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
        const bool in = resident_index(j) < m;
        g[j] = in ? pre_activation_grad(dy, y, act, offset + resident_index(j)) : 0.f;
        h[j] = in ? xhat[offset + resident_index(j)] : 0.f;
    }
    if (dres != nullptr) {
#pragma unroll
        for (int j = 0; j < kPer; ++j)
            if (resident_index(j) < m) dres[offset + resident_index(j)] = g[j];
    }
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
        sg += g[j];
        sgx += g[j] * h[j];
    }
    const DxTerms t = plane_terms(block_sum<float, kPlaneThreads>(sg), block_sum<float, kPlaneThreads>(sgx),
                                  rstd, gamma, c, m, sums);
    if (dx == nullptr) return;
#pragma unroll
    for (int j = 0; j < kPer; ++j)
        if (resident_index(j) < m)
            dx[offset + resident_index(j)] = t.scale * (g[j] - t.mean_g - h[j] * t.mean_gx);
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

void instance_norm_forward(const float* x, const float* gamma, const float* beta, const float* residual,
                           int n, int c, int m, float eps, OperActivation act, float* y, float* xhat,
                           float* rstd, void* stream) {
    if (n * c == 0) return;
    const auto s = detail::launch_stream(stream);
    const bool resident = with_values_per_thread(m, [&](auto per) {
        R2C_LAUNCH(n * c, kPlaneThreads, 0, s, instance_norm_forward_resident_kernel<decltype(per)::value>)
        (x, gamma, beta, residual, c, m, eps, act, y, xhat, rstd);
        R2C_CUDA_LAUNCH_CHECK("instance_norm_forward_resident_kernel");
    });
    if (resident) return;
    R2C_LAUNCH(n * c, kThreads, 0, s, instance_norm_forward_kernel)
    (x, gamma, beta, residual, c, m, eps, act, y, xhat, rstd);
    R2C_CUDA_LAUNCH_CHECK("instance_norm_forward_kernel");
}

void instance_norm_backward(const float* dy, const float* y, OperActivation act, const float* xhat,
                            const float* rstd, const float* gamma, int n, int c, int m, float* dx,
                            float* dresidual, float* dgamma, float* dbeta, float* plane_sums, void* stream) {
    if (c == 0) return;
    const auto s = detail::launch_stream(stream);
    const auto resident = [&](auto per) {
        R2C_LAUNCH(n * c, kPlaneThreads, 0, s, instance_norm_plane_resident_kernel<decltype(per)::value>)
        (dy, y, act, xhat, rstd, gamma, c, m, dx, dresidual, plane_sums);
        R2C_CUDA_LAUNCH_CHECK("instance_norm_plane_resident_kernel");
    };
    if (n > 0 && !with_values_per_thread(m, resident)) {
        R2C_LAUNCH(n * c, kThreads, 0, s, instance_norm_plane_kernel)
        (dy, y, act, xhat, rstd, gamma, c, m, dx, dresidual, plane_sums);
        R2C_CUDA_LAUNCH_CHECK("instance_norm_plane_kernel");
    }
    R2C_LAUNCH((c + kThreads - 1) / kThreads, kThreads, 0, s, instance_norm_channel_kernel)
    (plane_sums, n, c, dgamma, dbeta);
    R2C_CUDA_LAUNCH_CHECK("instance_norm_channel_kernel");
}

}  // namespace r2c::cuda
