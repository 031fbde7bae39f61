// The finite check of a training step's losses and gradients: one block per chunk of a tensor
// (kernels/multi_tensor.cuh) raises the tensor's flag when it finds a NaN or an infinity. The flags stay
// on the device, where the optimisers read them (kernels/adam.h).
#include <algorithm>

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

__global__ void __launch_bounds__(kThreads) nonfinite_kernel(const FiniteBatch batch, float* flags) {
    const multi_tensor::ChunkRange r = multi_tensor::locate(batch.chunks, blockIdx.x, batch.sizes);
    const float* p = batch.data[r.tensor];
    bool bad = false;
    for (std::int64_t k = r.begin + threadIdx.x; k < r.end; k += kThreads)
        bad = bad || !isfinite(p[k]);
    if (bad) flags[r.tensor] = 1.f;  // every writer writes 1
}

}  // namespace

void nonfinite_flags(const std::vector<const float*>& data, const std::vector<std::int64_t>& sizes,
                     float* flags, void* stream) {
    R2C_CHECK(data.size() == sizes.size(), "cuda::nonfinite_flags: ", data.size(), " buffers but ",
              sizes.size(), " sizes");
    const int count = static_cast<int>(data.size());
    if (count == 0) return;
    const auto s = detail::launch_stream(stream);
    detail::count_memory_operation();
    R2C_CUDA_CHECK(cudaMemsetAsync(flags, 0, sizeof(float) * data.size(), s), "cuda::nonfinite_flags");
    for (int first = 0; first < count; first += multi_tensor::kMax) {
        FiniteBatch batch{};
        const int n = std::min(multi_tensor::kMax, count - first);
        for (int i = 0; i < n; ++i) {
            batch.data[i] = data[first + i];
            batch.sizes[i] = sizes[first + i];
        }
        const int chunks = multi_tensor::plan(batch.chunks, batch.sizes, n, "cuda::nonfinite_flags");
        if (chunks == 0) continue;
        R2C_LAUNCH(static_cast<unsigned>(chunks), kThreads, 0, s, nonfinite_kernel)(batch, flags + first);
        R2C_CUDA_LAUNCH_CHECK("nonfinite_kernel");
    }
}

}  // namespace r2c::cuda
