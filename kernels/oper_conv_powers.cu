// The materialised form of an operational layer, for running it through a library that only knows ordinary
// convolutions (cuDNN: engine/ops/conv_cudnn.cpp, and the peers of benchmarks/bench_oper_conv_cuda.cpp):
// the padded power stack [x, .., x^Q] and its chain rule, the weights regrouped for the stacked
// convolution, the crop of a transposed layer's output and its adjoint, and the bias and activation, in
// float32 and, for a BF16 stacked convolution, with the stacked side in bfloat16. One thread per element; x
// read once.
#include <cuda_bf16.h>

#include <type_traits>

#include "kernels/activation.cuh"
#include "kernels/check.cuh"
#include "kernels/oper_conv.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

// The storage types of the stacked side: float32 as is, bfloat16 rounded to nearest even.
__device__ __forceinline__ float loaded(float v) {
    return v;
}
__device__ __forceinline__ float loaded(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
template <class T>
__device__ __forceinline__ T stored(float v) {
    if constexpr (std::is_same_v<T, float>)
        return v;
    else
        return __float2bfloat16_rn(v);
}

__nv_bfloat16* bf16(OperBf16* p) {
    return reinterpret_cast<__nv_bfloat16*>(p);
}
const __nv_bfloat16* bf16(const OperBf16* p) {
    return reinterpret_cast<const __nv_bfloat16*>(p);
}

// Frame element e = ((n*C + c)*Hp + i)*Wp + j goes to xs[((n*Q + q)*C + c)*Hp*Wp + i*Wp + j].
template <class T>
__global__ void power_stack_kernel(OperStackGeometry s, const float* x, T* xs, std::size_t total) {
    const std::size_t frame = std::size_t(s.Hp) * s.Wp, c_frame = std::size_t(s.C) * frame;
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / frame, n = plane / s.C;
        const int pos = int(e % frame), i = pos / s.Wp, j = pos % s.Wp;
        const int si = frame_source(i, s.pad_top, s.H, s.reflect);
        const int sj = frame_source(j, s.pad_left, s.W, s.reflect);
        const float v = si < 0 || sj < 0 ? 0.f : x[(plane * s.H + si) * s.W + sj];
        T* out = xs + n * s.Q * c_frame + (e - n * c_frame);
        float p = v;
        for (int q = 0; q < s.Q; ++q) {
            out[q * c_frame] = stored<T>(p);
            p *= v;
        }
    }
}

template <class T>
__global__ void power_stack_backward_kernel(OperStackGeometry s, const float* x, const T* dxs, float* dx,
                                            std::size_t total) {
    const std::size_t hw = std::size_t(s.H) * s.W, frame = std::size_t(s.Hp) * s.Wp,
                      c_frame = std::size_t(s.C) * frame;
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / hw, n = plane / s.C;
        const int pix = int(e % hw), r = pix / s.W, col = pix % s.W;
        int pi[3], pj[3];
        const int ni = frame_positions(r, s.pad_top, s.H, s.Hp, s.reflect, pi);
        const int nj = frame_positions(col, s.pad_left, s.W, s.Wp, s.reflect, pj);
        const T* g = dxs + n * s.Q * c_frame + (plane - n * s.C) * frame;
        const float v = x[e];
        float acc = 0.f, power = 1.f;
        for (int q = 0; q < s.Q; ++q) {
            float gq = 0.f;
            for (int a = 0; a < ni; ++a)
                for (int b = 0; b < nj; ++b)
                    gq += loaded(g[q * c_frame + std::size_t(pi[a]) * s.Wp + pj[b]]);
            acc += (q + 1) * power * gq;
            power *= v;
        }
        dx[e] = acc;
    }
}

// w [Q, Cout, Cin, kk] <-> ws [Cout, Q*Cin, kk], one thread per element e of w: forward from w to ws,
// inverse from ws to w.
template <class From, class To>
__global__ void weights_stack_kernel(const From* from, To* to, int q_count, int cout, int cin, int kk,
                                     bool inverse, std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t t = e % kk, rest = e / kk;
        const std::size_t ci = rest % cin, rest2 = rest / cin;
        const std::size_t co = rest2 % cout, q = rest2 / cout;
        const std::size_t stacked = ((co * q_count + q) * cin + ci) * kk + t;
        if (inverse)
            to[e] = stored<To>(loaded(from[stacked]));
        else
            to[stacked] = stored<To>(loaded(from[e]));
    }
}

// One thread per element of the smaller side: y (crop) or full (uncrop).
template <class T>
__global__ void crop_kernel(const T* full, float* y, int hf, int wf, int top, int left, int ho, int wo,
                            std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / (std::size_t(ho) * wo);
        const int pix = int(e % (std::size_t(ho) * wo)), i = pix / wo + top, j = pix % wo + left;
        y[e] = i < hf && j < wf ? loaded(full[(plane * hf + i) * wf + j]) : 0.f;
    }
}

template <class T>
__global__ void uncrop_kernel(const float* dy, T* full, int hf, int wf, int top, int left, int ho, int wo,
                              std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t plane = e / (std::size_t(hf) * wf);
        const int pix = int(e % (std::size_t(hf) * wf)), i = pix / wf - top, j = pix % wf - left;
        full[e] = stored<T>(i >= 0 && i < ho && j >= 0 && j < wo ? dy[(plane * ho + i) * wo + j] : 0.f);
    }
}

// y = act(z + bias); z may be y itself.
template <class T>
__global__ void bias_activation_kernel(const T* z, float* y, const float* b, int channels, int hw,
                                       int q_count, OperActivation act, std::size_t total) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        float v = loaded(z[e]);
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

template <class T>
void power_stack(const OperStackGeometry& s, const float* x, T* xs, void* stream) {
    check_stack("oper_power_stack", s, x, xs, xs);
    const std::size_t total = std::size_t(s.N) * s.C * s.Hp * s.Wp;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), power_stack_kernel<T>)
    (s, x, xs, total);
    R2C_CUDA_LAUNCH_CHECK("power_stack_kernel");
}

template <class T>
void power_stack_backward(const OperStackGeometry& s, const float* x, const T* dxs, float* dx, void* stream) {
    check_stack("oper_power_stack_backward", s, x, dxs, dx);
    const std::size_t total = std::size_t(s.N) * s.C * s.H * s.W;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream),
               power_stack_backward_kernel<T>)
    (s, x, dxs, dx, total);
    R2C_CUDA_LAUNCH_CHECK("power_stack_backward_kernel");
}

template <class From, class To>
void regroup_weights(const char* op, const From* from, To* to, int Q, int Cout, int Cin, int kk, bool inverse,
                     void* stream) {
    R2C_CHECK(Q >= 1 && Cout >= 1 && Cin >= 1 && kk >= 1, op, ": sizes must be positive (Q=", Q,
              ", Cout=", Cout, ", Cin=", Cin, ", k*k=", kk, ")");
    R2C_CHECK(from != nullptr && to != nullptr, op, ": null pointer");
    const std::size_t total = std::size_t(Q) * Cout * Cin * kk;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream),
               weights_stack_kernel<From, To>)
    (from, to, Q, Cout, Cin, kk, inverse, total);
    R2C_CUDA_LAUNCH_CHECK("weights_stack_kernel");
}

void check_crop(const char* op, const void* a, const void* b, int N, int C, int Hf, int Wf, int top, int left,
                int Ho, int Wo) {
    R2C_CHECK(N >= 1 && C >= 1 && Hf >= 1 && Wf >= 1 && Ho >= 1 && Wo >= 1 && top >= 0 && left >= 0 &&
                  top < Hf && left < Wf,
              op, ": invalid sizes (N=", N, ", C=", C, ", full ", Hf, "x", Wf, ", window ", Ho, "x", Wo,
              " at (", top, ",", left, "))");
    R2C_CHECK(a != nullptr && b != nullptr, op, ": null pointer");
}

template <class T>
void crop(const T* full, float* y, int N, int C, int Hf, int Wf, int top, int left, int Ho, int Wo,
          void* stream) {
    check_crop("oper_crop", full, y, N, C, Hf, Wf, top, left, Ho, Wo);
    const std::size_t total = std::size_t(N) * C * Ho * Wo;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), crop_kernel<T>)
    (full, y, Hf, Wf, top, left, Ho, Wo, total);
    R2C_CUDA_LAUNCH_CHECK("crop_kernel");
}

template <class T>
void uncrop(const float* dy, T* full, int N, int C, int Hf, int Wf, int top, int left, int Ho, int Wo,
            void* stream) {
    check_crop("oper_uncrop", dy, full, N, C, Hf, Wf, top, left, Ho, Wo);
    const std::size_t total = std::size_t(N) * C * Hf * Wf;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), uncrop_kernel<T>)
    (dy, full, Hf, Wf, top, left, Ho, Wo, total);
    R2C_CUDA_LAUNCH_CHECK("uncrop_kernel");
}

template <class T>
void bias_activation(const T* z, float* y, const float* b, int N, int C, int hw, int Q, OperActivation act,
                     void* stream) {
    R2C_CHECK(N >= 1 && C >= 1 && hw >= 1 && Q >= 1, "oper_bias_activation: sizes must be positive (N=", N,
              ", C=", C, ", hw=", hw, ", Q=", Q, ")");
    R2C_CHECK(z != nullptr && y != nullptr, "oper_bias_activation: z or y is null");
    if (static_cast<const void*>(z) == y && b == nullptr && act == OperActivation::None) return;
    const std::size_t total = std::size_t(N) * C * hw;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), bias_activation_kernel<T>)
    (z, y, b, C, hw, Q, act, total);
    R2C_CUDA_LAUNCH_CHECK("bias_activation_kernel");
}

// The conversions, as a regrouping of one weight tensor [1, n, 1, 1] (the identity).
template <class From, class To>
void convert(const char* op, const From* from, To* to, std::size_t n, void* stream) {
    if (n == 0) return;
    R2C_CHECK(n < (std::size_t(1) << 31), op, ": ", n, " values are 2^31 or more");
    regroup_weights(op, from, to, 1, static_cast<int>(n), 1, 1, false, stream);
}

}  // namespace

void oper_power_stack(const OperStackGeometry& s, const float* x, float* xs, void* stream) {
    power_stack(s, x, xs, stream);
}
void oper_power_stack(const OperStackGeometry& s, const float* x, OperBf16* xs, void* stream) {
    power_stack(s, x, bf16(xs), stream);
}

void oper_power_stack_backward(const OperStackGeometry& s, const float* x, const float* dxs, float* dx,
                               void* stream) {
    power_stack_backward(s, x, dxs, dx, stream);
}
void oper_power_stack_backward(const OperStackGeometry& s, const float* x, const OperBf16* dxs, float* dx,
                               void* stream) {
    power_stack_backward(s, x, bf16(dxs), dx, stream);
}

void oper_weights_stack(const float* w, float* ws, int Q, int Cout, int Cin, int kk, void* stream) {
    regroup_weights("oper_weights_stack", w, ws, Q, Cout, Cin, kk, false, stream);
}
void oper_weights_stack(const float* w, OperBf16* ws, int Q, int Cout, int Cin, int kk, void* stream) {
    regroup_weights("oper_weights_stack", w, bf16(ws), Q, Cout, Cin, kk, false, stream);
}

void oper_weights_unstack(const float* ws, float* w, int Q, int Cout, int Cin, int kk, void* stream) {
    regroup_weights("oper_weights_unstack", ws, w, Q, Cout, Cin, kk, true, stream);
}
void oper_weights_unstack(const OperBf16* ws, float* w, int Q, int Cout, int Cin, int kk, void* stream) {
    regroup_weights("oper_weights_unstack", bf16(ws), w, Q, Cout, Cin, kk, true, stream);
}

void oper_crop(const float* full, float* y, int N, int C, int Hf, int Wf, int top, int left, int Ho, int Wo,
               void* stream) {
    crop(full, y, N, C, Hf, Wf, top, left, Ho, Wo, stream);
}
void oper_crop(const OperBf16* full, float* y, int N, int C, int Hf, int Wf, int top, int left, int Ho,
               int Wo, void* stream) {
    crop(bf16(full), y, N, C, Hf, Wf, top, left, Ho, Wo, stream);
}

void oper_uncrop(const float* dy, float* full, int N, int C, int Hf, int Wf, int top, int left, int Ho,
                 int Wo, void* stream) {
    uncrop(dy, full, N, C, Hf, Wf, top, left, Ho, Wo, stream);
}
void oper_uncrop(const float* dy, OperBf16* full, int N, int C, int Hf, int Wf, int top, int left, int Ho,
                 int Wo, void* stream) {
    uncrop(dy, bf16(full), N, C, Hf, Wf, top, left, Ho, Wo, stream);
}

void oper_bias_activation(float* y, const float* b, int N, int C, int hw, int Q, OperActivation act,
                          void* stream) {
    bias_activation(static_cast<const float*>(y), y, b, N, C, hw, Q, act, stream);
}
void oper_bias_activation(const OperBf16* z, float* y, const float* b, int N, int C, int hw, int Q,
                          OperActivation act, void* stream) {
    bias_activation(bf16(z), y, b, N, C, hw, Q, act, stream);
}

void oper_to_bf16(const float* from, OperBf16* to, std::size_t n, void* stream) {
    convert("oper_to_bf16", from, bf16(to), n, stream);
}
void oper_from_bf16(const OperBf16* from, float* to, std::size_t n, void* stream) {
    convert("oper_from_bf16", bf16(from), to, n, stream);
}

}  // namespace r2c::cuda
