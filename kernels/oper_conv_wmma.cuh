// Variant 2: the implicit GEMM on tensor cores through WMMA (nvcuda::wmma), TF32 (m16n16k8) or BF16
// (m16n16k16) inputs with FP32 accumulation; sm_80 and newer.
//
// Same problems and operand tiles as the tiled variant (oper_conv_device.cuh): the depth-major staging
// [sets][BK][rows + pad] is exactly a col-major A / row-major B fragment source, so the loaders are
// shared; values are rounded to TF32 / BF16 when stashed, after the powers were formed in FP32. A block
// computes 64 x 64 with 8 warps (2 x 4, each 32 x 16: two accumulator fragments per set). The epilogue
// goes through shared memory (a fragment's element placement is opaque), one accumulator set at a time;
// the power derivative runs by Horner over the sets, the other epilogues are those of the tiled variant.
// Built for every architecture; below sm_80 the kernel body is a trap and the host never launches it
// (oper_conv_choose rejects the variant there).
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include "kernels/check.cuh"
#include "kernels/oper_conv_device.cuh"
#include "kernels/oper_conv_tiled.cuh"

namespace r2c::cuda::oper_detail {

// A precision: the shared-memory element, the WMMA depth, and a row padding of 16 bytes (keeps the
// 32-byte fragment alignment and spreads the stashes over the banks).
struct Tf32 {
    using Elem = float;
    static constexpr int kK = 8;
    static constexpr int kPad = 4;
};
struct Bf16 {
    using Elem = __nv_bfloat16;
    static constexpr int kK = 16;
    static constexpr int kPad = 8;
};

struct WmmaTile {
    static constexpr int BM = 64, BN = 64, kThreads = 256;
    static constexpr int kWarpRows = 32, kWarpCols = 16;  // warp w: rows (w % 2)*32, cols (w / 2)*16
};

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
template <class Prec>
struct WmmaOps;
template <>
struct WmmaOps<Tf32> {
    using A = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                     nvcuda::wmma::col_major>;
    using B = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                     nvcuda::wmma::row_major>;
    using C = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;
    __device__ __forceinline__ static float convert(float v) { return nvcuda::wmma::__float_to_tf32(v); }
};
template <>
struct WmmaOps<Bf16> {
    using A =
        nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major>;
    using B =
        nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major>;
    using C = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
    __device__ __forceinline__ static __nv_bfloat16 convert(float v) { return __float2bfloat16_rn(v); }
};
#endif

template <class Prob, int kQ, class Prec>
__global__ void __launch_bounds__(WmmaTile::kThreads) oper_wmma_kernel(const Prob prob) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    namespace wmma = nvcuda::wmma;
    using Ops = WmmaOps<Prec>;
    using Elem = typename Prec::Elem;
    constexpr int BM = WmmaTile::BM, BN = WmmaTile::BN, BK = Prec::kK;
    constexpr int kThreads = WmmaTile::kThreads;
    constexpr int LDA = BM + Prec::kPad, LDB = BN + Prec::kPad, LDC = BM + 4;
    constexpr int kSA = operand_sets(Prob::kA, kQ);
    constexpr int kSB = operand_sets(Prob::kB, kQ);
    constexpr int kAcc = accumulator_sets(Prob::kA, Prob::kB, kQ);
    constexpr int kBytesAB = (kSA * BK * LDA + kSB * BK * LDB) * int(sizeof(Elem));
    constexpr int kBytesC = BN * LDC * int(sizeof(float));
    // The operand tiles and the epilogue's staging of the accumulators are never live together.
    __shared__ __align__(128) unsigned char smem[kBytesAB > kBytesC ? kBytesAB : kBytesC];
    Elem* As = reinterpret_cast<Elem*>(smem);
    Elem* Bs = As + kSA * BK * LDA;
    float* Cs = reinterpret_cast<float*>(smem);

    const typename Prob::Block blk = prob.block(blockIdx.z);
    const int rows = blk.rows(), cols = blk.cols(), depth = blk.depth();
    const int row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= rows) return;
    const int tid = threadIdx.x;
    const int warp = tid / 32;
    const int wr = (warp % 2) * WmmaTile::kWarpRows;
    const int wc = (warp / 2) * WmmaTile::kWarpCols;

    using RowsA = RowsOfA<typename Prob::Block>;
    OperandTile<Prob::kA, Prob::kAKFastest, kQ, BM, BK, kThreads, typename RowsA::Row> ta;
    OperandTile<Prob::kB, Prob::kBKFastest, kQ, BN, BK, kThreads, int> tb;
    ta.start(row0, rows, tid, [&](int r) { return RowsA::make(blk, r); });
    tb.start(col0, cols, tid, [](int c) { return c; });
    const auto get_a = [&](int set, const typename RowsA::Row& r, int k) { return blk.a(set, r, k); };
    const auto get_b = [&](int set, int c, int k) { return blk.b(set, c, k); };
    const auto to_elem = [](float v) { return Ops::convert(v); };

    typename Ops::C acc[kAcc][2];
#pragma unroll
    for (int s = 0; s < kAcc; ++s) {
        wmma::fill_fragment(acc[s][0], 0.f);
        wmma::fill_fragment(acc[s][1], 0.f);
    }
    ta.fetch(0, depth, tid, get_a);
    tb.fetch(0, depth, tid, get_b);
    ta.stash(As, LDA, tid, to_elem);
    tb.stash(Bs, LDB, tid, to_elem);
    __syncthreads();

    const int chunks = (depth + BK - 1) / BK;
    for (int chunk = 0; chunk < chunks; ++chunk) {
        const bool more = chunk + 1 < chunks;
        if (more) {
            ta.fetch((chunk + 1) * BK, depth, tid, get_a);
            tb.fetch((chunk + 1) * BK, depth, tid, get_b);
        }
        typename Ops::A fa[2];
        typename Ops::B fb;
#pragma unroll
        for (int q = 0; q < kQ; ++q) {
            if (kSA != 1 || q == 0) {
                const Elem* a = As + (kSA == 1 ? 0 : q) * BK * LDA + wr;
                wmma::load_matrix_sync(fa[0], a, LDA);
                wmma::load_matrix_sync(fa[1], a + 16, LDA);
            }
            if (kSB != 1 || q == 0) wmma::load_matrix_sync(fb, Bs + (kSB == 1 ? 0 : q) * BK * LDB + wc, LDB);
            const int s = kAcc == 1 ? 0 : q;
            wmma::mma_sync(acc[s][0], fa[0], fb, acc[s][0]);
            wmma::mma_sync(acc[s][1], fa[1], fb, acc[s][1]);
        }
        __syncthreads();
        if (more) {
            ta.stash(As, LDA, tid, to_elem);
            tb.stash(Bs, LDB, tid, to_elem);
            __syncthreads();
        }
    }

    // Epilogue: element e of the tile is (row e % BM, col e / BM), so a warp stores 32 consecutive pixels.
    constexpr int kPer = BM * BN / kThreads;
    int index[kPer];
    float x[kPer], h[kPer];
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
        const oper_index::TileCoord t = oper_index::load_coord(it * kThreads + tid, BM, BN, false);
        const bool ok = row0 + t.row < rows && col0 + t.kk < cols;
        index[it] = -1;
        x[it] = 0.f;
        h[it] = 0.f;
        if constexpr (Prob::kEpilogue != Epilogue::PartWeights)
            if (ok) index[it] = blk.out_index(row0 + t.row, col0 + t.kk);
        if constexpr (Prob::kEpilogue == Epilogue::PowerDeriv)
            if (ok) x[it] = __ldg(blk.aux + index[it]);
    }
    // Sets in descending order: the power derivative's Horner scheme starts at q = Q. Unrolled so that
    // acc[s] stays in registers.
#pragma unroll
    for (int s = kAcc - 1; s >= 0; --s) {
        wmma::store_matrix_sync(Cs + wc * LDC + wr, acc[s][0], LDC, wmma::mem_col_major);
        wmma::store_matrix_sync(Cs + wc * LDC + wr + 16, acc[s][1], LDC, wmma::mem_col_major);
        __syncthreads();
#pragma unroll
        for (int it = 0; it < kPer; ++it) {
            const oper_index::TileCoord t = oper_index::load_coord(it * kThreads + tid, BM, BN, false);
            const int r = row0 + t.row, c = col0 + t.kk;
            if (r >= rows || c >= cols) continue;
            const float v = Cs[t.kk * LDC + t.row];
            if constexpr (Prob::kEpilogue == Epilogue::BiasAct) {
                blk.out[index[it]] = activate(v + blk.bias(c), blk.act);
            } else if constexpr (Prob::kEpilogue == Epilogue::PowerDeriv) {
                h[it] = s == kAcc - 1 ? kQ * v : (s + 1) * v + x[it] * h[it];
                if (s == 0) blk.out[index[it]] = h[it];
            } else {
                *blk.weight_grad(s, r, c) = v;
            }
        }
        __syncthreads();
    }
#else
    (void)prob;
    __trap();  // unreachable: the host does not launch the tensor-core variant below sm_80
#endif
}

template <class Prob, int kQ, class Prec>
void launch_wmma(const Prob& prob, const char* kernel, int rows, int cols, int z, cudaStream_t stream) {
    const dim3 grid = tile_grid(kernel, rows, cols, z, WmmaTile::BM, WmmaTile::BN);
    R2C_LAUNCH(grid, WmmaTile::kThreads, 0, stream, oper_wmma_kernel<Prob, kQ, Prec>)(prob);
    R2C_CUDA_LAUNCH_CHECK(
        detail::concat(kernel, " (wmma ", std::is_same_v<Prec, Tf32> ? "tf32" : "bf16", ", Q=", kQ, ")"));
}

// Runs f(Tf32{}) or f(Bf16{}).
template <class F>
void with_precision(OperPrecision p, const F& f) {
    if (p == OperPrecision::TF32)
        f(Tf32{});
    else if (p == OperPrecision::BF16)
        f(Bf16{});
    else
        throw Error("oper_conv: the tensor-core kernels take TF32 or BF16, not FP32");
}

}  // namespace r2c::cuda::oper_detail
