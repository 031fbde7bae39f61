#include "engine/ops/common.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace r2c::ops {

void check_same_kind(const char* op, const std::vector<Tensor>& tensors) {
    const Tensor* first = nullptr;
    for (const Tensor& t : tensors) {
        if (!t.defined()) continue;
        if (first == nullptr) {
            first = &t;
            continue;
        }
        R2C_CHECK(t.dtype() == first->dtype() && t.device() == first->device(), op,
                  ": all tensors must share dtype and device, got ", first->str(), " and ", t.str());
    }
}

void check_ndim(const char* op, const char* what, const Tensor& t, int ndim) {
    R2C_CHECK(t.defined(), op, ": ", what, " is undefined");
    R2C_CHECK(t.ndim() == ndim, op, ": ", what, " must have ", ndim, " dimensions, got ", t.str());
}

void check_cuda_float32(const char* op, const Tensor& t) {
    R2C_CHECK(t.device() != Device::CUDA || t.dtype() == DType::F32, op,
              ": CUDA ops take float32 tensors; got ", t.str(), " (convert on the CPU first)");
}

void check_kernel_size(const char* op, const Tensor& t) {
    R2C_CHECK(t.device() != Device::CUDA || t.numel() <= std::numeric_limits<int>::max(), op, ": ", t.str(),
              " has too many elements for the CUDA kernels");
}

cuda::OperActivation kernel_activation(Activation act) {
    switch (act) {
        case Activation::Tanh:
            return cuda::OperActivation::Tanh;
        case Activation::Relu:
            return cuda::OperActivation::Relu;
        case Activation::LeakyRelu:
            return cuda::OperActivation::LeakyRelu;
        case Activation::None:
            break;
    }
    return cuda::OperActivation::None;
}

namespace {

template <typename T>
T activate(T v, Activation act) {
    switch (act) {
        case Activation::Tanh:
            return std::tanh(v);
        case Activation::Relu:
            return relu_value(v);
        case Activation::LeakyRelu:
            return leaky_relu_value(v, static_cast<T>(kLeakyReluSlope));
        case Activation::None:
            break;
    }
    return v;
}

// act'(z) from y = act(z).
template <typename T>
T derivative_from_output(T y, Activation act) {
    switch (act) {
        case Activation::Tanh:
            return tanh_derivative(y);
        case Activation::Relu:
            return relu_derivative(y);
        case Activation::LeakyRelu:
            return leaky_relu_derivative(y, static_cast<T>(kLeakyReluSlope));
        case Activation::None:
            break;
    }
    return T(1);
}

}  // namespace

void activate_in_place(Tensor& y, Activation act) {
    if (act == Activation::None) return;
    dispatch_float(y.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* p = y.data<T>();
        const std::int64_t n = y.numel();
        for (std::int64_t i = 0; i < n; ++i)
            p[i] = activate(p[i], act);
    });
}

Tensor pre_activation_grad(const Tensor& dy, const Tensor& y, Activation act) {
    if (act == Activation::None) return dy;
    Tensor dz = Tensor::empty(dy.shape(), dy.dtype());
    dispatch_float(dy.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* pdy = dy.data<T>();
        const T* py = y.data<T>();
        T* pdz = dz.data<T>();
        const std::int64_t n = dy.numel();
        for (std::int64_t i = 0; i < n; ++i)
            pdz[i] = pdy[i] * derivative_from_output(py[i], act);
    });
    return dz;
}

}  // namespace r2c::ops
