// Auto's choice between the two ways of running one operational-convolution pass on CUDA, the fused kernels
// and cuDNN on the power stack (engine/ops/conv_cuda.cpp; cuda::ConvAlgorithm in engine/device.h).
// CUDA builds only (and the emulator's).
#pragma once

#ifdef R2C_WITH_CUDA
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace r2c::ops {

// A relative L2 difference between the two ways' outputs above this, beyond the rounding of BF16 (the
// fused kernels' least precise arithmetic, which cuDNN's TF32 is then compared with), means one of them is
// wrong for that pass and shape.
constexpr double kConvAgreement = 2e-2;

// Runs the pass identified by `key` (everything that decides either way's speed) one way or the other;
// `fused` and `cudnn` each compute all of `outputs` on cuda::stream().
// - A key met before runs as was chosen then.
// - Met for the first time inside a graph capture, it runs fused, and nothing is chosen.
// - Met for the first time outside one, it runs fused, then cudnn, whose outputs must agree with fused's
//   within kConvAgreement (outputs whose fused value is not finite are not compared) and which must not
//   throw r2c::Error. Then each runs three more times, alternating, timed with device events, and the faster
//   is chosen; the outputs are the chosen way's (fused runs once more where it wins). Where cudnn throws or
//   disagrees, fused is chosen, fused runs again, the choice's note says why and a warning naming `pass` and
//   `shape` goes to stderr. Either way the choice joins cuda::conv_choices() under `pass` and `shape`.
void run_chosen(const std::vector<std::int64_t>& key, const std::string& pass, const std::string& shape,
                const std::vector<Tensor>& outputs, const std::function<void()>& fused,
                const std::function<void()>& cudnn);

}  // namespace r2c::ops
#endif
