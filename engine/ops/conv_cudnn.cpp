// The operational convolution through cuDNN on the power stack (engine/ops/conv_cudnn.h).
#ifdef R2C_WITH_CUDA
#include "engine/ops/conv_cudnn.h"

#include "engine/device.h"
#include "engine/error.h"

#ifdef R2C_HAVE_CUDNN

#include <cudnn.h>

#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/graph.h"
#include "engine/tensor.h"

namespace r2c::ops::cudnn {

namespace {

using cuda::OperConvGeometry;

void ok(cudnnStatus_t s, const char* call) {
    if (s != CUDNN_STATUS_SUCCESS) throw Error(detail::concat(call, " failed: ", cudnnGetErrorString(s)));
}

// The process's cuDNN handle, created on first use outside a graph capture, queuing on cuda::stream().
class Handle {
  public:
    Handle() = default;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() {
        if (h_ != nullptr) cudnnDestroy(h_);
    }
    cudnnHandle_t get() {
        std::lock_guard<std::mutex> lock(mu_);
        if (h_ == nullptr) {
            R2C_CHECK(
                !cuda::capturing(),
                "cuDNN is first used inside a CUDA graph capture: run the work once without capture first");
            ok(cudnnCreate(&h_), "cudnnCreate");
        }
        ok(cudnnSetStream(h_, static_cast<cudaStream_t>(cuda::stream())), "cudnnSetStream");
        return h_;
    }

  private:
    std::mutex mu_;
    cudnnHandle_t h_ = nullptr;
};

cudnnHandle_t handle() {
    static Handle h;
    return h.get();
}

// One ordinary valid convolution, in cuDNN's terms: input [n, in_c, in_h, in_w], filter [out_c, in_c, k, k],
// output [n, out_c, out_h, out_w], stride `stride`; `fma`: float32 with cuDNN's FMA math only (FP32
// exact); `bf16`: bfloat16 tensors and filter with FP32 accumulation (otherwise float32).
struct Problem {
    int n, in_c, in_h, in_w, out_c, out_h, out_w, k, stride;
    bool fma, bf16;
};

bool fma_only(const cuda::OperConvOptions& opt) {
    return opt.precision == cuda::OperPrecision::FP32;
}
bool bf16_data(const cuda::OperConvOptions& opt) {
    return opt.precision == cuda::OperPrecision::BF16;
}

// A convolution's stacked problem: the stack of x in, the layer's output out.
Problem stacked(const OperConvGeometry& g, const cuda::OperConvOptions& opt) {
    const cuda::OperStackGeometry s = cuda::oper_stack_geometry(g);
    return {g.N,    g.Q * g.Cin, s.Hp,     s.Wp,          g.Cout,        g.Hout,
            g.Wout, g.k,         g.stride, fma_only(opt), bf16_data(opt)};
}
// A transposed layer's: the convolution whose data gradient it is, from its whole output (before the crop)
// to the stack of its input. The filter [Q*Cin, Cout, k, k] is the layer's weights [Q, Cin, Cout, k, k].
Problem stacked_transposed(const OperConvGeometry& t, const cuda::OperConvOptions& opt) {
    return {t.N,
            t.Cout,
            (t.H - 1) * t.stride + t.k,
            (t.W - 1) * t.stride + t.k,
            t.Q * t.Cin,
            t.H,
            t.W,
            t.k,
            t.stride,
            fma_only(opt),
            bf16_data(opt)};
}

class Descriptors {
  public:
    cudnnTensorDescriptor_t in = nullptr, out = nullptr;
    cudnnFilterDescriptor_t filter = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;

    explicit Descriptors(const Problem& p) {
        const cudnnDataType_t type = p.bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
        try {
            ok(cudnnCreateTensorDescriptor(&in), "cudnnCreateTensorDescriptor");
            ok(cudnnCreateTensorDescriptor(&out), "cudnnCreateTensorDescriptor");
            ok(cudnnCreateFilterDescriptor(&filter), "cudnnCreateFilterDescriptor");
            ok(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
            ok(cudnnSetTensor4dDescriptor(in, CUDNN_TENSOR_NCHW, type, p.n, p.in_c, p.in_h, p.in_w),
               "cudnnSetTensor4dDescriptor (input)");
            ok(cudnnSetTensor4dDescriptor(out, CUDNN_TENSOR_NCHW, type, p.n, p.out_c, p.out_h, p.out_w),
               "cudnnSetTensor4dDescriptor (output)");
            ok(cudnnSetFilter4dDescriptor(filter, type, CUDNN_TENSOR_NCHW, p.out_c, p.in_c, p.k, p.k),
               "cudnnSetFilter4dDescriptor");
            // FP32 accumulation for both data types (with bfloat16 data, cuDNN's PSEUDO_BFLOAT16 form).
            ok(cudnnSetConvolution2dDescriptor(conv, 0, 0, p.stride, p.stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                               CUDNN_DATA_FLOAT),
               "cudnnSetConvolution2dDescriptor");
            // Searched and heuristic candidates then run with FMA math only.
            if (p.fma) ok(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
        } catch (...) {
            destroy();
            throw;
        }
    }
    ~Descriptors() { destroy(); }
    Descriptors(const Descriptors&) = delete;
    Descriptors& operator=(const Descriptors&) = delete;

  private:
    void destroy() {
        if (in != nullptr) cudnnDestroyTensorDescriptor(in);
        if (out != nullptr) cudnnDestroyTensorDescriptor(out);
        if (filter != nullptr) cudnnDestroyFilterDescriptor(filter);
        if (conv != nullptr) cudnnDestroyConvolutionDescriptor(conv);
    }
};

// An algorithm of one pass: cuDNN's id, the math it runs with, the workspace it needs.
struct Algo {
    int id = 0;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    std::size_t workspace = 0;
};

constexpr int kAlgos = 8;

const char* math_name(cudnnMathType_t m) {
    switch (m) {
        case CUDNN_DEFAULT_MATH:
            return "default";
        case CUDNN_TENSOR_OP_MATH:
            return "tensor_op";
        case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
            return "tensor_op_allow_conversion";
        case CUDNN_FMA_MATH:
            return "fma";
    }
    return "?";
}

// cuDNN's algorithm names, without their prefixes, by enumerator value.
template <std::size_t N>
const char* name_of(int a, const char* const (&names)[N]) {
    return a >= 0 && a < static_cast<int>(N) ? names[a] : "?";
}
const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
    static const char* const names[] = {
        "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
        "WINOGRAD",      "WINOGRAD_NONFUSED"};
    return name_of(a, names);
}
const char* algo_name(cudnnConvolutionBwdDataAlgo_t a) {
    static const char* const names[] = {"ALGO_0",     "ALGO_1",   "FFT",
                                        "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    return name_of(a, names);
}
const char* algo_name(cudnnConvolutionBwdFilterAlgo_t a) {
    static const char* const names[] = {
        "ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};
    return name_of(a, names);
}

// What a search or heuristic reported: cuDNN's candidates, as run and as recorded.
struct Found {
    std::vector<Algo> algos;
    std::vector<cuda::CudnnCandidate> candidates;
};

template <class Perf>
Found found(const Perf* perf, int n, bool timed) {
    Found f;
    for (int i = 0; i < n; ++i) {
        f.algos.push_back({static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory});
        f.candidates.push_back({algo_name(perf[i].algo), math_name(perf[i].mathType),
                                cudnnGetErrorString(perf[i].status), perf[i].status == CUDNN_STATUS_SUCCESS,
                                timed ? static_cast<double>(perf[i].time) : -1.0, perf[i].memory});
    }
    return f;
}

enum Kind { kForward, kData, kFilter };
const char* kind_name(Kind k) {
    return k == kForward ? "forward" : k == kData ? "backward data" : "backward filter";
}

// Device scratch for n elements of T (float32 storage, at least one float).
template <class T>
Tensor scratch(std::size_t n) {
    const std::size_t floats = (n * sizeof(T) + sizeof(float) - 1) / sizeof(float);
    return Tensor::empty({static_cast<std::int64_t>(floats == 0 ? 1 : floats)}, DType::F32, Device::CUDA);
}

// The bytes of a problem's input and output tensors, which its workspace limit scales with.
std::size_t tensor_bytes(const Problem& p) {
    return (p.bf16 ? sizeof(cuda::OperBf16) : sizeof(float)) * std::size_t(p.n) *
           (std::size_t(p.in_c) * p.in_h * p.in_w + std::size_t(p.out_c) * p.out_h * p.out_w);
}

std::size_t device_bytes() {
    std::size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
        cudaGetLastError();
        return 0;  // the limit stays at its floor
    }
    return total_bytes;
}

std::string problem_str(const Problem& p) {
    return detail::concat("input [", p.n, ",", p.in_c, ",", p.in_h, ",", p.in_w, "], filter [", p.out_c, ",",
                          p.in_c, ",", p.k, ",", p.k, "], stride ", p.stride, p.fma ? ", FMA math" : "",
                          p.bf16 ? ", bfloat16" : "");
}

// Device memory a search borrows, straight from the driver and returned after it, so that the caching
// allocator keeps no block the size of the largest search (one it could not give back during a graph
// capture). Where `bytes` cannot be had even with the allocator's cache returned, the search makes do with
// half as much, and so on; below 1 MiB with none (the algorithms without workspace remain).
class SearchScratch {
  public:
    explicit SearchScratch(std::size_t bytes) {
        constexpr std::size_t kLeast = std::size_t(1) << 20;
        bool emptied = false;
        while (bytes >= kLeast) {
            if (cudaMalloc(&ptr_, bytes) == cudaSuccess) {
                bytes_ = bytes;
                return;
            }
            cudaGetLastError();
            ptr_ = nullptr;
            if (!emptied) {
                cuda::allocator().empty_cache();
                emptied = true;
            } else {
                bytes /= 2;
            }
        }
    }
    ~SearchScratch() {
        if (ptr_ != nullptr) cudaFree(ptr_);
    }
    SearchScratch(const SearchScratch&) = delete;
    SearchScratch& operator=(const SearchScratch&) = delete;
    void* data() const { return ptr_; }
    std::size_t bytes() const { return bytes_; }

  private:
    void* ptr_ = nullptr;
    std::size_t bytes_ = 0;
};

// The searches made, for cuda::cudnn_searches().
struct Searches {
    std::mutex mu;
    std::vector<cuda::CudnnSearch> record;
};
Searches& searches() {
    static Searches s;
    return s;
}

// The algorithm of `kind` for problem p. Outside a capture it is searched once per problem (cuDNN times
// its candidates on the pass's own buffers, the output overwritten) and remembered; inside one, where
// nothing may wait for the device, a problem met for the first time takes cuDNN's heuristic choice.
// search(handle, workspace, bytes) and guess(handle) return what cuDNN reported; both are recorded.
template <class Search, class Guess>
Algo algorithm(Kind kind, const Problem& p, Search search, Guess guess) {
    static std::mutex mu;
    static std::map<std::vector<std::int64_t>, Algo> remembered;
    static const std::size_t device = device_bytes();
    const std::size_t limit = cuda::conv_workspace_for(tensor_bytes(p), device);
    const std::vector<std::int64_t> key{
        kind,    p.n, p.in_c,   p.in_h,        p.in_w,         p.out_c,
        p.out_h, p.k, p.stride, p.fma ? 1 : 0, p.bf16 ? 1 : 0, static_cast<std::int64_t>(limit)};
    {
        std::lock_guard<std::mutex> lock(mu);
        const auto it = remembered.find(key);
        if (it != remembered.end()) return it->second;
    }
    const cudnnHandle_t h = handle();
    const bool capturing = cuda::capturing();
    Found f;
    std::size_t searched = limit;  // the workspace the candidates could use
    if (capturing) {
        f = guess(h);
    } else {
        const SearchScratch ws(limit);
        searched = ws.bytes();
        f = search(h, ws.data(), searched);
    }
    const int chosen = cuda::usable_cudnn_candidate(f.candidates, searched, p.fma);
    {
        std::lock_guard<std::mutex> lock(searches().mu);
        searches().record.push_back(
            {kind_name(kind), problem_str(p), searched, capturing, f.candidates, chosen});
    }
    R2C_CHECK(chosen >= 0, "cuDNN has no ", kind_name(kind), " algorithm for ", problem_str(p), " within ",
              searched >> 20, " MiB of workspace");
    const Algo a = f.algos[static_cast<std::size_t>(chosen)];
    if (!capturing) {
        std::lock_guard<std::mutex> lock(mu);
        remembered[key] = a;
    }
    return a;
}

// The workspace of algorithm a, for its one run.
Tensor workspace(const Algo& a) {
    return scratch<unsigned char>(a.workspace);
}

const float kOne = 1.f, kZero = 0.f;

// out = conv(in, w).
void convolution(const Problem& p, const void* in, const void* w, void* out) {
    const Descriptors d(p);
    const Algo a = algorithm(
        kForward, p,
        [&](cudnnHandle_t h, void* work, std::size_t bytes) {
            cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnFindConvolutionForwardAlgorithmEx(h, d.in, in, d.filter, w, d.conv, d.out, out, kAlgos,
                                                      &n, perf, work, bytes),
               "cudnnFindConvolutionForwardAlgorithmEx");
            return found(perf, n, true);
        },
        [&](cudnnHandle_t h) {
            cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnGetConvolutionForwardAlgorithm_v7(h, d.in, d.filter, d.conv, d.out, kAlgos, &n, perf),
               "cudnnGetConvolutionForwardAlgorithm_v7");
            return found(perf, n, false);
        });
    ok(cudnnSetConvolutionMathType(d.conv, a.math), "cudnnSetConvolutionMathType");
    const Tensor work = workspace(a);
    ok(cudnnConvolutionForward(handle(), &kOne, d.in, in, d.filter, w, d.conv,
                               static_cast<cudnnConvolutionFwdAlgo_t>(a.id), work.raw_data(), a.workspace,
                               &kZero, d.out, out),
       "cudnnConvolutionForward");
}

// din = the data gradient of conv(., w) for dout: the transposed convolution.
void data_gradient(const Problem& p, const void* w, const void* dout, void* din) {
    const Descriptors d(p);
    const Algo a = algorithm(
        kData, p,
        [&](cudnnHandle_t h, void* work, std::size_t bytes) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.filter, w, d.out, dout, d.conv, d.in, din,
                                                           kAlgos, &n, perf, work, bytes),
               "cudnnFindConvolutionBackwardDataAlgorithmEx");
            return found(perf, n, true);
        },
        [&](cudnnHandle_t h) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.filter, d.out, d.conv, d.in, kAlgos, &n,
                                                           perf),
               "cudnnGetConvolutionBackwardDataAlgorithm_v7");
            return found(perf, n, false);
        });
    ok(cudnnSetConvolutionMathType(d.conv, a.math), "cudnnSetConvolutionMathType");
    const Tensor work = workspace(a);
    ok(cudnnConvolutionBackwardData(handle(), &kOne, d.filter, w, d.out, dout, d.conv,
                                    static_cast<cudnnConvolutionBwdDataAlgo_t>(a.id), work.raw_data(),
                                    a.workspace, &kZero, d.in, din),
       "cudnnConvolutionBackwardData");
}

// dw = the filter gradient of conv(in, .) for dout.
void filter_gradient(const Problem& p, const void* in, const void* dout, void* dw) {
    const Descriptors d(p);
    const Algo a = algorithm(
        kFilter, p,
        [&](cudnnHandle_t h, void* work, std::size_t bytes) {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.in, in, d.out, dout, d.conv, d.filter, dw,
                                                             kAlgos, &n, perf, work, bytes),
               "cudnnFindConvolutionBackwardFilterAlgorithmEx");
            return found(perf, n, true);
        },
        [&](cudnnHandle_t h) {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.in, d.out, d.conv, d.filter, kAlgos, &n,
                                                             perf),
               "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
            return found(perf, n, false);
        });
    ok(cudnnSetConvolutionMathType(d.conv, a.math), "cudnnSetConvolutionMathType");
    const Tensor work = workspace(a);
    ok(cudnnConvolutionBackwardFilter(handle(), &kOne, d.in, in, d.out, dout, d.conv,
                                      static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.id), work.raw_data(),
                                      a.workspace, &kZero, d.filter, dw),
       "cudnnConvolutionBackwardFilter");
}

std::size_t stack_size(const cuda::OperStackGeometry& s) {
    return std::size_t(s.N) * s.Q * s.C * s.Hp * s.Wp;
}
std::size_t weight_size(const OperConvGeometry& g) {
    return std::size_t(g.Q) * g.Cout * g.Cin * g.k * g.k;
}
std::size_t output_size(const OperConvGeometry& g) {
    return std::size_t(g.N) * g.Cout * g.Hout * g.Wout;
}
// Q = 1 in a frame that is x itself: x is its own float32 stack.
bool stack_is_x(const cuda::OperStackGeometry& s) {
    return s.Q == 1 && s.pad_top == 0 && s.pad_left == 0 && s.Hp == s.H && s.Wp == s.W;
}
// The stack of a transposed layer's input: no frame.
cuda::OperStackGeometry flat_stack(const OperConvGeometry& t) {
    return {t.N, t.Cin, t.H, t.W, t.Q, 0, 0, t.H, t.W, false};
}

// The element type T (float, or cuda::OperBf16 for bfloat16) of a stacked convolution's tensors and filter.
template <class T>
constexpr bool kBf16 = std::is_same_v<T, cuda::OperBf16>;

// The elements of scratch made for T.
template <class T>
T* elems(const Tensor& t) {
    return static_cast<T*>(t.raw_data());
}

// The stack s of x as T, formed in `keep` (x itself where it is its own float32 stack).
template <class T>
const T* stack_of(const cuda::OperStackGeometry& s, const float* x, Tensor& keep) {
    if constexpr (!kBf16<T>)
        if (stack_is_x(s)) return x;
    keep = scratch<T>(stack_size(s));
    cuda::oper_power_stack(s, x, elems<T>(keep), cuda::stream());
    return elems<T>(keep);
}

// The stacked filter [Cout, Q*Cin, k, k] of a convolution's weights as T (w itself for float32 and Q = 1).
template <class T>
const T* stacked_weights(const OperConvGeometry& g, const float* w, Tensor& keep) {
    if constexpr (!kBf16<T>)
        if (g.Q == 1) return w;
    keep = scratch<T>(weight_size(g));
    cuda::oper_weights_stack(w, elems<T>(keep), g.Q, g.Cout, g.Cin, g.k * g.k, cuda::stream());
    return elems<T>(keep);
}

// n values of float32 data as T: themselves, or converted to bfloat16 in `keep`.
template <class T>
const T* as_type(const float* v, std::size_t n, Tensor& keep);
template <>
const float* as_type<float>(const float* v, std::size_t, Tensor&) {
    return v;
}
template <>
const cuda::OperBf16* as_type<cuda::OperBf16>(const float* v, std::size_t n, Tensor& keep) {
    keep = scratch<cuda::OperBf16>(n);
    cuda::oper_to_bf16(v, elems<cuda::OperBf16>(keep), n, cuda::stream());
    return elems<cuda::OperBf16>(keep);
}

// dx through the stack s from the stack-shaped gradient `grad` (dx itself where x is its own float32 stack).
template <class T>
struct StackGradient {
    Tensor keep;
    T* grad;
    StackGradient(const cuda::OperStackGeometry& s, float* dx) {
        if constexpr (!kBf16<T>)
            if (stack_is_x(s)) {
                grad = dx;
                return;
            }
        keep = scratch<T>(stack_size(s));
        grad = elems<T>(keep);
    }
    void finish(const cuda::OperStackGeometry& s, const float* x, float* dx) const {
        if (keep.defined()) cuda::oper_power_stack_backward(s, x, grad, dx, cuda::stream());
    }
};

// The full output of a transposed layer [N, Cout, (H-1)*s + k, (W-1)*s + k] as T, before its crop.
template <class T>
struct FullOutput {
    int h, w;
    Tensor t;
    explicit FullOutput(const OperConvGeometry& g)
        : h((g.H - 1) * g.stride + g.k),
          w((g.W - 1) * g.stride + g.k),
          t(scratch<T>(std::size_t(g.N) * g.Cout * h * w)) {}
    T* data() const { return elems<T>(t); }
};

template <class T>
void forward_as(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
                cuda::OperActivation act, const cuda::OperConvOptions& opt) {
    Tensor stack_t, w_t;
    const T* xs = stack_of<T>(cuda::oper_stack_geometry(g), x, stack_t);
    const T* ws = stacked_weights<T>(g, w, w_t);
    if constexpr (kBf16<T>) {
        const Tensor z = scratch<T>(output_size(g));
        convolution(stacked(g, opt), xs, ws, elems<T>(z));
        cuda::oper_bias_activation(elems<T>(z), y, b, g.N, g.Cout, g.Hout * g.Wout, g.Q, act, cuda::stream());
    } else {
        convolution(stacked(g, opt), xs, ws, y);
        cuda::oper_bias_activation(y, b, g.N, g.Cout, g.Hout * g.Wout, g.Q, act, cuda::stream());
    }
}

template <class T>
void backward_data_as(const OperConvGeometry& g, const float* x, const float* w, const float* dz, float* dx,
                      const cuda::OperConvOptions& opt) {
    const cuda::OperStackGeometry s = cuda::oper_stack_geometry(g);
    const StackGradient<T> dstack(s, dx);
    Tensor w_t, dz_t;
    const T* ws = stacked_weights<T>(g, w, w_t);
    data_gradient(stacked(g, opt), ws, as_type<T>(dz, output_size(g), dz_t), dstack.grad);
    dstack.finish(s, x, dx);
}

template <class T>
void backward_weights_as(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                         const cuda::OperConvOptions& opt) {
    Tensor stack_t, dz_t;
    const T* xs = stack_of<T>(cuda::oper_stack_geometry(g), x, stack_t);
    const T* dzs = as_type<T>(dz, output_size(g), dz_t);
    if (!kBf16<T> && g.Q == 1) {
        filter_gradient(stacked(g, opt), xs, dzs, dw);
        return;
    }
    const Tensor dws = scratch<T>(weight_size(g));
    filter_gradient(stacked(g, opt), xs, dzs, elems<T>(dws));
    cuda::oper_weights_unstack(elems<T>(dws), dw, g.Q, g.Cout, g.Cin, g.k * g.k, cuda::stream());
}

template <class T>
void transpose_forward_as(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
                          cuda::OperActivation act, const cuda::OperConvOptions& opt) {
    Tensor stack_t, w_t;
    const T* xs = stack_of<T>(flat_stack(g), x, stack_t);
    const FullOutput<T> full(g);
    data_gradient(stacked_transposed(g, opt), as_type<T>(w, weight_size(g), w_t), xs, full.data());
    cuda::oper_crop(full.data(), y, g.N, g.Cout, full.h, full.w, g.pad_top, g.pad_left, g.Hout, g.Wout,
                    cuda::stream());
    cuda::oper_bias_activation(y, b, g.N, g.Cout, g.Hout * g.Wout, g.Q, act, cuda::stream());
}

template <class T>
void transpose_backward_data_as(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                                float* dx, const cuda::OperConvOptions& opt) {
    const FullOutput<T> full(g);
    cuda::oper_uncrop(dz, full.data(), g.N, g.Cout, full.h, full.w, g.pad_top, g.pad_left, g.Hout, g.Wout,
                      cuda::stream());
    const cuda::OperStackGeometry s = flat_stack(g);
    const StackGradient<T> dstack(s, dx);
    Tensor w_t;
    convolution(stacked_transposed(g, opt), full.data(), as_type<T>(w, weight_size(g), w_t), dstack.grad);
    dstack.finish(s, x, dx);
}

template <class T>
void transpose_backward_weights_as(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                   const cuda::OperConvOptions& opt) {
    const FullOutput<T> full(g);
    cuda::oper_uncrop(dz, full.data(), g.N, g.Cout, full.h, full.w, g.pad_top, g.pad_left, g.Hout, g.Wout,
                      cuda::stream());
    Tensor stack_t;
    const T* xs = stack_of<T>(flat_stack(g), x, stack_t);
    if constexpr (kBf16<T>) {
        const Tensor dws = scratch<T>(weight_size(g));
        filter_gradient(stacked_transposed(g, opt), full.data(), xs, elems<T>(dws));
        cuda::oper_from_bf16(elems<T>(dws), dw, weight_size(g), cuda::stream());
    } else {
        filter_gradient(stacked_transposed(g, opt), full.data(), xs, dw);
    }
}

}  // namespace

void forward(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
             cuda::OperActivation act, const cuda::OperConvOptions& opt) {
    cuda::oper_conv_check_geometry(cuda::OperPass::Forward, g);
    (bf16_data(opt) ? forward_as<cuda::OperBf16> : forward_as<float>)(g, x, w, b, y, act, opt);
}

void backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz, float* dx,
                   const cuda::OperConvOptions& opt) {
    cuda::oper_conv_check_geometry(cuda::OperPass::Forward, g);  // reflect pads are taken here
    (bf16_data(opt) ? backward_data_as<cuda::OperBf16> : backward_data_as<float>)(g, x, w, dz, dx, opt);
}

void backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw, float* db,
                      const cuda::OperConvOptions& opt) {
    cuda::oper_conv_check_geometry(cuda::OperPass::BackwardWeights, g);
    (bf16_data(opt) ? backward_weights_as<cuda::OperBf16> : backward_weights_as<float>)(g, x, dz, dw, opt);
    if (db != nullptr) cuda::oper_bias_backward(dz, db, g.N, g.Cout, g.Hout * g.Wout, g.Q, cuda::stream());
}

void transpose_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
                       cuda::OperActivation act, const cuda::OperConvOptions& opt) {
    cuda::oper_conv_check_geometry(cuda::OperPass::TransposeForward, g);
    (bf16_data(opt) ? transpose_forward_as<cuda::OperBf16> : transpose_forward_as<float>)(g, x, w, b, y, act,
                                                                                          opt);
}

void transpose_backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                             float* dx, const cuda::OperConvOptions& opt) {
    cuda::oper_conv_check_geometry(cuda::OperPass::TransposeBackwardData, g);
    (bf16_data(opt) ? transpose_backward_data_as<cuda::OperBf16>
                    : transpose_backward_data_as<float>)(g, x, w, dz, dx, opt);
}

void transpose_backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                float* db, const cuda::OperConvOptions& opt) {
    cuda::oper_conv_check_geometry(cuda::OperPass::TransposeBackwardWeights, g);
    (bf16_data(opt) ? transpose_backward_weights_as<cuda::OperBf16>
                    : transpose_backward_weights_as<float>)(g, x, dz, dw, opt);
    if (db != nullptr) cuda::oper_bias_backward(dz, db, g.N, g.Cout, g.Hout * g.Wout, g.Q, cuda::stream());
}

}  // namespace r2c::ops::cudnn

namespace r2c::cuda {

std::vector<CudnnSearch> cudnn_searches() {
    ops::cudnn::Searches& s = ops::cudnn::searches();
    std::lock_guard<std::mutex> lock(s.mu);
    return s.record;
}

std::string cudnn_version() {
#ifdef R2C_CUDA_EMULATION
    return "stand-in of the CUDA emulator";  // kernels/emulator/cudnn.h
#else
    // major * 10000 + minor * 100 + patch since cuDNN 9; major * 1000 + minor * 100 + patch before.
    const std::size_t v = cudnnGetVersion();
    if (v < 9000) return detail::concat(v / 1000, ".", v / 100 % 10, ".", v % 100);
    return detail::concat(v / 10000, ".", v / 100 % 100, ".", v % 100);
#endif
}

}  // namespace r2c::cuda

#else  // R2C_HAVE_CUDNN

namespace r2c::ops::cudnn {

namespace {
[[noreturn]] void missing(const cuda::OperConvGeometry& g) {
    throw Error(detail::concat("the cuDNN path of the operational convolution (", cuda::oper_geometry_str(g),
                               ") is not in this build: it was built without cuDNN"));
}
}  // namespace

void forward(const cuda::OperConvGeometry& g, const float*, const float*, const float*, float*,
             cuda::OperActivation, const cuda::OperConvOptions&) {
    missing(g);
}
void backward_data(const cuda::OperConvGeometry& g, const float*, const float*, const float*, float*,
                   const cuda::OperConvOptions&) {
    missing(g);
}
void backward_weights(const cuda::OperConvGeometry& g, const float*, const float*, float*, float*,
                      const cuda::OperConvOptions&) {
    missing(g);
}
void transpose_forward(const cuda::OperConvGeometry& g, const float*, const float*, const float*, float*,
                       cuda::OperActivation, const cuda::OperConvOptions&) {
    missing(g);
}
void transpose_backward_data(const cuda::OperConvGeometry& g, const float*, const float*, const float*,
                             float*, const cuda::OperConvOptions&) {
    missing(g);
}
void transpose_backward_weights(const cuda::OperConvGeometry& g, const float*, const float*, float*, float*,
                                const cuda::OperConvOptions&) {
    missing(g);
}

}  // namespace r2c::ops::cudnn

namespace r2c::cuda {

std::vector<CudnnSearch> cudnn_searches() {
    return {};  // no cuDNN in this build
}

std::string cudnn_version() {
    return "";
}

}  // namespace r2c::cuda

#endif  // R2C_HAVE_CUDNN
#endif  // R2C_WITH_CUDA
