// Variant 3: the forward passes of layers with at most kOperMaxNarrowChannels output channels (R2C-GAN's
// 128->3 transposed output layer and 128->1 discriminator head), which the GEMM tiles would compute 16 or
// 64 columns wide for 1 to 4 useful ones. One thread per output pixel computes every output channel
// directly in exact FP32: for each input channel and tap it reads x once, raises it to the powers 1..Q by
// multiplication and multiplies each into the Q weights of every channel (the same for the whole warp, so
// those loads are broadcasts). Q and the channel count are template parameters (registers).
#include "kernels/activation.cuh"
#include "kernels/check.cuh"
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_tiled.cuh"

namespace r2c::cuda::oper_detail {

namespace {

constexpr int kThreads = 128;

// acc[c] += sum_q v^q w[q * q_stride + c * c_stride].
template <int kC, int kQ>
__device__ __forceinline__ void add_powers(float (&acc)[kC], float v, const float* w, int q_stride,
                                           int c_stride) {
    float p = v;
#pragma unroll
    for (int q = 0; q < kQ; ++q) {
#pragma unroll
        for (int c = 0; c < kC; ++c)
            acc[c] = fmaf(p, __ldg(w + q * q_stride + c * c_stride), acc[c]);
        p *= v;
    }
}

// y[n,c,oh,ow] = act(acc[c] + sum_q b[q,c]) for the channels of one out pixel.
template <int kC>
__device__ __forceinline__ void store_pixel(const ConvDims& d, const float (&acc)[kC], const float* b,
                                            OperActivation act, float* y, int n, int oh, int ow) {
#pragma unroll
    for (int c = 0; c < kC; ++c)
        y[((n * kC + c) * d.Hout + oh) * d.Wout + ow] = activate(acc[c] + bias_sum(b, d.Q, kC, c), act);
}

// Conv forward: y = act(sum_{q,ci,kh,kw} x[n,ci,oh*s-pt+kh,ow*s-pl+kw]^q W[q,c,ci,kh,kw] + sum_q b[q,c]),
// zeros or mirrored pixels in the padding.
template <int kC, int kQ>
__global__ void __launch_bounds__(kThreads)
    narrow_forward_kernel(const ConvDims d, const float* x, const float* w, const float* b, float* y,
                          OperActivation act) {
    const int m = blockIdx.x * kThreads + threadIdx.x;
    if (m >= d.N * d.Hout * d.Wout) return;
    const OutPixel p = split_out_pixel(d, m);
    const Window win = window_of(d, p);
    const int kk = d.k * d.k;
    float acc[kC] = {};
    for (int ci = 0; ci < d.Cin; ++ci)
        for (int kh = 0; kh < d.k; ++kh)
            for (int kw = 0; kw < d.k; ++kw)
                add_powers<kC, kQ>(acc, gather_at(d, x, win, ci, kh, kw), w + ci * kk + kh * d.k + kw,
                                   kC * d.Cin * kk, d.Cin * kk);
    store_pixel(d, acc, b, act, y, p.n, p.oh, p.ow);
}

// Transposed forward, in the transposed layer's own terms (d: x [N,Cin,H,W] -> y [N,Cout,Hout,Wout]):
// y = act(sum over (ci,kh,kw) with ih*s + kh - pt = oh, iw*s + kw - pl = ow of
//         sum_q x[n,ci,ih,iw]^q W[q,ci,c,kh,kw] + sum_q b[q,c]).
// The taps that reach (oh, ow) are kh = (oh + pt) mod s, then every s-th up to oh + pt.
template <int kC, int kQ>
__global__ void __launch_bounds__(kThreads)
    narrow_transpose_forward_kernel(const ConvDims d, const float* x, const float* w, const float* b,
                                    float* y, OperActivation act) {
    const int m = blockIdx.x * kThreads + threadIdx.x;
    if (m >= d.N * d.Hout * d.Wout) return;
    const OutPixel p = split_out_pixel(d, m);
    const int kk = d.k * d.k;
    const int th = p.oh + d.pt, tw = p.ow + d.pl;
    float acc[kC] = {};
    for (int kh = th % d.s; kh < d.k && kh <= th; kh += d.s) {
        const int ih = (th - kh) / d.s;
        if (ih >= d.H) continue;
        for (int kw = tw % d.s; kw < d.k && kw <= tw; kw += d.s) {
            const int iw = (tw - kw) / d.s;
            if (iw >= d.W) continue;
            const float* xp = x + (p.n * d.Cin * d.H + ih) * d.W + iw;
            const float* wp = w + kh * d.k + kw;
            for (int ci = 0; ci < d.Cin; ++ci)
                add_powers<kC, kQ>(acc, __ldg(xp + ci * d.H * d.W), wp + ci * kC * kk, d.Cin * kC * kk, kk);
        }
    }
    store_pixel(d, acc, b, act, y, p.n, p.oh, p.ow);
}

// Runs f(integral_constant<int, C>) for the output channel count C = 1..kOperMaxNarrowChannels.
template <class F>
void with_channels(int c, const F& f) {
    if (!with_constant<kOperMaxNarrowChannels>(c, f))
        throw Error(detail::concat("oper_conv: the narrow kernels take 1 to ", kOperMaxNarrowChannels,
                                   " output channels, got ", c));
}

// Launches kernel(C, Q)(d, x, w, b, y, act) for the layer's output channels C and its Q; kernel(c, q)
// names the instantiation.
template <class Kernel>
void launch(const ConvDims& d, const float* x, const float* w, const float* b, float* y, OperActivation act,
            cudaStream_t stream, const char* what, const Kernel& kernel) {
    const unsigned blocks =
        static_cast<unsigned>((static_cast<long long>(d.N) * d.Hout * d.Wout + kThreads - 1) / kThreads);
    with_channels(d.Cout, [&](auto c) {
        with_q(d.Q, [&](auto q) {
            R2C_LAUNCH(blocks, kThreads, 0, stream, kernel(c, q))(d, x, w, b, y, act);
        });
    });
    R2C_CUDA_LAUNCH_CHECK(what);
}

}  // namespace

void narrow_forward(const ConvDims& d, const float* x, const float* w, const float* b, float* y,
                    OperActivation act, cudaStream_t stream) {
    launch(d, x, w, b, y, act, stream, "oper_conv narrow kernel (conv forward)",
           [](auto c, auto q) { return narrow_forward_kernel<decltype(c)::value, decltype(q)::value>; });
}

void narrow_transpose_forward(const ConvDims& d, const float* x, const float* w, const float* b, float* y,
                              OperActivation act, cudaStream_t stream) {
    launch(d, x, w, b, y, act, stream, "oper_conv narrow kernel (transposed forward)", [](auto c, auto q) {
        return narrow_transpose_forward_kernel<decltype(c)::value, decltype(q)::value>;
    });
}

}  // namespace r2c::cuda::oper_detail
