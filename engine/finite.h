// The finite check of a training step (losses and gradients): which tensors hold a NaN or an infinity.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace r2c {

// One flag per tensor (undefined tensors are finite). CPU tensors are scanned in place; CUDA tensors
// (float32) are checked by one multi-tensor kernel launch per 32 tensors, and only the flags come back.
std::vector<bool> nonfinite(const std::vector<Tensor>& tensors);

}  // namespace r2c
