// The finite check of a training step (losses and gradients): which tensors hold a NaN or an infinity.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace r2c {

// float32 [n] on `device`: 1 for each tensor holding a NaN or an infinity, 0 for the others (undefined
// tensors count as finite). Every defined tensor must be on `device`. CPU tensors are scanned in place;
// CUDA tensors (float32) are checked by one multi-tensor launch per 32 tensors, and the flags stay on the
// device: the host does not wait for them (Adam::step reads them there).
Tensor nonfinite_flags(const std::vector<Tensor>& tensors, Device device);

}  // namespace r2c
