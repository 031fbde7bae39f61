// Operational convolution and its transpose: CPU implementations.
//
// The convolution never forms x^q for the whole image. Per sample and per tile of output positions it
// gathers one column buffer holding x, x^2 .. x^Q (rows ordered q, cin, ky, kx; the powers are formed
// while gathering) and adds W_q * cols_q to the output tile with Eigen. The backward pass rebuilds the
// same tiles: dW_q += dY * cols_q^T, and for dx the column gradients W_q^T * dY of all q are combined
// by the chain rule in column space before one col2im. The transposed convolution is the adjoint of a
// convolution (engine/ops/im2col.h), so it reuses the same gather and scatter with the roles swapped.
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <vector>

#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "engine/ops/conv_cuda.h"
#include "engine/ops/im2col.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace r2c {

Pads1D tf_same_pads(std::int64_t n, std::int64_t k, std::int64_t s) {
    R2C_CHECK(n >= 1 && k >= 1 && s >= 1, "tf_same_pads: need n, k, s >= 1, got n=", n, " k=", k, " s=", s);
    const std::int64_t out = (n + s - 1) / s;
    const std::int64_t total = std::max<std::int64_t>((out - 1) * s + k - n, 0);
    return {out, total / 2, total - total / 2};
}

Pads1D tf_same_transpose_crop(std::int64_t n, std::int64_t k, std::int64_t s) {
    R2C_CHECK(n >= 1 && k >= 1 && s >= 1, "tf_same_transpose_crop: need n, k, s >= 1, got n=", n, " k=", k,
              " s=", s);
    const std::int64_t out = n * s;
    const std::int64_t before = std::max<std::int64_t>(k - s, 0) / 2;
    return {out, before, (n - 1) * s + k - out - before};
}

namespace {

std::atomic<std::uint64_t> g_multiply_adds{0};

}  // namespace

namespace ops {

void count_oper_passes(const ConvGeometry& g, std::int64_t n, std::int64_t cin, std::int64_t cout,
                       std::int64_t q, int passes) {
    g_multiply_adds += static_cast<std::uint64_t>(passes * n * g.positions() * cout * q * cin * g.k * g.k);
}

}  // namespace ops

std::uint64_t conv_multiply_adds() {
    return g_multiply_adds;
}

namespace {

constexpr const char* kConv = "oper_conv2d";
constexpr const char* kConvT = "oper_conv_transpose2d";

// Upper bound on one column buffer: large enough for efficient matrix products, small enough that a
// 128-channel, Q=5 layer on a 128x128 image does not need hundreds of MB.
constexpr std::size_t kColumnBudgetBytes = std::size_t{4} << 20;
// Below this many column elements per call one thread does everything: starting threads costs more.
constexpr std::int64_t kMinParallelElements = std::int64_t{1} << 16;

template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixMap = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// A rows x cols row-major matrix at p whose rows start `stride` elements apart.
template <typename T>
MatrixMap<T> matrix(T* p, std::int64_t rows, std::int64_t cols, std::int64_t stride) {
    return {p, rows, cols, Eigen::OuterStride<>(stride)};
}
template <typename T>
ConstMatrixMap<T> matrix(const T* p, std::int64_t rows, std::int64_t cols, std::int64_t stride) {
    return {p, rows, cols, Eigen::OuterStride<>(stride)};
}

// ---- Arguments and geometry ----

// The shape facts both ops share. For the convolution w is [Q,Cout,Cin,k,k], for the transposed one
// [Q,Cin,Cout,k,k].
struct OperShape {
    std::int64_t n = 0, cin = 0, cout = 0, q = 0, k = 0;
};

OperShape check_oper_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int stride,
                          bool transposed) {
    ops::check_ndim(op, "x", x, 4);
    ops::check_ndim(op, "w", w, 5);
    if (b.defined()) ops::check_ndim(op, "b", b, 2);
    ops::check_same_kind(op, {x, w, b});
    const char* layout = transposed ? "[Q,Cin,Cout,k,k]" : "[Q,Cout,Cin,k,k]";
    const OperShape s{x.dim(0), x.dim(1), w.dim(transposed ? 2 : 1), w.dim(0), w.dim(3)};
    R2C_CHECK(s.q >= 1 && s.cout >= 1 && s.k >= 1 && w.dim(4) == s.k, op, ": w ", w.str(), " must be ",
              layout, " with a square kernel and Q, Cout >= 1");
    R2C_CHECK(s.cin >= 1 && w.dim(transposed ? 1 : 2) == s.cin, op, ": w ", w.str(), " (", layout,
              ") does not match the ", s.cin, " input channels of x ", x.str());
    R2C_CHECK(!b.defined() || (b.dim(0) == s.q && b.dim(1) == s.cout), op, ": b ", b.str(),
              " must be [Q,Cout] = [", s.q, ",", s.cout, "] for w ", w.str());
    R2C_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride);
    return s;
}

// Output size and padding of one spatial dimension of the convolution.
Pads1D conv_pads(const Tensor& x, std::int64_t n, std::int64_t k, int stride, const Padding& p, bool rows) {
    if (p.kind == Padding::Kind::Same) {
        R2C_CHECK(n >= 1, kConv, ": x ", x.str(), " has an empty spatial dimension");
        return tf_same_pads(n, k, stride);
    }
    std::int64_t before = 0, after = 0;
    if (p.kind == Padding::Kind::Explicit || p.kind == Padding::Kind::Reflect) {
        before = rows ? p.top : p.left;
        after = rows ? p.bottom : p.right;
        R2C_CHECK(before >= 0 && after >= 0, kConv, ": explicit padding must be non-negative, got top ",
                  p.top, " bottom ", p.bottom, " left ", p.left, " right ", p.right);
    }
    const std::int64_t padded = n + before + after;
    R2C_CHECK(padded >= k, kConv, ": kernel ", k, " is larger than the padded input (", padded, ") of x ",
              x.str());
    return {(padded - k) / stride + 1, before, after};
}

ops::ConvGeometry conv_geometry(const Tensor& x, const OperShape& s, int stride, const Padding& p) {
    const Pads1D ph = conv_pads(x, x.dim(2), s.k, stride, p, true);
    const Pads1D pw = conv_pads(x, x.dim(3), s.k, stride, p, false);
    return {s.cin, x.dim(2), x.dim(3), ph.out, pw.out, s.k, stride, ph.before, pw.before};
}

// The transposed convolution is the adjoint of this convolution: from its output (the image side,
// Cout channels) to its input (the column side). `same` crops the full output as TensorFlow does.
ops::ConvGeometry transpose_geometry(const Tensor& x, const OperShape& s, int stride, const Padding& p) {
    R2C_CHECK(p.kind == Padding::Kind::Same || p.kind == Padding::Kind::Valid, kConvT,
              ": explicit and reflect padding are not supported, use same or valid (x ", x.str(), ")");
    R2C_CHECK(x.dim(2) >= 1 && x.dim(3) >= 1, kConvT, ": x ", x.str(), " has an empty spatial dimension");
    const std::int64_t h = x.dim(2), w = x.dim(3);
    if (p.kind == Padding::Kind::Valid)
        return {s.cout, (h - 1) * stride + s.k, (w - 1) * stride + s.k, h, w, s.k, stride, 0, 0};
    const Pads1D ch = tf_same_transpose_crop(h, s.k, stride);
    const Pads1D cw = tf_same_transpose_crop(w, s.k, stride);
    return {s.cout, ch.out, cw.out, h, w, s.k, stride, ch.before, cw.before};
}

// The geometry that gathers the powers of a transposed convolution's input: a 1x1 kernel, so its
// "columns" are the input positions themselves.
ops::ConvGeometry pointwise_geometry(const ops::ConvGeometry& g, std::int64_t channels) {
    return {channels, g.out_h, g.out_w, g.out_h, g.out_w, 1, 1, 0, 0};
}

// ---- Shared pieces of the forward and backward passes ----

// Sets every plane of out [n, c, m] to the sum over q of b [Q, c], or to zero without a bias.
template <typename T>
void fill_bias(const Tensor& b, std::int64_t n, std::int64_t c, std::int64_t m, T* out) {
    std::vector<T> bias(static_cast<std::size_t>(c), T(0));
    if (b.defined()) {
        const T* pb = b.data<T>();
        for (std::int64_t q = 0; q < b.dim(0); ++q)
            for (std::int64_t i = 0; i < c; ++i)
                bias[i] += pb[q * c + i];
    }
    for (std::int64_t i = 0; i < n * c; ++i)
        std::fill_n(out + i * m, m, bias[i % c]);
}

// db[q, c] = sum of g [n, c, m] over n and m, the same for every q (each q's bias adds to every output).
template <typename T>
Tensor bias_grad(const Tensor& g, std::int64_t q_count) {
    const std::int64_t n = g.dim(0), c = g.dim(1), m = g.dim(2) * g.dim(3);
    Tensor db = Tensor::empty({q_count, c}, g.dtype());
    const T* pg = g.data<T>();
    T* pdb = db.data<T>();
    for (std::int64_t i = 0; i < c; ++i) {
        double acc = 0;  // double, so float32 sums over large images stay accurate
        for (std::int64_t s = 0; s < n; ++s)
            for (std::int64_t j = 0; j < m; ++j)
                acc += pg[(s * c + i) * m + j];
        for (std::int64_t q = 0; q < q_count; ++q)
            pdb[q * c + i] = static_cast<T>(acc);
    }
    return db;
}

// out[i] = sum_q q * x[i]^(q-1) * g[(q-1)*g_stride + i] for i < count (Horner), the chain rule through
// the powers x, x^2 .. x^Q. out may alias g (the q = 1 block is read last).
template <typename T>
void power_chain(const T* x, const T* g, std::int64_t g_stride, int Q, T* out, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) {
        T acc = static_cast<T>(Q) * g[(Q - 1) * g_stride + i];
        for (int q = Q - 1; q >= 1; --q)
            acc = static_cast<T>(q) * g[(q - 1) * g_stride + i] + x[i] * acc;
        out[i] = acc;
    }
}

// ---- Parallel tiles ----
//
// Whole tiles go to threads (gather, products and scatter of a tile run on one thread), so the threads
// meet only once per pass instead of at every step of every tile. Outputs that tiles share (weight
// gradients, scattered images) are summed per thread and then reduced in thread order, so a result
// depends on the thread count but never on timing.

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

struct TilePlan {
    std::int64_t samples = 0, positions = 0, width = 0;
    int threads = 1;
    std::int64_t tiles_per_sample() const { return ops::ceil_div(positions, width); }
};

// Tiles of at most kColumnBudgetBytes for `rows` column rows. With more than one thread each sample
// is cut into a multiple of the thread count of near-equal tiles, so that no thread idles at the end.
TilePlan plan_tiles(std::int64_t rows, std::int64_t positions, std::int64_t samples, std::size_t elem_bytes) {
    TilePlan p{samples, positions, ops::tile_positions(rows, positions, elem_bytes, kColumnBudgetBytes), 1};
    const int threads = max_threads();
    if (threads == 1 || rows * positions * samples < kMinParallelElements) return p;
    std::int64_t tiles = p.tiles_per_sample();
    if (samples < threads) tiles = ops::ceil_div(tiles, threads) * threads;
    p.width = std::max<std::int64_t>(ops::ceil_div(positions, tiles), 1);
    p.threads = static_cast<int>(std::min<std::int64_t>(threads, samples * p.tiles_per_sample()));
    return p;
}

// Calls body(thread, sample, tile) for every tile of every sample, statically spread over the threads.
template <typename Body>
void for_each_tile(const TilePlan& p, Body body) {
    const std::int64_t per_sample = p.tiles_per_sample(), items = p.samples * per_sample;
#pragma omp parallel for schedule(static) num_threads(p.threads)
    for (std::int64_t i = 0; i < items; ++i) {
        const std::int64_t begin = (i % per_sample) * p.width;
        body(thread_id(), i / per_sample, ops::Tile{begin, std::min(begin + p.width, p.positions)});
    }
}

// One growable scratch buffer per thread.
template <typename T>
class Scratch {
  public:
    explicit Scratch(int threads) : buffers_(static_cast<std::size_t>(threads)) {}
    T* get(int thread, std::int64_t size) {
        std::vector<T>& b = buffers_[static_cast<std::size_t>(thread)];
        if (b.size() < static_cast<std::size_t>(size)) b.resize(static_cast<std::size_t>(size));
        return b.data();
    }

  private:
    std::vector<std::vector<T>> buffers_;
};

// Per-thread sums into `out` (size elements, already initialised): thread 0 adds into out itself, the
// others into zeroed buffers of their own that reduce() adds to out in thread order.
template <typename T>
class ThreadSums {
  public:
    ThreadSums(T* out, std::int64_t size, int threads)
        : out_(out), size_(size), buffers_(static_cast<std::size_t>(threads)) {}
    T* get(int thread) {
        if (thread == 0) return out_;
        std::vector<T>& b = buffers_[static_cast<std::size_t>(thread)];
        if (b.empty()) b.assign(static_cast<std::size_t>(size_), T(0));
        return b.data();
    }
    void reduce() {
        for (const std::vector<T>& b : buffers_) {
            if (b.empty()) continue;
#pragma omp parallel for if (size_ >= kMinParallelElements)
            for (std::int64_t i = 0; i < size_; ++i)
                out_[i] += b[static_cast<std::size_t>(i)];
        }
    }

  private:
    T* out_;
    std::int64_t size_;
    std::vector<std::vector<T>> buffers_;
};

// ---- Operational convolution ----

// y [N,Cout,out] += sum_q W_q * cols_q, y already holding the bias.
template <typename T>
void conv_forward(const ops::ConvGeometry& g, const OperShape& s, const T* x, const T* w, T* y) {
    const std::int64_t rows = g.rows(), positions = g.positions();
    const int Q = static_cast<int>(s.q);
    const TilePlan plan = plan_tiles(Q * rows, positions, s.n, sizeof(T));
    Scratch<T> cols(plan.threads);
    for_each_tile(plan, [&](int thread, std::int64_t n, ops::Tile t) {
        const std::int64_t cw = t.size();
        T* c = cols.get(thread, Q * rows * cw);
        ops::im2col_powers(g, x + n * s.cin * g.image_size(), t, Q, c);
        auto out = matrix(y + n * s.cout * positions + t.begin, s.cout, cw, positions);
        for (int q = 0; q < Q; ++q)
            out.noalias() +=
                matrix(w + q * s.cout * rows, s.cout, rows, rows) * matrix(c + q * rows * cw, rows, cw, cw);
    });
}

// dx and dw (each only when non-null, zero-initialised) from dy [N,Cout,out].
template <typename T>
void conv_backward(const ops::ConvGeometry& g, const OperShape& s, const T* x, const T* w, const T* dy, T* dx,
                   T* dw) {
    const std::int64_t rows = g.rows(), positions = g.positions();
    const int Q = static_cast<int>(s.q);
    const TilePlan plan = plan_tiles(Q * rows, positions, s.n, sizeof(T));
    // dx needs the columns only for x itself, in the chain rule through the powers.
    const bool need_cols = dw != nullptr || Q > 1;
    Scratch<T> cols(plan.threads), dcols(plan.threads);
    ThreadSums<T> dw_sums(dw, Q * s.cout * rows, plan.threads);
    ThreadSums<T> dx_sums(dx, s.n * s.cin * g.image_size(), plan.threads);
    for_each_tile(plan, [&](int thread, std::int64_t n, ops::Tile t) {
        const std::int64_t cw = t.size();
        const auto dy_tile = matrix(dy + n * s.cout * positions + t.begin, s.cout, cw, positions);
        T* c = need_cols ? cols.get(thread, Q * rows * cw) : nullptr;
        if (need_cols) ops::im2col_powers(g, x + n * s.cin * g.image_size(), t, Q, c);
        for (int q = 0; dw != nullptr && q < Q; ++q)
            matrix(dw_sums.get(thread) + q * s.cout * rows, s.cout, rows, rows).noalias() +=
                dy_tile * matrix(c + q * rows * cw, rows, cw, cw).transpose();
        if (dx == nullptr) return;
        T* dc = dcols.get(thread, Q * rows * cw);
        for (int q = 0; q < Q; ++q)
            matrix(dc + q * rows * cw, rows, cw, cw).noalias() =
                matrix(w + q * s.cout * rows, s.cout, rows, rows).transpose() * dy_tile;
        if (Q > 1) power_chain(c, dc, rows * cw, Q, dc, rows * cw);
        ops::col2im_add(g, dc, t, dx_sums.get(thread) + n * s.cin * g.image_size());
    });
    if (dw != nullptr) dw_sums.reduce();
    if (dx != nullptr) dx_sums.reduce();
}

// ---- Operational transposed convolution ----

// y [N,Cout,out] += col2im(Wcat^T * Xpow) per tile of input positions, y already holding the bias;
// Wcat is w viewed as [Q*Cin, Cout*k*k] and Xpow the tile's powers of x stacked as [Q*Cin, tile].
template <typename T>
void transpose_forward(const ops::ConvGeometry& g, const OperShape& s, const T* x, const T* w, T* y) {
    const std::int64_t rows = g.rows(), positions = g.positions(), qc = s.q * s.cin;
    const int Q = static_cast<int>(s.q);
    const ops::ConvGeometry pg = pointwise_geometry(g, s.cin);
    const TilePlan plan = plan_tiles(std::max(qc, rows), positions, s.n, sizeof(T));
    Scratch<T> xpow(plan.threads), cols(plan.threads);
    ThreadSums<T> y_sums(y, s.n * s.cout * g.image_size(), plan.threads);
    const auto wcat = matrix(w, qc, rows, rows);
    for_each_tile(plan, [&](int thread, std::int64_t n, ops::Tile t) {
        const std::int64_t cw = t.size();
        T* xp = xpow.get(thread, qc * cw);
        T* c = cols.get(thread, rows * cw);
        ops::im2col_powers(pg, x + n * s.cin * positions, t, Q, xp);
        matrix(c, rows, cw, cw).noalias() = wcat.transpose() * matrix(xp, qc, cw, cw);
        ops::col2im_add(g, c, t, y_sums.get(thread) + n * s.cout * g.image_size());
    });
    y_sums.reduce();
}

// dx and dw (each only when non-null; dw zero-initialised) from dy [N,Cout,out]: dcols = im2col(dy),
// dXpow = Wcat * dcols, dx = sum_q q x^(q-1) dXpow_q, dWcat += Xpow * dcols^T.
template <typename T>
void transpose_backward(const ops::ConvGeometry& g, const OperShape& s, const T* x, const T* w, const T* dy,
                        T* dx, T* dw) {
    const std::int64_t rows = g.rows(), positions = g.positions(), qc = s.q * s.cin;
    const int Q = static_cast<int>(s.q);
    const ops::ConvGeometry pg = pointwise_geometry(g, s.cin);
    const TilePlan plan = plan_tiles(std::max(qc, rows), positions, s.n, sizeof(T));
    Scratch<T> dcols(plan.threads), xpow(plan.threads), dxpow(plan.threads);
    ThreadSums<T> dw_sums(dw, qc * rows, plan.threads);
    const auto wcat = matrix(w, qc, rows, rows);
    for_each_tile(plan, [&](int thread, std::int64_t n, ops::Tile t) {
        const std::int64_t cw = t.size();
        const T* x_n = x + n * s.cin * positions;
        T* dc = dcols.get(thread, rows * cw);
        ops::im2col_powers(g, dy + n * s.cout * g.image_size(), t, 1, dc);
        const auto dcols_tile = matrix(dc, rows, cw, cw);
        if (dw != nullptr) {
            T* xp = xpow.get(thread, qc * cw);
            ops::im2col_powers(pg, x_n, t, Q, xp);
            matrix(dw_sums.get(thread), qc, rows, rows).noalias() +=
                matrix(xp, qc, cw, cw) * dcols_tile.transpose();
        }
        if (dx == nullptr) return;
        T* dxp = dxpow.get(thread, qc * cw);
        matrix(dxp, qc, cw, cw).noalias() = wcat * dcols_tile;
        // Tiles own disjoint input positions, so dx is written directly.
        for (std::int64_t c = 0; c < s.cin; ++c)
            power_chain(x_n + c * positions + t.begin, dxp + c * cw, s.cin * cw, Q,
                        dx + (n * s.cin + c) * positions + t.begin, cw);
    });
    if (dw != nullptr) dw_sums.reduce();
}

// ---- Recording ----

// Raw pointer of a gradient buffer, or null for a gradient that is not wanted.
template <typename T>
T* data_or_null(Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

// Fills the defined ones of dx and dw (zero-initialised) with the gradients for the incoming dy.
using BackwardPass = void (*)(const ops::ConvGeometry&, const OperShape&, const Tensor& x, const Tensor& w,
                              const Tensor& dy, Tensor& dx, Tensor& dw);

template <bool Transposed>
void backward_pass(const ops::ConvGeometry& g, const OperShape& s, const Tensor& x, const Tensor& w,
                   const Tensor& dy, Tensor& dx, Tensor& dw) {
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        auto pass = Transposed ? transpose_backward<T> : conv_backward<T>;
        pass(g, s, x.data<T>(), w.data<T>(), dy.data<T>(), data_or_null<T>(dx), data_or_null<T>(dw));
    });
}

// Records the node whose backward takes dy through act (read off the output y), then runs `pass` for x
// and w and sums for b, each only if required.
Tensor record_oper(Tensor y, const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                   const ops::ConvGeometry& g, const OperShape& s, Activation act, BackwardPass pass) {
    const bool need_dx = x.requires_grad(), need_dw = w.requires_grad();
    const bool need_db = b.defined() && b.requires_grad();
    auto backward = [xd = x.detach(), wd = w.detach(), yd = act == Activation::None ? Tensor() : y.detach(),
                     g, s, act, pass, need_dx, need_dw, need_db](const Tensor& dy_out) {
        const Tensor dy = ops::pre_activation_grad(dy_out, yd, act);
        Tensor dx = need_dx ? Tensor::zeros(xd.shape(), xd.dtype()) : Tensor();
        Tensor dw = need_dw ? Tensor::zeros(wd.shape(), wd.dtype()) : Tensor();
        if (need_dx || need_dw) pass(g, s, xd, wd, dy, dx, dw);
        ops::count_oper_passes(g, s.n, s.cin, s.cout, s.q, int(need_dx) + int(need_dw));
        Tensor db;
        if (need_db)
            db = ops::dispatch_float(dy.dtype(), [&](auto tag) { return bias_grad<decltype(tag)>(dy, s.q); });
        return std::vector<Tensor>{dx, dw, db};
    };
    return record(y, op, {x, w, b}, backward);
}

}  // namespace

Tensor oper_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Padding padding,
                   Activation act) {
    const OpScope scope(kConv, x);
    const OperShape s = check_oper_args(kConv, x, w, b, stride, false);
    const ops::ConvGeometry g = conv_geometry(x, s, stride, padding);
    const bool reflect = padding.kind == Padding::Kind::Reflect;
    if (reflect)
        R2C_CHECK(padding.top >= 0 && padding.top < x.dim(2) && padding.top < x.dim(3), kConv,
                  ": reflect padding ", padding.top, " must be non-negative and smaller than the image of x ",
                  x.str());
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA)
        return ops::oper_conv_cuda(kConv, x, w, b, g, s.q, s.cout, false, reflect, act);
#endif
    // The CPU reference: the definition, the padded input formed.
    if (reflect) return oper_conv2d(reflect_pad(x, padding.top), w, b, stride, Padding::valid(), act);
    Tensor y = Tensor::empty({s.n, s.cout, g.out_h, g.out_w}, x.dtype());
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        fill_bias(b, s.n, s.cout, g.positions(), y.data<T>());
        conv_forward(g, s, x.data<T>(), w.data<T>(), y.data<T>());
    });
    ops::count_oper_passes(g, s.n, s.cin, s.cout, s.q, 1);
    ops::activate_in_place(y, act);
    return record_oper(y, kConv, x, w, b, g, s, act, backward_pass<false>);
}

Tensor oper_conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Padding padding,
                             Activation act) {
    const OpScope scope(kConvT, x);
    const OperShape s = check_oper_args(kConvT, x, w, b, stride, true);
    const ops::ConvGeometry g = transpose_geometry(x, s, stride, padding);
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA)
        return ops::oper_conv_cuda(kConvT, x, w, b, g, s.q, s.cout, true, false, act);
#endif
    Tensor y = Tensor::empty({s.n, s.cout, g.in_h, g.in_w}, x.dtype());
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        fill_bias(b, s.n, s.cout, g.image_size(), y.data<T>());
        transpose_forward(g, s, x.data<T>(), w.data<T>(), y.data<T>());
    });
    ops::count_oper_passes(g, s.n, s.cin, s.cout, s.q, 1);
    ops::activate_in_place(y, act);
    return record_oper(y, kConvT, x, w, b, g, s, act, backward_pass<true>);
}

}  // namespace r2c
