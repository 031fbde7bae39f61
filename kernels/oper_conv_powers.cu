// The materialised form of an operational layer, for running it through a library that only knows ordinary
// convolutions (cuDNN: engine/ops/conv_cudnn.cpp, and the peers of benchmarks/bench_oper_conv_cuda.cpp):
// the padded power stack [x, .., x^Q] and its chain rule, the weights regrouped for the stacked
// convolution, the crop of a transposed layer's output and its adjoint, and the bias and activation. One
// thread per element; x read once.
#include "kernels/activation.cuh"
#include "kernels/check.cuh"
#include "kernels/oper_conv.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

// Frame element e = ((n*C + c)*Hp + i)*Wp + j goes to xs[((n*Q + q)*C + c)*Hp*Wp + i*Wp + j].
__global__ void power_stack_kernel(OperStackGeometry s, const float* x, float* xs, std::size_t total) {
    const std::size_t frame = std::size_t(s.Hp) * s.Wp, c_frame = std::size_t(s.C) * frame;
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / frame, n = plane / s.C;
        const int pos = int(e % frame), i = pos / s.Wp, j = pos % s.Wp;
        const int si = frame_source(i, s.pad_top, s.H, s.reflect);
        const int sj = frame_source(j, s.pad_left, s.W, s.reflect);
        const float v = si < 0 || sj < 0 ? 0.f : x[(plane * s.H + si) * s.W + sj];
        float* out = xs + n * s.Q * c_frame + (e - n * c_frame);
        float p = v;
        for (int q = 0; q < s.Q; ++q) {
            out[q * c_frame] = p;
            p *= v;
        }
    }
}

__global__ void power_stack_backward_kernel(OperStackGeometry s, const float* x, const float* dxs, float* dx,
                                            std::size_t total) {
    const std::size_t hw = std::size_t(s.H) * s.W, frame = std::size_t(s.Hp) * s.Wp,
                      c_frame = std::size_t(s.C) * frame;
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / hw, n = plane / s.C;
        const int pix = int(e % hw), r = pix / s.W, col = pix % s.W;
        int pi[3], pj[3];
        const int ni = frame_positions(r, s.pad_top, s.H, s.Hp, s.reflect, pi);
        const int nj = frame_positions(col, s.pad_left, s.W, s.Wp, s.reflect, pj);
        const float* g = dxs + n * s.Q * c_frame + (plane - n * s.C) * frame;
        const float v = x[e];
        float acc = 0.f, power = 1.f;
        for (int q = 0; q < s.Q; ++q) {
            float gq = 0.f;
            for (int a = 0; a < ni; ++a)
                for (int b = 0; b < nj; ++b)
                    gq += g[q * c_frame + std::size_t(pi[a]) * s.Wp + pj[b]];
            acc += (q + 1) * power * gq;
            power *= v;
        }
        dx[e] = acc;
    }
}

// w [Q, Cout, Cin, kk] <-> ws [Cout, Q*Cin, kk], one thread per element e of w: forward from w to ws,
// inverse from ws to w.
__global__ void weights_stack_kernel(const float* from, float* to, int q_count, int cout, int cin, int kk,
                                     bool inverse, std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t t = e % kk, rest = e / kk;
        const std::size_t ci = rest % cin, rest2 = rest / cin;
        const std::size_t co = rest2 % cout, q = rest2 / cout;
        const std::size_t stacked = ((co * q_count + q) * cin + ci) * kk + t;
        if (inverse)
            to[e] = from[stacked];
        else
            to[stacked] = from[e];
    }
}

// One thread per element of the smaller side: y (crop) or full (uncrop).
__global__ void crop_kernel(const float* full, float* y, int hf, int wf, int top, int left, int ho, int wo,
                            std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / (std::size_t(ho) * wo);
        const int pix = int(e % (std::size_t(ho) * wo)), i = pix / wo + top, j = pix % wo + left;
        y[e] = i < hf && j < wf ? full[(plane * hf + i) * wf + j] : 0.f;
    }
}

__global__ void uncrop_kernel(const float* dy, float* full, int hf, int wf, int top, int left, int ho, int wo,
                              std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / (std::size_t(hf) * wf);
        const int pix = int(e % (std::size_t(hf) * wf)), i = pix / wf - top, j = pix % wf - left;
        full[e] = i >= 0 && i < ho && j >= 0 && j < wo ? dy[(plane * ho + i) * wo + j] : 0.f;
    }
}

__global__ void bias_activation_kernel(float* y, const float* b, int channels, int hw, int q_count,
                                       OperActivation act, std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        float v = y[e];
        if (b != nullptr) {
            const int c = int((e / hw) % channels);
            for (int q = 0; q < q_count; ++q)
                v += b[q * channels + c];
        }
        y[e] = activate(v, act);
    }
}

void check_stack(const char* op, const OperStackGeometry& s, const void* a, const void* b, const void* c) {
    R2C_CHECK(s.N >= 1 && s.C >= 1 && s.H >= 1 && s.W >= 1 && s.Q >= 1 && s.Hp >= 1 && s.Wp >= 1, op,
              ": sizes must be positive (", oper_stack_str(s), ")");
    R2C_CHECK(s.pad_top >= 0 && s.pad_left >= 0 && s.pad_top < s.Hp && s.pad_left < s.Wp, op,
              ": pads must lie inside the frame (", oper_stack_str(s), ")");
    R2C_CHECK(!s.reflect || (s.pad_top < s.H && s.pad_left < s.W && s.Hp - s.pad_top - s.H < s.H &&
                             s.Wp - s.pad_left - s.W < s.W),
              op, ": reflect pads must be smaller than the image (", oper_stack_str(s), ")");
    R2C_CHECK(std::int64_t(s.N) * s.Q * s.C * s.Hp * s.Wp < (std::int64_t(1) << 31) &&
                  std::int64_t(s.N) * s.C * s.H * s.W < (std::int64_t(1) << 31),
              op, ": a tensor has 2^31 or more elements (", oper_stack_str(s), ")");
    R2C_CHECK(a != nullptr && b != nullptr && c != nullptr, op, ": null pointer (", oper_stack_str(s), ")");
}

}  // namespace

void oper_power_stack(const OperStackGeometry& s, const float* x, float* xs, void* stream) {
    check_stack("oper_power_stack", s, x, xs, xs);
    const std::size_t total = std::size_t(s.N) * s.C * s.Hp * s.Wp;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), power_stack_kernel)
    (s, x, xs, total);
    R2C_CUDA_LAUNCH_CHECK("power_stack_kernel");
}

void oper_power_stack_backward(const OperStackGeometry& s, const float* x, const float* dxs, float* dx,
                               void* stream) {
    check_stack("oper_power_stack_backward", s, x, dxs, dx);
    const std::size_t total = std::size_t(s.N) * s.C * s.H * s.W;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream),
               power_stack_backward_kernel)
    (s, x, dxs, dx, total);
    R2C_CUDA_LAUNCH_CHECK("power_stack_backward_kernel");
}

namespace {

void regroup_weights(const char* op, const float* from, float* to, int Q, int Cout, int Cin, int kk,
                     bool inverse, void* stream) {
    R2C_CHECK(Q >= 1 && Cout >= 1 && Cin >= 1 && kk >= 1, op, ": sizes must be positive (Q=", Q,
              ", Cout=", Cout, ", Cin=", Cin, ", k*k=", kk, ")");
    R2C_CHECK(from != nullptr && to != nullptr, op, ": null pointer");
    const std::size_t total = std::size_t(Q) * Cout * Cin * kk;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), weights_stack_kernel)
    (from, to, Q, Cout, Cin, kk, inverse, total);
    R2C_CUDA_LAUNCH_CHECK("weights_stack_kernel");
}

}  // namespace

void oper_weights_stack(const float* w, float* ws, int Q, int Cout, int Cin, int kk, void* stream) {
    regroup_weights("oper_weights_stack", w, ws, Q, Cout, Cin, kk, false, stream);
}

void oper_weights_unstack(const float* ws, float* w, int Q, int Cout, int Cin, int kk, void* stream) {
    regroup_weights("oper_weights_unstack", ws, w, Q, Cout, Cin, kk, true, stream);
}

namespace {

void check_crop(const char* op, const void* a, const void* b, int N, int C, int Hf, int Wf, int top, int left,
                int Ho, int Wo) {
    R2C_CHECK(N >= 1 && C >= 1 && Hf >= 1 && Wf >= 1 && Ho >= 1 && Wo >= 1 && top >= 0 && left >= 0 &&
                  top < Hf && left < Wf,
              op, ": invalid sizes (N=", N, ", C=", C, ", full ", Hf, "x", Wf, ", window ", Ho, "x", Wo,
              " at (", top, ",", left, "))");
    R2C_CHECK(a != nullptr && b != nullptr, op, ": null pointer");
}

}  // namespace

void oper_crop(const float* full, float* y, int N, int C, int Hf, int Wf, int top, int left, int Ho, int Wo,
               void* stream) {
    check_crop("oper_crop", full, y, N, C, Hf, Wf, top, left, Ho, Wo);
    const std::size_t total = std::size_t(N) * C * Ho * Wo;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), crop_kernel)
    (full, y, Hf, Wf, top, left, Ho, Wo, total);
    R2C_CUDA_LAUNCH_CHECK("crop_kernel");
}

void oper_uncrop(const float* dy, float* full, int N, int C, int Hf, int Wf, int top, int left, int Ho,
                 int Wo, void* stream) {
    check_crop("oper_uncrop", dy, full, N, C, Hf, Wf, top, left, Ho, Wo);
    const std::size_t total = std::size_t(N) * C * Hf * Wf;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), uncrop_kernel)
    (dy, full, Hf, Wf, top, left, Ho, Wo, total);
    R2C_CUDA_LAUNCH_CHECK("uncrop_kernel");
}

void oper_bias_activation(float* y, const float* b, int N, int C, int hw, int Q, OperActivation act,
                          void* stream) {
    R2C_CHECK(N >= 1 && C >= 1 && hw >= 1 && Q >= 1, "oper_bias_activation: sizes must be positive (N=", N,
              ", C=", C, ", hw=", hw, ", Q=", Q, ")");
    R2C_CHECK(y != nullptr, "oper_bias_activation: y is null");
    if (b == nullptr && act == OperActivation::None) return;
    const std::size_t total = std::size_t(N) * C * hw;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), bias_activation_kernel)
    (y, b, C, hw, Q, act, total);
    R2C_CUDA_LAUNCH_CHECK("bias_activation_kernel");
}

}  // namespace r2c::cuda
