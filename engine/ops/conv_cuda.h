// The operational convolutions on CUDA tensors (engine/ops/conv_cuda.cpp): the fused kernels of
// kernels/oper_conv.h or cuDNN on the power stack (engine/ops/conv_cudnn.h), as cuda::conv_algorithm()
// says, forward and backward, recorded for autograd. CUDA builds only.
#pragma once

#include <cstdint>

#include "engine/ops.h"
#include "engine/ops/im2col.h"
#include "engine/tensor.h"

namespace r2c::ops {

// y = act(sum_q conv(x^q, W_q) + b_q) (or its transpose) for float32 CUDA tensors, act in the kernel's
// epilogue. With reflect (convolutions), g's pads mirror x, read by the kernels without forming the padded
// input, except transiently in the data-gradient pass. g is the convolution's
// geometry; for a transposed op, that of the convolution it is the adjoint of (ops::ConvGeometry's
// image side is then the output).
Tensor oper_conv_cuda(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                      const ConvGeometry& g, std::int64_t q, std::int64_t cout, bool transposed, bool reflect,
                      Activation act);

}  // namespace r2c::ops
