// Host API of the multi-tensor finite check (kernels/finite.cu). Plain C++; CUDA builds only.
#pragma once

#include <cstdint>
#include <vector>

namespace r2c::cuda {

// For each of the float32 device buffers data[i] of sizes[i] elements: whether it holds a NaN or an
// infinity. One launch per 32 buffers and one small copy back; synchronises with the device.
std::vector<bool> nonfinite(const std::vector<const float*>& data, const std::vector<std::int64_t>& sizes);

}  // namespace r2c::cuda
