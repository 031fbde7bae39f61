// The CUDA emulator's stand-in for cuDNN's legacy convolution API (cudnn.h).
#include "cudnn.h"

#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <cstring>

struct cudnnContext {
    cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
    bool set = false;
    int n = 0, c = 0, h = 0, w = 0;
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
};
struct cudnnFilterStruct {
    bool set = false;
    int k = 0, c = 0, h = 0, w = 0;
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
};
struct cudnnConvolutionStruct {
    bool set = false;
    int pad_h = 0, pad_w = 0, u = 1, v = 1;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

enum Pass { kForward, kData, kFilter };

// One convolution: x [n, c, h, w], filter [k, c, r, s], y [n, k, p, q].
struct Conv {
    int n, c, h, w, k, r, s, p, q;
    int pad_h, pad_w, u, v;
    bool tf32, bf16;

    std::size_t x_size() const { return std::size_t(n) * c * h * w; }
    std::size_t y_size() const { return std::size_t(n) * k * p * q; }
    double macs() const { return double(y_size()) * c * r * s; }
};

// What an entry point is given, in forward terms whatever the pass (x the input, f the filter, y the
// output), and the pass's buffers: forward x, w -> y; data w, dy -> dx; filter x, dy -> dw.
struct Call {
    cudnnTensorDescriptor_t x;
    cudnnFilterDescriptor_t f;
    cudnnConvolutionDescriptor_t cd;
    cudnnTensorDescriptor_t y;
    const void* a = nullptr;
    const void* b = nullptr;
    void* out = nullptr;
};

// The descriptors of a call as one checked Conv.
cudnnStatus_t geometry(const Call& call, Conv* g) {
    const cudnnTensorDescriptor_t x = call.x, y = call.y;
    const cudnnFilterDescriptor_t f = call.f;
    const cudnnConvolutionDescriptor_t cd = call.cd;
    if (x == nullptr || f == nullptr || cd == nullptr || y == nullptr) return CUDNN_STATUS_BAD_PARAM;
    if (!x->set || !f->set || !cd->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
    const int p = (x->h + 2 * cd->pad_h - f->h) / cd->u + 1;
    const int q = (x->w + 2 * cd->pad_w - f->w) / cd->v + 1;
    if (f->c != x->c || y->n != x->n || y->c != f->k || p < 1 || q < 1 || y->h != p || y->w != q ||
        f->type != x->type || y->type != x->type)
        return CUDNN_STATUS_BAD_PARAM;
    *g = {x->n,
          x->c,
          x->h,
          x->w,
          f->k,
          f->h,
          f->w,
          p,
          q,
          cd->pad_h,
          cd->pad_w,
          cd->u,
          cd->v,
          cd->math != CUDNN_FMA_MATH,
          x->type == CUDNN_DATA_BFLOAT16};
    return CUDNN_STATUS_SUCCESS;
}

// The stand-in's algorithms of each pass, fastest first: cuDNN's id, math type, time relative to the
// others, and workspace (0: none, 1: a small one, 2: twice the bytes of the pass's tensors).
struct Algo {
    int id;
    cudnnMathType_t math;
    double time;
    int workspace;
};
constexpr int kAlgos = 3;
const Algo* algos(Pass pass) {
    static const Algo forward[kAlgos] = {
        {CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_TENSOR_OP_MATH, 0.5, 2},
        {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_DEFAULT_MATH, 1.0, 0},
        {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_TENSOR_OP_MATH, 1.0, 1}};
    static const Algo data[kAlgos] = {
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, CUDNN_TENSOR_OP_MATH, 0.5, 2},
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_DEFAULT_MATH, 1.0, 0},
        {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_TENSOR_OP_MATH, 1.0, 1}};
    static const Algo filter[kAlgos] = {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, CUDNN_TENSOR_OP_MATH, 0.5, 2},
                                        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_DEFAULT_MATH, 1.0, 0},
                                        {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_TENSOR_OP_MATH, 1.0, 1}};
    return pass == kForward ? forward : pass == kData ? data : filter;
}
const Algo* find_algo(Pass pass, int id) {
    const Algo* a = algos(pass);
    for (int i = 0; i < kAlgos; ++i)
        if (a[i].id == id) return &a[i];
    return nullptr;
}
std::size_t workspace_bytes(const Algo& a, const Conv& g) {
    if (a.workspace == 0) return 0;
    if (a.workspace == 1) return sizeof(int) * std::size_t(g.c) * g.r * g.s;
    return 2 * (g.bf16 ? sizeof(__nv_bfloat16) : sizeof(float)) * (g.x_size() + g.y_size());
}

struct Args {
    Pass pass;
    Conv g;
    const void* a;  // forward: x, w; data: w, dy; filter: x, dy
    const void* b;
    void* out;  // y, dx or dw
    float alpha, beta;
    void* workspace;
    std::size_t workspace_bytes;
};

float operand(float v, bool tf32) {
    return tf32 ? nvcuda::wmma::__float_to_tf32(v) : v;
}

// Element i of float32 or bfloat16 data.
float load(const void* p, std::size_t i, bool bf16) {
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]) : static_cast<const float*>(p)[i];
}

void store(void* out, std::size_t i, bool bf16, float acc, float alpha, float beta) {
    // beta = 0: the output is never read
    const float v = beta == 0.f ? alpha * acc : alpha * acc + beta * load(out, i, bf16);
    if (bf16)
        static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(v);
    else
        static_cast<float*>(out)[i] = v;
}

// Block i computes output plane i: of y (n, k), of dx (n, c), or of dw (k, c); one thread.
void conv_kernel(Args a) {
    const Conv& g = a.g;
    const int plane = static_cast<int>(blockIdx.x);
    if (plane == 0 && a.workspace != nullptr) std::memset(a.workspace, 0x5a, a.workspace_bytes);
    const auto x_at = [&](const void* x, int n, int c, int h, int w) {
        return load(x, ((std::size_t(n) * g.c + c) * g.h + h) * g.w + w, g.bf16);
    };
    const auto y_at = [&](const void* y, int n, int k, int p, int q) {
        return load(y, ((std::size_t(n) * g.k + k) * g.p + p) * g.q + q, g.bf16);
    };
    const auto w_at = [&](const void* w, int k, int c, int r, int s) {
        return load(w, ((std::size_t(k) * g.c + c) * g.r + r) * g.s + s, g.bf16);
    };
    if (a.pass == kForward) {
        const int n = plane / g.k, k = plane % g.k;
        for (int p = 0; p < g.p; ++p)
            for (int q = 0; q < g.q; ++q) {
                float acc = 0.f;
                for (int c = 0; c < g.c; ++c)
                    for (int r = 0; r < g.r; ++r)
                        for (int s = 0; s < g.s; ++s) {
                            const int h = p * g.u - g.pad_h + r, w = q * g.v - g.pad_w + s;
                            if (h < 0 || h >= g.h || w < 0 || w >= g.w) continue;
                            acc += operand(x_at(a.a, n, c, h, w), g.tf32) *
                                   operand(w_at(a.b, k, c, r, s), g.tf32);
                        }
                store(a.out, ((std::size_t(n) * g.k + k) * g.p + p) * g.q + q, g.bf16, acc, a.alpha, a.beta);
            }
    } else if (a.pass == kData) {
        const int n = plane / g.c, c = plane % g.c;
        for (int h = 0; h < g.h; ++h)
            for (int w = 0; w < g.w; ++w) {
                float acc = 0.f;
                for (int k = 0; k < g.k; ++k)
                    for (int r = 0; r < g.r; ++r)
                        for (int s = 0; s < g.s; ++s) {
                            const int ph = h + g.pad_h - r, qw = w + g.pad_w - s;
                            if (ph < 0 || qw < 0 || ph % g.u != 0 || qw % g.v != 0) continue;
                            const int p = ph / g.u, q = qw / g.v;
                            if (p >= g.p || q >= g.q) continue;
                            acc += operand(w_at(a.a, k, c, r, s), g.tf32) *
                                   operand(y_at(a.b, n, k, p, q), g.tf32);
                        }
                store(a.out, ((std::size_t(n) * g.c + c) * g.h + h) * g.w + w, g.bf16, acc, a.alpha, a.beta);
            }
    } else {
        const int k = plane / g.c, c = plane % g.c;
        for (int r = 0; r < g.r; ++r)
            for (int s = 0; s < g.s; ++s) {
                float acc = 0.f;
                for (int n = 0; n < g.n; ++n)
                    for (int p = 0; p < g.p; ++p)
                        for (int q = 0; q < g.q; ++q) {
                            const int h = p * g.u - g.pad_h + r, w = q * g.v - g.pad_w + s;
                            if (h < 0 || h >= g.h || w < 0 || w >= g.w) continue;
                            acc += operand(x_at(a.a, n, c, h, w), g.tf32) *
                                   operand(y_at(a.b, n, k, p, q), g.tf32);
                        }
                store(a.out, ((std::size_t(k) * g.c + c) * g.r + r) * g.s + s, g.bf16, acc, a.alpha, a.beta);
            }
    }
}

// Queues pass `pass` of g with algorithm `id` on the handle's stream, after cuDNN's checks.
cudnnStatus_t run(cudnnHandle_t h, Pass pass, const Conv& g, int id, const Call& call, float alpha,
                  float beta, void* workspace, std::size_t bytes) {
    const void* a = call.a;
    const void* b = call.b;
    void* out = call.out;
    if (h == nullptr) return CUDNN_STATUS_NOT_INITIALIZED;
    const Algo* algo = find_algo(pass, id);
    if (algo == nullptr) return CUDNN_STATUS_NOT_SUPPORTED;
    const std::size_t needed = workspace_bytes(*algo, g);
    if (a == nullptr || b == nullptr || out == nullptr || bytes < needed ||
        (needed > 0 && workspace == nullptr))
        return CUDNN_STATUS_BAD_PARAM;
    const unsigned planes = static_cast<unsigned>(pass == kForward ? g.n * g.k
                                                  : pass == kData  ? g.n * g.c
                                                                   : g.k * g.c);
    r2c_emu::launch(dim3(planes), dim3(1), 0, h->stream, conv_kernel)(
        Args{pass, g, a, b, out, alpha, beta, needed > 0 ? workspace : nullptr, needed});
    return CUDNN_STATUS_SUCCESS;
}

// The math an algorithm runs with for convolution g: FMA where its descriptor asks for FMA math only.
cudnnMathType_t math_of(const Algo& algo, const Conv& g) {
    return g.tf32 ? algo.math : CUDNN_FMA_MATH;
}

// What a search or the heuristic reports of one algorithm, untimed.
template <class Perf>
Perf report(const Algo& algo, const Conv& g, cudnnStatus_t status) {
    Perf f{};
    f.algo = static_cast<decltype(f.algo)>(algo.id);
    f.status = status;
    f.time = -1.f;
    f.memory = workspace_bytes(algo, g);
    f.determinism = CUDNN_DETERMINISTIC;
    f.mathType = math_of(algo, g);
    return f;
}

// The checks of a search's or the heuristic's arguments.
cudnnStatus_t listing(cudnnHandle_t h, int requested, const int* returned, const void* perf) {
    if (h == nullptr) return CUDNN_STATUS_NOT_INITIALIZED;
    if (requested < 1 || returned == nullptr || perf == nullptr) return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

// A search: every algorithm whose workspace fits is run, its time reported as proportional to the
// multiply-adds; the others are reported as not run. Fastest first, as cuDNN sorts them.
template <class Perf>
cudnnStatus_t search(cudnnHandle_t h, Pass pass, const Call& call, int requested, int* returned, Perf* perf,
                     void* workspace, std::size_t bytes) {
    Conv g;
    if (const cudnnStatus_t s = geometry(call, &g); s != CUDNN_STATUS_SUCCESS) return s;
    if (const cudnnStatus_t s = listing(h, requested, returned, perf); s != CUDNN_STATUS_SUCCESS) return s;
    Perf found[kAlgos];
    for (int i = 0; i < kAlgos; ++i) {
        const Algo& algo = algos(pass)[i];
        Perf& f = found[i];
        f = report<Perf>(algo, g, CUDNN_STATUS_ALLOC_FAILED);
        if (f.memory > bytes || (f.memory > 0 && workspace == nullptr)) continue;
        Conv with_math = g;
        with_math.tf32 = math_of(algo, g) != CUDNN_FMA_MATH;
        f.status = run(h, pass, with_math, algo.id, call, 1.f, 0.f, workspace, bytes);
        if (f.status == CUDNN_STATUS_SUCCESS) f.time = static_cast<float>(g.macs() * 1e-9 * algo.time);
    }
    std::stable_sort(found, found + kAlgos, [](const Perf& x, const Perf& y) {
        return (x.status == CUDNN_STATUS_SUCCESS) > (y.status == CUDNN_STATUS_SUCCESS);
    });
    *returned = std::min(requested, kAlgos);
    std::copy(found, found + *returned, perf);
    return CUDNN_STATUS_SUCCESS;
}

// The heuristic: every algorithm, fastest first, none run.
template <class Perf>
cudnnStatus_t guess(cudnnHandle_t h, Pass pass, const Call& call, int requested, int* returned, Perf* perf) {
    Conv g;
    if (const cudnnStatus_t s = geometry(call, &g); s != CUDNN_STATUS_SUCCESS) return s;
    if (const cudnnStatus_t s = listing(h, requested, returned, perf); s != CUDNN_STATUS_SUCCESS) return s;
    *returned = std::min(requested, kAlgos);
    for (int i = 0; i < *returned; ++i)
        perf[i] = report<Perf>(algos(pass)[i], g, CUDNN_STATUS_SUCCESS);
    return CUDNN_STATUS_SUCCESS;
}

// An entry point's run of the pass.
cudnnStatus_t execute(cudnnHandle_t h, Pass pass, const Call& call, int id, const void* alpha,
                      const void* beta, void* workspace, std::size_t bytes) {
    Conv g;
    if (const cudnnStatus_t s = geometry(call, &g); s != CUDNN_STATUS_SUCCESS) return s;
    if (alpha == nullptr || beta == nullptr) return CUDNN_STATUS_BAD_PARAM;
    return run(h, pass, g, id, call, *static_cast<const float*>(alpha), *static_cast<const float*>(beta),
               workspace, bytes);
}

}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t status) {
    switch (status) {
        case CUDNN_STATUS_SUCCESS:
            return "CUDNN_STATUS_SUCCESS";
        case CUDNN_STATUS_NOT_INITIALIZED:
            return "CUDNN_STATUS_NOT_INITIALIZED";
        case CUDNN_STATUS_BAD_PARAM:
            return "CUDNN_STATUS_BAD_PARAM";
        case CUDNN_STATUS_NOT_SUPPORTED:
            return "CUDNN_STATUS_NOT_SUPPORTED";
        case CUDNN_STATUS_ALLOC_FAILED:
            return "CUDNN_STATUS_ALLOC_FAILED";
    }
    return "CUDNN_STATUS_UNKNOWN";
}

std::size_t cudnnGetVersion() {
    return 0;  // the stand-in
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
    if (handle == nullptr) return CUDNN_STATUS_BAD_PARAM;
    *handle = new cudnnContext;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
    delete handle;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
    if (handle == nullptr) return CUDNN_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* desc) {
    if (desc == nullptr) return CUDNN_STATUS_BAD_PARAM;
    *desc = new cudnnTensorStruct;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc) {
    delete desc;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
    if (desc == nullptr || n < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NCHW || (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16))
        return CUDNN_STATUS_NOT_SUPPORTED;
    *desc = {true, n, c, h, w, type};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* desc) {
    if (desc == nullptr) return CUDNN_STATUS_BAD_PARAM;
    *desc = new cudnnFilterStruct;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc) {
    delete desc;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
    if (desc == nullptr || k < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NCHW || (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16))
        return CUDNN_STATUS_NOT_SUPPORTED;
    *desc = {true, k, c, h, w, type};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* desc) {
    if (desc == nullptr) return CUDNN_STATUS_BAD_PARAM;
    *desc = new cudnnConvolutionStruct;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc) {
    delete desc;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t desc, int pad_h, int pad_w, int u,
                                              int v, int dilation_h, int dilation_w,
                                              cudnnConvolutionMode_t mode, cudnnDataType_t compute_type) {
    if (desc == nullptr || pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dilation_h < 1 || dilation_w < 1)
        return CUDNN_STATUS_BAD_PARAM;
    if (mode != CUDNN_CROSS_CORRELATION || compute_type != CUDNN_DATA_FLOAT || dilation_h != 1 ||
        dilation_w != 1)
        return CUDNN_STATUS_NOT_SUPPORTED;
    desc->set = true;
    desc->pad_h = pad_h;
    desc->pad_w = pad_w;
    desc->u = u;
    desc->v = v;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t desc, cudnnMathType_t math) {
    if (desc == nullptr) return CUDNN_STATUS_BAD_PARAM;
    desc->math = math;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t handle, cudnnTensorDescriptor_t x_desc,
                                                     const void* x, cudnnFilterDescriptor_t w_desc,
                                                     const void* w, cudnnConvolutionDescriptor_t conv_desc,
                                                     cudnnTensorDescriptor_t y_desc, void* y, int requested,
                                                     int* returned, cudnnConvolutionFwdAlgoPerf_t* perf,
                                                     void* workspace, std::size_t workspace_bytes) {
    return search(handle, kForward, {x_desc, w_desc, conv_desc, y_desc, x, w, y}, requested, returned, perf,
                  workspace, workspace_bytes);
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, cudnnTensorDescriptor_t x_desc,
                                                     cudnnFilterDescriptor_t w_desc,
                                                     cudnnConvolutionDescriptor_t conv_desc,
                                                     cudnnTensorDescriptor_t y_desc, int requested,
                                                     int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
    return guess(handle, kForward, {x_desc, w_desc, conv_desc, y_desc}, requested, returned, perf);
}
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, cudnnTensorDescriptor_t x_desc,
                                      const void* x, cudnnFilterDescriptor_t w_desc, const void* w,
                                      cudnnConvolutionDescriptor_t conv_desc, cudnnConvolutionFwdAlgo_t algo,
                                      void* workspace, std::size_t workspace_bytes, const void* beta,
                                      cudnnTensorDescriptor_t y_desc, void* y) {
    return execute(handle, kForward, {x_desc, w_desc, conv_desc, y_desc, x, w, y}, algo, alpha, beta,
                   workspace, workspace_bytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, cudnnFilterDescriptor_t w_desc, const void* w, cudnnTensorDescriptor_t dy_desc,
    const void* dy, cudnnConvolutionDescriptor_t conv_desc, cudnnTensorDescriptor_t dx_desc, void* dx,
    int requested, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf, void* workspace,
    std::size_t workspace_bytes) {
    return search(handle, kData, {dx_desc, w_desc, conv_desc, dy_desc, w, dy, dx}, requested, returned, perf,
                  workspace, workspace_bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, cudnnFilterDescriptor_t w_desc, cudnnTensorDescriptor_t dy_desc,
    cudnnConvolutionDescriptor_t conv_desc, cudnnTensorDescriptor_t dx_desc, int requested, int* returned,
    cudnnConvolutionBwdDataAlgoPerf_t* perf) {
    return guess(handle, kData, {dx_desc, w_desc, conv_desc, dy_desc}, requested, returned, perf);
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                           cudnnFilterDescriptor_t w_desc, const void* w,
                                           cudnnTensorDescriptor_t dy_desc, const void* dy,
                                           cudnnConvolutionDescriptor_t conv_desc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workspace,
                                           std::size_t workspace_bytes, const void* beta,
                                           cudnnTensorDescriptor_t dx_desc, void* dx) {
    return execute(handle, kData, {dx_desc, w_desc, conv_desc, dy_desc, w, dy, dx}, algo, alpha, beta,
                   workspace, workspace_bytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, cudnnTensorDescriptor_t x_desc, const void* x, cudnnTensorDescriptor_t dy_desc,
    const void* dy, cudnnConvolutionDescriptor_t conv_desc, cudnnFilterDescriptor_t dw_desc, void* dw,
    int requested, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf, void* workspace,
    std::size_t workspace_bytes) {
    return search(handle, kFilter, {x_desc, dw_desc, conv_desc, dy_desc, x, dy, dw}, requested, returned,
                  perf, workspace, workspace_bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, cudnnTensorDescriptor_t x_desc, cudnnTensorDescriptor_t dy_desc,
    cudnnConvolutionDescriptor_t conv_desc, cudnnFilterDescriptor_t dw_desc, int requested, int* returned,
    cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
    return guess(handle, kFilter, {x_desc, dw_desc, conv_desc, dy_desc}, requested, returned, perf);
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                             cudnnTensorDescriptor_t x_desc, const void* x,
                                             cudnnTensorDescriptor_t dy_desc, const void* dy,
                                             cudnnConvolutionDescriptor_t conv_desc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workspace,
                                             std::size_t workspace_bytes, const void* beta,
                                             cudnnFilterDescriptor_t dw_desc, void* dw) {
    return execute(handle, kFilter, {x_desc, dw_desc, conv_desc, dy_desc, x, dy, dw}, algo, alpha, beta,
                   workspace, workspace_bytes);
}
