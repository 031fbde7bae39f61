// The concatenation of device buffers behind cat_batch (engine/tensor.cpp) on CUDA tensors: one launch
// per 32 parts (kernels/multi_tensor.cuh) instead of one device-to-device copy per part, one block per
// chunk of a part. A part moves in the widest words (16, 4 or 1 bytes) that its source, its place in the
// output and its length allow. Words are copied as bits, never as floating-point values.
#include <cstdint>
#include <vector>

#include "kernels/check.cuh"
#include "kernels/multi_tensor.cuh"

namespace r2c::cuda {

namespace {

using multi_tensor::kThreads;

struct alignas(16) Word16 {
    unsigned int w[4];
};

struct GatherBatch {
    const void* src[multi_tensor::kMax];
    void* dst[multi_tensor::kMax];
    std::int64_t words[multi_tensor::kMax];
    int word_bytes[multi_tensor::kMax];  // 16, 4 or 1
    multi_tensor::Chunks chunks;
};

template <typename W>
__device__ void copy_words(const void* src, void* dst, std::int64_t begin, std::int64_t end) {
    const W* s = static_cast<const W*>(src);
    W* d = static_cast<W*>(dst);
    for (std::int64_t k = begin + threadIdx.x; k < end; k += kThreads)
        d[k] = s[k];
}

__global__ void __launch_bounds__(kThreads) gather_kernel(const GatherBatch batch) {
    const multi_tensor::ChunkRange r = multi_tensor::locate(batch.chunks, blockIdx.x, batch.words);
    const void* src = batch.src[r.tensor];
    void* dst = batch.dst[r.tensor];
    switch (batch.word_bytes[r.tensor]) {
        case 16:
            copy_words<Word16>(src, dst, r.begin, r.end);
            break;
        case 4:
            copy_words<unsigned int>(src, dst, r.begin, r.end);
            break;
        default:
            copy_words<unsigned char>(src, dst, r.begin, r.end);
    }
}

// The widest word that divides the addresses of both ends and the length.
int word_bytes(const void* src, const void* dst, std::size_t bytes) {
    const auto bits = reinterpret_cast<std::uintptr_t>(src) | reinterpret_cast<std::uintptr_t>(dst) | bytes;
    return bits % 16 == 0 ? 16 : bits % 4 == 0 ? 4 : 1;
}

}  // namespace

void gather(void* dst, const std::vector<const void*>& parts, const std::vector<std::size_t>& bytes) {
    R2C_CHECK(parts.size() == bytes.size(), "cuda::gather: ", parts.size(), " parts but ", bytes.size(),
              " sizes");
    const auto s = detail::launch_stream(nullptr);
    char* out = static_cast<char*>(dst);
    std::size_t next = 0;
    while (next < parts.size()) {
        GatherBatch batch{};
        int n = 0;
        for (; next < parts.size() && n < multi_tensor::kMax; ++next) {
            if (bytes[next] == 0) continue;
            const int w = word_bytes(parts[next], out, bytes[next]);
            batch.src[n] = parts[next];
            batch.dst[n] = out;
            batch.words[n] = static_cast<std::int64_t>(bytes[next] / static_cast<std::size_t>(w));
            batch.word_bytes[n] = w;
            out += bytes[next];
            ++n;
        }
        const int chunks = multi_tensor::plan(batch.chunks, batch.words, n, "cuda::gather");
        if (chunks == 0) continue;
        R2C_LAUNCH(static_cast<unsigned>(chunks), kThreads, 0, s, gather_kernel)(batch);
        R2C_CUDA_LAUNCH_CHECK("gather_kernel");
    }
}

}  // namespace r2c::cuda
