// The CUDA operational-convolution kernels on R2C-GAN's operational layers at 256x256 (Q = 1, 3, 5;
// forward, backward data, backward weights), against cuDNN running the same layer the two ways a
// library without operational layers can: one convolution over the materialised [x, x^2, .., x^Q]
// (Q*Cin channels; the materialisation and its chain rule are timed too), and Q separate convolutions
// accumulated with beta = 1. Times are CUDA-event medians after warm-up; TFLOP/s count 2*M*N*K of the
// layer's implicit GEMM (K = Q*Cin*k*k, padding included); % of peak is against a cuBLAS GEMM of
// 8192^3 measured in the same run for the precision the variant computes in.
//
//   bench_oper_conv_cuda [--json PATH] [--quick] [--reps N]
//
// The cuDNN peers are compiled when R2C_HAVE_CUDNN is defined (the build links cuDNN); otherwise the
// table has only this project's variants and says so.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#ifndef R2C_WITH_CUDA

int main() {
    std::printf("bench_oper_conv_cuda: this build has no CUDA (R2C_WITH_CUDA=OFF); nothing to measure\n");
    return 0;
}

#else

#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifdef R2C_HAVE_CUDNN
#include <cudnn.h>
#endif

#include <nlohmann/json.hpp>

#include "engine/device.h"
#include "engine/error.h"
#include "kernels/oper_conv.h"

using namespace r2c;
using namespace r2c::cuda;

namespace {

void cuda_ok(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw Error(detail::concat(what, ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"));
}
void cublas_ok(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) throw Error(detail::concat(what, ": cuBLAS status ", int(s)));
}
#ifdef R2C_HAVE_CUDNN
void cudnn_ok(cudnnStatus_t s, const char* what) {
    if (s != CUDNN_STATUS_SUCCESS) throw Error(detail::concat(what, ": ", cudnnGetErrorString(s)));
}
#endif

// Device memory filled with the byte 0x3c: floats of 0.0115 (bf16 pairs of 0.0115), so that powers up
// to x^5 stay normal numbers and every kernel runs at its ordinary speed.
class Buffer {
  public:
    explicit Buffer(std::size_t bytes) : bytes_(std::max<std::size_t>(bytes, 4)) {
        cuda_ok(cudaMalloc(&p_, bytes_), "cudaMalloc");
        cuda_ok(cudaMemset(p_, 0x3c, bytes_), "cudaMemset");
    }
    ~Buffer() { cudaFree(p_); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    float* f() const { return static_cast<float*>(p_); }
    void* get() const { return p_; }

  private:
    void* p_ = nullptr;
    std::size_t bytes_;
};

// Median milliseconds of fn over `reps` timed runs after warm-up; slow functions (a naive kernel on a
// big layer) get fewer runs.
double median_ms(const std::function<void()>& fn, int reps) {
    cudaEvent_t a, b;
    cuda_ok(cudaEventCreate(&a), "cudaEventCreate");
    cuda_ok(cudaEventCreate(&b), "cudaEventCreate");
    const auto once = [&] {
        cuda_ok(cudaEventRecord(a), "cudaEventRecord");
        fn();
        cuda_ok(cudaEventRecord(b), "cudaEventRecord");
        cuda_ok(cudaEventSynchronize(b), "cudaEventSynchronize");
        float ms = 0;
        cuda_ok(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
        return double(ms);
    };
    const double first = once();
    if (first > 200)
        reps = std::min(reps, 3);
    else
        once();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i)
        t.push_back(once());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

struct Peaks {
    double fp32 = 0, tf32 = 0, bf16 = 0;  // TFLOP/s
    double of(OperPrecision p) const {
        return p == OperPrecision::FP32 ? fp32 : p == OperPrecision::TF32 ? tf32 : bf16;
    }
};

// Best of a few cuBLAS GEMMs of n^3 per precision.
Peaks measure_peaks(cublasHandle_t h) {
    const int n = 8192;
    Buffer a(std::size_t(n) * n * 4), b(std::size_t(n) * n * 4), c(std::size_t(n) * n * 4);
    const float one = 1, zero = 0;
    const auto best = [&](const std::function<void()>& fn) {
        double ms = 1e30;
        for (int i = 0; i < 5; ++i)
            ms = std::min(ms, median_ms(fn, 1));
        return 2.0 * n * double(n) * n / (ms * 1e-3) / 1e12;
    };
    Peaks p;
    p.fp32 = best([&] {
        cublas_ok(
            cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.f(), n, b.f(), n, &zero, c.f(), n),
            "cublasSgemm");
    });
    try {
        p.tf32 = best([&] {
            cublas_ok(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.get(), CUDA_R_32F, n,
                                   b.get(), CUDA_R_32F, n, &zero, c.get(), CUDA_R_32F, n,
                                   CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
                      "cublasGemmEx tf32");
        });
        p.bf16 = best([&] {
            cublas_ok(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.get(), CUDA_R_16BF, n,
                                   b.get(), CUDA_R_16BF, n, &zero, c.get(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT),
                      "cublasGemmEx bf16");
        });
    } catch (const Error& e) {
        std::printf("no tensor-core GEMM peak on this device: %s\n", e.what());
    }
    return p;
}

struct Layer {
    std::string name;
    bool transposed;
    OperConvGeometry g;
};

// R2C-GAN's operational layers at 256x256 (the generator body runs on a reflect-padded 130x130 with
// `valid`, the same work as `same` at 128x128).
std::vector<Layer> layers(int q, bool quick) {
    std::vector<Layer> out = {
        {"gen_body_128x128", false, oper_conv_geometry_same(1, 128, 128, 128, 128, 3, 1, q)},
        {"gen_body_128x128", false, oper_conv_geometry_same(16, 128, 128, 128, 128, 3, 1, q)},
        {"gen_in_3to128_s2", false, oper_conv_geometry_same(1, 3, 256, 256, 128, 3, 2, q)},
        {"disc1_3to64_k4s2", false, oper_conv_geometry_same(1, 3, 256, 256, 64, 4, 2, q)},
        {"disc2_64to128_k4s4", false, oper_conv_geometry_same(1, 64, 128, 128, 128, 4, 4, q)},
        {"disc3_128to1_k4s1", false, oper_conv_geometry_same(1, 128, 32, 32, 1, 4, 1, q)},
        {"gen_out_T128to3_s2", true, oper_conv_transpose_geometry_same(1, 128, 128, 128, 3, 3, 2, q)},
    };
    if (quick) out.erase(out.begin() + 1);
    return out;
}

// 2*M*N*K of the layer's GEMM: M = pixels of the convolution's output (of its adjoint for a transposed
// layer), N*K = Cout * Q*Cin*k*k.
double gemm_flops(const Layer& l) {
    const OperConvGeometry& g = l.g;
    const double pixels = l.transposed ? double(g.N) * g.H * g.W : double(g.N) * g.Hout * g.Wout;
    return 2.0 * pixels * g.Cout * double(g.Q) * g.Cin * g.k * g.k;
}

const char* pass_label(int pass) {
    static const char* names[] = {"forward", "backward_data", "backward_weights"};
    return names[pass];
}

struct Row {
    Row(const Layer& l, int pass_index, std::string implementation, std::string prec)
        : layer(l.name),
          batch(l.g.N),
          q(l.g.Q),
          pass(pass_label(pass_index)),
          impl(std::move(implementation)),
          precision(std::move(prec)) {}
    std::string layer;
    int batch, q;
    std::string pass, impl, precision, note;
    double ms = NAN, tflops = NAN, pct_peak = NAN;
};

// Device buffers of one layer (sized for ours and for the materialised cuDNN form).
struct LayerData {
    explicit LayerData(const OperConvGeometry& g, std::size_t cudnn_out)
        : nx(std::size_t(g.N) * g.Cin * g.H * g.W),
          ny(std::size_t(g.N) * g.Cout * g.Hout * g.Wout),
          nw(std::size_t(g.Q) * g.Cout * g.Cin * g.k * g.k),
          x(nx * 4),
          w(nw * 4),
          dz(std::max(ny, cudnn_out) * 4),
          y(std::max(ny, cudnn_out) * 4),
          dx(nx * 4),
          dw(nw * 4),
          xq(nx * g.Q * 4),
          dxq(nx * g.Q * 4) {}
    std::size_t nx, ny, nw;
    Buffer x, w, dz, y, dx, dw, xq, dxq;  // xq, dxq: the materialised powers of x and their gradients
};

void run_ours(const Layer& l, int pass, LayerData& d, int cc, int reps, const Peaks& peaks,
              std::vector<Row>& rows) {
    const OperConvGeometry& g = l.g;
    const double flops = gemm_flops(l);
    struct V {
        OperVariant v;
        OperPrecision p;
    };
    for (const V& v :
         {V{OperVariant::Naive, OperPrecision::FP32}, V{OperVariant::Tiled, OperPrecision::FP32},
          V{OperVariant::TensorCore, OperPrecision::TF32}, V{OperVariant::TensorCore, OperPrecision::BF16},
          V{OperVariant::Narrow, OperPrecision::FP32}}) {
        Row r(l, pass, std::string("ours ") + oper_variant_name(v.v), oper_precision_name(v.p));
        const OperPass op = l.transposed ? OperPass(int(OperPass::TransposeForward) + pass) : OperPass(pass);
        const std::string why = oper_variant_unsupported(v.v, op, g, v.p, cc);
        OperConvOptions opt{v.v, v.p, nullptr};
        // The weight gradients' split-K parts write their partial sums here (kernels/oper_conv.h).
        const std::size_t ws_bytes =
            pass == 2 && why.empty() ? oper_conv_weights_workspace(g, l.transposed, opt) : 0;
        const Buffer ws(ws_bytes);
        opt.workspace = ws.get();
        opt.workspace_bytes = ws_bytes;
        const auto fn = [&] {
            const float* b = nullptr;
            if (pass == 0) {
                if (l.transposed)
                    oper_conv_transpose_forward(g, d.x.f(), d.w.f(), b, d.y.f(), OperActivation::None, opt);
                else
                    oper_conv_forward(g, d.x.f(), d.w.f(), b, d.y.f(), OperActivation::None, opt);
            } else if (pass == 1) {
                if (l.transposed)
                    oper_conv_transpose_backward_data(g, d.x.f(), d.w.f(), d.dz.f(), d.dx.f(), opt);
                else
                    oper_conv_backward_data(g, d.x.f(), d.w.f(), d.dz.f(), d.dx.f(), opt);
            } else {
                if (l.transposed)
                    oper_conv_transpose_backward_weights(g, d.x.f(), d.dz.f(), d.dw.f(), nullptr, opt);
                else
                    oper_conv_backward_weights(g, d.x.f(), d.dz.f(), d.dw.f(), nullptr, opt);
            }
        };
        if (!why.empty()) {
            r.note = why;
        } else if (v.v == OperVariant::Naive && flops > 5e10) {
            r.note = "naive skipped (over 5e10 FLOP)";
        } else {
            r.ms = median_ms(fn, reps);
            r.tflops = flops / (r.ms * 1e-3) / 1e12;
            r.pct_peak = 100 * r.tflops / peaks.of(v.p);
        }
        rows.push_back(r);
    }
}

#ifdef R2C_HAVE_CUDNN

// cuDNN's padding is symmetric: the larger of TensorFlow's two pads (same output size for every layer
// here except the k=4, s=1 head, where cuDNN computes 33x33 instead of 32x32; its TFLOP/s use its own
// size).
struct CudnnConv {
    cudnnHandle_t h;
    bool transposed;
    int N, C, H, W;  // conv input (the transposed layer's output)
    int K, Ho, Wo;   // conv output channels per q and size (the transposed layer's input)
    int k, s, pad, Q;
    cudnnConvolutionDescriptor_t conv{};
    cudnnFilterDescriptor_t w_all{}, w_one{};
    cudnnTensorDescriptor_t in{}, out{}, in_all{}, in_slice{}, out_all{}, out_slice{};

    CudnnConv(cudnnHandle_t handle, const Layer& l) : h(handle), transposed(l.transposed) {
        const OperConvGeometry c = l.transposed ? oper_adjoint_geometry(l.g) : l.g;
        N = c.N, C = c.Cin, H = c.H, W = c.W, K = c.Cout, k = c.k, s = c.stride, Q = c.Q;
        const int after_h = (c.Hout - 1) * s + k - H - c.pad_top,
                  after_w = (c.Wout - 1) * s + k - W - c.pad_left;
        pad = std::max({c.pad_top, c.pad_left, after_h, after_w, 0});
        cudnn_ok(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
        cudnn_ok(cudnnSetConvolution2dDescriptor(conv, pad, pad, s, s, 1, 1, CUDNN_CROSS_CORRELATION,
                                                 CUDNN_DATA_FLOAT),
                 "cudnnSetConvolution2dDescriptor");
        for (auto* t : {&in, &out, &in_all, &in_slice, &out_all, &out_slice})
            cudnn_ok(cudnnCreateTensorDescriptor(t), "cudnnCreateTensorDescriptor");
        cudnn_ok(cudnnCreateFilterDescriptor(&w_all), "cudnnCreateFilterDescriptor");
        cudnn_ok(cudnnCreateFilterDescriptor(&w_one), "cudnnCreateFilterDescriptor");
        // The powered side is the conv input for a convolution, its output for a transposed one.
        const int cq = transposed ? C : Q * C, kq = transposed ? Q * K : K;
        cudnn_ok(cudnnSetTensor4dDescriptor(in, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C, H, W), "in");
        cudnn_ok(cudnnSetTensor4dDescriptor(in_all, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, cq, H, W),
                 "in_all");
        cudnn_ok(
            cudnnSetTensor4dDescriptorEx(in_slice, CUDNN_DATA_FLOAT, N, C, H, W, cq * H * W, H * W, W, 1),
            "in_slice");
        cudnn_ok(cudnnSetFilter4dDescriptor(w_all, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, kq, cq, k, k),
                 "w_all");
        cudnn_ok(cudnnSetFilter4dDescriptor(w_one, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, K, C, k, k), "w_one");
        int n, ch;
        cudnn_ok(cudnnGetConvolution2dForwardOutputDim(conv, in, w_one, &n, &ch, &Ho, &Wo), "output dim");
        cudnn_ok(cudnnSetTensor4dDescriptor(out, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, K, Ho, Wo), "out");
        cudnn_ok(cudnnSetTensor4dDescriptor(out_all, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, kq, Ho, Wo),
                 "out_all");
        cudnn_ok(cudnnSetTensor4dDescriptorEx(out_slice, CUDNN_DATA_FLOAT, N, K, Ho, Wo, kq * Ho * Wo,
                                              Ho * Wo, Wo, 1),
                 "out_slice");
        // The transposed layer's powered input is the conv output: its size must be exact.
        R2C_CHECK(!transposed || (Ho == c.Hout && Wo == c.Wout), l.name, ": cuDNN's symmetric padding gives ",
                  Ho, "x", Wo, " instead of ", c.Hout, "x", c.Wout);
    }
    ~CudnnConv() {
        for (auto t : {in, out, in_all, in_slice, out_all, out_slice})
            cudnnDestroyTensorDescriptor(t);
        cudnnDestroyFilterDescriptor(w_all);
        cudnnDestroyFilterDescriptor(w_one);
        cudnnDestroyConvolutionDescriptor(conv);
    }
    CudnnConv(const CudnnConv&) = delete;
    CudnnConv& operator=(const CudnnConv&) = delete;

    std::size_t out_elems() const { return std::size_t(N) * K * Ho * Wo; }
    double flops() const { return 2.0 * N * Ho * double(Wo) * K * double(Q) * C * k * k; }
};

// The fastest algorithm of each kind (cudnnFind, which times them) for one descriptor combination.
struct Algos {
    cudnnConvolutionFwdAlgoPerf_t fwd;
    cudnnConvolutionBwdDataAlgoPerf_t bwd;
    cudnnConvolutionBwdFilterAlgoPerf_t filt;
};

constexpr std::size_t kWorkspaceLimit = std::size_t(1) << 30;

template <class Perf>
Perf first_fitting(const Perf* perf, int n, const char* what) {
    for (int i = 0; i < n; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceLimit) return perf[i];
    throw Error(detail::concat(what, ": no algorithm within the workspace limit"));
}

// One cuDNN peer run of `pass` over layer l: materialised (one conv over Q*C channels) or per_q (Q convs).
// For a convolution the powered tensor x is the conv input; for the transposed layer x_t is the conv
// output, and its forward is cuDNN's data gradient. Buffers: x and its stacks (powers, their
// gradients) on the powered side; y (the forward pass writes it, its Q convolutions accumulating with
// beta = 1) or dz on the other side.
void run_cudnn(const Layer& l, int pass, LayerData& d, CudnnConv& c, bool per_q, cudnnMathType_t math,
               int reps, const Peaks& peaks, std::vector<Row>& rows) {
    const bool tf32 = math != CUDNN_FMA_MATH;
    const bool one = c.Q == 1;  // x itself is the stack: nothing to materialise
    if (one && per_q) return;   // the same run as the materialised one
    Row r(l, pass, per_q ? "cudnn Q separate convs" : "cudnn materialised x^1..x^Q", tf32 ? "tf32" : "fp32");
    try {
        const bool powered_is_input = !c.transposed;
        const cudnnTensorDescriptor_t in_d = powered_is_input ? (per_q ? c.in_slice : c.in_all) : c.in;
        const cudnnTensorDescriptor_t out_d = powered_is_input ? c.out : (per_q ? c.out_slice : c.out_all);
        const cudnnFilterDescriptor_t w_d = per_q ? c.w_one : c.w_all;
        // 0: cudnnConvolutionForward, 1: BackwardData, 2: BackwardFilter.
        const int kind = c.transposed ? (pass == 0 ? 1 : pass == 1 ? 0 : 2) : pass;
        const bool data_grad = pass == 1;
        cudnn_ok(cudnnSetConvolutionMathType(c.conv, math), "cudnnSetConvolutionMathType");
        int found = 0;
        cudnnConvolutionFwdAlgoPerf_t fp[8];
        cudnnConvolutionBwdDataAlgoPerf_t bp[8];
        cudnnConvolutionBwdFilterAlgoPerf_t wp[8];
        std::size_t ws_bytes = 0;
        cudnnMathType_t algo_math = math;
        if (kind == 0) {
            cudnn_ok(cudnnFindConvolutionForwardAlgorithm(c.h, in_d, w_d, c.conv, out_d, 8, &found, fp),
                     "find fwd");
            fp[0] = first_fitting(fp, found, "cudnn forward");
            ws_bytes = fp[0].memory;
            algo_math = fp[0].mathType;
        } else if (kind == 1) {
            cudnn_ok(cudnnFindConvolutionBackwardDataAlgorithm(c.h, w_d, out_d, c.conv, in_d, 8, &found, bp),
                     "find bwd data");
            bp[0] = first_fitting(bp, found, "cudnn backward data");
            ws_bytes = bp[0].memory;
            algo_math = bp[0].mathType;
        } else {
            cudnn_ok(
                cudnnFindConvolutionBackwardFilterAlgorithm(c.h, in_d, out_d, c.conv, w_d, 8, &found, wp),
                "find bwd filter");
            wp[0] = first_fitting(wp, found, "cudnn backward filter");
            ws_bytes = wp[0].memory;
            algo_math = wp[0].mathType;
        }
        cudnn_ok(cudnnSetConvolutionMathType(c.conv, algo_math), "cudnnSetConvolutionMathType");
        Buffer ws(ws_bytes);
        const float alpha = 1, beta0 = 0, beta1 = 1;
        const int pc = c.transposed ? c.K : c.C;  // powered channels and pixels
        const int phw = c.transposed ? c.Ho * c.Wo : c.H * c.W;
        const std::size_t slice = std::size_t(pc) * phw, w_slice = std::size_t(c.K) * c.C * c.k * c.k;
        float* stack = one ? d.x.f() : d.xq.f();
        float* grads = one ? d.dx.f() : d.dxq.f();
        float* plain = pass == 0 ? d.y.f() : d.dz.f();
        const OperStackGeometry flat{c.N, pc, 1, phw, c.Q, 0, 0, 1, phw, false};  // no padding
        const auto run = [&] {
            if (!one && !data_grad) oper_power_stack(flat, d.x.f(), stack);
            for (int i = 0; i < (per_q ? c.Q : 1); ++i) {
                float* stacked = (data_grad ? grads : stack) + (per_q ? i * slice : 0);
                float* cin = powered_is_input ? stacked : plain;
                float* cout = powered_is_input ? plain : stacked;
                float* w = d.w.f() + (per_q ? i * w_slice : 0);
                const float* beta = pass == 0 && i > 0 ? &beta1 : &beta0;
                if (kind == 0)
                    cudnn_ok(cudnnConvolutionForward(c.h, &alpha, in_d, cin, w_d, w, c.conv, fp[0].algo,
                                                     ws.get(), ws_bytes, beta, out_d, cout),
                             "cudnnConvolutionForward");
                else if (kind == 1)
                    cudnn_ok(cudnnConvolutionBackwardData(c.h, &alpha, w_d, w, out_d, cout, c.conv,
                                                          bp[0].algo, ws.get(), ws_bytes, beta, in_d, cin),
                             "cudnnConvolutionBackwardData");
                else
                    cudnn_ok(cudnnConvolutionBackwardFilter(c.h, &alpha, in_d, cin, out_d, cout, c.conv,
                                                            wp[0].algo, ws.get(), ws_bytes, beta, w_d,
                                                            d.dw.f() + (per_q ? i * w_slice : 0)),
                             "cudnnConvolutionBackwardFilter");
            }
            if (data_grad && !one) oper_power_stack_backward(flat, d.x.f(), grads, d.dx.f());
        };
        r.ms = median_ms(run, reps);
        r.tflops = c.flops() / (r.ms * 1e-3) / 1e12;
        r.pct_peak = 100 * r.tflops / peaks.of(tf32 ? OperPrecision::TF32 : OperPrecision::FP32);
    } catch (const Error& e) {
        r.note = e.what();
    }
    rows.push_back(r);
}

#endif  // R2C_HAVE_CUDNN

std::string fmt(double v, const char* f) {
    if (std::isnan(v)) return "-";
    char b[32];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path;
    bool quick = false;
    int reps = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json" && i + 1 < argc)
            json_path = argv[++i];
        else if (a == "--quick")
            quick = true;
        else if (a == "--reps" && i + 1 < argc)
            reps = std::max(1, std::atoi(argv[++i]));
        else {
            std::fprintf(stderr, "usage: %s [--json PATH] [--quick] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (!cuda::available()) {
        std::printf("bench_oper_conv_cuda: no CUDA device (%s); nothing to measure\n",
                    cuda::describe().c_str());
        return 0;
    }
    try {
        const std::string device = cuda::describe();
        const int cc = oper_device_compute_capability();
        cublasHandle_t blas;
        cublas_ok(cublasCreate(&blas), "cublasCreate");
        const Peaks peaks = measure_peaks(blas);
        std::printf("%s\npeak (cuBLAS 8192^3): fp32 %.1f, tf32 %.1f, bf16 %.1f TFLOP/s\n", device.c_str(),
                    peaks.fp32, peaks.tf32, peaks.bf16);
#ifdef R2C_HAVE_CUDNN
        cudnnHandle_t dnn;
        cudnn_ok(cudnnCreate(&dnn), "cudnnCreate");
        std::printf("cuDNN %zu\n", cudnnGetVersion());
#else
        std::printf("cuDNN peers not built (define R2C_HAVE_CUDNN and link cuDNN)\n");
#endif
        std::vector<Row> rows;
        std::printf("\n%-20s %5s %2s %-17s %-29s %-5s %10s %8s %6s  %s\n", "layer", "batch", "Q", "pass",
                    "implementation", "prec", "ms", "TFLOP/s", "%peak", "note");
        std::size_t printed = 0;
        for (int q : quick ? std::vector<int>{3} : std::vector<int>{1, 3, 5})
            for (const Layer& l : layers(q, quick)) {
#ifdef R2C_HAVE_CUDNN
                CudnnConv c(dnn, l);
                LayerData d(l.g, c.out_elems());
#else
                LayerData d(l.g, 0);
#endif
                for (int pass = 0; pass < 3; ++pass) {
                    run_ours(l, pass, d, cc, reps, peaks, rows);
#ifdef R2C_HAVE_CUDNN
                    for (bool per_q : {false, true})
                        for (cudnnMathType_t m : {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH})
                            if (m == CUDNN_FMA_MATH || cc >= 80)
                                run_cudnn(l, pass, d, c, per_q, m, reps, peaks, rows);
#endif
                    for (; printed < rows.size(); ++printed) {
                        const Row& r = rows[printed];
                        std::printf("%-20s %5d %2d %-17s %-29s %-5s %10s %8s %6s  %s\n", r.layer.c_str(),
                                    r.batch, r.q, r.pass.c_str(), r.impl.c_str(), r.precision.c_str(),
                                    fmt(r.ms, "%.3f").c_str(), fmt(r.tflops, "%.2f").c_str(),
                                    fmt(r.pct_peak, "%.1f").c_str(), r.note.c_str());
                    }
                    std::fflush(stdout);
                }
            }
        cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        if (!json_path.empty()) {
            nlohmann::json j;
            j["device"] = device;
            j["compute_capability"] = cc;
            j["peak_tflops"] = {{"fp32", peaks.fp32}, {"tf32", peaks.tf32}, {"bf16", peaks.bf16}};
            j["flops_convention"] = "2*M*N*K of the implicit GEMM, K = Q*Cin*k*k, padding included";
            for (const Row& r : rows) {
                nlohmann::json e = {
                    {"layer", r.layer}, {"batch", r.batch},         {"Q", r.q},
                    {"pass", r.pass},   {"implementation", r.impl}, {"precision", r.precision}};
                if (!std::isnan(r.ms))
                    e.update({{"ms", r.ms}, {"tflops", r.tflops}, {"pct_peak", r.pct_peak}});
                if (!r.note.empty()) e["note"] = r.note;
                j["results"].push_back(e);
            }
            std::ofstream(json_path) << j.dump(2) << "\n";
            std::printf("\nwrote %s\n", json_path.c_str());
        }
        cublasDestroy(blas);
#ifdef R2C_HAVE_CUDNN
        cudnnDestroy(dnn);
#endif
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_oper_conv_cuda: %s\n", e.what());
        return 1;
    }
    return 0;
}

#endif  // R2C_WITH_CUDA
