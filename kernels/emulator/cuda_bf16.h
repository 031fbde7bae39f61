// The CUDA emulator's bfloat16 (kernels/emulator/cuda_runtime.h): storage, and conversion from float
// rounding to nearest, ties to even, as __float2bfloat16_rn does on the GPU.
#pragma once

#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
    std::uint16_t bits;
};

inline __nv_bfloat16 __float2bfloat16_rn(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<std::uint16_t>((u >> 16) | 0x40u)};  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return {static_cast<std::uint16_t>(u >> 16)};
}

inline float __bfloat162float(__nv_bfloat16 h) {
    const std::uint32_t u = std::uint32_t(h.bits) << 16;
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}
