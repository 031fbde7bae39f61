// Host API of the multi-tensor Adam kernel (kernels/adam.cu): one launch updates every parameter tensor
// of a network. Plain C++; pointers are float32 device pointers; CUDA builds only.
#pragma once

#include <cstdint>

namespace r2c::cuda {

// One parameter: p, its moments m and v, and its gradient g, each n contiguous floats.
struct AdamTensor {
    float* p;
    float* m;
    float* v;
    const float* g;
    std::int64_t n;
};

// The scalars of one step, already rounded to float32 (engine/adam.h gives the update).
struct AdamCoefficients {
    float alpha, one_minus_beta1, one_minus_beta2, epsilon;
};

// For every element of every tensor: m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2);
// p -= m alpha / (sqrt(v) + epsilon), in that order and rounding, as the CPU Adam computes it; nothing at
// all when `skip` (a device float, or null) is nonzero, which the kernel reads when it runs, so that a
// finite check queued before it can cancel the update without the host waiting (kernels/finite.h).
// The scalars are `c`, or, when `device_c` is given, the AdamCoefficients in device memory there, read
// when the kernel runs: a captured graph's replays take the scalars of each step from there.
// Up to kAdamTensorsPerLaunch tensors share a launch; longer lists take several.
constexpr int kAdamTensorsPerLaunch = 32;
void adam_update(const AdamTensor* tensors, int count, const AdamCoefficients& c,
                 const AdamCoefficients* device_c = nullptr, const float* skip = nullptr,
                 void* stream = nullptr);

}  // namespace r2c::cuda
