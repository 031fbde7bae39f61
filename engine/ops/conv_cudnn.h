// The operational convolution through cuDNN (engine/ops/conv_cudnn.cpp): the power stack of x
// (kernels/oper_conv.h) and one ordinary convolution over Q*Cin channels, as PyTorch implementations of
// Self-ONNs run it, but without keeping the stack for the backward passes: they form it again. A
// convolution runs as a valid convolution of its padded stack with the stacked weights; a transposed layer
// as cuDNN's data gradient from the stack of its input, cropped. Scratch memory (stacks, stacked
// weights, the uncropped output, cuDNN's workspace) comes from the engine's caching allocator and is
// released when a pass returns, so the passes can be captured in CUDA graphs once cuDNN has run outside a
// capture. Precision (opt.precision): FP32 restricts cuDNN to its FMA math (no tensor-core conversion of
// the operands); TF32 lets it use TF32 tensor cores on float32 tensors; BF16 runs the stacked convolution
// on bfloat16 tensors and filter with FP32 accumulation (cuDNN's PSEUDO_BFLOAT16 form): the stack, the
// stacked weights, dz and the convolution's output rounded to bfloat16, so half the stack's memory, while
// x, w, y and the gradients handed back stay float32.
// CUDA builds only; in one without cuDNN (R2C_HAVE_CUDNN undefined) the passes throw r2c::Error saying so.
// Under the CUDA emulator, kernels/emulator/cudnn.h stands in for cuDNN.
#pragma once

#ifdef R2C_WITH_CUDA
#include "kernels/oper_conv.h"

namespace r2c::ops::cudnn {

// The same contracts as kernels/oper_conv.h's functions of the same pass, reflect geometries included for
// the convolution (the stack mirrors the pads; the data gradient folds them back).
void forward(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
             cuda::OperActivation act, const cuda::OperConvOptions& opt);
void backward_data(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* dz,
                   float* dx, const cuda::OperConvOptions& opt);
void backward_weights(const cuda::OperConvGeometry& g, const float* x, const float* dz, float* dw, float* db,
                      const cuda::OperConvOptions& opt);
void transpose_forward(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* b,
                       float* y, cuda::OperActivation act, const cuda::OperConvOptions& opt);
void transpose_backward_data(const cuda::OperConvGeometry& g, const float* x, const float* w, const float* dz,
                             float* dx, const cuda::OperConvOptions& opt);
void transpose_backward_weights(const cuda::OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                float* db, const cuda::OperConvOptions& opt);

}  // namespace r2c::ops::cudnn
#endif
