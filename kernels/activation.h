// The activations the kernels apply in the epilogue of the op that produces their input (an operational
// convolution, instance normalisation), so that no separate pass over memory is needed for them.
// Plain C++: no CUDA header is needed to include this file.
#pragma once

namespace r2c::cuda {

enum class OperActivation {
    None,
    Tanh,
    Relu,       // NaN passes through
    LeakyRelu,  // slope 0.2, as in R2C-GAN
};

}  // namespace r2c::cuda
