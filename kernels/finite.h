// Host API of the multi-tensor finite check (kernels/finite.cu). Plain C++; CUDA builds only.
#pragma once

#include <cstdint>
#include <vector>

namespace r2c::cuda {

// flags[i] = 1 when the float32 device buffer data[i] of sizes[i] elements holds a NaN or an infinity,
// else 0; flags is a device buffer of data.size() floats. One launch per 32 buffers, queued on `stream`
// (a cudaStream_t, nullptr = the engine's stream, cuda::stream()): the host does not wait for the result.
void nonfinite_flags(const std::vector<const float*>& data, const std::vector<std::int64_t>& sizes,
                     float* flags, void* stream = nullptr);

}  // namespace r2c::cuda
