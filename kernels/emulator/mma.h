// The CUDA emulator's WMMA (kernels/emulator/cuda_runtime.h). Every lane of a warp holds the whole
// fragment and performs the whole warp-wide operation, so the 32 lanes compute (and store) identical
// tiles: the results of a tensor-core kernel are reproduced, not its distribution over lanes. TF32 is
// rounded to nearest with ties away from zero (cvt.rna.tf32.f32), BF16 by cuda_bf16.h; products
// accumulate in FP32.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda_bf16.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

inline float __float_to_tf32(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    std::memcpy(&v, &u, sizeof v);
    return v;
}

namespace detail {
template <class T>
struct Storage {
    using type = T;
};
template <>
struct Storage<precision::tf32> {
    using type = float;
};
inline float to_float(float v) {
    return v;
}
inline float to_float(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
}  // namespace detail

// rows x cols of the fragment's matrix: A is M x K, B is K x N, the accumulator M x N.
template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
  public:
    using element_type = typename detail::Storage<T>::type;
    static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
    static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
    static constexpr int num_elements = rows * cols;
    element_type x[num_elements];  // row-major
};

template <class Use, int M, int N, int K, class T, class L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, typename fragment<Use, M, N, K, T, L>::element_type v) {
    for (auto& e : f.x)
        e = v;
}

template <class Use, int M, int N, int K, class T, class L>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f,
                      const typename fragment<Use, M, N, K, T, L>::element_type* p, unsigned ldm) {
    using F = fragment<Use, M, N, K, T, L>;
    for (int r = 0; r < F::rows; ++r)
        for (int c = 0; c < F::cols; ++c)
            f.x[r * F::cols + c] = std::is_same_v<L, col_major> ? p[r + c * ldm] : p[r * ldm + c];
}

template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm,
                      layout_t layout) {
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c)
            f.x[r * N + c] = layout == mem_col_major ? p[r + c * ldm] : p[r * ldm + c];
}

template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm,
                       layout_t layout) {
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c)
            (layout == mem_col_major ? p[r + c * ldm] : p[r * ldm + c]) = f.x[r * N + c];
}

template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
    float out[M * N];
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            float s = c.x[i * N + j];
            for (int k = 0; k < K; ++k)
                s = std::fma(detail::to_float(a.x[i * K + k]), detail::to_float(b.x[k * N + j]), s);
            out[i * N + j] = s;
        }
    std::memcpy(d.x, out, sizeof out);
}

}  // namespace nvcuda::wmma
