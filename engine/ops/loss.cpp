// Losses (Keras semantics): categorical cross-entropy on probabilities, mean squared and mean absolute
// error. CPU reference implementations and the dispatch of CUDA tensors to kernels/loss.cu; each returns a
// one-element tensor, and on CUDA the backward passes read the upstream gradient on the device.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/ops.h"

namespace r2c {

namespace {

// Both arguments defined, of one kind and shape, not empty.
void check_pair(const char* op, const Tensor& a, const Tensor& b) {
    R2C_CHECK(a.defined() && b.defined(), op, ": an input is undefined");
    ops::check_same_kind(op, {a, b});
    R2C_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.str(), " and ", b.str());
    R2C_CHECK(a.numel() > 0, op, ": inputs ", a.str(), " are empty");
    ops::check_cuda_float32(op, a);
    ops::check_kernel_size(op, a);
}

// Keras clips probabilities to [epsilon, 1 - epsilon] with its backend epsilon 1e-7, in the tensor's
// own precision.
template <typename T>
struct ClipRange {
    static constexpr T lo = T(1e-7);
    static constexpr T hi = T(1) - lo;
};

Tensor crossentropy_backward(const Tensor& g, const Tensor& p, const Tensor& target) {
    Tensor dp = Tensor::empty(p.shape(), p.dtype(), p.device());
#ifdef R2C_WITH_CUDA
    if (p.device() == Device::CUDA) {
        cuda::crossentropy_backward(ops::f32(p), ops::f32(target), static_cast<int>(p.dim(0)),
                                    static_cast<int>(p.dim(1)), ops::f32(g), ops::f32(dp));
        return dp;
    }
#endif
    ops::dispatch_float(p.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* pp = p.data<T>();
        const T* pt = target.data<T>();
        T* pdp = dp.data<T>();
        const T scale = static_cast<T>(g.item() / static_cast<double>(p.dim(0)));
        for (std::int64_t i = 0; i < p.numel(); ++i) {
            const bool clipped = pp[i] < ClipRange<T>::lo || pp[i] > ClipRange<T>::hi;
            pdp[i] = clipped ? T(0) : -scale * pt[i] / pp[i];
        }
    });
    return dp;
}

// Mean over all elements of f(a - b). Its gradient df(a - b) / n goes to a and, negated, to b; only
// the arguments that require a gradient receive one. On CUDA the kernels for `kind` compute the same.
template <cuda::Difference kind, typename F, typename DF>
Tensor mean_of_difference(const char* op, const Tensor& a, const Tensor& b, F f, DF df) {
    check_pair(op, a, b);
    Tensor y = Tensor::empty({1}, a.dtype(), a.device());
    const auto n = static_cast<std::size_t>(a.numel());
#ifdef R2C_WITH_CUDA
    if (a.device() == Device::CUDA) cuda::mean_difference(kind, ops::f32(a), ops::f32(b), n, ops::f32(y));
#endif
    if (a.device() == Device::CPU)
        ops::dispatch_float(a.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* pa = a.data<T>();
            const T* pb = b.data<T>();
            double total = 0;  // double accumulation keeps float32 means over whole images accurate
            for (std::size_t i = 0; i < n; ++i)
                total += f(static_cast<T>(pa[i] - pb[i]));
            y.data<T>()[0] = static_cast<T>(total / static_cast<double>(n));
        });
    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    return record(y, op, {a, b}, [ad = a.detach(), bd = b.detach(), need_a, need_b, n, df](const Tensor& g) {
        Tensor da = Tensor::empty(ad.shape(), ad.dtype(), ad.device());
#ifdef R2C_WITH_CUDA
        if (ad.device() == Device::CUDA)
            cuda::mean_difference_backward(kind, ops::f32(ad), ops::f32(bd), n, ops::f32(g), ops::f32(da));
#endif
        if (ad.device() == Device::CPU)
            ops::dispatch_float(ad.dtype(), [&](auto tag) {
                using T = decltype(tag);
                const T* pa = ad.data<T>();
                const T* pb = bd.data<T>();
                T* pda = da.data<T>();
                const T scale = static_cast<T>(g.item() / static_cast<double>(n));
                for (std::size_t i = 0; i < n; ++i)
                    pda[i] = scale * df(static_cast<T>(pa[i] - pb[i]));
            });
        return std::vector<Tensor>{need_a ? da : Tensor(), need_b ? mul_scalar(da, -1.0) : Tensor()};
    });
}

}  // namespace

Tensor categorical_crossentropy(const Tensor& p, const Tensor& target) {
    const OpScope scope("categorical_crossentropy", p);
    constexpr const char* op = "categorical_crossentropy";
    ops::check_ndim(op, "p", p, 2);
    ops::check_ndim(op, "target", target, 2);
    check_pair(op, p, target);
    Tensor y = Tensor::empty({1}, p.dtype(), p.device());
#ifdef R2C_WITH_CUDA
    if (p.device() == Device::CUDA)
        cuda::crossentropy(ops::f32(p), ops::f32(target), static_cast<int>(p.dim(0)),
                           static_cast<int>(p.dim(1)), ops::f32(y));
#endif
    if (p.device() == Device::CPU)
        ops::dispatch_float(p.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* pp = p.data<T>();
            const T* pt = target.data<T>();
            double total = 0;
            for (std::int64_t i = 0; i < p.numel(); ++i)
                total -= pt[i] * std::log(std::clamp(pp[i], ClipRange<T>::lo, ClipRange<T>::hi));
            y.data<T>()[0] = static_cast<T>(total / static_cast<double>(p.dim(0)));
        });
    // The target is data (labels), never a parameter: it is not an input of the recorded node.
    return record(y, op, {p}, [pd = p.detach(), td = target.detach()](const Tensor& g) {
        return std::vector<Tensor>{crossentropy_backward(g, pd, td)};
    });
}

Tensor mse(const Tensor& a, const Tensor& b) {
    const OpScope scope("mse", a);
    return mean_of_difference<cuda::Difference::Squared>(
        "mse", a, b, [](auto d) { return static_cast<double>(d) * d; }, [](auto d) { return 2 * d; });
}

Tensor mae(const Tensor& a, const Tensor& b) {
    const OpScope scope("mae", a);
    return mean_of_difference<cuda::Difference::Absolute>(
        "mae", a, b, [](auto d) { return std::abs(static_cast<double>(d)); },
        [](auto d) { return static_cast<decltype(d)>((d > 0) - (d < 0)); });
}

}  // namespace r2c
