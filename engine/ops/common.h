// Internal helpers shared by the op implementations.
#pragma once

#include <cmath>

#include "engine/ops.h"
#include "engine/tensor.h"
#include "kernels/activation.h"

namespace r2c::ops {

// All defined tensors share dtype and device (the first one's); the error names the op.
void check_same_kind(const char* op, const std::vector<Tensor>& tensors);
// Tensor has exactly `ndim` dimensions; `what` names the argument.
void check_ndim(const char* op, const char* what, const Tensor& t, int ndim);
// The CUDA kernels take float32 only: a CUDA tensor of another dtype is an error naming the op.
void check_cuda_float32(const char* op, const Tensor& t);

// The CUDA kernels take sizes as int: a CUDA tensor t with more elements than an int holds is an error
// naming the op (every size derived from t then fits).
void check_kernel_size(const char* op, const Tensor& t);

// The float32 elements of t wherever they live (a device pointer for a CUDA tensor); null when t is
// undefined. For the CUDA kernels, whose pointers Tensor::data() (host only) cannot give.
inline float* f32(const Tensor& t) {
    return t.defined() ? static_cast<float*>(t.raw_data()) : nullptr;
}

// The activations and their derivatives on the CPU, defined once for the separate ops
// (engine/ops/elementwise.cpp) and the fused epilogues below. A derivative is read off the output
// y = act(z) or off z itself: relu and leaky relu keep the sign of z.
constexpr double kLeakyReluSlope = 0.2;  // R2C-GAN's
template <typename T>
T relu_value(T v) {
    return v > 0 || v != v ? v : T(0);  // NaN passes through (as in PyTorch), so a fault stays visible
}
template <typename T>
T leaky_relu_value(T v, T slope) {
    return v > 0 ? v : slope * v;
}
template <typename T>
T tanh_derivative(T y) {
    return 1 - y * y;
}
template <typename T>
T relu_derivative(T v) {
    return v > 0 ? T(1) : T(0);
}
template <typename T>
T leaky_relu_derivative(T v, T slope) {
    return v > 0 ? T(1) : slope;
}

// The kernels' name for an activation.
cuda::OperActivation kernel_activation(Activation act);

// Applies act to every element of the CPU tensor y, in place (the CPU epilogue of an op with a fused
// activation).
void activate_in_place(Tensor& y, Activation act);

// dL/dz = dy * act'(z) for an op that fused act into its output y = act(z), act' read off y; dy itself when
// act is None. CPU tensors.
Tensor pre_activation_grad(const Tensor& dy, const Tensor& y, Activation act);

// Calls f(T{}) with T = float or double according to dtype; inside: using T = decltype(tag);
template <typename F>
decltype(auto) dispatch_float(DType dtype, F&& f) {
    if (dtype == DType::F32) return f(float{});
    return f(double{});
}

}  // namespace r2c::ops
