// Index arithmetic of the operational-convolution kernels, as __host__ __device__ inline functions so
// that the CPU tests (tests/test_oper_conv_index.cpp) check exactly what the kernels execute.
//
// Vocabulary (conv geometry): the "in" tensor is [N, Cin, H, W], the "out" tensor [N, Cout, Hout, Wout],
// output position o reads input positions o*stride - pad + t for taps t = 0..k-1 (TensorFlow padding:
// pad is the zeros added before; the zeros after are implied by the window running past the end).
// A transposed convolution is the adjoint of a conv geometry, so the same helpers serve both.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define R2C_HD __host__ __device__ __forceinline__
#else
#define R2C_HD inline
#endif

namespace r2c::oper_index {

// Floor and ceiling division for any sign of a and d > 0 (C++ division truncates toward zero).
R2C_HD int floor_div(int a, int d) {
    const int q = a / d;
    return (a % d != 0 && a < 0) ? q - 1 : q;
}
R2C_HD int ceil_div(int a, int d) {
    return -floor_div(-a, d);
}

// The index that reflect padding reads for position i of a dimension of size n (PyTorch 'reflect', the
// edge not repeated): i for 0 <= i < n, -i before, 2(n-1) - i after; valid for -n < i < 2n - 1.
R2C_HD int reflect_index(int i, int n) {
    return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
}

// Division by a divisor fixed at launch time without the ~20-instruction integer division: for
// 0 <= n < 2^31 and 1 <= d < 2^31, floor(n/d) = (n * m) >> (31 + l) with l = ceil(log2 d) and
// m = ceil(2^(31+l) / d) < 2^32 (Granlund-Montgomery). The kernels use it for every pixel and tap
// decomposition in their tile loaders.
struct FastDivmod {
    int divisor = 1;
    unsigned multiplier = 0;
    unsigned shift = 0;

    FastDivmod() = default;
    R2C_HD explicit FastDivmod(int d) : divisor(d) {
        if (d > 1) {
            unsigned l = 0;
            while ((1u << l) < static_cast<unsigned>(d))
                ++l;
            multiplier =
                static_cast<unsigned>(((std::uint64_t(1) << (31 + l)) + unsigned(d) - 1) / unsigned(d));
            shift = l - 1;
        }
    }
    // n in [0, 2^31).
    R2C_HD int div(int n) const {
        if (divisor == 1) return n;
#if defined(__CUDA_ARCH__)
        return static_cast<int>(__umulhi(static_cast<unsigned>(n), multiplier) >> shift);
#else
        return static_cast<int>(((std::uint64_t(unsigned(n)) * multiplier) >> 32) >> shift);
#endif
    }
    R2C_HD int divmod(int n, int& rem) const {
        const int q = div(n);
        rem = n - q * divisor;
        return q;
    }
};

// ---- TensorFlow padding (one spatial dimension) ----

struct SamePads {
    int out;     // output size
    int before;  // zeros before (conv) or crop at the start (transposed conv)
};
// `same` conv: out = ceil(n/s), pad_total = max((out-1)*s + k - n, 0), before = pad_total / 2.
R2C_HD SamePads tf_same(int n, int k, int s) {
    const int out = (n + s - 1) / s;
    const int total = (out - 1) * s + k - n;
    return {out, total > 0 ? total / 2 : 0};
}
// `same` transposed conv: out = n*s, the full output ((n-1)*s + k) cropped by max(k-s,0)/2 at the start.
R2C_HD SamePads tf_same_transpose(int n, int k, int s) {
    return {n * s, k > s ? (k - s) / 2 : 0};
}

// ---- Forward window ----

// First input position read by output position o (may be negative: padding).
R2C_HD int window_origin(int o, int stride, int pad) {
    return o * stride - pad;
}

// ---- Transposed gather: which (tap, output) pairs reach input position i ----
//
// The pairs with o*s - pad + t == i, 0 <= t < k, 0 <= o < n_out are t = tap0 + j*s, o = out0 - j for
// j in [j_begin, j_end) (empty when j_end <= j_begin). i >= 0 and pad >= 0.
struct GatherRange {
    int tap0;
    int out0;
    int j_begin;
    int j_end;
};
R2C_HD GatherRange gather_range(int i, int n_out, int k, int s, int pad) {
    const int r = (i + pad) % s;
    const int out0 = (i + pad - r) / s;
    const int taps = r < k ? (k - 1 - r) / s + 1 : 0;
    const int j_begin = out0 - n_out + 1 > 0 ? out0 - n_out + 1 : 0;
    const int j_end = taps < out0 + 1 ? taps : out0 + 1;
    return {r, out0, j_begin, j_end};
}

// ---- Residue classes of the transposed gather (stride decomposition) ----
//
// Input positions i with (i + pad) mod s == r form the class r: i = s*t + r - pad for t in
// [t0, t0 + count). Every position of a class is reached by the same taps t = r + j*s, j in [0, taps),
// from output o = t - j (valid when 0 <= o < n_out). Tiling each class separately gives a dense
// reduction of Cout * taps_h * taps_w instead of a k*k one where all but 1/s^2 of the terms are zero.
struct ResidueClass {
    int r;
    int t0;
    int count;
    int taps;
};
R2C_HD ResidueClass residue_class(int r, int n_in, int k, int s, int pad) {
    const int t0 = ceil_div(pad - r, s);
    const int t_last = floor_div(n_in - 1 + pad - r, s);
    const int count = t_last >= t0 ? t_last - t0 + 1 : 0;
    const int taps = r < k ? (k - 1 - r) / s + 1 : 0;
    return {r, t0, count, taps};
}
R2C_HD int residue_position(const ResidueClass& c, int s, int pad, int a) {
    return s * (c.t0 + a) + c.r - pad;
}

// ---- Tiles ----

// Thread tid of a block owns the micro-tile rows (tid % (BM/TM))*TM + i, i < TM, and columns
// (tid / (BM/TM))*TN + j, j < TN: consecutive threads own consecutive rows (pixels), so the epilogue's
// stores of one channel are contiguous across a warp.
R2C_HD int micro_row(int tid, int i, int bm, int tm) {
    return (tid % (bm / tm)) * tm + i;
}
R2C_HD int micro_col(int tid, int j, int bm, int tm, int tn) {
    return (tid / (bm / tm)) * tn + j;
}

// Element e of a rows x depth operand tile, as the loaders walk it: k-fastest walks along the
// reduction (contiguous taps of a weight row, contiguous pixels of a weight-gradient operand),
// otherwise along the rows (contiguous output pixels).
struct TileCoord {
    int row;
    int kk;
};
R2C_HD TileCoord load_coord(int e, int rows, int depth, bool k_fastest) {
    return k_fastest ? TileCoord{e / depth, e % depth} : TileCoord{e % rows, e / rows};
}

// Split-K: part z of `parts` covers [split_begin(z), split_begin(z+1)) of a reduction of `total`.
R2C_HD int split_begin(int total, int parts, int z) {
    return static_cast<int>(static_cast<std::int64_t>(total) * z / parts);
}

}  // namespace r2c::oper_index
