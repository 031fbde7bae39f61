// The dense class head: fully connected layer and softmax. CPU reference implementations and the dispatch
// of CUDA tensors to kernels/dense.cu.
#include <Eigen/Core>
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

// Tensors are row-major; Eigen maps them without copying.
template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename T>
Eigen::Map<const RowMajor<T>> as_matrix(const Tensor& t) {
    return {t.data<T>(), t.dim(0), t.dim(1)};
}
template <typename T>
Eigen::Map<RowMajor<T>> as_matrix(Tensor& t) {
    return {t.data<T>(), t.dim(0), t.dim(1)};
}
template <typename T>
Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> as_row(const Tensor& t) {
    return {t.data<T>(), t.numel()};
}
template <typename T>
Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> as_row(Tensor& t) {
    return {t.data<T>(), t.numel()};
}

void check_linear(const Tensor& x, const Tensor& w, const Tensor& b) {
    constexpr const char* op = "linear";
    ops::check_ndim(op, "x", x, 2);
    ops::check_ndim(op, "w", w, 2);
    if (b.defined()) ops::check_ndim(op, "b", b, 1);
    ops::check_same_kind(op, {x, w, b});
    R2C_CHECK(w.dim(1) == x.dim(1), op, ": w ", w.str(), " must be [Cout,Cin] for x ", x.str());
    R2C_CHECK(!b.defined() || b.dim(0) == w.dim(0), op, ": b ", b.str(), " must have Cout entries for w ",
              w.str());
    ops::check_cuda_float32(op, x);
    ops::check_kernel_size(op, x);
    ops::check_kernel_size(op, w);
}

// dx = g w, dw = g^T x, db = column sums of g; each only when its input requires a gradient.
std::vector<Tensor> linear_backward(const Tensor& g, const Tensor& x, const Tensor& w, bool need_dx,
                                    bool need_dw, bool need_db) {
    Tensor dx = need_dx ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor();
    Tensor dw = need_dw ? Tensor::empty(w.shape(), w.dtype(), w.device()) : Tensor();
    Tensor db = need_db ? Tensor::empty({w.dim(0)}, w.dtype(), w.device()) : Tensor();
#ifdef R2C_WITH_CUDA
    if (g.device() == Device::CUDA) {
        cuda::linear_backward(ops::f32(g), ops::f32(x), ops::f32(w), static_cast<int>(x.dim(0)),
                              static_cast<int>(x.dim(1)), static_cast<int>(w.dim(0)), ops::f32(dx),
                              ops::f32(dw), ops::f32(db));
        return {dx, dw, db};
    }
#endif
    ops::dispatch_float(g.dtype(), [&](auto tag) {
        using T = decltype(tag);
        if (need_dx) as_matrix<T>(dx).noalias() = as_matrix<T>(g) * as_matrix<T>(w);
        if (need_dw) as_matrix<T>(dw).noalias() = as_matrix<T>(g).transpose() * as_matrix<T>(x);
        if (need_db) as_row<T>(db) = as_matrix<T>(g).colwise().sum();
    });
    return {dx, dw, db};
}

void check_softmax(const Tensor& x) {
    ops::check_ndim("softmax", "x", x, 2);
    R2C_CHECK(x.dim(1) > 0, "softmax: x ", x.str(), " has no classes");
    ops::check_cuda_float32("softmax", x);
    ops::check_kernel_size("softmax", x);
}

// One row: subtracting the maximum keeps exp() from overflowing without changing the result.
template <typename T>
void softmax_row(const T* x, T* y, std::int64_t k) {
    T top = x[0];
    for (std::int64_t i = 1; i < k; ++i)
        top = std::max(top, x[i]);
    T total = 0;
    for (std::int64_t i = 0; i < k; ++i) {
        y[i] = std::exp(x[i] - top);
        total += y[i];
    }
    for (std::int64_t i = 0; i < k; ++i)
        y[i] /= total;
}

// dx = y * (g - <g, y>) row by row.
Tensor softmax_backward(const Tensor& g, const Tensor& y) {
    Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
    const std::int64_t rows = y.dim(0), k = y.dim(1);
#ifdef R2C_WITH_CUDA
    if (y.device() == Device::CUDA) {
        cuda::softmax_backward(ops::f32(y), ops::f32(g), static_cast<int>(rows), static_cast<int>(k),
                               ops::f32(dx));
        return dx;
    }
#endif
    ops::dispatch_float(y.dtype(), [&](auto tag) {
        using T = decltype(tag);
        for (std::int64_t r = 0; r < rows; ++r) {
            const T* pg = g.data<T>() + r * k;
            const T* py = y.data<T>() + r * k;
            T* pdx = dx.data<T>() + r * k;
            T dot = 0;
            for (std::int64_t i = 0; i < k; ++i)
                dot += pg[i] * py[i];
            for (std::int64_t i = 0; i < k; ++i)
                pdx[i] = py[i] * (pg[i] - dot);
        }
    });
    return dx;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
    const OpScope scope("linear", x);
    check_linear(x, w, b);
    Tensor y = Tensor::empty({x.dim(0), w.dim(0)}, x.dtype(), x.device());
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA)
        cuda::linear_forward(ops::f32(x), ops::f32(w), ops::f32(b), static_cast<int>(x.dim(0)),
                             static_cast<int>(x.dim(1)), static_cast<int>(w.dim(0)), ops::f32(y));
#endif
    if (x.device() == Device::CPU)
        ops::dispatch_float(x.dtype(), [&](auto tag) {
            using T = decltype(tag);
            auto out = as_matrix<T>(y);
            out.noalias() = as_matrix<T>(x) * as_matrix<T>(w).transpose();
            if (b.defined()) out.rowwise() += as_row<T>(b);
        });
    const bool need_dx = x.requires_grad(), need_dw = w.requires_grad(),
               need_db = b.defined() && b.requires_grad();
    return record(y, "linear", {x, w, b},
                  [xd = x.detach(), wd = w.detach(), need_dx, need_dw, need_db](const Tensor& g) {
                      return linear_backward(g, xd, wd, need_dx, need_dw, need_db);
                  });
}

Tensor softmax(const Tensor& x) {
    const OpScope scope("softmax", x);
    check_softmax(x);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    const std::int64_t rows = x.dim(0), k = x.dim(1);
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA)
        cuda::softmax_forward(ops::f32(x), static_cast<int>(rows), static_cast<int>(k), ops::f32(y));
#endif
    if (x.device() == Device::CPU)
        ops::dispatch_float(x.dtype(), [&](auto tag) {
            using T = decltype(tag);
            for (std::int64_t r = 0; r < rows; ++r)
                softmax_row(x.data<T>() + r * k, y.data<T>() + r * k, k);
        });
    return record(y, "softmax", {x}, [yd = y.detach()](const Tensor& g) {
        return std::vector<Tensor>{softmax_backward(g, yd)};
    });
}

}  // namespace r2c
