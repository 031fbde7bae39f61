// The operational convolution through cuDNN (engine/ops/conv_cudnn.cpp): the power stack of x
// (kernels/oper_conv.h) and one ordinary convolution over Q*Cin channels, as PyTorch implementations of
// Self-ONNs run it, but without keeping the stack for the backward passes: they form it again. A
// convolution runs as a valid convolution of its padded stack with the stacked weights; a transposed layer
// as cuDNN's data gradient from the stack of its input, cropped. TF32 only. Scratch memory (stacks, stacked
// weights, the uncropped output, cuDNN's workspace) comes from the engine's caching allocator and is
// released when a pass returns, so the passes can be captured in CUDA graphs once cuDNN has run outside a
// capture. CUDA builds only; in one without cuDNN (R2C_HAVE_CUDNN undefined) runs() is false and the passes
// throw r2c::Error saying so. Under the CUDA emulator, kernels/emulator/cudnn.h stands in for cuDNN.
#pragma once

#ifdef R2C_WITH_CUDA
#include "kernels/oper_conv.h"

namespace r2c::ops::cudnn {

// Whether the functions below run `pass` at `precision`: every pass, in TF32, in a build with cuDNN.
bool runs(cuda::OperPass pass, cuda::OperPrecision precision);

// The same contracts as kernels/oper_conv.h's functions of the same pass, reflect geometries included for
// the convolution (the stack mirrors the pads; the data gradient folds them back).
void forward(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
             cuda::OperActivation act);
void backward_data(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* dz,
                   float* dx);
void backward_weights(const cuda::OperConvGeometry& g, const float* x, const float* dz, float* dw, float* db);
void transpose_forward(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* b,
                       float* y, cuda::OperActivation act);
void transpose_backward_data(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* dz,
                             float* dx);
void transpose_backward_weights(const cuda::OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                float* db);

}  // namespace r2c::ops::cudnn
#endif
