// Instance normalisation: CPU reference implementation and the dispatch of CUDA tensors to
// kernels/instance_norm.cu.
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/ops.h"

namespace r2c {

namespace {

constexpr const char* kOp = "instance_norm";

void check_args(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                const Tensor& residual) {
    ops::check_ndim(kOp, "x", x, 4);
    ops::check_ndim(kOp, "gamma", gamma, 1);
    ops::check_ndim(kOp, "beta", beta, 1);
    ops::check_same_kind(kOp, {x, gamma, beta});
    if (residual.defined()) {
        ops::check_same_kind(kOp, {x, residual});
        R2C_CHECK(residual.shape() == x.shape(), kOp, ": the residual ", residual.str(),
                  " must have the shape of x ", x.str());
    }
    R2C_CHECK(gamma.dim(0) == x.dim(1) && beta.dim(0) == x.dim(1), kOp, ": gamma ", gamma.str(), " and beta ",
              beta.str(), " need one entry per channel of x ", x.str());
    R2C_CHECK(x.dim(2) * x.dim(3) > 0, kOp, ": x ", x.str(), " has empty planes");
    R2C_CHECK(eps > 0, kOp, ": eps must be positive, got ", eps);
    ops::check_cuda_float32(kOp, x);
    ops::check_kernel_size(kOp, x);
}

// Normalises one plane of m values: xhat = (x - mean) * rstd, y = gamma * xhat + beta; returns rstd.
// Statistics accumulate in double (two passes) so float32 planes of 128x128 keep full precision.
template <typename T>
T normalise_plane(const T* x, T* xhat, T* y, std::int64_t m, T gamma, T beta, double eps) {
    double mean = 0;
    for (std::int64_t i = 0; i < m; ++i)
        mean += x[i];
    mean /= static_cast<double>(m);
    double var = 0;
    for (std::int64_t i = 0; i < m; ++i)
        var += (x[i] - mean) * (x[i] - mean);
    var /= static_cast<double>(m);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (std::int64_t i = 0; i < m; ++i) {
        xhat[i] = static_cast<T>((x[i] - mean) * rstd);
        y[i] = gamma * xhat[i] + beta;
    }
    return static_cast<T>(rstd);
}

// Backward of one plane. sum_g and sum_gx are the plane's sums of g and g*xhat (the plane's share of
// dbeta and dgamma); when dx is non-null it receives
// gamma * rstd * (g - mean(g) - xhat * mean(g * xhat)).
template <typename T>
void plane_backward(const T* g, const T* xhat, std::int64_t m, T gamma, T rstd, double& sum_g, double& sum_gx,
                    T* dx) {
    sum_g = 0;
    sum_gx = 0;
    for (std::int64_t i = 0; i < m; ++i) {
        sum_g += g[i];
        sum_gx += static_cast<double>(g[i]) * xhat[i];
    }
    if (dx == nullptr) return;
    const double mean_g = sum_g / static_cast<double>(m), mean_gx = sum_gx / static_cast<double>(m);
    const double scale = static_cast<double>(gamma) * rstd;
    for (std::int64_t i = 0; i < m; ++i)
        dx[i] = static_cast<T>(scale * (g[i] - mean_g - xhat[i] * mean_gx));
}

// Gradients of x (when need_dx), gamma, beta and the residual (when need_dres: the gradient at the
// pre-activation, dy itself without an activation) from the saved output y (when act is not None), xhat
// [N,C,H,W] and rstd [N,C].
std::vector<Tensor> instance_norm_backward(const Tensor& dy, const Tensor& y, Activation act,
                                           const Tensor& xhat, const Tensor& rstd, const Tensor& gamma,
                                           bool need_dx, bool need_dres) {
    const std::int64_t n = xhat.dim(0), c = xhat.dim(1), m = xhat.dim(2) * xhat.dim(3);
    const Device dev = xhat.device();
    Tensor dx = need_dx ? Tensor::empty(xhat.shape(), xhat.dtype(), dev) : Tensor();
    Tensor dgamma = Tensor::empty({c}, xhat.dtype(), dev), dbeta = Tensor::empty({c}, xhat.dtype(), dev);
#ifdef R2C_WITH_CUDA
    if (dev == Device::CUDA) {
        // Without an activation the residual's gradient is dy; with one, the kernel writes it.
        Tensor dres = need_dres ? (act == Activation::None ? dy : Tensor::empty(dy.shape(), dy.dtype(), dev))
                                : Tensor();
        Tensor plane_sums = Tensor::empty({2, n * c}, xhat.dtype(), dev);
        cuda::instance_norm_backward(ops::f32(dy), ops::f32(y), ops::kernel_activation(act), ops::f32(xhat),
                                     ops::f32(rstd), ops::f32(gamma), static_cast<int>(n),
                                     static_cast<int>(c), static_cast<int>(m), ops::f32(dx),
                                     act == Activation::None ? nullptr : ops::f32(dres), ops::f32(dgamma),
                                     ops::f32(dbeta), ops::f32(plane_sums));
        return {dx, dgamma, dbeta, dres};
    }
#endif
    const Tensor g = ops::pre_activation_grad(dy, y, act);
    ops::dispatch_float(xhat.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* pg = g.data<T>();
        const T* pxhat = xhat.data<T>();
        const T* prstd = rstd.data<T>();
        const T* pgamma = gamma.data<T>();
        T* pdx = need_dx ? dx.data<T>() : nullptr;
        // Per-plane sums first, reduced over the batch afterwards, so that planes run in parallel.
        std::vector<double> sum_g(static_cast<std::size_t>(n * c)), sum_gx(sum_g.size());
#pragma omp parallel for
        for (std::int64_t p = 0; p < n * c; ++p)
            plane_backward(pg + p * m, pxhat + p * m, m, pgamma[p % c], prstd[p], sum_g[p], sum_gx[p],
                           pdx ? pdx + p * m : nullptr);
        for (std::int64_t ch = 0; ch < c; ++ch) {
            double gb = 0, gg = 0;
            for (std::int64_t s = 0; s < n; ++s) {
                gb += sum_g[s * c + ch];
                gg += sum_gx[s * c + ch];
            }
            dbeta.data<T>()[ch] = static_cast<T>(gb);
            dgamma.data<T>()[ch] = static_cast<T>(gg);
        }
    });
    return {dx, dgamma, dbeta, need_dres ? g : Tensor()};
}

}  // namespace

Tensor instance_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Activation act,
                     const Tensor& residual) {
    const OpScope scope(kOp, x);
    check_args(x, gamma, beta, eps, residual);
    const std::int64_t n = x.dim(0), c = x.dim(1), m = x.dim(2) * x.dim(3);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    Tensor xhat = Tensor::empty(x.shape(), x.dtype(), x.device());
    Tensor rstd = Tensor::empty({n, c}, x.dtype(), x.device());
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA)
        cuda::instance_norm_forward(ops::f32(x), ops::f32(gamma), ops::f32(beta),
                                    residual.defined() ? ops::f32(residual) : nullptr, static_cast<int>(n),
                                    static_cast<int>(c), static_cast<int>(m), static_cast<float>(eps),
                                    ops::kernel_activation(act), ops::f32(y), ops::f32(xhat), ops::f32(rstd));
#endif
    if (x.device() == Device::CPU) {
        ops::dispatch_float(x.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* px = x.data<T>();
            const T* pgamma = gamma.data<T>();
            const T* pbeta = beta.data<T>();
            T* pxhat = xhat.data<T>();
            T* py = y.data<T>();
            T* prstd = rstd.data<T>();
#pragma omp parallel for
            for (std::int64_t p = 0; p < n * c; ++p)
                prstd[p] = normalise_plane(px + p * m, pxhat + p * m, py + p * m, m, pgamma[p % c],
                                           pbeta[p % c], eps);
        });
        if (residual.defined()) accumulate(y, residual);
        ops::activate_in_place(y, act);
    }
    const bool need_dx = x.requires_grad(), need_dres = residual.defined() && residual.requires_grad();
    return record(y, kOp, {x, gamma, beta, residual},
                  [yd = act == Activation::None ? Tensor() : y.detach(), act, xhat, rstd, gd = gamma.detach(),
                   need_dx, need_dres](const Tensor& dy) {
                      return instance_norm_backward(dy, yd, act, xhat, rstd, gd, need_dx, need_dres);
                  });
}

}  // namespace r2c
