// Multi-tensor Adam: a launch covers up to kAdamTensorsPerLaunch parameter tensors, each cut into chunks
// of kChunk elements; block b finds its tensor in the launch's chunk prefix sums and updates one chunk.
#include <algorithm>

#include "kernels/adam.h"
#include "kernels/check.cuh"

namespace r2c::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 4 * kThreads;

struct AdamBatch {
    AdamTensor tensors[kAdamTensorsPerLaunch];
    int first_chunk[kAdamTensorsPerLaunch + 1];  // prefix sums of each tensor's chunk count
    int count;
};

__global__ void __launch_bounds__(kThreads) adam_kernel(const AdamBatch batch, const AdamCoefficients c) {
    const int chunk = blockIdx.x;
    int t = 0;
    while (t + 1 < batch.count && batch.first_chunk[t + 1] <= chunk)
        ++t;
    const AdamTensor& a = batch.tensors[t];
    const std::int64_t begin = std::int64_t(chunk - batch.first_chunk[t]) * kChunk;
    const std::int64_t end = begin + kChunk < a.n ? begin + kChunk : a.n;
    for (std::int64_t k = begin + threadIdx.x; k < end; k += kThreads) {
        const float g = a.g[k];
        const float m = a.m[k] + (g - a.m[k]) * c.one_minus_beta1;
        const float v = a.v[k] + (g * g - a.v[k]) * c.one_minus_beta2;
        a.m[k] = m;
        a.v[k] = v;
        a.p[k] -= (m * c.alpha) / (sqrtf(v) + c.epsilon);
    }
}

}  // namespace

void adam_update(const AdamTensor* tensors, int count, const AdamCoefficients& c, void* stream) {
    for (int first = 0; first < count; first += kAdamTensorsPerLaunch) {
        AdamBatch batch{};
        batch.count = std::min(kAdamTensorsPerLaunch, count - first);
        std::int64_t chunks = 0;
        for (int i = 0; i < batch.count; ++i) {
            batch.tensors[i] = tensors[first + i];
            batch.first_chunk[i] = static_cast<int>(chunks);
            chunks += (tensors[first + i].n + kChunk - 1) / kChunk;
            R2C_CHECK(chunks < (std::int64_t(1) << 31), "adam_update: ", chunks * kChunk,
                      " parameters in one launch exceed the kernel's limit");
        }
        batch.first_chunk[batch.count] = static_cast<int>(chunks);
        if (chunks == 0) continue;
        R2C_LAUNCH(static_cast<unsigned>(chunks), kThreads, 0, static_cast<cudaStream_t>(stream), adam_kernel)
        (batch, c);
        R2C_CUDA_LAUNCH_CHECK(detail::concat("adam_kernel (", batch.count, " tensors, ", chunks, " chunks)"));
    }
}

}  // namespace r2c::cuda
