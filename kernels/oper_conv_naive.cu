// Variant 0: the reference kernels. One thread per output element, direct loops over the definition of
// each pass in its own terms (plain division and modulo, no shared index helpers), so that they check the
// fast variants rather than share their mistakes. Any Q, any stride.
#include "kernels/check.cuh"
#include "kernels/oper_conv_launch.cuh"

namespace r2c::cuda::oper_detail {

namespace {

constexpr int kThreads = 256;

// Sizes below 2^31 elements (oper_conv.h validates that) in 64 bits, so that a grid near the limit does not
// wrap, neither in its block count nor in the index of its last threads.
unsigned blocks_for(int total) {
    return static_cast<unsigned>((static_cast<long long>(total) + kThreads - 1) / kThreads);
}

// This thread's element of `total`, or -1 past the end.
__device__ int element_index(int total) {
    const long long i = 1ll * blockIdx.x * blockDim.x + threadIdx.x;
    return i < total ? static_cast<int>(i) : -1;
}

// sum_q q x^(q-1) w[q * q_stride]: the derivative of sum_q x^q w_q with respect to x.
__device__ float power_slope(float x, const float* w, int q_count, int q_stride) {
    float s = 0.f, xp = 1.f;
    for (int q = 1; q <= q_count; ++q) {
        s += q * xp * w[(q - 1) * q_stride];
        xp *= x;
    }
    return s;
}

__device__ float int_power(float x, int q) {
    float p = x;
    for (int i = 1; i < q; ++i)
        p *= x;
    return p;
}

// Whether the padded position (ih, iw) of a convolution reads the image: with reflect padding always,
// after mirroring (ih, iw) into it; with zero padding only inside it.
__device__ bool in_image(const OperConvGeometry& g, int& ih, int& iw) {
    if (g.reflect) {
        ih = oper_index::reflect_index(ih, g.H);
        iw = oper_index::reflect_index(iw, g.W);
        return true;
    }
    return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
}

// y[n,co,oh,ow] = act( sum_{q,ci,kh,kw} x[n,ci,oh*s-pt+kh,ow*s-pl+kw]^q W[q,co,ci,kh,kw] + sum_q b[q,co] )
__global__ void naive_forward_kernel(OperConvGeometry g, const float* x, const float* w, const float* b,
                                     float* y, OperActivation act) {
    const int idx = element_index(g.N * g.Cout * g.Hout * g.Wout);
    if (idx < 0) return;
    const int ow = idx % g.Wout;
    const int oh = idx / g.Wout % g.Hout;
    const int co = idx / (g.Wout * g.Hout) % g.Cout;
    const int n = idx / (g.Wout * g.Hout * g.Cout);
    const int q_stride = g.Cout * g.Cin * g.k * g.k;
    float acc = 0.f;
    for (int ci = 0; ci < g.Cin; ++ci)
        for (int kh = 0; kh < g.k; ++kh)
            for (int kw = 0; kw < g.k; ++kw) {
                int ih = oh * g.stride - g.pad_top + kh;
                int iw = ow * g.stride - g.pad_left + kw;
                if (!in_image(g, ih, iw)) continue;
                const float v = x[((n * g.Cin + ci) * g.H + ih) * g.W + iw];
                const float* wp = w + ((co * g.Cin + ci) * g.k + kh) * g.k + kw;
                float p = v;
                for (int q = 0; q < g.Q; ++q) {
                    acc += p * wp[q * q_stride];
                    p *= v;
                }
            }
    if (b != nullptr)
        for (int q = 0; q < g.Q; ++q)
            acc += b[q * g.Cout + co];
    y[idx] = activate(acc, act);
}

// dx[n,ci,ih,iw] = sum over (co,kh,kw,oh,ow) with oh*s-pt+kh = ih, ow*s-pl+kw = iw of
//                  dz[n,co,oh,ow] * sum_q q x[n,ci,ih,iw]^(q-1) W[q,co,ci,kh,kw]
__global__ void naive_backward_data_kernel(OperConvGeometry g, const float* x, const float* w,
                                           const float* dz, float* dx) {
    const int idx = element_index(g.N * g.Cin * g.H * g.W);
    if (idx < 0) return;
    const int iw = idx % g.W;
    const int ih = idx / g.W % g.H;
    const int ci = idx / (g.W * g.H) % g.Cin;
    const int n = idx / (g.W * g.H * g.Cin);
    const float xv = x[idx];
    const int q_stride = g.Cout * g.Cin * g.k * g.k;
    float acc = 0.f;
    for (int co = 0; co < g.Cout; ++co)
        for (int kh = 0; kh < g.k; ++kh)
            for (int kw = 0; kw < g.k; ++kw) {
                const int th = ih + g.pad_top - kh;
                const int tw = iw + g.pad_left - kw;
                if (th < 0 || tw < 0 || th % g.stride != 0 || tw % g.stride != 0) continue;
                const int oh = th / g.stride;
                const int ow = tw / g.stride;
                if (oh >= g.Hout || ow >= g.Wout) continue;
                const float slope =
                    power_slope(xv, w + ((co * g.Cin + ci) * g.k + kh) * g.k + kw, g.Q, q_stride);
                acc += dz[((n * g.Cout + co) * g.Hout + oh) * g.Wout + ow] * slope;
            }
    dx[idx] = acc;
}

// dW[q,co,ci,kh,kw] = sum_{n,oh,ow} x[n,ci,oh*s-pt+kh,ow*s-pl+kw]^(q+1) dz[n,co,oh,ow]  (q 0-based)
__global__ void naive_backward_weights_kernel(OperConvGeometry g, const float* x, const float* dz,
                                              float* dw) {
    const int idx = element_index(g.Q * g.Cout * g.Cin * g.k * g.k);
    if (idx < 0) return;
    const int kw = idx % g.k;
    const int kh = idx / g.k % g.k;
    const int ci = idx / (g.k * g.k) % g.Cin;
    const int co = idx / (g.k * g.k * g.Cin) % g.Cout;
    const int q = idx / (g.k * g.k * g.Cin * g.Cout);
    float acc = 0.f;
    for (int n = 0; n < g.N; ++n)
        for (int oh = 0; oh < g.Hout; ++oh)
            for (int ow = 0; ow < g.Wout; ++ow) {
                int ih = oh * g.stride - g.pad_top + kh;
                int iw = ow * g.stride - g.pad_left + kw;
                if (!in_image(g, ih, iw)) continue;
                acc += int_power(x[((n * g.Cin + ci) * g.H + ih) * g.W + iw], q + 1) *
                       dz[((n * g.Cout + co) * g.Hout + oh) * g.Wout + ow];
            }
    dw[idx] = acc;
}

// Transposed: y[n,co,oh,ow] = act( sum over (ci,kh,kw,ih,iw) with ih*s+kh-pt = oh, iw*s+kw-pl = ow of
//                                  sum_q x[n,ci,ih,iw]^q W[q,ci,co,kh,kw] + sum_q b[q,co] )
__global__ void naive_transpose_forward_kernel(OperConvGeometry g, const float* x, const float* w,
                                               const float* b, float* y, OperActivation act) {
    const int idx = element_index(g.N * g.Cout * g.Hout * g.Wout);
    if (idx < 0) return;
    const int ow = idx % g.Wout;
    const int oh = idx / g.Wout % g.Hout;
    const int co = idx / (g.Wout * g.Hout) % g.Cout;
    const int n = idx / (g.Wout * g.Hout * g.Cout);
    const int q_stride = g.Cin * g.Cout * g.k * g.k;
    float acc = 0.f;
    for (int ci = 0; ci < g.Cin; ++ci)
        for (int kh = 0; kh < g.k; ++kh)
            for (int kw = 0; kw < g.k; ++kw) {
                const int th = oh + g.pad_top - kh;
                const int tw = ow + g.pad_left - kw;
                if (th < 0 || tw < 0 || th % g.stride != 0 || tw % g.stride != 0) continue;
                const int ih = th / g.stride;
                const int iw = tw / g.stride;
                if (ih >= g.H || iw >= g.W) continue;
                const float v = x[((n * g.Cin + ci) * g.H + ih) * g.W + iw];
                const float* wp = w + ((ci * g.Cout + co) * g.k + kh) * g.k + kw;
                float p = v;
                for (int q = 0; q < g.Q; ++q) {
                    acc += p * wp[q * q_stride];
                    p *= v;
                }
            }
    if (b != nullptr)
        for (int q = 0; q < g.Q; ++q)
            acc += b[q * g.Cout + co];
    y[idx] = activate(acc, act);
}

// Transposed: dx[n,ci,ih,iw] = sum_{co,kh,kw} dz[n,co,ih*s+kh-pt,iw*s+kw-pl] * sum_q q x^(q-1)
// W[q,ci,co,kh,kw]
__global__ void naive_transpose_backward_data_kernel(OperConvGeometry g, const float* x, const float* w,
                                                     const float* dz, float* dx) {
    const int idx = element_index(g.N * g.Cin * g.H * g.W);
    if (idx < 0) return;
    const int iw = idx % g.W;
    const int ih = idx / g.W % g.H;
    const int ci = idx / (g.W * g.H) % g.Cin;
    const int n = idx / (g.W * g.H * g.Cin);
    const float xv = x[idx];
    const int q_stride = g.Cin * g.Cout * g.k * g.k;
    float acc = 0.f;
    for (int co = 0; co < g.Cout; ++co)
        for (int kh = 0; kh < g.k; ++kh)
            for (int kw = 0; kw < g.k; ++kw) {
                const int oh = ih * g.stride + kh - g.pad_top;
                const int ow = iw * g.stride + kw - g.pad_left;
                if (oh < 0 || oh >= g.Hout || ow < 0 || ow >= g.Wout) continue;
                const float slope =
                    power_slope(xv, w + ((ci * g.Cout + co) * g.k + kh) * g.k + kw, g.Q, q_stride);
                acc += dz[((n * g.Cout + co) * g.Hout + oh) * g.Wout + ow] * slope;
            }
    dx[idx] = acc;
}

// Transposed: dW[q,ci,co,kh,kw] = sum_{n,ih,iw} x[n,ci,ih,iw]^(q+1) dz[n,co,ih*s+kh-pt,iw*s+kw-pl]
__global__ void naive_transpose_backward_weights_kernel(OperConvGeometry g, const float* x, const float* dz,
                                                        float* dw) {
    const int idx = element_index(g.Q * g.Cin * g.Cout * g.k * g.k);
    if (idx < 0) return;
    const int kw = idx % g.k;
    const int kh = idx / g.k % g.k;
    const int co = idx / (g.k * g.k) % g.Cout;
    const int ci = idx / (g.k * g.k * g.Cout) % g.Cin;
    const int q = idx / (g.k * g.k * g.Cout * g.Cin);
    float acc = 0.f;
    for (int n = 0; n < g.N; ++n)
        for (int ih = 0; ih < g.H; ++ih)
            for (int iw = 0; iw < g.W; ++iw) {
                const int oh = ih * g.stride + kh - g.pad_top;
                const int ow = iw * g.stride + kw - g.pad_left;
                if (oh < 0 || oh >= g.Hout || ow < 0 || ow >= g.Wout) continue;
                acc += int_power(x[((n * g.Cin + ci) * g.H + ih) * g.W + iw], q + 1) *
                       dz[((n * g.Cout + co) * g.Hout + oh) * g.Wout + ow];
            }
    dw[idx] = acc;
}

}  // namespace

void naive_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
                   OperActivation act, cudaStream_t stream) {
    R2C_LAUNCH(blocks_for(g.N * g.Cout * g.Hout * g.Wout), kThreads, 0, stream, naive_forward_kernel)
    (g, x, w, b, y, act);
    R2C_CUDA_LAUNCH_CHECK("naive_forward_kernel");
}

void naive_backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                         float* dx, cudaStream_t stream) {
    R2C_LAUNCH(blocks_for(g.N * g.Cin * g.H * g.W), kThreads, 0, stream, naive_backward_data_kernel)
    (g, x, w, dz, dx);
    R2C_CUDA_LAUNCH_CHECK("naive_backward_data_kernel");
}

void naive_backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                            cudaStream_t stream) {
    R2C_LAUNCH(blocks_for(g.Q * g.Cout * g.Cin * g.k * g.k), kThreads, 0, stream,
               naive_backward_weights_kernel)
    (g, x, dz, dw);
    R2C_CUDA_LAUNCH_CHECK("naive_backward_weights_kernel");
}

void naive_transpose_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b,
                             float* y, OperActivation act, cudaStream_t stream) {
    R2C_LAUNCH(blocks_for(g.N * g.Cout * g.Hout * g.Wout), kThreads, 0, stream,
               naive_transpose_forward_kernel)
    (g, x, w, b, y, act);
    R2C_CUDA_LAUNCH_CHECK("naive_transpose_forward_kernel");
}

void naive_transpose_backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                                   float* dx, cudaStream_t stream) {
    R2C_LAUNCH(blocks_for(g.N * g.Cin * g.H * g.W), kThreads, 0, stream, naive_transpose_backward_data_kernel)
    (g, x, w, dz, dx);
    R2C_CUDA_LAUNCH_CHECK("naive_transpose_backward_data_kernel");
}

void naive_transpose_backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                      cudaStream_t stream) {
    R2C_LAUNCH(blocks_for(g.Q * g.Cin * g.Cout * g.k * g.k), kThreads, 0, stream,
               naive_transpose_backward_weights_kernel)
    (g, x, dz, dw);
    R2C_CUDA_LAUNCH_CHECK("naive_transpose_backward_weights_kernel");
}

}  // namespace r2c::cuda::oper_detail
