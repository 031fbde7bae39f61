// Device-side building blocks shared by the tiled (CUDA-core) and tensor-core kernels: the three
// implicit-GEMM problems every pass reduces to, the operand tile loaders that raise activations to the
// powers 1..Q while a tile is staged, and the fused epilogues.
//
// Every pass is one of three GEMM shapes over a conv geometry (a transposed op runs on its adjoint conv):
//   window gather:     rows = out pixels, cols = Cout, depth = taps (Cin*k*k).
//                      Conv forward, transposed backward-data.
//   transposed gather: rows = in pixels of one residue class, cols = Cin, depth = Cout * the class's taps.
//                      Conv backward-data, transposed forward.
//   weight gradient:   rows = Cout, cols = taps, depth = out pixels. Both backward-weights.
// An operand is Single (one value per element), Powered (one value loaded, x^1..x^Q staged) or Weights
// (Q values, one per W_q). With a Powered and a Weights operand the Q products sum into one accumulator
// (the depth is really Q*depth); otherwise every q keeps its own accumulator.
#pragma once

#include <cuda_runtime.h>

#include <type_traits>

#include "engine/error.h"
#include "kernels/activation.cuh"
#include "kernels/oper_conv.h"
#include "kernels/oper_conv_index.h"

namespace r2c::cuda::oper_detail {

using oper_index::FastDivmod;

// The conv geometry as the kernels index it: "in" [N,Cin,H,W], "out" [N,Cout,Hout,Wout].
struct ConvDims {
    int N, Cin, H, W, Cout, Hout, Wout, k, s, pt, pl, Q;
    bool reflect;  // the pads mirror the image
    int taps;      // Cin*k*k
    FastDivmod div_k, div_kk, div_wout, div_hout;
};

inline ConvDims make_dims(const OperConvGeometry& c) {
    ConvDims d{};
    d.N = c.N;
    d.Cin = c.Cin;
    d.H = c.H;
    d.W = c.W;
    d.Cout = c.Cout;
    d.Hout = c.Hout;
    d.Wout = c.Wout;
    d.k = c.k;
    d.s = c.stride;
    d.pt = c.pad_top;
    d.pl = c.pad_left;
    d.Q = c.Q;
    d.reflect = c.reflect;
    d.taps = c.Cin * c.k * c.k;
    d.div_k = FastDivmod(c.k);
    d.div_kk = FastDivmod(c.k * c.k);
    d.div_wout = FastDivmod(c.Wout);
    d.div_hout = FastDivmod(c.Hout);
    return d;
}

enum class Operand { Single, Powered, Weights };
enum class Epilogue { BiasAct, PowerDeriv, PartWeights };

__host__ __device__ constexpr int operand_sets(Operand o, int q) {
    return o == Operand::Single ? 1 : q;
}
__host__ __device__ constexpr int operand_loads(Operand o, int q) {
    return o == Operand::Weights ? q : 1;
}
// Accumulator sets: one when both operands carry q (the q-sum is part of the reduction), else Q.
__host__ __device__ constexpr int accumulator_sets(Operand a, Operand b, int q) {
    return (a != Operand::Single && b != Operand::Single) ? 1 : q;
}

// Out pixel m = (n*Hout + oh)*Wout + ow.
struct OutPixel {
    int n, oh, ow;
};
__device__ __forceinline__ OutPixel split_out_pixel(const ConvDims& d, int m) {
    int ow, oh;
    const int t = d.div_wout.divmod(m, ow);
    const int n = d.div_hout.divmod(t, oh);
    return {n, oh, ow};
}

// The window of out pixel p in the "in" tensor: image n's offset and the window's top-left corner (which
// may lie in the padding).
struct Window {
    int image;  // n * Cin * H * W
    int ih0, iw0;
};
__device__ __forceinline__ Window window_of(const ConvDims& d, const OutPixel& p) {
    return {p.n * d.Cin * d.H * d.W, oper_index::window_origin(p.oh, d.s, d.pt),
            oper_index::window_origin(p.ow, d.s, d.pl)};
}

// The "in" tensor at channel ci, row offset kh and column offset kw of window w; in the padding zero (for
// every power) or, reflected, the mirrored pixel.
__device__ __forceinline__ float gather_at(const ConvDims& d, const float* in, const Window& w, int ci,
                                           int kh, int kw) {
    int ih = w.ih0 + kh;
    int iw = w.iw0 + kw;
    if (d.reflect) {
        ih = oper_index::reflect_index(ih, d.H);
        iw = oper_index::reflect_index(iw, d.W);
    } else if (static_cast<unsigned>(ih) >= static_cast<unsigned>(d.H) ||
               static_cast<unsigned>(iw) >= static_cast<unsigned>(d.W)) {
        return 0.f;
    }
    return __ldg(in + w.image + (ci * d.H + ih) * d.W + iw);
}

// A tap (ci,kh,kw) of Cin*k*k.
struct Tap {
    int ci, kh, kw;
};
__device__ __forceinline__ Tap split_tap(const ConvDims& d, int tap) {
    int r, kw;
    const int ci = d.div_kk.divmod(tap, r);
    const int kh = d.div_k.divmod(r, kw);
    return {ci, kh, kw};
}

__device__ __forceinline__ float bias_sum(const float* b, int q, int channels, int c) {
    float s = 0.f;
    if (b != nullptr)
        for (int i = 0; i < q; ++i)
            s += __ldg(b + i * channels + c);
    return s;
}

// ---- Window gather: conv forward (powers on load, bias + activation) and transposed backward-data
// (the adjoint: dz_t gathered, Q accumulators, power derivative of x_t in the epilogue). ----
template <bool kPowerOnLoad>
struct WindowGather {
    static constexpr Operand kA = kPowerOnLoad ? Operand::Powered : Operand::Single;
    static constexpr Operand kB = Operand::Weights;
    static constexpr bool kAKFastest = false;  // consecutive out pixels read consecutive inputs
    static constexpr bool kBKFastest = true;   // a weight row W[q,co,:] is contiguous
    static constexpr Epilogue kEpilogue = kPowerOnLoad ? Epilogue::BiasAct : Epilogue::PowerDeriv;

    ConvDims d;
    const float* in;   // gathered operand, "in"-shaped
    const float* w;    // [Q, Cout, Cin, k, k]
    const float* aux;  // BiasAct: bias [Q, Cout] or null; PowerDeriv: x, "out"-shaped
    float* out;        // "out"-shaped
    OperActivation act;

    using Block = WindowGather;
    __device__ __forceinline__ Block block(int) const { return *this; }
    __device__ __forceinline__ int rows() const { return d.N * d.Hout * d.Wout; }
    __device__ __forceinline__ int cols() const { return d.Cout; }
    __device__ __forceinline__ int depth() const { return d.taps; }
    using RowA = Window;
    __device__ __forceinline__ RowA a_row(int m) const { return window_of(d, split_out_pixel(d, m)); }
    __device__ __forceinline__ float a(int, const RowA& win, int tap) const {
        const Tap t = split_tap(d, tap);
        return gather_at(d, in, win, t.ci, t.kh, t.kw);
    }
    __device__ __forceinline__ float b(int q, int co, int tap) const {
        return __ldg(w + (q * d.Cout + co) * d.taps + tap);
    }
    __device__ __forceinline__ int out_index(int m, int co) const {
        const OutPixel p = split_out_pixel(d, m);
        return ((p.n * d.Cout + co) * d.Hout + p.oh) * d.Wout + p.ow;
    }
    __device__ __forceinline__ float bias(int co) const { return bias_sum(aux, d.Q, d.Cout, co); }
};

// One residue class (rh, rw) of the transposed gather, precomputed on the host.
struct ClassInfo {
    int rh, rw;    // residues of (i + pad) mod s
    int t0h, t0w;  // class coordinate of the first position: i = s*(t0 + a) + r - pad
    int th, tw;    // taps per dimension
    int rows;      // N * count_h * count_w
    int depth;     // Cout * th * tw
    FastDivmod div_cnth, div_cntw, div_th, div_tw;
};
constexpr int kMaxClasses = kOperMaxTiledStride * kOperMaxTiledStride;

// ---- Transposed gather: conv backward-data (Q accumulators, power derivative of x in the epilogue) and
// transposed forward (the adjoint: powers of x_t on load, bias + activation). Block z = residue class. ----
template <bool kPowerOnLoad>
struct TransposedGather {
    static constexpr Operand kA = kPowerOnLoad ? Operand::Powered : Operand::Single;
    static constexpr Operand kB = Operand::Weights;
    static constexpr bool kAKFastest = false;
    static constexpr bool kBKFastest = true;  // consecutive class taps are kw = rw + jw*s: near-contiguous
    static constexpr Epilogue kEpilogue = kPowerOnLoad ? Epilogue::BiasAct : Epilogue::PowerDeriv;

    ConvDims d;
    const float* src;  // gathered operand, "out"-shaped
    const float* w;    // [Q, Cout, Cin, k, k]
    const float* aux;  // BiasAct: bias [Q, Cin] or null; PowerDeriv: x, "in"-shaped
    float* out;        // "in"-shaped
    OperActivation act;
    ClassInfo classes[kMaxClasses];  // stride^2 of them are used

    struct Block {
        ConvDims d;
        ClassInfo c;
        const float* src;
        const float* w;
        const float* aux;
        float* out;
        OperActivation act;

        __device__ __forceinline__ int rows() const { return c.rows; }
        __device__ __forceinline__ int cols() const { return d.Cin; }
        __device__ __forceinline__ int depth() const { return c.depth; }
        // Class pixel m = (n*count_h + a)*count_w + b.
        __device__ __forceinline__ void split_pixel(int m, int& n, int& ah, int& aw) const {
            const int t = c.div_cntw.divmod(m, aw);
            n = c.div_cnth.divmod(t, ah);
        }
        // Class tap kidx = (co*th + jh)*tw + jw.
        __device__ __forceinline__ void split_tap(int kidx, int& co, int& jh, int& jw) const {
            const int t = c.div_tw.divmod(kidx, jw);
            co = c.div_th.divmod(t, jh);
        }
        // A class pixel as its row of the gather reads it: image n's offset in src, the first out position.
        struct RowA {
            int image;  // n * Cout * Hout * Wout
            int oh0, ow0;
        };
        __device__ __forceinline__ RowA a_row(int m) const {
            int n, ah, aw;
            split_pixel(m, n, ah, aw);
            return {n * d.Cout * d.Hout * d.Wout, c.t0h + ah, c.t0w + aw};
        }
        __device__ __forceinline__ float a(int, const RowA& px, int kidx) const {
            int co, jh, jw;
            split_tap(kidx, co, jh, jw);
            const int oh = px.oh0 - jh;
            const int ow = px.ow0 - jw;
            if (static_cast<unsigned>(oh) >= static_cast<unsigned>(d.Hout) ||
                static_cast<unsigned>(ow) >= static_cast<unsigned>(d.Wout))
                return 0.f;
            return __ldg(src + px.image + (co * d.Hout + oh) * d.Wout + ow);
        }
        __device__ __forceinline__ float b(int q, int ci, int kidx) const {
            int co, jh, jw;
            split_tap(kidx, co, jh, jw);
            const int kh = c.rh + jh * d.s;
            const int kw = c.rw + jw * d.s;
            return __ldg(w + (((q * d.Cout + co) * d.Cin + ci) * d.k + kh) * d.k + kw);
        }
        __device__ __forceinline__ int out_index(int m, int ci) const {
            int n, ah, aw;
            split_pixel(m, n, ah, aw);
            const int ih = d.s * (c.t0h + ah) + c.rh - d.pt;
            const int iw = d.s * (c.t0w + aw) + c.rw - d.pl;
            return ((n * d.Cin + ci) * d.H + ih) * d.W + iw;
        }
        __device__ __forceinline__ float bias(int ci) const { return bias_sum(aux, d.Q, d.Cin, ci); }
    };
    __device__ __forceinline__ Block block(int z) const { return {d, classes[z], src, w, aux, out, act}; }
};

inline ClassInfo make_class(const ConvDims& d, int rh, int rw) {
    const oper_index::ResidueClass ch = oper_index::residue_class(rh, d.H, d.k, d.s, d.pt);
    const oper_index::ResidueClass cw = oper_index::residue_class(rw, d.W, d.k, d.s, d.pl);
    ClassInfo c{};
    c.rh = rh;
    c.rw = rw;
    c.t0h = ch.t0;
    c.t0w = cw.t0;
    c.th = ch.taps;
    c.tw = cw.taps;
    c.rows = d.N * ch.count * cw.count;
    c.depth = d.Cout * ch.taps * cw.taps;
    // Empty classes keep divisor 1: their blocks exit before dividing, or their depth loop never runs.
    c.div_cnth = FastDivmod(ch.count > 0 ? ch.count : 1);
    c.div_cntw = FastDivmod(cw.count > 0 ? cw.count : 1);
    c.div_th = FastDivmod(ch.taps > 0 ? ch.taps : 1);
    c.div_tw = FastDivmod(cw.taps > 0 ? cw.taps : 1);
    return c;
}

// The problem of a transposed-gather pass with its stride^2 residue classes (block z = rh*s + rw);
// max_rows receives the largest class, which sizes the grid.
template <bool kPowerOnLoad>
TransposedGather<kPowerOnLoad> make_transposed_gather(const ConvDims& d, const float* src, const float* w,
                                                      const float* aux, float* out, OperActivation act,
                                                      int& max_rows) {
    R2C_CHECK(d.s <= kOperMaxTiledStride, "oper_conv: transposed gather with stride ", d.s, " > ",
              kOperMaxTiledStride);
    TransposedGather<kPowerOnLoad> p{};
    p.d = d;
    p.src = src;
    p.w = w;
    p.aux = aux;
    p.out = out;
    p.act = act;
    max_rows = 0;
    for (int rh = 0; rh < d.s; ++rh)
        for (int rw = 0; rw < d.s; ++rw) {
            p.classes[rh * d.s + rw] = make_class(d, rh, rw);
            if (p.classes[rh * d.s + rw].rows > max_rows) max_rows = p.classes[rh * d.s + rw].rows;
        }
    return p;
}

// ---- Weight gradient: dW_q[co, tap] = sum over out pixels of A[co, m] * B[m, tap], with the power on
// the gathered "in" operand (conv: x^q) or on the "out" operand (transposed: x_t^q). Block z = split-K
// part, which writes its whole partial dW into slab z (plain stores; sum_parts adds the slabs in order). ----
template <bool kPowerOnIn>
struct WeightGrad {
    static constexpr Operand kA = kPowerOnIn ? Operand::Single : Operand::Powered;
    static constexpr Operand kB = kPowerOnIn ? Operand::Powered : Operand::Single;
    static constexpr bool kAKFastest = true;  // both operands are contiguous along out pixels
    static constexpr bool kBKFastest = true;
    static constexpr Epilogue kEpilogue = Epilogue::PartWeights;

    ConvDims d;
    const float* in;    // gathered operand, "in"-shaped
    const float* outt;  // row operand, "out"-shaped
    float* out;         // the parts' slabs, each a dW [Q, Cout, Cin, k, k]
    int splits;

    struct Block {
        ConvDims d;
        const float* in;
        const float* outt;
        float* out;
        int k_begin, k_end;

        __device__ __forceinline__ int rows() const { return d.Cout; }
        __device__ __forceinline__ int cols() const { return d.taps; }
        __device__ __forceinline__ int depth() const { return k_end - k_begin; }
        __device__ __forceinline__ float a(int, int co, int kk) const {
            const OutPixel p = split_out_pixel(d, k_begin + kk);
            return __ldg(outt + ((p.n * d.Cout + co) * d.Hout + p.oh) * d.Wout + p.ow);
        }
        __device__ __forceinline__ float b(int, int tap, int kk) const {
            const Tap t = split_tap(d, tap);
            return gather_at(d, in, window_of(d, split_out_pixel(d, k_begin + kk)), t.ci, t.kh, t.kw);
        }
        __device__ __forceinline__ float* weight_grad(int q, int co, int tap) const {
            return out + (q * d.Cout + co) * d.taps + tap;
        }
    };
    __device__ __forceinline__ Block block(int z) const {
        const int total = d.N * d.Hout * d.Wout;
        return {d,
                in,
                outt,
                out + std::size_t(z) * d.Q * d.Cout * d.taps,
                oper_index::split_begin(total, splits, z),
                oper_index::split_begin(total, splits, z + 1)};
    }
};

// ---- Operand tiles ----
//
// A rows x depth tile of one operand, fetched from global memory into registers (so the loads of the
// next tile overlap the math on the current one) and then stashed into shared memory as
// [sets][depth][ld] (depth-major: the layout the SIMT micro-tiles read with vector loads and that WMMA
// reads as a col-major A / row-major B fragment). A Powered operand is loaded once and stashed as
// v, v^2, .., v^Q by repeated multiplication; zeros (padding, ragged edges) stay zero for every power.
//
// A thread stages the same tile rows in every depth chunk (oper_index::load_coord depends on the depth
// only through the chunk's offset). Where a problem's A rows are costly to index (its Block defines RowA
// and a_row: the window of an out pixel, a residue-class pixel) and a thread stages one A row in all its
// elements, that row's context is worked out once per block instead of for every element of every chunk.
// Other operands are read by row index (Row = int).
template <class Block, class = void>
struct RowsOfA {
    using Row = int;
    __device__ __forceinline__ static int make(const Block&, int r) { return r; }
};
template <class Block>
struct RowsOfA<Block, std::void_t<typename Block::RowA>> {
    using Row = typename Block::RowA;
    __device__ __forceinline__ static Row make(const Block& b, int r) { return b.a_row(r); }
};

template <Operand kKind, bool kKFastest, int kQ, int kRows, int kDepth, int kThreads, class Row>
struct OperandTile {
    static constexpr int kElems = (kRows * kDepth + kThreads - 1) / kThreads;
    static constexpr int kLoads = operand_loads(kKind, kQ);
    static constexpr int kSets = operand_sets(kKind, kQ);
    // A row context is kept where a thread stages one row in all its elements: the tile walked along its
    // rows by a multiple of them.
    static constexpr bool kContext = !std::is_same_v<Row, int>;
    static_assert(!kContext || (!kKFastest && kThreads % kRows == 0 && kThreads <= kRows * kDepth),
                  "a row context needs one row per thread");

    float reg[kElems][kLoads];
    int row0, rows;
    Row row;      // kContext: the context of this thread's row
    bool row_ok;  // kContext: that row is inside the operand

    // The tile at row0 (< rows); make(r) gives row r's context.
    template <class MakeRow>
    __device__ __forceinline__ void start(int first_row, int all_rows, int tid, const MakeRow& make) {
        row0 = first_row;
        rows = all_rows;
        if constexpr (kContext) {
            const int r = row0 + oper_index::load_coord(tid, kRows, kDepth, kKFastest).row;
            row_ok = r < rows;
            row = make(row_ok ? r : row0);
        }
    }

    // Get(set, row, k) reads the operand at a row (its context, or its index) and depth `k`.
    template <class Get>
    __device__ __forceinline__ void fetch(int k0, int depth, int tid, const Get& get) {
#pragma unroll
        for (int e = 0; e < kElems; ++e) {
            const int idx = e * kThreads + tid;
            const oper_index::TileCoord c = oper_index::load_coord(idx, kRows, kDepth, kKFastest);
            if constexpr (kContext) {
                const bool ok = idx < kRows * kDepth && row_ok && k0 + c.kk < depth;
#pragma unroll
                for (int l = 0; l < kLoads; ++l)
                    reg[e][l] = ok ? get(l, row, k0 + c.kk) : 0.f;
            } else {
                const bool ok = idx < kRows * kDepth && row0 + c.row < rows && k0 + c.kk < depth;
#pragma unroll
                for (int l = 0; l < kLoads; ++l)
                    reg[e][l] = ok ? get(l, row0 + c.row, k0 + c.kk) : 0.f;
            }
        }
    }

    // Convert(float) gives the shared-memory element (float, TF32-rounded float or bf16).
    template <typename Elem, class Convert>
    __device__ __forceinline__ void stash(Elem* smem, int ld, int tid, const Convert& convert) const {
#pragma unroll
        for (int e = 0; e < kElems; ++e) {
            const int idx = e * kThreads + tid;
            if (idx >= kRows * kDepth) continue;
            const oper_index::TileCoord c = oper_index::load_coord(idx, kRows, kDepth, kKFastest);
            Elem* p = smem + c.kk * ld + c.row;
            if constexpr (kKind == Operand::Powered) {
                const float v = reg[e][0];
                float power = v;
#pragma unroll
                for (int q = 0; q < kQ; ++q) {
                    p[q * kDepth * ld] = convert(power);
                    power *= v;
                }
            } else {
#pragma unroll
                for (int l = 0; l < kLoads; ++l)
                    p[l * kDepth * ld] = convert(reg[e][l]);
            }
        }
    }
};

// dx = sum_q q x^(q-1) acc_q by Horner: ((Q acc_Q) x + (Q-1) acc_{Q-1}) x + ... + acc_1.
template <int kQ>
__device__ __forceinline__ float power_derivative(float x, const float (&acc)[kQ]) {
    float h = kQ * acc[kQ - 1];
#pragma unroll
    for (int q = kQ - 1; q >= 1; --q)
        h = q * acc[q - 1] + x * h;
    return h;
}

}  // namespace r2c::cuda::oper_detail
