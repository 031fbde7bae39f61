// Multi-tensor Adam: one block per chunk of a parameter tensor (kernels/multi_tensor.cuh).
#include <algorithm>

#include "kernels/adam.h"
#include "kernels/check.cuh"
#include "kernels/multi_tensor.cuh"

namespace r2c::cuda {

namespace {

using multi_tensor::kThreads;

struct AdamBatch {
    AdamTensor tensors[multi_tensor::kMax];
    std::int64_t sizes[multi_tensor::kMax];
    multi_tensor::Chunks chunks;
};

__global__ void __launch_bounds__(kThreads) adam_kernel(const AdamBatch batch, const AdamCoefficients given,
                                                        const AdamCoefficients* device_c, const float* skip) {
    if (skip != nullptr && *skip != 0.f) return;
    const AdamCoefficients c = device_c != nullptr ? *device_c : given;
    const multi_tensor::ChunkRange r = multi_tensor::locate(batch.chunks, blockIdx.x, batch.sizes);
    const AdamTensor& a = batch.tensors[r.tensor];
    for (std::int64_t k = r.begin + threadIdx.x; k < r.end; k += kThreads) {
        const float g = a.g[k];
        const float m = a.m[k] + (g - a.m[k]) * c.one_minus_beta1;
        const float v = a.v[k] + (g * g - a.v[k]) * c.one_minus_beta2;
        a.m[k] = m;
        a.v[k] = v;
        a.p[k] -= (m * c.alpha) / (sqrtf(v) + c.epsilon);
    }
}

}  // namespace

void adam_update(const AdamTensor* tensors, int count, const AdamCoefficients& c,
                 const AdamCoefficients* device_c, const float* skip, void* stream) {
    static_assert(kAdamTensorsPerLaunch == multi_tensor::kMax, "one launch takes kMax tensors");
    for (int first = 0; first < count; first += multi_tensor::kMax) {
        AdamBatch batch{};
        const int n = std::min(multi_tensor::kMax, count - first);
        for (int i = 0; i < n; ++i) {
            batch.tensors[i] = tensors[first + i];
            batch.sizes[i] = tensors[first + i].n;
        }
        const int chunks = multi_tensor::plan(batch.chunks, batch.sizes, n, "adam_update");
        if (chunks == 0) continue;
        R2C_LAUNCH(static_cast<unsigned>(chunks), kThreads, 0, detail::launch_stream(stream), adam_kernel)
        (batch, c, device_c, skip);
        R2C_CUDA_LAUNCH_CHECK(detail::concat("adam_kernel (", n, " tensors, ", chunks, " chunks)"));
    }
}

}  // namespace r2c::cuda
