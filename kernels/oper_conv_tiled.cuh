// Variant 1: the tiled shared-memory implicit GEMM on CUDA cores (exact FP32), one kernel template for
// the three problems of oper_conv_device.cuh.
//
// A block computes a BM x BN output tile; per depth chunk of BK it stages the A tile (BM x BK, powered
// or not) and the B tile (BN x BK per weight set) in shared memory, each thread accumulating a TM x TN
// micro-tile (times the accumulator sets) with FMAs. The next chunk's global loads are issued into
// registers before the math on the current chunk, so their latency hides behind it.
#pragma once

#include <type_traits>
#include <utility>

#include "kernels/check.cuh"
#include "kernels/oper_conv_device.cuh"

namespace r2c::cuda::oper_detail {

template <int kBM, int kBN, int kBK, int kTM, int kTN>
struct SimtTile {
    static constexpr int BM = kBM, BN = kBN, BK = kBK, TM = kTM, TN = kTN;
    static constexpr int kThreads = (BM / TM) * (BN / TN);
    static_assert(BM % TM == 0 && BN % TN == 0, "micro-tiles must divide the tile");
};
// Window/transposed gathers. One accumulator set (powers on load): 32 outputs per thread.
using TileWide = SimtTile<128, 64, 8, 8, 4>;
// Q accumulator sets (power derivative in the epilogue): 16*Q outputs per thread, at most 80 registers.
using TileSquare = SimtTile<64, 64, 8, 4, 4>;
// At most 16 output channels (the 128->3 output layer, the 128->1 discriminator head).
using TileNarrowCols = SimtTile<64, 16, 8, 4, 1>;
// Weight gradients: rows = Cout, cols = taps, depth = out pixels (long; deeper chunks).
using TileWeights = SimtTile<64, 64, 16, 4, 4>;
using TileWeightsNarrowRows = SimtTile<16, 64, 16, 1, 4>;
constexpr int kNarrowChannels = 16;

template <int N>
__device__ __forceinline__ void load_fragment(float (&f)[N], const float* p) {
    if constexpr (N % 4 == 0) {
#pragma unroll
        for (int i = 0; i < N; i += 4) {
            const float4 v = *reinterpret_cast<const float4*>(p + i);
            f[i] = v.x;
            f[i + 1] = v.y;
            f[i + 2] = v.z;
            f[i + 3] = v.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < N; ++i)
            f[i] = p[i];
    }
}

template <class Prob, int kQ, class T>
__global__ void __launch_bounds__(T::kThreads) oper_tiled_kernel(const Prob prob) {
    constexpr int kSA = operand_sets(Prob::kA, kQ);
    constexpr int kSB = operand_sets(Prob::kB, kQ);
    constexpr int kAcc = accumulator_sets(Prob::kA, Prob::kB, kQ);
    constexpr int LDA =
        T::BM + 4;  // +4: conflict-free stashes in both walk orders, rows stay 16-byte aligned
    constexpr int LDB = T::BN + 4;
    __shared__ __align__(16) float As[kSA * T::BK * LDA];
    __shared__ __align__(16) float Bs[kSB * T::BK * LDB];

    const typename Prob::Block blk = prob.block(blockIdx.z);
    const int rows = blk.rows(), cols = blk.cols(), depth = blk.depth();
    const int row0 = blockIdx.x * T::BM, col0 = blockIdx.y * T::BN;
    // Residue classes and split-K parts differ in size and the grid fits the largest: whole blocks idle.
    if (row0 >= rows) return;
    const int tid = threadIdx.x;
    const int mr = oper_index::micro_row(tid, 0, T::BM, T::TM);
    const int mc = oper_index::micro_col(tid, 0, T::BM, T::TM, T::TN);

    using RowsA = RowsOfA<typename Prob::Block>;
    OperandTile<Prob::kA, Prob::kAKFastest, kQ, T::BM, T::BK, T::kThreads, typename RowsA::Row> ta;
    OperandTile<Prob::kB, Prob::kBKFastest, kQ, T::BN, T::BK, T::kThreads, int> tb;
    ta.start(row0, rows, tid, [&](int r) { return RowsA::make(blk, r); });
    tb.start(col0, cols, tid, [](int c) { return c; });
    const auto get_a = [&](int set, const typename RowsA::Row& r, int k) { return blk.a(set, r, k); };
    const auto get_b = [&](int set, int c, int k) { return blk.b(set, c, k); };
    const auto exact = [](float v) { return v; };

    float acc[kAcc][T::TM][T::TN] = {};
    ta.fetch(0, depth, tid, get_a);
    tb.fetch(0, depth, tid, get_b);
    ta.stash(As, LDA, tid, exact);
    tb.stash(Bs, LDB, tid, exact);
    __syncthreads();

    const int chunks = (depth + T::BK - 1) / T::BK;
    for (int chunk = 0; chunk < chunks; ++chunk) {
        const bool more = chunk + 1 < chunks;
        if (more) {
            ta.fetch((chunk + 1) * T::BK, depth, tid, get_a);
            tb.fetch((chunk + 1) * T::BK, depth, tid, get_b);
        }
#pragma unroll
        for (int kk = 0; kk < T::BK; ++kk) {
            float fa[T::TM], fb[T::TN];
            if constexpr (kSA == 1) load_fragment(fa, As + kk * LDA + mr);
            if constexpr (kSB == 1) load_fragment(fb, Bs + kk * LDB + mc);
#pragma unroll
            for (int q = 0; q < kQ; ++q) {
                if constexpr (kSA != 1) load_fragment(fa, As + (q * T::BK + kk) * LDA + mr);
                if constexpr (kSB != 1) load_fragment(fb, Bs + (q * T::BK + kk) * LDB + mc);
                const int s = kAcc == 1 ? 0 : q;
#pragma unroll
                for (int i = 0; i < T::TM; ++i)
#pragma unroll
                    for (int j = 0; j < T::TN; ++j)
                        acc[s][i][j] = fmaf(fa[i], fb[j], acc[s][i][j]);
            }
        }
        __syncthreads();
        if (more) {
            ta.stash(As, LDA, tid, exact);
            tb.stash(Bs, LDB, tid, exact);
            __syncthreads();
        }
    }

#pragma unroll
    for (int i = 0; i < T::TM; ++i) {
        const int r = row0 + oper_index::micro_row(tid, i, T::BM, T::TM);
        if (r >= rows) continue;
#pragma unroll
        for (int j = 0; j < T::TN; ++j) {
            const int c = col0 + oper_index::micro_col(tid, j, T::BM, T::TM, T::TN);
            if (c >= cols) continue;
            if constexpr (Prob::kEpilogue == Epilogue::BiasAct) {
                blk.out[blk.out_index(r, c)] = activate(acc[0][i][j] + blk.bias(c), blk.act);
            } else if constexpr (Prob::kEpilogue == Epilogue::PowerDeriv) {
                float v[kQ];
#pragma unroll
                for (int q = 0; q < kQ; ++q)
                    v[q] = acc[q][i][j];
                const int idx = blk.out_index(r, c);
                blk.out[idx] = power_derivative<kQ>(__ldg(blk.aux + idx), v);
            } else {
#pragma unroll
                for (int q = 0; q < kQ; ++q)
                    *blk.weight_grad(q, r, c) = acc[q][i][j];
            }
        }
    }
}

template <class F, int... I>
bool with_constant_of(int v, const F& f, std::integer_sequence<int, I...>) {
    return ((v == I + 1 ? (f(std::integral_constant<int, I + 1>{}), true) : false) || ...);
}
// Runs f(std::integral_constant<int, V>{}) for the runtime v, one of 1..kMax; false when v is not.
template <int kMax, class F>
bool with_constant(int v, const F& f) {
    return with_constant_of(v, f, std::make_integer_sequence<int, kMax>{});
}

// Runs f(std::integral_constant<int, Q>{}) for the runtime Q (1..kOperMaxTiledQ).
template <class F>
void with_q(int q, const F& f) {
    if (!with_constant<kOperMaxTiledQ>(q, f))
        throw Error(detail::concat("oper_conv: no tiled kernel for Q=", q, " (1..", kOperMaxTiledQ, ")"));
}

// Grid of a problem: x over the largest row count, y over the columns, z over classes / split parts.
// Counted in 64 bits; the kernels index the first row of a tile, blockIdx.x * bm, as an int.
inline dim3 tile_grid(const char* kernel, int rows, int cols, int z, int bm, int bn) {
    const long long gx = (static_cast<long long>(rows) + bm - 1) / bm;
    const long long gy = (static_cast<long long>(cols) + bn - 1) / bn;
    R2C_CHECK(gy <= 65535 && z <= 65535, kernel, ": grid (", gx, ", ", gy, ", ", z,
              ") exceeds the CUDA limit of 65535 in y and z (", cols, " columns)");
    R2C_CHECK(gx * bm <= 0x7fffffffLL, kernel, ": ", rows, " rows in tiles of ", bm, " pass 2^31 - 1");
    return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(z));
}

template <class Prob, int kQ, class T>
void launch_tiled(const Prob& prob, const char* kernel, int rows, int cols, int z, cudaStream_t stream) {
    const dim3 grid = tile_grid(kernel, rows, cols, z, T::BM, T::BN);
    R2C_LAUNCH(grid, T::kThreads, 0, stream, oper_tiled_kernel<Prob, kQ, T>)(prob);
    R2C_CUDA_LAUNCH_CHECK(detail::concat(kernel, " (tiled ", T::BM, "x", T::BN, ", Q=", kQ, ")"));
}

}  // namespace r2c::cuda::oper_detail
