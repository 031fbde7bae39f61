// Device side of kernels/activation.h: each activation and its derivative, defined once for the fused
// epilogues (activate, activation_derivative) and the separate activation ops (kernels/elementwise.cu).
// A derivative is read off the activation's output y = act(z) (what a fused op keeps for its backward
// pass) or off z itself: relu and leaky relu keep the sign of z.
#pragma once

#include <cuda_runtime.h>

#include "kernels/activation.h"

namespace r2c::cuda {

constexpr float kLeakyReluSlope = 0.2f;  // R2C-GAN's

__device__ __forceinline__ float relu_value(float v) {
    return v > 0.f || v != v ? v : 0.f;  // NaN passes through
}
__device__ __forceinline__ float leaky_relu_value(float v, float slope) {
    return v > 0.f ? v : slope * v;
}
__device__ __forceinline__ float tanh_derivative(float y) {
    return 1.f - y * y;
}
__device__ __forceinline__ float relu_derivative(float v) {
    return v > 0.f ? 1.f : 0.f;
}
__device__ __forceinline__ float leaky_relu_derivative(float v, float slope) {
    return v > 0.f ? 1.f : slope;
}

__device__ __forceinline__ float activate(float v, OperActivation act) {
    if (act == OperActivation::Tanh) return tanhf(v);
    if (act == OperActivation::Relu) return relu_value(v);
    if (act == OperActivation::LeakyRelu) return leaky_relu_value(v, kLeakyReluSlope);
    return v;
}

// act'(z) from y = act(z).
__device__ __forceinline__ float activation_derivative(float y, OperActivation act) {
    if (act == OperActivation::Tanh) return tanh_derivative(y);
    if (act == OperActivation::Relu) return relu_derivative(y);
    if (act == OperActivation::LeakyRelu) return leaky_relu_derivative(y, kLeakyReluSlope);
    return 1.f;
}

}  // namespace r2c::cuda
