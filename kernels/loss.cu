// The losses (kernels/ops.h): mean squared and mean absolute error, Keras categorical cross-entropy. The
// forward passes are single-block double reductions; the backward passes read the upstream gradient
// from device memory.
#include "kernels/ops.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

// Keras clips probabilities to [epsilon, 1 - epsilon] with its backend epsilon 1e-7, in float32.
constexpr float kClipLo = 1e-7f;
constexpr float kClipHi = 1.f - kClipLo;

template <Difference kind>
struct DifferenceTerm {
    const float* a;
    const float* b;
    __device__ double operator()(std::size_t i) const {
        const double d = a[i] - b[i];  // the float difference, as in the CPU reference
        if constexpr (kind == Difference::Squared) return d * d;
        return fabs(d);
    }
};

struct CrossentropyTerm {
    const float* p;
    const float* t;
    __device__ double operator()(std::size_t i) const {
        const float clipped = p[i] < kClipLo ? kClipLo : (p[i] > kClipHi ? kClipHi : p[i]);  // std::clamp
        return -static_cast<double>(t[i] * logf(clipped));
    }
};

// da = dy[0] / n * df(a - b): 2d for the squared difference, sign(d) for the absolute one.
template <Difference kind>
__global__ void mean_difference_backward_kernel(const float* a, const float* b, std::size_t n,
                                                const float* dy, float* da) {
    const float scale = static_cast<float>(static_cast<double>(dy[0]) / static_cast<double>(n));
    for (std::size_t i = global_index(); i < n; i += grid_stride()) {
        const float d = a[i] - b[i];
        if constexpr (kind == Difference::Squared)
            da[i] = scale * (2.f * d);
        else
            da[i] = scale * static_cast<float>((d > 0.f) - (d < 0.f));
    }
}

__global__ void crossentropy_backward_kernel(const float* p, const float* t, std::size_t n, int rows,
                                             const float* dy, float* dp) {
    const float scale = static_cast<float>(static_cast<double>(dy[0]) / static_cast<double>(rows));
    for (std::size_t i = global_index(); i < n; i += grid_stride()) {
        const bool clipped = p[i] < kClipLo || p[i] > kClipHi;
        dp[i] = clipped ? 0.f : -scale * t[i] / p[i];
    }
}

template <Difference kind>
void launch_mean_difference_backward(const float* a, const float* b, std::size_t n, const float* dy,
                                     float* da, cudaStream_t stream) {
    R2C_LAUNCH(elementwise_grid(n), kThreads, 0, stream, mean_difference_backward_kernel<kind>)
    (a, b, n, dy, da);
    R2C_CUDA_LAUNCH_CHECK("mean_difference_backward_kernel");
}

}  // namespace

void mean_difference(Difference kind, const float* a, const float* b, std::size_t n, float* y, void* stream) {
    const double divisor = static_cast<double>(n);
    if (kind == Difference::Squared)
        ops_detail::reduce(DifferenceTerm<Difference::Squared>{a, b}, n, divisor, y, stream,
                           "mean_difference reduce_kernel");
    else
        ops_detail::reduce(DifferenceTerm<Difference::Absolute>{a, b}, n, divisor, y, stream,
                           "mean_difference reduce_kernel");
}

void mean_difference_backward(Difference kind, const float* a, const float* b, std::size_t n, const float* dy,
                              float* da, void* stream) {
    if (n == 0) return;
    const auto s = detail::launch_stream(stream);
    if (kind == Difference::Squared)
        launch_mean_difference_backward<Difference::Squared>(a, b, n, dy, da, s);
    else
        launch_mean_difference_backward<Difference::Absolute>(a, b, n, dy, da, s);
}

void crossentropy(const float* p, const float* t, int rows, int k, float* y, void* stream) {
    ops_detail::reduce(CrossentropyTerm{p, t}, static_cast<std::size_t>(rows) * k, static_cast<double>(rows),
                       y, stream, "crossentropy reduce_kernel");
}

void crossentropy_backward(const float* p, const float* t, int rows, int k, const float* dy, float* dp,
                           void* stream) {
    const std::size_t n = static_cast<std::size_t>(rows) * k;
    if (n == 0) return;
    R2C_LAUNCH(elementwise_grid(n), kThreads, 0, detail::launch_stream(stream), crossentropy_backward_kernel)
    (p, t, n, rows, dy, dp);
    R2C_CUDA_LAUNCH_CHECK("crossentropy_backward_kernel");
}

}  // namespace r2c::cuda
