// Host API of the CUDA operational-convolution kernels (docs/kernels.md describes the kernels).
//
//   forward:              y  = act( sum_q conv(x^q, W_q) + b_q )            w [Q,Cout,Cin,k,k], b [Q,Cout]
//   backward data:        dx = sum_q q x^(q-1) conv_transpose(dz, W_q)       dz = dL/d(pre-activation)
//   backward weights:     dW_q = corr(x^q, dz), db_q = sum dz
//   transposed forward:   y  = act( sum_q conv_transpose(x^q, W_q) + b_q )  w [Q,Cin,Cout,k,k], b [Q,Cout]
//   and its two backward passes.
//
// Plain C++: no CUDA header is needed to include this file. Pointers are device pointers to contiguous
// float32 NCHW tensors; `stream` is a cudaStream_t (nullptr = the engine's stream, cuda::stream()). Every
// output is overwritten (never accumulated into). Calls are asynchronous on the stream, like cuDNN's.
// The functions are defined in kernels/oper_conv_*.cu and exist only in a CUDA build
// (R2C_WITH_CUDA); the inline helpers below (geometry, validation, dispatch rule) are plain host code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/error.h"
#include "kernels/activation.h"
#include "kernels/oper_conv_index.h"

namespace r2c::cuda {

// Sizes of one operational layer. For a convolution, (H, W) is the input and (Hout, Wout) the output;
// pad_top/pad_left are the zeros added before (TensorFlow `same` puts the odd one after, which the
// output size implies). For a transposed convolution, (H, W) is its input, (Hout, Wout) its output and
// pad_top/pad_left the crop at the start of the full transposed output ((H-1)*stride + k).
// With reflect set, a convolution's pads mirror the image (PyTorch 'reflect') instead of being zeros: the
// padded image is never formed, the loads read the mirrored pixels. Only the forward and weight-gradient
// passes of a convolution take it; the data gradient of a reflect-padded layer is the valid pass on the
// padded image, folded back by reflect_pad_backward (kernels/ops.h).
struct OperConvGeometry {
    int N = 0, Cin = 0, H = 0, W = 0;
    int Cout = 0;
    int k = 0, stride = 1;
    int pad_top = 0, pad_left = 0;
    int Hout = 0, Wout = 0;
    int Q = 1;
    bool reflect = false;
};

enum class OperVariant {
    Auto = -1,       // oper_conv_choose picks per pass, shape, precision and device
    Naive = 0,       // one thread per output element, direct loops: the reference
    Tiled = 1,       // shared-memory implicit GEMM on CUDA cores, exact FP32
    TensorCore = 2,  // WMMA implicit GEMM, TF32 or BF16 inputs with FP32 accumulation (sm_80+)
    Narrow = 3,      // forward passes with at most kOperMaxNarrowChannels outputs: direct, exact FP32
};
enum class OperPrecision { FP32, TF32, BF16 };
enum class OperPass {
    Forward,
    BackwardData,
    BackwardWeights,
    TransposeForward,
    TransposeBackwardData,
    TransposeBackwardWeights,
};

struct OperConvOptions {
    OperVariant variant = OperVariant::Auto;
    OperPrecision precision = OperPrecision::FP32;  // the lowest precision the caller accepts
    void* stream = nullptr;
    // Device scratch of the weight-gradient passes (oper_conv_weights_workspace: how much they use). Their
    // split-K parts write partial gradients there, which are then added in the order of the parts, so dW
    // is the same bits on every run. With less, fewer parts; with none, one (slow on long reductions).
    void* workspace = nullptr;
    std::size_t workspace_bytes = 0;
};

// What actually runs: Naive, Tiled and Narrow compute in FP32 whatever was requested.
struct OperChoice {
    OperVariant variant;
    OperPrecision precision;
};

// The tiled and tensor-core kernels are instantiated for Q <= kOperMaxTiledQ (the paper uses 1, 3, 5)
// and decompose a transposed gather into stride^2 residue classes for strides <= kOperMaxTiledStride.
// Outside those limits only the reference kernel runs.
constexpr int kOperMaxTiledQ = 5;
constexpr int kOperMaxTiledStride = 4;
// The tensor-core tiles are 64 channels wide; below this many output channels they are mostly padding.
constexpr int kOperMinTensorCoreChannels = 16;
// The narrow variant runs the forward passes of layers with at most this many output channels.
constexpr int kOperMaxNarrowChannels = 4;

// ---- Forward and backward passes (device pointers; b and db may be null) ----

void oper_conv_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
                       OperActivation act = OperActivation::None, const OperConvOptions& opt = {});
void oper_conv_backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                             float* dx, const OperConvOptions& opt = {});
void oper_conv_backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                float* db, const OperConvOptions& opt = {});

void oper_conv_transpose_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b,
                                 float* y, OperActivation act = OperActivation::None,
                                 const OperConvOptions& opt = {});
void oper_conv_transpose_backward_data(const OperConvGeometry& g, const float* x, const float* w,
                                       const float* dz, float* dx, const OperConvOptions& opt = {});
void oper_conv_transpose_backward_weights(const OperConvGeometry& g, const float* x, const float* dz,
                                          float* dw, float* db, const OperConvOptions& opt = {});

// Bytes of OperConvOptions::workspace the weight-gradient pass of g (its transposed form when `transposed`)
// uses with opt's variant and precision on the current device: the partial gradients of its split-K parts;
// 0 when it runs as one part.
std::size_t oper_conv_weights_workspace(const OperConvGeometry& g, bool transposed,
                                        const OperConvOptions& opt = {});

// dz = dy * act'(z) from the saved post-activation output y (tanh: 1 - y^2; relu: 1 or 0 and leaky: 1 or
// 0.2 by the sign of y), n elements: turns dL/dy of a forward with a fused activation into the dL/dz the
// backward passes take. dz may alias dy.
void oper_activation_backward(OperActivation act, const float* y, const float* dy, float* dz, std::size_t n,
                              void* stream = nullptr);

// Compute capability of the current device as major*10 + minor (e.g. 90), for oper_conv_choose.
int oper_device_compute_capability();

// ---- The materialised form the fused kernels avoid (kernels/oper_conv_powers.cu) ----
// For running an operational layer through a library that only knows ordinary convolutions (cuDNN:
// engine/ops/conv_cudnn.cpp, and the peers of benchmarks/bench_oper_conv_cuda.cpp). The stack of x
// [N, C, H, W] is xs [N, Q*C, Hp, Wp], channel q*C + c holding (frame of x[n, c])^(q+1): the frame puts x
// at (pad_top, pad_left) of Hp x Wp, zeros around it (mirrored pixels with reflect), and crops what lies
// past Hp or Wp. A valid convolution of the stack with the stacked weights is the operational layer.
struct OperStackGeometry {
    int N = 0, C = 0, H = 0, W = 0, Q = 1;
    int pad_top = 0, pad_left = 0, Hp = 0, Wp = 0;
    bool reflect = false;
};
// xs = stack of x. One launch; x read once.
void oper_power_stack(const OperStackGeometry& s, const float* x, float* xs, void* stream = nullptr);
// The chain rule back through the stack: dx[n, c, i, j] = sum_q (q+1) x^q * (sum of dxs[n, q*C + c] over
// the frame positions that show pixel (i, j)).
void oper_power_stack_backward(const OperStackGeometry& s, const float* x, const float* dxs, float* dx,
                               void* stream = nullptr);
// Weights w [Q, Cout, Cin, kk] regrouped as the stacked convolution's filter ws [Cout, Q*Cin, kk], and back
// (a filter gradient of that form to dw [Q, Cout, Cin, kk]).
void oper_weights_stack(const float* w, float* ws, int Q, int Cout, int Cin, int kk, void* stream = nullptr);
void oper_weights_unstack(const float* ws, float* w, int Q, int Cout, int Cin, int kk,
                          void* stream = nullptr);
// The crop of a transposed layer's whole output full [N, C, Hf, Wf] to y [N, C, Ho, Wo] from (top, left)
// (zeros where the window reaches past full), and its adjoint: full = zeros with the window set to dy (what
// lies past full dropped).
void oper_crop(const float* full, float* y, int N, int C, int Hf, int Wf, int top, int left, int Ho, int Wo,
               void* stream = nullptr);
void oper_uncrop(const float* dy, float* full, int N, int C, int Hf, int Wf, int top, int left, int Ho,
                 int Wo, void* stream = nullptr);
// y [N, C, hw] = act(y + sum_q b[q, c]) in place; b may be null.
void oper_bias_activation(float* y, const float* b, int N, int C, int hw, int Q, OperActivation act,
                          void* stream = nullptr);
// The same forms in bfloat16, for a BF16 stacked convolution (cuDNN's BF16 data with FP32 accumulation):
// an OperBf16 is a bfloat16's 16 bits (the upper half of a float32), values rounded to nearest even from
// the float32 computed as above. The stack, the stacked weights, the whole output of a transposed layer and
// the stacked convolution's output are bfloat16; x, w, dx, dw and y stay float32.
using OperBf16 = std::uint16_t;
void oper_power_stack(const OperStackGeometry& s, const float* x, OperBf16* xs, void* stream = nullptr);
void oper_power_stack_backward(const OperStackGeometry& s, const float* x, const OperBf16* dxs, float* dx,
                               void* stream = nullptr);
void oper_weights_stack(const float* w, OperBf16* ws, int Q, int Cout, int Cin, int kk,
                        void* stream = nullptr);
void oper_weights_unstack(const OperBf16* ws, float* w, int Q, int Cout, int Cin, int kk,
                          void* stream = nullptr);
void oper_crop(const OperBf16* full, float* y, int N, int C, int Hf, int Wf, int top, int left, int Ho,
               int Wo, void* stream = nullptr);
void oper_uncrop(const float* dy, OperBf16* full, int N, int C, int Hf, int Wf, int top, int left, int Ho,
                 int Wo, void* stream = nullptr);
// y [N, C, hw] = act(z + sum_q b[q, c]) from the stacked convolution's bfloat16 output z; b may be null.
void oper_bias_activation(const OperBf16* z, float* y, const float* b, int N, int C, int hw, int Q,
                          OperActivation act, void* stream = nullptr);
// n values from float32 to bfloat16 (rounded to nearest even) and back (exact).
void oper_to_bf16(const float* from, OperBf16* to, std::size_t n, void* stream = nullptr);
void oper_from_bf16(const OperBf16* from, float* to, std::size_t n, void* stream = nullptr);
// db[q, c] = sum of dz[n, c] over n and the hw pixels, the same for every q (kernels/oper_conv_bias_act.cu:
// the reduction the backward-weights passes run for their db).
void oper_bias_backward(const float* dz, float* db, int N, int C, int hw, int Q, void* stream = nullptr);

// ---- Geometry helpers (TensorFlow semantics) ----

inline OperConvGeometry oper_conv_geometry_same(int N, int Cin, int H, int W, int Cout, int k, int stride,
                                                int Q) {
    const oper_index::SamePads h = oper_index::tf_same(H, k, stride);
    const oper_index::SamePads w = oper_index::tf_same(W, k, stride);
    return {N, Cin, H, W, Cout, k, stride, h.before, w.before, h.out, w.out, Q};
}
inline OperConvGeometry oper_conv_geometry_valid(int N, int Cin, int H, int W, int Cout, int k, int stride,
                                                 int Q) {
    return {N, Cin, H, W, Cout, k, stride, 0, 0, (H - k) / stride + 1, (W - k) / stride + 1, Q};
}
// `pad` mirrored pixels on every side, then a valid convolution.
inline OperConvGeometry oper_conv_geometry_reflect(int N, int Cin, int H, int W, int Cout, int k, int stride,
                                                   int pad, int Q) {
    OperConvGeometry g = oper_conv_geometry_valid(N, Cin, H + 2 * pad, W + 2 * pad, Cout, k, stride, Q);
    g.H = H;
    g.W = W;
    g.pad_top = g.pad_left = pad;
    g.reflect = true;
    return g;
}
inline OperConvGeometry oper_conv_transpose_geometry_same(int N, int Cin, int H, int W, int Cout, int k,
                                                          int stride, int Q) {
    const oper_index::SamePads h = oper_index::tf_same_transpose(H, k, stride);
    const oper_index::SamePads w = oper_index::tf_same_transpose(W, k, stride);
    return {N, Cin, H, W, Cout, k, stride, h.before, w.before, h.out, w.out, Q};
}

// The convolution whose adjoint a transposed geometry is: its input is the transposed output.
inline OperConvGeometry oper_adjoint_geometry(const OperConvGeometry& t) {
    return {t.N, t.Cout, t.Hout, t.Wout, t.Cin, t.k, t.stride, t.pad_top, t.pad_left, t.H, t.W, t.Q};
}

// The stack whose valid convolution is the convolution g (zero or reflect pads as g has them).
inline OperStackGeometry oper_stack_geometry(const OperConvGeometry& g) {
    return {g.N,
            g.Cin,
            g.H,
            g.W,
            g.Q,
            g.pad_top,
            g.pad_left,
            (g.Hout - 1) * g.stride + g.k,
            (g.Wout - 1) * g.stride + g.k,
            g.reflect};
}

inline std::string oper_stack_str(const OperStackGeometry& s) {
    return detail::concat("x[", s.N, ",", s.C, ",", s.H, ",", s.W, "], Q=", s.Q, ", frame ", s.Hp, "x", s.Wp,
                          " at (", s.pad_top, ",", s.pad_left, s.reflect ? ") reflect" : ")");
}

inline const char* oper_pass_name(OperPass p) {
    switch (p) {
        case OperPass::Forward:
            return "oper_conv_forward";
        case OperPass::BackwardData:
            return "oper_conv_backward_data";
        case OperPass::BackwardWeights:
            return "oper_conv_backward_weights";
        case OperPass::TransposeForward:
            return "oper_conv_transpose_forward";
        case OperPass::TransposeBackwardData:
            return "oper_conv_transpose_backward_data";
        case OperPass::TransposeBackwardWeights:
            return "oper_conv_transpose_backward_weights";
    }
    return "oper_conv";
}
inline const char* oper_variant_name(OperVariant v) {
    switch (v) {
        case OperVariant::Auto:
            return "auto";
        case OperVariant::Naive:
            return "naive";
        case OperVariant::Tiled:
            return "tiled";
        case OperVariant::TensorCore:
            return "tensorcore";
        case OperVariant::Narrow:
            return "narrow";
    }
    return "?";
}
inline const char* oper_precision_name(OperPrecision p) {
    switch (p) {
        case OperPrecision::FP32:
            return "fp32";
        case OperPrecision::TF32:
            return "tf32";
        case OperPrecision::BF16:
            return "bf16";
    }
    return "?";
}
inline bool oper_pass_is_transposed(OperPass p) {
    return p == OperPass::TransposeForward || p == OperPass::TransposeBackwardData ||
           p == OperPass::TransposeBackwardWeights;
}

// "x[N,Cin,H,W] -> y[N,Cout,Hout,Wout], k=.., stride=.., pad=(top,left), Q=.." for error messages.
inline std::string oper_geometry_str(const OperConvGeometry& g) {
    return detail::concat("x[", g.N, ",", g.Cin, ",", g.H, ",", g.W, "] -> y[", g.N, ",", g.Cout, ",", g.Hout,
                          ",", g.Wout, "], k=", g.k, ", stride=", g.stride, ", pad=(", g.pad_top, ",",
                          g.pad_left, g.reflect ? ") reflect" : ")", ", Q=", g.Q);
}

// Throws r2c::Error naming the pass and the shapes unless g is a geometry the kernels accept: positive
// sizes, pads in [0, k) (and, reflected, smaller than the image, for the passes that take them), every window
// of the convolution (or of the adjoint convolution of a transposed one) starting inside its input, and every
// tensor below 2^31 elements (the kernels index with int).
inline void oper_conv_check_geometry(OperPass pass, const OperConvGeometry& g) {
    const char* op = oper_pass_name(pass);
    const auto fail = [&](const std::string& why) {
        throw Error(detail::concat(op, ": invalid geometry ", oper_geometry_str(g), ": ", why));
    };
    if (g.N < 1 || g.Cin < 1 || g.H < 1 || g.W < 1 || g.Cout < 1 || g.Hout < 1 || g.Wout < 1)
        fail("sizes must be positive");
    if (g.k < 1 || g.stride < 1) fail("k and stride must be positive");
    if (g.Q < 1) fail("Q must be at least 1");
    if (g.pad_top < 0 || g.pad_left < 0 || g.pad_top >= g.k || g.pad_left >= g.k)
        fail("pads must lie in [0, k)");
    if (g.reflect) {
        if (pass != OperPass::Forward && pass != OperPass::BackwardWeights)
            fail(
                "reflect padding is taken by a convolution's forward and weight-gradient passes only (for "
                "the data gradient: the valid pass on the padded image, then reflect_pad_backward)");
        const std::int64_t bottom = std::int64_t(g.Hout - 1) * g.stride + g.k - g.H - g.pad_top;
        const std::int64_t right = std::int64_t(g.Wout - 1) * g.stride + g.k - g.W - g.pad_left;
        if (g.pad_top >= g.H || g.pad_left >= g.W || bottom >= g.H || right >= g.W)
            fail("reflect pads must be smaller than the image");
    }
    const OperConvGeometry c = oper_pass_is_transposed(pass) ? oper_adjoint_geometry(g) : g;
    if (std::int64_t(c.Hout - 1) * c.stride - c.pad_top > c.H - 1 ||
        std::int64_t(c.Wout - 1) * c.stride - c.pad_left > c.W - 1)
        fail(oper_pass_is_transposed(pass) ? "the output is too small for the input (the adjoint windows "
                                             "would start past its end)"
                                           : "the output is too large for the input (windows would start "
                                             "past its end)");
    const std::int64_t limit = std::int64_t(1) << 31;
    if (std::int64_t(g.N) * g.Cin * g.H * g.W >= limit ||
        std::int64_t(g.N) * g.Cout * g.Hout * g.Wout >= limit ||
        std::int64_t(g.Q) * g.Cout * g.Cin * g.k * g.k >= limit)
        fail("a tensor has 2^31 or more elements");
}

// The GEMM dimension of a pass that is a channel count and that the tile's columns (rows for the weight
// gradients) run over: what decides between 64-wide tensor-core tiles and narrow FP32 tiles.
inline int oper_tile_channels(OperPass pass, const OperConvGeometry& g) {
    switch (pass) {
        case OperPass::Forward:
            return g.Cout;
        case OperPass::BackwardData:
            return g.Cin;
        case OperPass::BackwardWeights:
            return g.Cout;
        case OperPass::TransposeForward:
            return g.Cout;
        case OperPass::TransposeBackwardData:
            return g.Cin;
        case OperPass::TransposeBackwardWeights:
            return g.Cin;
    }
    return 0;
}

// True for the passes that gather through a transposed window (tiled by residue class).
inline bool oper_pass_uses_residue_classes(OperPass pass) {
    return pass == OperPass::BackwardData || pass == OperPass::TransposeForward;
}

// Why `variant` cannot run this pass (empty when it can). cc: compute capability (major*10 + minor).
inline std::string oper_variant_unsupported(OperVariant variant, OperPass pass, const OperConvGeometry& g,
                                            OperPrecision precision, int cc) {
    if (variant == OperVariant::Naive) return "";
    if (g.Q > kOperMaxTiledQ)
        return detail::concat("the ", oper_variant_name(variant),
                              " kernels are instantiated for Q <= ", kOperMaxTiledQ, " (got Q=", g.Q,
                              "); use the naive variant");
    if (oper_pass_uses_residue_classes(pass) && g.stride > kOperMaxTiledStride)
        return detail::concat("the ", oper_variant_name(variant),
                              " kernels handle strides <= ", kOperMaxTiledStride, " here (got ", g.stride,
                              "); use the naive variant");
    if (variant == OperVariant::Narrow) {
        if (pass != OperPass::Forward && pass != OperPass::TransposeForward)
            return "the narrow variant runs forward passes only";
        if (g.Cout > kOperMaxNarrowChannels)
            return detail::concat("the narrow variant takes at most ", kOperMaxNarrowChannels,
                                  " output channels (got ", g.Cout, ")");
    }
    if (variant == OperVariant::TensorCore) {
        if (precision == OperPrecision::FP32)
            return "the tensor-core variant computes in TF32 or BF16; FP32 was requested (use the tiled "
                   "variant)";
        if (cc < 80)
            return detail::concat(
                "the tensor-core variant needs TF32/BF16 WMMA, i.e. compute capability "
                "8.0 or newer; this device is ",
                cc / 10, ".", cc % 10);
    }
    return "";
}

// The dispatch rule (documented in docs/kernels.md):
//   1. Q > kOperMaxTiledQ, or a residue-class pass with stride > kOperMaxTiledStride: naive.
//   2. A forward pass with at most kOperMaxNarrowChannels output channels (128->3, 128->1): narrow, i.e.
//      exact FP32.
//   3. FP32 requested: tiled.
//   4. TF32/BF16 requested on sm_80+ with at least kOperMinTensorCoreChannels tile channels: tensor
//      cores in that precision.
//   5. Otherwise (sm_75 or older, or fewer tile channels, such as a narrow layer's weight gradient):
//      tiled, i.e. exact FP32.
// An explicit variant is honoured or rejected with the reason (r2c::Error naming pass and shapes).
inline OperChoice oper_conv_choose(OperPass pass, const OperConvGeometry& g, const OperConvOptions& opt,
                                   int cc) {
    if (opt.variant != OperVariant::Auto) {
        const std::string why = oper_variant_unsupported(opt.variant, pass, g, opt.precision, cc);
        if (!why.empty())
            throw Error(detail::concat(oper_pass_name(pass), ": ", oper_geometry_str(g), ": ", why));
        return {opt.variant, opt.variant == OperVariant::TensorCore ? opt.precision : OperPrecision::FP32};
    }
    if (!oper_variant_unsupported(OperVariant::Tiled, pass, g, opt.precision, cc).empty())
        return {OperVariant::Naive, OperPrecision::FP32};
    if (oper_variant_unsupported(OperVariant::Narrow, pass, g, opt.precision, cc).empty())
        return {OperVariant::Narrow, OperPrecision::FP32};
    if (opt.precision != OperPrecision::FP32 &&
        oper_variant_unsupported(OperVariant::TensorCore, pass, g, opt.precision, cc).empty() &&
        oper_tile_channels(pass, g) >= kOperMinTensorCoreChannels)
        return {OperVariant::TensorCore, opt.precision};
    return {OperVariant::Tiled, OperPrecision::FP32};
}

}  // namespace r2c::cuda
