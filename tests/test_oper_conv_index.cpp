// The index arithmetic of the CUDA operational-convolution kernels (kernels/oper_conv_index.h), the
// geometry checks and the dispatch rule (kernels/oper_conv.h), checked on the CPU against brute force.
// The last cases run a CPU emulation of the tiled kernels' structure (grid of blocks, threads, operand
// staging through a NaN-poisoned shared-memory tile, micro-tiles, residue classes, split-K) built from
// those helpers, for all six passes, against references written from the definitions in float64.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <tuple>
#include <vector>

#include "engine/rng.h"
#include "kernels/oper_conv.h"
#include "kernels/oper_conv_index.h"

using namespace r2c;
using namespace r2c::oper_index;
using r2c::cuda::OperConvGeometry;

TEST_CASE("floor and ceiling division match the real quotient", "[oper_index]") {
    for (int a = -50; a <= 50; ++a)
        for (int d = 1; d <= 9; ++d) {
            CHECK(floor_div(a, d) == static_cast<int>(std::floor(double(a) / d)));
            CHECK(ceil_div(a, d) == static_cast<int>(std::ceil(double(a) / d)));
        }
}

TEST_CASE("FastDivmod divides exactly over the int range", "[oper_index]") {
    Rng rng(7);
    std::vector<int> divisors;
    for (int d = 1; d <= 2000; ++d)
        divisors.push_back(d);
    for (int e = 11; e <= 30; ++e) {
        divisors.push_back((1 << e) - 1);
        divisors.push_back(1 << e);
        divisors.push_back((1 << e) + 1);
    }
    divisors.push_back(2147483647);
    divisors.push_back(65536 * 3 + 7);
    for (int d : divisors) {
        const FastDivmod f(d);
        std::vector<int> ns = {0, 1, d - 1, d, 2147483647, 2147483646, 2147483647 - d};
        if (d < 1000000) ns.insert(ns.end(), {d + 1, 3 * d - 1, 3 * d});
        for (int i = 0; i < 200; ++i)
            ns.push_back(static_cast<int>(rng.below(2147483648ULL)));
        for (int i = 0; i < 50; ++i) {
            const long long m = static_cast<long long>(rng.below(2147483647ULL / d + 1)) * d;
            ns.push_back(static_cast<int>(m));
            if (m > 0) ns.push_back(static_cast<int>(m - 1));
        }
        for (int n : ns) {
            if (n < 0) continue;
            int rem = -1;
            const int q = f.divmod(n, rem);
            if (q != n / d || rem != n % d) {
                INFO("n=" << n << " d=" << d << " got " << q << " rem " << rem);
                CHECK(false);
            }
        }
    }
}

TEST_CASE("TensorFlow same padding reproduces the spec's examples", "[oper_index]") {
    const auto pads = [](int n, int k, int s) {
        const SamePads p = tf_same(n, k, s);
        const int total = std::max((p.out - 1) * s + k - n, 0);
        return std::make_tuple(p.out, p.before, total - p.before);
    };
    CHECK(pads(256, 3, 2) == std::make_tuple(128, 0, 1));
    CHECK(pads(256, 4, 2) == std::make_tuple(128, 1, 1));
    CHECK(pads(128, 4, 4) == std::make_tuple(32, 0, 0));
    CHECK(pads(32, 4, 1) == std::make_tuple(32, 1, 2));
    CHECK(pads(7, 3, 1) == std::make_tuple(7, 1, 1));
    CHECK(pads(9, 7, 4) == std::make_tuple(3, 3, 3));
    // Transposed k=3, s=2: out = 2n, crop (0, 1) of the full (n-1)*2 + 3.
    const SamePads t = tf_same_transpose(128, 3, 2);
    CHECK(t.out == 256);
    CHECK(t.before == 0);
    CHECK((128 - 1) * 2 + 3 - t.out - t.before == 1);
    CHECK(tf_same_transpose(5, 7, 2).before == 2);
    CHECK(tf_same_transpose(5, 3, 4).before == 0);  // k < s: zeros appended at the end instead

    const OperConvGeometry g = cuda::oper_conv_geometry_same(1, 3, 256, 256, 128, 3, 2, 3);
    CHECK(g.Hout == 128);
    CHECK(g.pad_top == 0);
    const OperConvGeometry gt = cuda::oper_conv_transpose_geometry_same(1, 128, 128, 128, 3, 3, 2, 3);
    CHECK(gt.Hout == 256);
    CHECK(gt.pad_left == 0);
    const OperConvGeometry a = cuda::oper_adjoint_geometry(gt);
    CHECK(std::make_tuple(a.Cin, a.H, a.Cout, a.Hout) == std::make_tuple(3, 256, 128, 128));
}

namespace {

// Sizes, kernels, strides and pads of one spatial dimension the kernels must handle.
struct Dim1 {
    int n_in, n_out, k, s, pad;
};
std::vector<Dim1> dims_1d() {
    std::vector<Dim1> out;
    for (int k : {1, 2, 3, 4, 7})
        for (int s : {1, 2, 3, 4})
            for (int n = 1; n <= 17; ++n) {
                const SamePads same = tf_same(n, k, s);
                out.push_back({n, same.out, k, s, same.before});
                if (n >= k) out.push_back({n, (n - k) / s + 1, k, s, 0});
                for (int pad = 0; pad < k; ++pad) {  // explicit pads, every output window starting inside
                    const int n_out = (n - 1 + pad) / s + 1;
                    out.push_back({n, n_out, k, s, pad});
                }
            }
    return out;
}

}  // namespace

TEST_CASE("window origins and transposed gather ranges agree with brute force", "[oper_index]") {
    int checked = 0;
    for (const Dim1& d : dims_1d()) {
        // All (tap, out) pairs reaching each input position.
        std::vector<std::set<std::pair<int, int>>> reach(d.n_in);
        for (int o = 0; o < d.n_out; ++o)
            for (int t = 0; t < d.k; ++t) {
                const int i = window_origin(o, d.s, d.pad) + t;
                REQUIRE(i == o * d.s - d.pad + t);
                if (i >= 0 && i < d.n_in) reach[i].insert({t, o});
            }
        for (int i = 0; i < d.n_in; ++i) {
            const GatherRange g = gather_range(i, d.n_out, d.k, d.s, d.pad);
            std::set<std::pair<int, int>> got;
            for (int j = g.j_begin; j < g.j_end; ++j)
                got.insert({g.tap0 + j * d.s, g.out0 - j});
            if (got != reach[i]) {
                INFO("n_in=" << d.n_in << " n_out=" << d.n_out << " k=" << d.k << " s=" << d.s
                             << " pad=" << d.pad << " i=" << i);
                CHECK(false);
            }
            ++checked;
        }
    }
    CHECK(checked > 1000);
}

TEST_CASE("residue classes partition the input and gather exactly the reaching pairs", "[oper_index]") {
    for (const Dim1& d : dims_1d()) {
        std::vector<int> covered(d.n_in, 0);
        for (int r = 0; r < d.s; ++r) {
            const ResidueClass c = residue_class(r, d.n_in, d.k, d.s, d.pad);
            CHECK(c.r == r);
            CHECK(c.count >= 0);
            for (int a = 0; a < c.count; ++a) {
                const int i = residue_position(c, d.s, d.pad, a);
                REQUIRE(i >= 0);
                REQUIRE(i < d.n_in);
                CHECK((i + d.pad) % d.s == r);
                ++covered[i];
                // The class's taps and outputs, filtered to valid outputs, are the brute-force pairs.
                std::set<std::pair<int, int>> got, want;
                for (int j = 0; j < c.taps; ++j) {
                    const int t = r + j * d.s;
                    const int o = c.t0 + a - j;
                    REQUIRE(t < d.k);
                    if (o >= 0 && o < d.n_out) got.insert({t, o});
                }
                for (int o = 0; o < d.n_out; ++o)
                    for (int t = 0; t < d.k; ++t)
                        if (o * d.s - d.pad + t == i) want.insert({t, o});
                CHECK(got == want);
            }
        }
        for (int i = 0; i < d.n_in; ++i)
            CHECK(covered[i] == 1);
    }
}

namespace {

struct TileCfg {
    int BM, BN, BK, TM, TN;
    int threads() const { return (BM / TM) * (BN / TN); }
};
// The configurations of kernels/oper_conv_tiled.cuh and oper_conv_wmma.cuh (64x64, 256 threads, whose
// epilogue walks the tile with load_coord), plus small ones that put many blocks on the small shapes.
const TileCfg kTileWide{128, 64, 8, 8, 4};
const TileCfg kTileSquare{64, 64, 8, 4, 4};
const TileCfg kTileNarrowCols{64, 16, 8, 4, 1};
const TileCfg kTileWeights{64, 64, 16, 4, 4};
const TileCfg kTileWeightsNarrowRows{16, 64, 16, 1, 4};
const TileCfg kTileSmall{8, 4, 3, 2, 2};
const TileCfg kTileOdd{12, 6, 5, 3, 1};

}  // namespace

TEST_CASE("micro-tiles and operand walks cover every element exactly once", "[oper_index]") {
    for (const TileCfg& t : {kTileWide, kTileSquare, kTileNarrowCols, kTileWeights, kTileWeightsNarrowRows,
                             kTileSmall, kTileOdd}) {
        for (int rows : {1, 5, 13, 63, 64, 65, 127, 129, 7 * 9 * 3}) {
            for (int cols : {1, 3, 5, 16, 17, 67, 128}) {
                std::vector<int> hit(static_cast<std::size_t>(rows) * cols, 0);
                for (int bx = 0; bx * t.BM < rows; ++bx)
                    for (int by = 0; by * t.BN < cols; ++by)
                        for (int tid = 0; tid < t.threads(); ++tid)
                            for (int i = 0; i < t.TM; ++i)
                                for (int j = 0; j < t.TN; ++j) {
                                    const int r = bx * t.BM + micro_row(tid, i, t.BM, t.TM);
                                    const int c = by * t.BN + micro_col(tid, j, t.BM, t.TM, t.TN);
                                    if (r < rows && c < cols) ++hit[static_cast<std::size_t>(r) * cols + c];
                                }
                CHECK(std::all_of(hit.begin(), hit.end(), [](int h) { return h == 1; }));
            }
        }
        // Operand staging: elements e < rows*depth map one-to-one onto the rows x depth tile, both walks.
        for (bool k_fastest : {false, true})
            for (const auto& [tile_rows, depth] :
                 std::vector<std::pair<int, int>>{{t.BM, t.BK}, {t.BN, t.BK}, {t.BM, t.BN}}) {
                std::vector<int> hit(static_cast<std::size_t>(tile_rows) * depth, 0);
                for (int e = 0; e < tile_rows * depth; ++e) {
                    const TileCoord c = load_coord(e, tile_rows, depth, k_fastest);
                    REQUIRE(c.row >= 0);
                    REQUIRE(c.row < tile_rows);
                    REQUIRE(c.kk >= 0);
                    REQUIRE(c.kk < depth);
                    ++hit[static_cast<std::size_t>(c.row) * depth + c.kk];
                }
                CHECK(std::all_of(hit.begin(), hit.end(), [](int h) { return h == 1; }));
            }
    }
}

TEST_CASE("split-K parts tile the reduction contiguously", "[oper_index]") {
    for (int total : {1, 7, 64, 1000, 262144, 2147483647})
        for (int parts : {1, 2, 3, 7, 64, 528, 65535}) {
            CHECK(split_begin(total, parts, 0) == 0);
            CHECK(split_begin(total, parts, parts) == total);
            for (int z = 0; z < parts; ++z) {
                const int b = split_begin(total, parts, z), e = split_begin(total, parts, z + 1);
                CHECK(b <= e);
                if (parts <= total) CHECK(e > b);
            }
        }
}

TEST_CASE("geometry validation names the pass and the shapes", "[oper_index]") {
    using namespace r2c::cuda;
    // Every operational layer of R2C-GAN at 256x256.
    CHECK_NOTHROW(
        oper_conv_check_geometry(OperPass::Forward, oper_conv_geometry_same(1, 3, 256, 256, 128, 3, 2, 5)));
    CHECK_NOTHROW(oper_conv_check_geometry(OperPass::Forward,
                                           oper_conv_geometry_valid(16, 128, 130, 130, 128, 3, 1, 3)));
    CHECK_NOTHROW(
        oper_conv_check_geometry(OperPass::Forward, oper_conv_geometry_same(1, 3, 256, 256, 64, 4, 2, 1)));
    CHECK_NOTHROW(
        oper_conv_check_geometry(OperPass::Forward, oper_conv_geometry_same(1, 64, 128, 128, 128, 4, 4, 3)));
    CHECK_NOTHROW(
        oper_conv_check_geometry(OperPass::Forward, oper_conv_geometry_same(1, 128, 32, 32, 1, 4, 1, 5)));
    CHECK_NOTHROW(oper_conv_check_geometry(OperPass::TransposeForward,
                                           oper_conv_transpose_geometry_same(1, 128, 128, 128, 3, 3, 2, 5)));
    CHECK_NOTHROW(oper_conv_check_geometry(OperPass::TransposeForward,
                                           oper_conv_transpose_geometry_same(3, 5, 7, 9, 3, 3, 4, 2)));

    OperConvGeometry g = oper_conv_geometry_same(2, 3, 7, 9, 5, 3, 2, 3);
    g.Hout = 9;
    CHECK_THROWS_WITH(oper_conv_check_geometry(OperPass::BackwardData, g),
                      Catch::Contains("oper_conv_backward_data") &&
                          Catch::Contains("x[2,3,7,9] -> y[2,5,9,5]") && Catch::Contains("too large"));
    g = oper_conv_geometry_same(2, 3, 7, 9, 5, 3, 2, 0);
    CHECK_THROWS_WITH(oper_conv_check_geometry(OperPass::Forward, g), Catch::Contains("Q must be"));
    g = oper_conv_geometry_same(2, 3, 7, 9, 5, 3, 2, 1);
    g.pad_left = 3;
    CHECK_THROWS_WITH(oper_conv_check_geometry(OperPass::Forward, g), Catch::Contains("pads"));
    g = oper_conv_transpose_geometry_same(1, 4, 8, 8, 2, 3, 2, 1);
    g.Hout = 4;
    CHECK_THROWS_WITH(
        oper_conv_check_geometry(OperPass::TransposeBackwardWeights, g),
        Catch::Contains("oper_conv_transpose_backward_weights") && Catch::Contains("too small"));
    g = oper_conv_geometry_same(65536, 128, 256, 256, 128, 3, 1, 1);
    CHECK_THROWS_WITH(oper_conv_check_geometry(OperPass::Forward, g), Catch::Contains("2^31"));

    // Reflect padding: R2C-GAN's layers pass; the data-gradient and transposed passes and pads as large as
    // the image do not.
    CHECK_NOTHROW(oper_conv_check_geometry(OperPass::Forward,
                                           oper_conv_geometry_reflect(1, 128, 128, 128, 128, 3, 1, 1, 3)));
    CHECK_NOTHROW(oper_conv_check_geometry(OperPass::BackwardWeights,
                                           oper_conv_geometry_reflect(1, 64, 256, 256, 3, 7, 1, 3, 1)));
    g = oper_conv_geometry_reflect(1, 64, 256, 256, 3, 7, 1, 3, 1);
    CHECK(g.Hout == 256);
    CHECK(g.Wout == 256);
    CHECK_THROWS_WITH(oper_conv_check_geometry(OperPass::BackwardData, g),
                      Catch::Contains("oper_conv_backward_data") && Catch::Contains("reflect padding") &&
                          Catch::Contains("reflect_pad_backward"));
    CHECK_THROWS_WITH(oper_conv_check_geometry(OperPass::TransposeForward, g), Catch::Contains("reflect"));
    g = oper_conv_geometry_reflect(1, 2, 3, 5, 2, 7, 1, 3, 1);
    CHECK_THROWS_WITH(oper_conv_check_geometry(OperPass::Forward, g),
                      Catch::Contains("x[1,2,3,5]") && Catch::Contains("reflect") &&
                          Catch::Contains("smaller than the image"));
}

TEST_CASE("reflect_index mirrors without repeating the edge", "[oper_index]") {
    using r2c::oper_index::reflect_index;
    // n = 4: positions -3..6 of the padded line read 3 2 1 | 0 1 2 3 | 2 1 0.
    const int want[] = {3, 2, 1, 0, 1, 2, 3, 2, 1, 0};
    for (int i = -3; i <= 6; ++i)
        CHECK(reflect_index(i, 4) == want[i + 3]);
    CHECK(reflect_index(0, 1) == 0);
}

TEST_CASE("the dispatch rule picks and rejects variants as documented", "[oper_index]") {
    using namespace r2c::cuda;
    const OperConvGeometry body = oper_conv_geometry_same(16, 128, 128, 128, 128, 3, 1, 3);
    const OperConvGeometry head = oper_conv_transpose_geometry_same(1, 128, 128, 128, 3, 3, 2, 3);
    const auto pick = [](OperPass p, const OperConvGeometry& g, OperPrecision prec, int cc,
                         OperVariant v = OperVariant::Auto) {
        const OperChoice c = oper_conv_choose(p, g, {v, prec, nullptr}, cc);
        return std::make_pair(c.variant, c.precision);
    };
    using V = OperVariant;
    using P = OperPrecision;
    CHECK(pick(OperPass::Forward, body, P::FP32, 90) == std::make_pair(V::Tiled, P::FP32));
    CHECK(pick(OperPass::Forward, body, P::TF32, 90) == std::make_pair(V::TensorCore, P::TF32));
    CHECK(pick(OperPass::BackwardData, body, P::BF16, 80) == std::make_pair(V::TensorCore, P::BF16));
    CHECK(pick(OperPass::BackwardWeights, body, P::BF16, 80) == std::make_pair(V::TensorCore, P::BF16));
    CHECK(pick(OperPass::Forward, body, P::TF32, 75) == std::make_pair(V::Tiled, P::FP32));
    // 128 -> 3 (transposed) and 128 -> 1: the forward passes run narrow, one thread per pixel and every
    // channel; the passes over 128 channels on tensor cores; the head's weight gradient (1 row) on CUDA
    // cores.
    const OperConvGeometry disc_head = oper_conv_geometry_same(1, 128, 32, 32, 1, 4, 1, 3);
    CHECK(pick(OperPass::TransposeForward, head, P::TF32, 90) == std::make_pair(V::Narrow, P::FP32));
    CHECK(pick(OperPass::Forward, disc_head, P::BF16, 90) == std::make_pair(V::Narrow, P::FP32));
    CHECK(pick(OperPass::Forward, disc_head, P::FP32, 75) == std::make_pair(V::Narrow, P::FP32));
    CHECK(pick(OperPass::TransposeBackwardData, head, P::TF32, 90) == std::make_pair(V::TensorCore, P::TF32));
    CHECK(pick(OperPass::TransposeBackwardWeights, head, P::TF32, 90) ==
          std::make_pair(V::TensorCore, P::TF32));
    CHECK(pick(OperPass::BackwardWeights, disc_head, P::TF32, 90) == std::make_pair(V::Tiled, P::FP32));
    OperConvGeometry big_q = body;
    big_q.Q = 7;
    CHECK(pick(OperPass::Forward, big_q, P::TF32, 90) == std::make_pair(V::Naive, P::FP32));
    OperConvGeometry wide_stride = oper_conv_geometry_same(1, 8, 40, 40, 8, 3, 5, 2);
    CHECK(pick(OperPass::BackwardData, wide_stride, P::FP32, 90) == std::make_pair(V::Naive, P::FP32));
    CHECK(pick(OperPass::Forward, wide_stride, P::FP32, 90) == std::make_pair(V::Tiled, P::FP32));
    // Explicit choices are honoured or rejected with the reason.
    CHECK(pick(OperPass::Forward, body, P::BF16, 90, V::Naive) == std::make_pair(V::Naive, P::FP32));
    CHECK(pick(OperPass::Forward, head, P::TF32, 90, V::TensorCore) ==
          std::make_pair(V::TensorCore, P::TF32));
    CHECK_THROWS_WITH(pick(OperPass::Forward, body, P::TF32, 75, V::TensorCore),
                      Catch::Contains("compute capability 8.0") && Catch::Contains("7.5") &&
                          Catch::Contains("x[16,128,128,128]"));
    CHECK_THROWS_WITH(pick(OperPass::Forward, body, P::FP32, 90, V::TensorCore),
                      Catch::Contains("TF32 or BF16"));
    CHECK_THROWS_WITH(pick(OperPass::Forward, big_q, P::FP32, 90, V::Tiled), Catch::Contains("Q <= 5"));
    CHECK_THROWS_WITH(pick(OperPass::Forward, body, P::FP32, 90, V::Narrow),
                      Catch::Contains("at most 4 output channels") && Catch::Contains("got 128"));
    CHECK_THROWS_WITH(pick(OperPass::TransposeBackwardData, head, P::FP32, 90, V::Narrow),
                      Catch::Contains("forward passes only"));
}

// ---------------------------------------------------------------------------------------------------
// CPU emulation of the tiled kernels.

namespace {

// The conv geometry the kernels index ("in" [N,Cin,H,W], "out" [N,Cout,Hout,Wout]) with its divisors.
struct Dims {
    OperConvGeometry g;
    int taps;
    FastDivmod div_k, div_kk, div_wout, div_hout;
    explicit Dims(const OperConvGeometry& c)
        : g(c), taps(c.Cin * c.k * c.k), div_k(c.k), div_kk(c.k * c.k), div_wout(c.Wout), div_hout(c.Hout) {}
};

// One block row of a problem as the kernels see it (oper_conv_device.cuh): sizes, the operands by
// (set, row, depth index), whether each operand is powered / per-q weights, and the epilogue.
struct Emulated {
    int rows = 0, cols = 0, depth = 0;
    bool a_powered = false, a_weights = false, a_k_fastest = false;
    bool b_powered = false, b_weights = false, b_k_fastest = false;
    std::function<double(int, int, int)> a, b;
    std::function<void(int, int, const std::vector<double>&)> store;  // one value per accumulator set
};

// Runs one problem over the grid exactly as oper_tiled_kernel walks it: blocks, threads, per-chunk
// staging of both operands into NaN-poisoned tiles through load_coord (so a tile element the walk misses
// poisons the result), the q loop, micro-tiles and the epilogue's bounds.
void emulate(const TileCfg& t, int q_count, int grid_rows, int blocks_z,
             const std::function<Emulated(int)>& problem) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int z = 0; z < blocks_z; ++z) {
        const Emulated p = problem(z);
        const bool a_has_q = p.a_powered || p.a_weights, b_has_q = p.b_powered || p.b_weights;
        const int sa = a_has_q ? q_count : 1, sb = b_has_q ? q_count : 1;
        const int acc_sets = a_has_q && b_has_q ? 1 : q_count;
        const int threads = t.threads();
        for (int bx = 0; bx * t.BM < grid_rows; ++bx)
            for (int by = 0; by * t.BN < p.cols; ++by) {
                const int row0 = bx * t.BM, col0 = by * t.BN;
                if (row0 >= p.rows) continue;
                std::vector<double> acc(static_cast<std::size_t>(threads) * acc_sets * t.TM * t.TN, 0.0);
                const auto at = [&](int tid, int s, int i, int j) -> double& {
                    return acc[((static_cast<std::size_t>(tid) * acc_sets + s) * t.TM + i) * t.TN + j];
                };
                const int chunks = (p.depth + t.BK - 1) / t.BK;
                for (int chunk = 0; chunk < chunks; ++chunk) {
                    std::vector<double> As(static_cast<std::size_t>(sa) * t.BK * t.BM, nan);
                    std::vector<double> Bs(static_cast<std::size_t>(sb) * t.BK * t.BN, nan);
                    const auto stage = [&](std::vector<double>& tile, int tile_rows, int base, int limit,
                                           bool k_fastest, bool powered, bool weights,
                                           const std::function<double(int, int, int)>& get) {
                        const int elems = (tile_rows * t.BK + threads - 1) / threads;
                        for (int tid = 0; tid < threads; ++tid)
                            for (int e = 0; e < elems; ++e) {
                                const int idx = e * threads + tid;
                                if (idx >= tile_rows * t.BK) continue;
                                const TileCoord c = load_coord(idx, tile_rows, t.BK, k_fastest);
                                const int k = chunk * t.BK + c.kk;
                                const bool ok = base + c.row < limit && k < p.depth;
                                const int sets = powered || weights ? q_count : 1;
                                const double v = ok && !weights ? get(0, base + c.row, k) : 0.0;
                                double power = v;
                                for (int s = 0; s < sets; ++s) {
                                    const double value = !weights ? power
                                                         : ok     ? get(s, base + c.row, k)
                                                                  : 0.0;
                                    tile[(static_cast<std::size_t>(s) * t.BK + c.kk) * tile_rows + c.row] =
                                        value;
                                    power *= v;
                                }
                            }
                    };
                    stage(As, t.BM, row0, p.rows, p.a_k_fastest, p.a_powered, p.a_weights, p.a);
                    stage(Bs, t.BN, col0, p.cols, p.b_k_fastest, p.b_powered, p.b_weights, p.b);
                    for (int tid = 0; tid < threads; ++tid)
                        for (int kk = 0; kk < t.BK; ++kk)
                            for (int q = 0; q < q_count; ++q)
                                for (int i = 0; i < t.TM; ++i)
                                    for (int j = 0; j < t.TN; ++j) {
                                        const int r = micro_row(tid, i, t.BM, t.TM);
                                        const int c = micro_col(tid, j, t.BM, t.TM, t.TN);
                                        const double a =
                                            As[(static_cast<std::size_t>(sa == 1 ? 0 : q) * t.BK + kk) *
                                                   t.BM +
                                               r];
                                        const double b =
                                            Bs[(static_cast<std::size_t>(sb == 1 ? 0 : q) * t.BK + kk) *
                                                   t.BN +
                                               c];
                                        at(tid, acc_sets == 1 ? 0 : q, i, j) += a * b;
                                    }
                }
                for (int tid = 0; tid < threads; ++tid)
                    for (int i = 0; i < t.TM; ++i)
                        for (int j = 0; j < t.TN; ++j) {
                            const int r = row0 + micro_row(tid, i, t.BM, t.TM);
                            const int c = col0 + micro_col(tid, j, t.BM, t.TM, t.TN);
                            if (r >= p.rows || c >= p.cols) continue;
                            std::vector<double> v(acc_sets);
                            for (int s = 0; s < acc_sets; ++s)
                                v[s] = at(tid, s, i, j);
                            p.store(r, c, v);
                        }
            }
    }
}

double horner(double x, const std::vector<double>& acc) {
    const int q = static_cast<int>(acc.size());
    double h = q * acc[q - 1];
    for (int i = q - 1; i >= 1; --i)
        h = i * acc[i - 1] + x * h;
    return h;
}

struct OutPix {
    int n, oh, ow;
};
OutPix split_out(const Dims& d, int m) {
    int ow, oh;
    const int t = d.div_wout.divmod(m, ow);
    const int n = d.div_hout.divmod(t, oh);
    return {n, oh, ow};
}
double gather_window_cpu(const Dims& d, const std::vector<double>& in, const OutPix& p, int tap) {
    int r, kw;
    const int ci = d.div_kk.divmod(tap, r);
    const int kh = d.div_k.divmod(r, kw);
    const int ih = window_origin(p.oh, d.g.stride, d.g.pad_top) + kh;
    const int iw = window_origin(p.ow, d.g.stride, d.g.pad_left) + kw;
    if (ih < 0 || ih >= d.g.H || iw < 0 || iw >= d.g.W) return 0.0;
    return in[((static_cast<std::size_t>(p.n) * d.g.Cin + ci) * d.g.H + ih) * d.g.W + iw];
}

// Window gather (conv forward / transposed backward-data), as WindowGather.
void window_gather(const TileCfg& t, const Dims& d, bool power_on_load, const std::vector<double>& in,
                   const std::vector<double>& w, const std::vector<double>& aux, std::vector<double>& out) {
    const OperConvGeometry& g = d.g;
    const int rows = g.N * g.Hout * g.Wout;
    emulate(t, g.Q, rows, 1, [&](int) {
        Emulated p;
        p.rows = rows;
        p.cols = g.Cout;
        p.depth = d.taps;
        p.a_powered = power_on_load;
        p.b_weights = true;
        p.b_k_fastest = true;
        p.a = [&](int, int m, int tap) { return gather_window_cpu(d, in, split_out(d, m), tap); };
        p.b = [&](int q, int co, int tap) {
            return w[(static_cast<std::size_t>(q) * g.Cout + co) * d.taps + tap];
        };
        p.store = [&, power_on_load](int m, int co, const std::vector<double>& acc) {
            const OutPix px = split_out(d, m);
            const std::size_t idx =
                ((static_cast<std::size_t>(px.n) * g.Cout + co) * g.Hout + px.oh) * g.Wout + px.ow;
            REQUIRE(std::isnan(out[idx]));  // written once
            if (power_on_load) {
                double bias = 0;
                for (int q = 0; q < g.Q; ++q)
                    bias += aux[static_cast<std::size_t>(q) * g.Cout + co];
                out[idx] = acc[0] + bias;
            } else {
                out[idx] = horner(aux[idx], acc);
            }
        };
        return p;
    });
}

// Transposed gather (conv backward-data / transposed forward), as TransposedGather: block z = class.
void transposed_gather(const TileCfg& t, const Dims& d, bool power_on_load, const std::vector<double>& src,
                       const std::vector<double>& w, const std::vector<double>& aux,
                       std::vector<double>& out) {
    const OperConvGeometry& g = d.g;
    const int s = g.stride;
    int max_rows = 0;
    for (int rh = 0; rh < s; ++rh)
        for (int rw = 0; rw < s; ++rw)
            max_rows = std::max(max_rows, g.N * residue_class(rh, g.H, g.k, s, g.pad_top).count *
                                              residue_class(rw, g.W, g.k, s, g.pad_left).count);
    emulate(t, g.Q, max_rows, s * s, [&](int z) {
        const ResidueClass ch = residue_class(z / s, g.H, g.k, s, g.pad_top);
        const ResidueClass cw = residue_class(z % s, g.W, g.k, s, g.pad_left);
        const FastDivmod div_cnth(std::max(ch.count, 1)), div_cntw(std::max(cw.count, 1));
        const FastDivmod div_th(std::max(ch.taps, 1)), div_tw(std::max(cw.taps, 1));
        const auto split_pixel = [=](int m, int& n, int& ah, int& aw) {
            const int tt = div_cntw.divmod(m, aw);
            n = div_cnth.divmod(tt, ah);
        };
        const auto split_tap = [=](int kidx, int& co, int& jh, int& jw) {
            const int tt = div_tw.divmod(kidx, jw);
            co = div_th.divmod(tt, jh);
        };
        Emulated p;
        p.rows = g.N * ch.count * cw.count;
        p.cols = g.Cin;
        p.depth = g.Cout * ch.taps * cw.taps;
        p.a_powered = power_on_load;
        p.b_weights = true;
        p.b_k_fastest = true;
        p.a = [=, &src](int, int m, int kidx) {
            int n, ah, aw, co, jh, jw;
            split_pixel(m, n, ah, aw);
            split_tap(kidx, co, jh, jw);
            const int oh = ch.t0 + ah - jh, ow = cw.t0 + aw - jw;
            if (oh < 0 || oh >= g.Hout || ow < 0 || ow >= g.Wout) return 0.0;
            return src[((static_cast<std::size_t>(n) * g.Cout + co) * g.Hout + oh) * g.Wout + ow];
        };
        p.b = [=, &w](int q, int ci, int kidx) {
            int co, jh, jw;
            split_tap(kidx, co, jh, jw);
            const int kh = ch.r + jh * s, kw = cw.r + jw * s;
            return w[((((static_cast<std::size_t>(q) * g.Cout + co) * g.Cin + ci) * g.k + kh) * g.k) + kw];
        };
        p.store = [=, &aux, &out](int m, int ci, const std::vector<double>& acc) {
            int n, ah, aw;
            split_pixel(m, n, ah, aw);
            const int ih = residue_position(ch, s, g.pad_top, ah),
                      iw = residue_position(cw, s, g.pad_left, aw);
            const std::size_t idx = ((static_cast<std::size_t>(n) * g.Cin + ci) * g.H + ih) * g.W + iw;
            REQUIRE(std::isnan(out[idx]));
            if (power_on_load) {
                double bias = 0;
                for (int q = 0; q < g.Q; ++q)
                    bias += aux[static_cast<std::size_t>(q) * g.Cin + ci];
                out[idx] = acc[0] + bias;
            } else {
                out[idx] = horner(aux[idx], acc);
            }
        };
        return p;
    });
}

// Weight gradient, as WeightGrad: block z = split-K part, which writes its whole dW into slab z (NaN
// until written); then, as sum_parts, the slabs added in the order of the parts.
void weight_grad(const TileCfg& t, const Dims& d, bool power_on_in, int parts, const std::vector<double>& in,
                 const std::vector<double>& outt, std::vector<double>& dw) {
    const OperConvGeometry& g = d.g;
    const int pixels = g.N * g.Hout * g.Wout;
    std::vector<double> slabs(dw.size() * static_cast<std::size_t>(parts), std::nan(""));
    emulate(t, g.Q, g.Cout, parts, [&](int z) {
        const int k0 = split_begin(pixels, parts, z);
        Emulated p;
        p.rows = g.Cout;
        p.cols = d.taps;
        p.depth = split_begin(pixels, parts, z + 1) - k0;
        p.a_powered = !power_on_in;
        p.b_powered = power_on_in;
        p.a_k_fastest = p.b_k_fastest = true;
        p.a = [&, k0](int, int co, int kk) {
            const OutPix px = split_out(d, k0 + kk);
            return outt[((static_cast<std::size_t>(px.n) * g.Cout + co) * g.Hout + px.oh) * g.Wout + px.ow];
        };
        p.b = [&, k0](int, int tap, int kk) { return gather_window_cpu(d, in, split_out(d, k0 + kk), tap); };
        p.store = [&, z](int co, int tap, const std::vector<double>& acc) {
            for (int q = 0; q < g.Q; ++q)
                slabs[dw.size() * z + (static_cast<std::size_t>(q) * g.Cout + co) * d.taps + tap] = acc[q];
        };
        return p;
    });
    for (std::size_t i = 0; i < dw.size(); ++i) {
        dw[i] = slabs[i];
        for (int z = 1; z < parts; ++z)
            dw[i] += slabs[dw.size() * z + i];
    }
}

// ---- References from the definitions (spec: y = sum_q conv(x^q, W_q) + b_q and its gradients) ----

std::vector<double> rand_vec(std::size_t n, Rng& rng) {
    std::vector<double> v(n);
    for (double& x : v)
        x = rng.uniform(-1.0, 1.0);
    return v;
}
double ipow(double x, int q) {
    double p = 1;
    for (int i = 0; i < q; ++i)
        p *= x;
    return p;
}

// Calls f(n, ci, ih, iw, co, oh, ow, kh, kw) for every connection of the convolution g.
template <class F>
void conv_edges(const OperConvGeometry& g, F f) {
    for (int n = 0; n < g.N; ++n)
        for (int co = 0; co < g.Cout; ++co)
            for (int oh = 0; oh < g.Hout; ++oh)
                for (int ow = 0; ow < g.Wout; ++ow)
                    for (int ci = 0; ci < g.Cin; ++ci)
                        for (int kh = 0; kh < g.k; ++kh)
                            for (int kw = 0; kw < g.k; ++kw) {
                                const int ih = oh * g.stride - g.pad_top + kh,
                                          iw = ow * g.stride - g.pad_left + kw;
                                if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                                    f(n, ci, ih, iw, co, oh, ow, kh, kw);
                            }
}
// Calls f(n, ci, ih, iw, co, oh, ow, kh, kw) for every connection of the transposed convolution g:
// input (ci, ih, iw) reaches output (co, ih*s + kh - crop, iw*s + kw - crop).
template <class F>
void transpose_edges(const OperConvGeometry& g, F f) {
    for (int n = 0; n < g.N; ++n)
        for (int ci = 0; ci < g.Cin; ++ci)
            for (int ih = 0; ih < g.H; ++ih)
                for (int iw = 0; iw < g.W; ++iw)
                    for (int co = 0; co < g.Cout; ++co)
                        for (int kh = 0; kh < g.k; ++kh)
                            for (int kw = 0; kw < g.k; ++kw) {
                                const int oh = ih * g.stride + kh - g.pad_top,
                                          ow = iw * g.stride + kw - g.pad_left;
                                if (oh >= 0 && oh < g.Hout && ow >= 0 && ow < g.Wout)
                                    f(n, ci, ih, iw, co, oh, ow, kh, kw);
                            }
}

double max_rel_error(const std::vector<double>& got, const std::vector<double>& want) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::isnan(got[i])) return INFINITY;
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

std::vector<OperConvGeometry> emulation_shapes(bool transposed) {
    std::vector<OperConvGeometry> out;
    const int hw[][2] = {{7, 9}, {13, 11}, {5, 5}, {8, 6}, {1, 3}};
    const int channels[] = {1, 3, 5, 17};
    int i = 0;
    for (int k : {3, 4, 7})
        for (int s : {1, 2, 4}) {
            const int* sz = hw[i % 5];
            const int cin = channels[i % 4], cout = channels[(i + 1) % 4];
            const int n = 1 + i % 2, q = 1 + i % 5;
            ++i;
            if (transposed) {
                out.push_back(cuda::oper_conv_transpose_geometry_same(n, cin, sz[0], sz[1], cout, k, s, q));
                out.push_back({n, cout, sz[1], sz[0], cin, k, s, 0, 0, (sz[1] - 1) * s + k,
                               (sz[0] - 1) * s + k, 6 - q});
            } else {
                out.push_back(cuda::oper_conv_geometry_same(n, cin, sz[0], sz[1], cout, k, s, q));
                if (sz[0] >= k && sz[1] >= k)
                    out.push_back(cuda::oper_conv_geometry_valid(n, cout, sz[0], sz[1], cin, k, s, 6 - q));
            }
        }
    return out;
}

}  // namespace

TEST_CASE("emulated tiled conv passes match the definitions", "[oper_index][emulation]") {
    Rng rng(3);
    for (const OperConvGeometry& g : emulation_shapes(false)) {
        cuda::oper_conv_check_geometry(cuda::OperPass::Forward, g);
        INFO(cuda::oper_geometry_str(g));
        const Dims d(g);
        const std::size_t nx = std::size_t(g.N) * g.Cin * g.H * g.W,
                          ny = std::size_t(g.N) * g.Cout * g.Hout * g.Wout;
        const std::size_t nw = std::size_t(g.Q) * g.Cout * g.Cin * g.k * g.k;
        const std::vector<double> x = rand_vec(nx, rng), w = rand_vec(nw, rng),
                                  b = rand_vec(std::size_t(g.Q) * g.Cout, rng);
        const std::vector<double> dz = rand_vec(ny, rng);
        const auto W = [&](int q, int co, int ci, int kh, int kw) {
            return w[((((std::size_t(q) * g.Cout + co) * g.Cin + ci) * g.k + kh) * g.k) + kw];
        };
        const auto X = [&](int n, int ci, int ih, int iw) {
            return x[((std::size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw];
        };
        const auto Yi = [&](int n, int co, int oh, int ow) {
            return ((std::size_t(n) * g.Cout + co) * g.Hout + oh) * g.Wout + ow;
        };

        std::vector<double> y_ref(ny, 0.0), dx_ref(nx, 0.0), dw_ref(nw, 0.0);
        for (int n = 0; n < g.N; ++n)
            for (int co = 0; co < g.Cout; ++co)
                for (int p = 0; p < g.Hout * g.Wout; ++p)
                    for (int q = 0; q < g.Q; ++q)
                        y_ref[Yi(n, co, 0, 0) + p] += b[std::size_t(q) * g.Cout + co];
        conv_edges(g, [&](int n, int ci, int ih, int iw, int co, int oh, int ow, int kh, int kw) {
            const double xv = X(n, ci, ih, iw), g_out = dz[Yi(n, co, oh, ow)];
            for (int q = 0; q < g.Q; ++q) {
                y_ref[Yi(n, co, oh, ow)] += ipow(xv, q + 1) * W(q, co, ci, kh, kw);
                dx_ref[((std::size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw] +=
                    g_out * (q + 1) * ipow(xv, q) * W(q, co, ci, kh, kw);
                dw_ref[((((std::size_t(q) * g.Cout + co) * g.Cin + ci) * g.k + kh) * g.k) + kw] +=
                    ipow(xv, q + 1) * g_out;
            }
        });

        for (const TileCfg& t : {kTileWide, kTileNarrowCols, kTileSmall, kTileOdd}) {
            std::vector<double> y(ny, NAN);
            window_gather(t, d, true, x, w, b, y);
            CHECK(max_rel_error(y, y_ref) < 1e-12);
        }
        for (const TileCfg& t : {kTileSquare, kTileNarrowCols, kTileSmall, kTileOdd}) {
            std::vector<double> dx(nx, NAN);
            transposed_gather(t, d, false, dz, w, x, dx);
            CHECK(max_rel_error(dx, dx_ref) < 1e-12);
        }
        for (const TileCfg& t : {kTileWeights, kTileWeightsNarrowRows, kTileSmall, kTileOdd})
            for (int parts : {1, 3, 7}) {
                std::vector<double> dw(nw, NAN);
                weight_grad(t, d, true, parts, x, dz, dw);
                CHECK(max_rel_error(dw, dw_ref) < 1e-12);
            }
    }
}

TEST_CASE("emulated tiled transposed passes match the definitions", "[oper_index][emulation]") {
    Rng rng(5);
    for (const OperConvGeometry& g : emulation_shapes(true)) {
        cuda::oper_conv_check_geometry(cuda::OperPass::TransposeForward, g);
        INFO(cuda::oper_geometry_str(g));
        const Dims adj(cuda::oper_adjoint_geometry(g));
        const std::size_t nx = std::size_t(g.N) * g.Cin * g.H * g.W,
                          ny = std::size_t(g.N) * g.Cout * g.Hout * g.Wout;
        const std::size_t nw = std::size_t(g.Q) * g.Cin * g.Cout * g.k * g.k;
        const std::vector<double> x = rand_vec(nx, rng), w = rand_vec(nw, rng),
                                  b = rand_vec(std::size_t(g.Q) * g.Cout, rng);
        const std::vector<double> dz = rand_vec(ny, rng);
        const auto W = [&](int q, int ci, int co, int kh, int kw) {
            return w[((((std::size_t(q) * g.Cin + ci) * g.Cout + co) * g.k + kh) * g.k) + kw];
        };
        const auto Xi = [&](int n, int ci, int ih, int iw) {
            return ((std::size_t(n) * g.Cin + ci) * g.H + ih) * g.W + iw;
        };
        const auto Yi = [&](int n, int co, int oh, int ow) {
            return ((std::size_t(n) * g.Cout + co) * g.Hout + oh) * g.Wout + ow;
        };

        std::vector<double> y_ref(ny, 0.0), dx_ref(nx, 0.0), dw_ref(nw, 0.0);
        for (int n = 0; n < g.N; ++n)
            for (int co = 0; co < g.Cout; ++co)
                for (int p = 0; p < g.Hout * g.Wout; ++p)
                    for (int q = 0; q < g.Q; ++q)
                        y_ref[Yi(n, co, 0, 0) + p] += b[std::size_t(q) * g.Cout + co];
        transpose_edges(g, [&](int n, int ci, int ih, int iw, int co, int oh, int ow, int kh, int kw) {
            const double xv = x[Xi(n, ci, ih, iw)], g_out = dz[Yi(n, co, oh, ow)];
            for (int q = 0; q < g.Q; ++q) {
                y_ref[Yi(n, co, oh, ow)] += ipow(xv, q + 1) * W(q, ci, co, kh, kw);
                dx_ref[Xi(n, ci, ih, iw)] += g_out * (q + 1) * ipow(xv, q) * W(q, ci, co, kh, kw);
                dw_ref[((((std::size_t(q) * g.Cin + ci) * g.Cout + co) * g.k + kh) * g.k) + kw] +=
                    ipow(xv, q + 1) * g_out;
            }
        });

        // Transposed forward = transposed gather of the adjoint with powers on load; its backward-data =
        // window gather of the adjoint over dz; its weight gradient = the adjoint's with the power on x.
        for (const TileCfg& t : {kTileWide, kTileNarrowCols, kTileSmall, kTileOdd}) {
            std::vector<double> y(ny, NAN);
            transposed_gather(t, adj, true, x, w, b, y);
            CHECK(max_rel_error(y, y_ref) < 1e-12);
        }
        for (const TileCfg& t : {kTileSquare, kTileNarrowCols, kTileSmall, kTileOdd}) {
            std::vector<double> dx(nx, NAN);
            window_gather(t, adj, false, dz, w, x, dx);
            CHECK(max_rel_error(dx, dx_ref) < 1e-12);
        }
        for (const TileCfg& t : {kTileWeights, kTileWeightsNarrowRows, kTileSmall, kTileOdd})
            for (int parts : {1, 4}) {
                std::vector<double> dw(nw, NAN);
                weight_grad(t, adj, false, parts, dz, x, dw);
                CHECK(max_rel_error(dw, dw_ref) < 1e-12);
            }
    }
}
