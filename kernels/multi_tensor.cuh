// Launches over lists of tensors (Adam's update, the finite check): each tensor is cut into chunks of
// kMultiTensorChunk elements, a launch covers up to kMultiTensorMax tensors with one block per chunk,
// and a block finds its tensor in the launch's chunk prefix sums.
#pragma once

#include <cstdint>

#include "engine/error.h"

namespace r2c::cuda::multi_tensor {

constexpr int kThreads = 256;
constexpr int kChunk = 4 * kThreads;
constexpr int kMax = 32;

// first_chunk[t] is the first chunk of tensor t; first_chunk[count] the total.
struct Chunks {
    int first_chunk[kMax + 1];
    int count;
};

// The tensor whose chunks include `chunk`, and the element range [begin, end) of that chunk.
struct ChunkRange {
    int tensor;
    std::int64_t begin, end;
};

__device__ inline ChunkRange locate(const Chunks& c, int chunk, const std::int64_t* sizes) {
    int t = 0;
    while (t + 1 < c.count && c.first_chunk[t + 1] <= chunk)
        ++t;
    const std::int64_t begin = std::int64_t(chunk - c.first_chunk[t]) * kChunk;
    const std::int64_t end = begin + kChunk < sizes[t] ? begin + kChunk : sizes[t];
    return {t, begin, end};
}

// Fills the prefix sums for `count` (<= kMax) tensors of the given sizes; returns the total chunks.
inline int plan(Chunks& c, const std::int64_t* sizes, int count, const char* op) {
    c.count = count;
    std::int64_t chunks = 0;
    for (int i = 0; i < count; ++i) {
        c.first_chunk[i] = static_cast<int>(chunks);
        chunks += (sizes[i] + kChunk - 1) / kChunk;
        R2C_CHECK(chunks < (std::int64_t(1) << 31), op, ": ", chunks * kChunk,
                  " elements in one launch exceed the kernel's limit");
    }
    c.first_chunk[count] = static_cast<int>(chunks);
    return static_cast<int>(chunks);
}

}  // namespace r2c::cuda::multi_tensor
