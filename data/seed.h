// Independent random streams from one user seed: each (seed, purpose, index...) tuple gets its own Rng seed,
// so a stream does not depend on how many numbers other streams drew or in which order work ran.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace r2c {

// The splitmix64 finaliser: every input bit changes every output bit.
inline std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

inline std::uint64_t derive_seed(std::uint64_t seed, std::initializer_list<std::uint64_t> parts) {
    const auto mix = mix64;
    std::uint64_t h = mix(seed + 0x9e3779b97f4a7c15ULL);
    for (const std::uint64_t p : parts)
        h = mix(h ^ (p + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
    return h;
}

}  // namespace r2c
