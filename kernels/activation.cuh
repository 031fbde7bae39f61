// Device side of kernels/activation.h: an activation and its derivative, the derivative read off the
// activation's output y = act(z) (what a fused op keeps for its backward pass).
#pragma once

#include <cuda_runtime.h>

#include "kernels/activation.h"

namespace r2c::cuda {

__device__ __forceinline__ float activate(float v, OperActivation act) {
    if (act == OperActivation::Tanh) return tanhf(v);
    if (act == OperActivation::Relu) return v > 0.f || v != v ? v : 0.f;
    if (act == OperActivation::LeakyRelu) return v > 0.f ? v : 0.2f * v;
    return v;
}

// act'(z) from y = act(z): tanh' = 1 - y^2; relu' = 1 where y > 0, else 0; leaky' = 1 where y > 0 (the sign
// of z), else 0.2.
__device__ __forceinline__ float activation_derivative(float y, OperActivation act) {
    if (act == OperActivation::Tanh) return 1.f - y * y;
    if (act == OperActivation::Relu) return y > 0.f ? 1.f : 0.f;
    if (act == OperActivation::LeakyRelu) return y > 0.f ? 1.f : 0.2f;
    return 1.f;
}

}  // namespace r2c::cuda
