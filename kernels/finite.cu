// The finite check of a training step's losses and gradients: one block per chunk of a tensor
// (kernels/multi_tensor.cuh) raises the tensor's flag when it finds a NaN or an infinity.
#include <algorithm>

#include "engine/device.h"
#include "kernels/check.cuh"
#include "kernels/finite.h"
#include "kernels/multi_tensor.cuh"

namespace r2c::cuda {

namespace {

using multi_tensor::kThreads;

struct FiniteBatch {
    const float* data[multi_tensor::kMax];
    std::int64_t sizes[multi_tensor::kMax];
    multi_tensor::Chunks chunks;
};

__global__ void __launch_bounds__(kThreads) nonfinite_kernel(const FiniteBatch batch, int* flags) {
    const multi_tensor::ChunkRange r = multi_tensor::locate(batch.chunks, blockIdx.x, batch.sizes);
    const float* p = batch.data[r.tensor];
    bool bad = false;
    for (std::int64_t k = r.begin + threadIdx.x; k < r.end; k += kThreads)
        bad = bad || !isfinite(p[k]);
    if (bad) flags[r.tensor] = 1;  // every writer writes 1
}

}  // namespace

std::vector<bool> nonfinite(const std::vector<const float*>& data, const std::vector<std::int64_t>& sizes) {
    R2C_CHECK(data.size() == sizes.size(), "cuda::nonfinite: ", data.size(), " buffers but ", sizes.size(),
              " sizes");
    const int count = static_cast<int>(data.size());
    std::vector<bool> result(data.size(), false);
    if (count == 0) return result;
    int* flags = static_cast<int*>(allocator().allocate(sizeof(int) * data.size()));
    try {
        R2C_CUDA_CHECK(cudaMemset(flags, 0, sizeof(int) * data.size()), "cuda::nonfinite");
        for (int first = 0; first < count; first += multi_tensor::kMax) {
            FiniteBatch batch{};
            const int n = std::min(multi_tensor::kMax, count - first);
            for (int i = 0; i < n; ++i) {
                batch.data[i] = data[first + i];
                batch.sizes[i] = sizes[first + i];
            }
            const int chunks = multi_tensor::plan(batch.chunks, batch.sizes, n, "cuda::nonfinite");
            if (chunks == 0) continue;
            R2C_LAUNCH(static_cast<unsigned>(chunks), kThreads, 0, nullptr, nonfinite_kernel)
            (batch, flags + first);
            R2C_CUDA_LAUNCH_CHECK("nonfinite_kernel");
        }
        std::vector<int> host(data.size());
        R2C_CUDA_CHECK(cudaMemcpy(host.data(), flags, sizeof(int) * host.size(), cudaMemcpyDeviceToHost),
                       "cuda::nonfinite");
        for (std::size_t i = 0; i < host.size(); ++i)
            result[i] = host[i] != 0;
    } catch (...) {
        allocator().release(flags);
        throw;
    }
    allocator().release(flags);
    return result;
}

}  // namespace r2c::cuda
