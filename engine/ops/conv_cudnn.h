// The operational convolution through cuDNN (engine/ops/conv_cudnn.cpp): the padded power stack of x
// (kernels/oper_conv.h) and one ordinary valid convolution over Q*Cin channels with the stacked weights, as
// PyTorch implementations of Self-ONNs run it, but without keeping the stack for the backward passes: they
// form it again. Convolution passes (not transposed ones) in TF32. Scratch memory (the stack, the stacked
// weights, cuDNN's workspace) comes from the engine's caching allocator and is released when a pass
// returns, so the passes can be captured in CUDA graphs once cuDNN has run outside a capture.
// CUDA builds only; in one without cuDNN (R2C_HAVE_CUDNN undefined, e.g. under the emulator) runs() is false
// and the passes throw r2c::Error saying so.
#pragma once

#ifdef R2C_WITH_CUDA
#include "kernels/oper_conv.h"

namespace r2c::ops::cudnn {

// Whether the functions below run `pass` at `precision`: the three passes of a convolution, in TF32, in a
// build with cuDNN.
bool runs(cuda::OperPass pass, cuda::OperPrecision precision);

// The same contracts as kernels/oper_conv.h's functions of the same pass, reflect geometries included (the
// stack mirrors the pads; the data gradient folds them back).
void forward(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
             cuda::OperActivation act);
void backward_data(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* dz,
                   float* dx);
void backward_weights(const cuda::OperConvGeometry& g, const float* x, const float* dz, float* dw, float* db);

}  // namespace r2c::ops::cudnn
#endif
