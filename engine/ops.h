// Every differentiable operation R2C-GAN needs. Each takes and returns NCHW tensors (float32 or float64 on
// the CPU, float32 on CUDA), checks shapes, dtypes and devices (errors name the op and the shapes), and
// records its backward pass when an input requires a gradient. CPU reference implementations live in
// engine/ops/; CUDA implementations in kernels/.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace r2c {

// ---- Convolution geometry (TensorFlow semantics) ----

struct Padding {
    enum class Kind { Same, Valid, Explicit, Reflect };
    Kind kind = Kind::Same;
    int top = 0, bottom = 0, left = 0, right = 0;  // used by Explicit and Reflect
    static Padding same() { return {Kind::Same, 0, 0, 0, 0}; }
    static Padding valid() { return {Kind::Valid, 0, 0, 0, 0}; }
    static Padding explicit_pads(int top, int bottom, int left, int right) {
        return {Kind::Explicit, top, bottom, left, right};
    }
    // `pad` mirrored pixels on every side (reflect_pad), then valid; convolutions only, pad < H and W. On
    // CUDA the padded input is never formed: the kernels read the mirrored pixels.
    static Padding reflect(int pad) { return {Kind::Reflect, pad, pad, pad, pad}; }
};

// One spatial dimension of a convolution: input n, kernel k, stride s.
struct Pads1D {
    std::int64_t out;     // output size
    std::int64_t before;  // zeros added before (top/left)
    std::int64_t after;   // zeros added after (bottom/right)
};
// TensorFlow `same`: out = ceil(n/s), pad_total = max((out-1)*s + k - n, 0), extra pixel after.
Pads1D tf_same_pads(std::int64_t n, std::int64_t k, std::int64_t s);
// TensorFlow transposed `same`: out = n*s; the full transposed output ((n-1)*s + k) cropped by
// before = max(k-s,0)/2 and after = the rest (negative `after` means zeros appended when k < s).
Pads1D tf_same_transpose_crop(std::int64_t n, std::int64_t k, std::int64_t s);

// An activation applied to the output of the op that computes it (convolutions, instance_norm): the same
// values and gradients as the separate tanh / relu / leaky_relu(0.2) op after it, with one pass over
// memory fewer forward and backward. The op then keeps its output, not its pre-activation, for backward.
enum class Activation {
    None,
    Tanh,
    Relu,
    LeakyRelu,  // slope 0.2 (R2C-GAN's)
};

// ---- Operational layers ----

// y = act(sum_q conv2d(x^q, W[q]) + b[q]), q = 1..Q.
// x [N,Cin,H,W]; w [Q,Cout,Cin,k,k]; b [Q,Cout] or undefined; stride >= 1.
Tensor oper_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Padding padding,
                   Activation act = Activation::None);

// y = act(sum_q conv_transpose2d(x^q, W[q]) + b[q]) with TensorFlow `same` (out = in*stride) or `valid`
// (out = (in-1)*stride + k) semantics. x [N,Cin,H,W]; w [Q,Cin,Cout,k,k]; b [Q,Cout] or undefined.
Tensor oper_conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Padding padding,
                             Activation act = Activation::None);

// The multiply-adds of all operational-convolution passes run so far in this process, forward and backward,
// on any device: per pass the implicit GEMM N*positions x Cout x Q*Cin*k*k, padding included. Twice this
// over a time is the FLOP rate the benchmarks report.
std::uint64_t conv_multiply_adds();

// ---- Normalisation, padding, activations ----

// Per sample and channel over H,W (biased variance), then act(gamma*xhat + beta + residual). gamma, beta
// [C]; residual (optional, x's shape) is added before the activation in the same pass, as a residual
// block's skip connection: one pass over memory instead of three with add and an activation after it.
Tensor instance_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-3,
                     Activation act = Activation::None, const Tensor& residual = Tensor());
// Mirror padding without repeating the edge (PyTorch 'reflect'); pad < H and pad < W.
Tensor reflect_pad(const Tensor& x, int pad);
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double slope = 0.2);

// ---- Elementwise arithmetic and reductions ----

Tensor add(const Tensor& a, const Tensor& b);  // same shapes
Tensor mul(const Tensor& a, const Tensor& b);  // same shapes, elementwise
Tensor mul_scalar(const Tensor& x, double s);
Tensor sum(const Tensor& x);  // all elements -> shape [1]
// [N,C,H,W] -> [N,C], maximum over H,W (the gradient goes to the first maximal element).
Tensor global_max_pool(const Tensor& x);

// ---- Batches ----

// The parts joined along the first dimension, in order (their other dimensions, dtype and device equal):
// independent samples through one call of a network. Gradients flow back to each part.
Tensor cat(const std::vector<Tensor>& parts);
// Items [begin, begin + count) of x along its first dimension, a copy; the gradient flows back into them.
Tensor narrow(const Tensor& x, std::int64_t begin, std::int64_t count);

// ---- Dense head ----

// x [N,Cin], w [Cout,Cin], b [Cout] or undefined -> [N,Cout].
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// Softmax over the last dimension of [N,K].
Tensor softmax(const Tensor& x);

// ---- Losses (each returns shape [1]) ----

// Keras categorical cross-entropy on probabilities: mean over the batch of -sum_k t_k log(clip(p_k)),
// clip to [1e-7, 1-1e-7] (zero gradient where clipped). p, target [N,K].
Tensor categorical_crossentropy(const Tensor& p, const Tensor& target);
// Mean squared / absolute error over all elements; either argument may be a constant.
Tensor mse(const Tensor& a, const Tensor& b);
Tensor mae(const Tensor& a, const Tensor& b);

}  // namespace r2c
