// Host API of the CUDA kernels behind the non-convolution ops of engine/ops.h: activations and elementwise
// arithmetic, the full sum, instance normalisation, reflect padding, global max pooling, the dense head
// and the losses. Each mirrors its CPU reference in engine/ops/ (same formulas, same tie and clipping
// rules); reductions run in a fixed order, so results are deterministic (no float atomics).
//
// Plain C++: no CUDA header is needed to include this file. Pointers are device pointers to contiguous
// float32 tensors (NCHW images, row-major matrices); `stream` is a cudaStream_t (nullptr = the engine's
// stream, cuda::stream()). Every output is overwritten (never accumulated into). Scalars that depend on
// earlier device work (the upstream gradient of a one-element output) are read on the device, never copied
// to the host.
// The functions are defined in kernels/{elementwise,instance_norm,reflect_pad,pool,dense,loss}.cu and exist
// only in a CUDA build (R2C_WITH_CUDA).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/activation.h"

namespace r2c::cuda {

// ---- Elementwise (kernels/elementwise.cu), n elements ----

// y = f(x; param).
enum class Unary {
    Tanh,
    Relu,       // NaN passes through
    LeakyRelu,  // param: the slope
    Scale,      // param: the factor
};
// y = f(a, b; param).
enum class Binary {
    Add,
    Mul,
    TanhBackward,       // a = dy, b = tanh output: dy * (1 - b^2)
    ReluBackward,       // a = dy, b = relu input: dy * (b > 0 ? 1 : 0)
    LeakyReluBackward,  // a = dy, b = input, param = slope: dy * (b > 0 ? 1 : slope)
};
void unary(Unary op, const float* x, float* y, std::size_t n, float param = 0.f, void* stream = nullptr);
void binary(Binary op, const float* a, const float* b, float* y, std::size_t n, float param = 0.f,
            void* stream = nullptr);
// y[i] = value[0] for i < n.
void broadcast_scalar(const float* value, float* y, std::size_t n, void* stream = nullptr);
// y[0] = sum of x[0..n), accumulated in double.
void sum(const float* x, std::size_t n, float* y, void* stream = nullptr);

// ---- Instance normalisation (kernels/instance_norm.cu); planes = n * c, m = H * W ----

// y = act(gamma[c] * xhat + beta[c] + residual), xhat = (x - mean) * rstd per plane (biased variance, two
// passes); residual [n,c,H,W] may be null (none added); writes y and xhat [n,c,H,W] and rstd [n,c].
void instance_norm_forward(const float* x, const float* gamma, const float* beta, const float* residual,
                           int n, int c, int m, float eps, OperActivation act, float* y, float* xhat,
                           float* rstd, void* stream = nullptr);
// From the saved output y (read only when act is not None), xhat and rstd, with g = dy * act'(y):
// dx = gamma * rstd * (g - mean(g) - xhat * mean(g * xhat)) (skipped when dx is null), dbeta[c] = sum over
// the batch and plane of g, dgamma[c] = the same of g * xhat, and g itself into dresidual (the residual's
// gradient; skipped when null). Otherwise g is formed as it is read, never stored. plane_sums [2 * n * c]
// is scratch (the per-plane sums, reduced over the batch in a second kernel).
void instance_norm_backward(const float* dy, const float* y, OperActivation act, const float* xhat,
                            const float* rstd, const float* gamma, int n, int c, int m, float* dx,
                            float* dresidual, float* dgamma, float* dbeta, float* plane_sums,
                            void* stream = nullptr);

// ---- Reflect padding (kernels/reflect_pad.cu): x [planes,h,w] -> y [planes,h+2pad,w+2pad], pad < h, w ----

void reflect_pad_forward(const float* x, int planes, int h, int w, int pad, float* y, void* stream = nullptr);
// dx gathers, for each input element, the (up to 9) padded positions that read it: no atomics.
void reflect_pad_backward(const float* dy, int planes, int h, int w, int pad, float* dx,
                          void* stream = nullptr);

// ---- Global max pooling (kernels/pool.cu): x [planes, m] -> y [planes] ----

// argmax[p] = position in plane p of its first maximal element (NaN never wins unless it comes first, as
// in the CPU reference's sequential scan); y[p] = that element.
void global_max_pool_forward(const float* x, int planes, int m, float* y, std::int32_t* argmax,
                             void* stream = nullptr);
// dx = dy[p] at argmax[p] of each plane, 0 elsewhere.
void global_max_pool_backward(const float* dy, const std::int32_t* argmax, int planes, int m, float* dx,
                              void* stream = nullptr);

// ---- Dense head (kernels/dense.cu): x [n,cin], w [cout,cin], b [cout] or null ----

void linear_forward(const float* x, const float* w, const float* b, int n, int cin, int cout, float* y,
                    void* stream = nullptr);
// dx = dy w, dw = dy^T x, db = column sums of dy; each skipped when null.
void linear_backward(const float* dy, const float* x, const float* w, int n, int cin, int cout, float* dx,
                     float* dw, float* db, void* stream = nullptr);
// Softmax over each row of [rows, k], and its backward dx = y * (dy - <dy, y>) from the output y.
void softmax_forward(const float* x, int rows, int k, float* y, void* stream = nullptr);
void softmax_backward(const float* y, const float* dy, int rows, int k, float* dx, void* stream = nullptr);

// ---- Losses (kernels/loss.cu): one-element outputs, sums accumulated in double ----

enum class Difference { Squared, Absolute };
// y[0] = mean over n elements of (a - b)^2 or |a - b|.
void mean_difference(Difference kind, const float* a, const float* b, std::size_t n, float* y,
                     void* stream = nullptr);
// da = dy[0] / n * (2 (a - b) or sign(a - b)).
void mean_difference_backward(Difference kind, const float* a, const float* b, std::size_t n, const float* dy,
                              float* da, void* stream = nullptr);
// Keras categorical cross-entropy of probabilities p against target t, both [rows, k]:
// y[0] = -sum t log(clip(p, 1e-7, 1 - 1e-7)) / rows; dp = -dy[0] / rows * t / p, 0 where p was clipped.
void crossentropy(const float* p, const float* t, int rows, int k, float* y, void* stream = nullptr);
void crossentropy_backward(const float* p, const float* t, int rows, int k, const float* dy, float* dp,
                           void* stream = nullptr);

}  // namespace r2c::cuda
