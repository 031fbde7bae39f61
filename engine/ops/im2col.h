// Column buffers for the operational convolutions (internal to engine/ops/conv.cpp and conv_cuda.cpp).
//
// One geometry describes a strided, zero-padded convolution from an "image" [C, in_h, in_w] to
// out_h x out_w positions. A column buffer holds, for a tile of those positions, one row per
// (channel, ky, kx) and one column per position: the image pixel the kernel tap reads there, or 0 where
// it falls into the padding. The convolution gathers columns from its input (im2col); the transposed
// convolution scatters columns into its output (col2im), with the geometry of the convolution it is
// the adjoint of. Both walk the same row visitor, so the index arithmetic exists once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace r2c::ops {

struct ConvGeometry {
    std::int64_t channels = 0;          // C of the image side
    std::int64_t in_h = 0, in_w = 0;    // image side: conv input, transposed-conv output
    std::int64_t out_h = 0, out_w = 0;  // column side: conv output, transposed-conv input
    std::int64_t k = 1, stride = 1;
    std::int64_t pad_top = 0, pad_left = 0;  // zeros before the image (the rest after is implied)

    std::int64_t rows() const { return channels * k * k; }
    std::int64_t positions() const { return out_h * out_w; }
    std::int64_t image_size() const { return in_h * in_w; }
};

// Counts `passes` passes (forward, backward data, backward weights) of an operational convolution over g
// with n samples, `cin` input and `cout` output channels of the op, and Q powers: each is the implicit
// GEMM of n * positions x cout x Q*cin*k*k (cin x cout for the transposed op) multiply-adds, padding
// included, whatever device runs it. ops.h's conv_multiply_adds() reads the total (engine/ops/conv.cpp).
void count_oper_passes(const ConvGeometry& g, std::int64_t n, std::int64_t cin, std::int64_t cout,
                       std::int64_t q, int passes);

// A contiguous range [begin, end) of flattened output positions (oy * out_w + ox).
struct Tile {
    std::int64_t begin = 0, end = 0;
    std::int64_t size() const { return end - begin; }
};

// Positions per tile so that `rows` rows of T take at most `budget_bytes` (and at least one position).
inline std::int64_t tile_positions(std::int64_t rows, std::int64_t total, std::size_t elem_bytes,
                                   std::size_t budget_bytes) {
    const auto fit = static_cast<std::int64_t>(budget_bytes / (static_cast<std::size_t>(rows) * elem_bytes));
    return std::clamp<std::int64_t>(fit, 1, total);
}

// Smallest integer >= a / s for a >= 0, s > 0.
inline std::int64_t ceil_div(std::int64_t a, std::int64_t s) {
    return (a + s - 1) / s;
}

// Visits the columns of kernel tap (ky, kx) in tile t, split into runs along each output row:
// inside(col, pixel, count) for `count` consecutive columns reading pixels pixel, pixel + stride, ...
// of one image plane (pixel = iy * in_w + ix), and padding(col, count) for columns in the zero padding.
template <typename Inside, typename Outside>
void visit_tap(const ConvGeometry& g, Tile t, std::int64_t ky, std::int64_t kx, Inside inside,
               Outside padding) {
    // Output columns ox whose input column ix = ox*stride - pad_left + kx lies in [0, in_w).
    const std::int64_t lead = g.pad_left - kx;
    const std::int64_t ox_lo = std::min(lead > 0 ? ceil_div(lead, g.stride) : 0, g.out_w);
    const std::int64_t ox_hi =
        std::clamp<std::int64_t>(g.in_w + lead > 0 ? ceil_div(g.in_w + lead, g.stride) : 0, ox_lo, g.out_w);
    for (std::int64_t oy = t.begin / g.out_w; oy * g.out_w < t.end; ++oy) {
        const std::int64_t row_start = oy * g.out_w;
        const std::int64_t first = std::max(t.begin, row_start) - row_start;
        const std::int64_t last = std::min(t.end, row_start + g.out_w) - row_start;
        const std::int64_t col0 = row_start - t.begin;  // column of ox = 0
        const std::int64_t iy = oy * g.stride - g.pad_top + ky;
        const std::int64_t a = std::clamp(ox_lo, first, last), b = std::clamp(ox_hi, a, last);
        if (iy < 0 || iy >= g.in_h || a == b) {
            padding(col0 + first, last - first);
            continue;
        }
        if (a > first) padding(col0 + first, a - first);
        inside(col0 + a, iy * g.in_w + a * g.stride - lead, b - a);
        if (last > b) padding(col0 + b, last - b);
    }
}

// cols[(q-1)*rows + r][j] = image pixel of row r at position t.begin + j, to the power q, for q = 1..Q;
// cols has Q*rows rows of t.size() columns. Zero padding stays zero for every power.
template <typename T>
void im2col_powers(const ConvGeometry& g, const T* image, Tile t, int Q, T* cols) {
    const std::int64_t width = t.size(), block = g.rows() * width;
    for (std::int64_t c = 0; c < g.channels; ++c) {
        const T* plane = image + c * g.image_size();
        for (std::int64_t ky = 0; ky < g.k; ++ky)
            for (std::int64_t kx = 0; kx < g.k; ++kx) {
                T* row = cols + ((c * g.k + ky) * g.k + kx) * width;
                auto inside = [&](std::int64_t col, std::int64_t pixel, std::int64_t count) {
                    T* x1 = row + col;
                    for (std::int64_t i = 0; i < count; ++i)
                        x1[i] = plane[pixel + i * g.stride];
                    // Each power from the previous one while the run is still in L1.
                    for (int q = 1; q < Q; ++q) {
                        const T* prev = x1 + (q - 1) * block;
                        T* cur = x1 + q * block;
                        for (std::int64_t i = 0; i < count; ++i)
                            cur[i] = prev[i] * x1[i];
                    }
                };
                auto padding = [&](std::int64_t col, std::int64_t count) {
                    for (int q = 0; q < Q; ++q)
                        std::fill_n(row + q * block + col, count, T(0));
                };
                visit_tap(g, t, ky, kx, inside, padding);
            }
    }
}

// image += the columns of tile t scattered back to the pixels they were gathered from (the adjoint of
// im2col_powers with Q = 1); cols has rows() rows of t.size() columns.
template <typename T>
void col2im_add(const ConvGeometry& g, const T* cols, Tile t, T* image) {
    const std::int64_t width = t.size();
    for (std::int64_t c = 0; c < g.channels; ++c) {
        T* plane = image + c * g.image_size();
        for (std::int64_t ky = 0; ky < g.k; ++ky)
            for (std::int64_t kx = 0; kx < g.k; ++kx) {
                const T* row = cols + ((c * g.k + ky) * g.k + kx) * width;
                auto inside = [&](std::int64_t col, std::int64_t pixel, std::int64_t count) {
                    for (std::int64_t i = 0; i < count; ++i)
                        plane[pixel + i * g.stride] += row[col + i];
                };
                visit_tap(g, t, ky, kx, inside, [](std::int64_t, std::int64_t) {});
            }
    }
}

}  // namespace r2c::ops
