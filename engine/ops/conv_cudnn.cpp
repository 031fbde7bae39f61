// The operational convolution through cuDNN on the padded power stack (engine/ops/conv_cudnn.h).
#ifdef R2C_WITH_CUDA
#include "engine/ops/conv_cudnn.h"

#include "engine/error.h"

#ifdef R2C_HAVE_CUDNN

#include <cudnn.h>

#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/device.h"
#include "engine/error.h"
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

// The stacked convolution of g: stack [N, Q*Cin, Hp, Wp], filter [Cout, Q*Cin, k, k], plain [N, Cout, Hout,
// Wout], valid, stride g.stride.
class Descriptors {
  public:
    cudnnTensorDescriptor_t stack = nullptr, plain = nullptr;
    cudnnFilterDescriptor_t filter = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;

    explicit Descriptors(const OperConvGeometry& g) {
        try {
            const cuda::OperStackGeometry s = cuda::oper_stack_geometry(g);
            ok(cudnnCreateTensorDescriptor(&stack), "cudnnCreateTensorDescriptor");
            ok(cudnnCreateTensorDescriptor(&plain), "cudnnCreateTensorDescriptor");
            ok(cudnnCreateFilterDescriptor(&filter), "cudnnCreateFilterDescriptor");
            ok(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
            ok(cudnnSetTensor4dDescriptor(stack, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.N, g.Q * g.Cin, s.Hp,
                                          s.Wp),
               "cudnnSetTensor4dDescriptor (stack)");
            ok(cudnnSetTensor4dDescriptor(plain, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.N, g.Cout, g.Hout,
                                          g.Wout),
               "cudnnSetTensor4dDescriptor (output)");
            ok(cudnnSetFilter4dDescriptor(filter, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.Cout, g.Q * g.Cin,
                                          g.k, g.k),
               "cudnnSetFilter4dDescriptor");
            ok(cudnnSetConvolution2dDescriptor(conv, 0, 0, g.stride, g.stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                               CUDNN_DATA_FLOAT),
               "cudnnSetConvolution2dDescriptor");
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
        if (stack != nullptr) cudnnDestroyTensorDescriptor(stack);
        if (plain != nullptr) cudnnDestroyTensorDescriptor(plain);
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

// The first algorithm that ran (or is expected to run) within the workspace limit without converting the
// FP32 operands to FP16.
template <class Perf>
std::optional<Algo> first_usable(const Perf* perf, int n) {
    for (int i = 0; i < n; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= cuda::conv_workspace_limit() &&
            perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
            return Algo{static_cast<int>(perf[i].algo), perf[i].mathType, perf[i].memory};
    return std::nullopt;
}

enum Kind { kForward, kData, kFilter };
const char* kind_name(Kind k) {
    return k == kForward ? "forward" : k == kData ? "backward data" : "backward filter";
}

Tensor scratch_floats(std::size_t n) {
    return Tensor::empty({static_cast<std::int64_t>(n == 0 ? 1 : n)}, DType::F32, Device::CUDA);
}
float* ptr(const Tensor& t) {
    return static_cast<float*>(t.raw_data());
}

// The algorithm for one pass of g. Outside a capture it is searched once per problem (cuDNN times its
// candidates on the pass's own buffers, the output overwritten) and remembered; inside one, where nothing
// may wait for the device, a problem met for the first time takes cuDNN's heuristic choice.
// search(handle, workspace, bytes) and guess(handle) return the first usable of their results.
template <class Search, class Guess>
Algo algorithm(Kind kind, const OperConvGeometry& g, Search search, Guess guess) {
    static std::mutex mu;
    static std::map<std::vector<std::int64_t>, Algo> found;
    const cuda::OperStackGeometry s = cuda::oper_stack_geometry(g);
    const std::size_t limit = cuda::conv_workspace_limit();
    const std::vector<std::int64_t> key{
        kind, g.N, g.Q * g.Cin, s.Hp, s.Wp, g.Cout, g.k, g.stride, static_cast<std::int64_t>(limit)};
    {
        std::lock_guard<std::mutex> lock(mu);
        const auto it = found.find(key);
        if (it != found.end()) return it->second;
    }
    const cudnnHandle_t h = handle();
    std::optional<Algo> a;
    if (cuda::capturing()) {
        a = guess(h);
    } else {
        const Tensor ws = scratch_floats(limit / sizeof(float));
        a = search(h, ws.raw_data(), limit);
    }
    R2C_CHECK(a.has_value(), "cuDNN has no ", kind_name(kind), " algorithm for ", cuda::oper_geometry_str(g),
              " within ", limit >> 20, " MiB of workspace");
    if (!cuda::capturing()) {
        std::lock_guard<std::mutex> lock(mu);
        found[key] = *a;
    }
    return *a;
}

std::size_t stack_floats(const OperConvGeometry& g) {
    const cuda::OperStackGeometry s = cuda::oper_stack_geometry(g);
    return std::size_t(g.N) * g.Q * g.Cin * s.Hp * s.Wp;
}
std::size_t weight_floats(const OperConvGeometry& g) {
    return std::size_t(g.Q) * g.Cout * g.Cin * g.k * g.k;
}
// Q = 1 without padding: x is its own stack.
bool stack_is_x(const OperConvGeometry& g) {
    const cuda::OperStackGeometry s = cuda::oper_stack_geometry(g);
    return g.Q == 1 && g.pad_top == 0 && g.pad_left == 0 && s.Hp == g.H && s.Wp == g.W;
}

// The stack of x for g, formed in `keep` (x itself where it is its own stack).
const float* stacked_input(const OperConvGeometry& g, const float* x, Tensor& keep) {
    if (stack_is_x(g)) return x;
    keep = scratch_floats(stack_floats(g));
    cuda::oper_power_stack(cuda::oper_stack_geometry(g), x, ptr(keep), cuda::stream());
    return ptr(keep);
}

// The stacked filter of g, regrouped in `keep` (w itself for Q = 1).
const float* stacked_weights(const OperConvGeometry& g, const float* w, Tensor& keep) {
    if (g.Q == 1) return w;
    keep = scratch_floats(weight_floats(g));
    cuda::oper_weights_stack(w, ptr(keep), g.Q, g.Cout, g.Cin, g.k * g.k, cuda::stream());
    return ptr(keep);
}

// The workspace of algorithm a, for its one run.
Tensor workspace(const Algo& a) {
    return scratch_floats((a.workspace + sizeof(float) - 1) / sizeof(float));
}

const float kOne = 1.f, kZero = 0.f;

}  // namespace

bool runs(cuda::OperPass pass, cuda::OperPrecision precision) {
    return precision == cuda::OperPrecision::TF32 &&
           (pass == cuda::OperPass::Forward || pass == cuda::OperPass::BackwardData ||
            pass == cuda::OperPass::BackwardWeights);
}

void forward(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
             cuda::OperActivation act) {
    cuda::oper_conv_check_geometry(cuda::OperPass::Forward, g);
    const Descriptors d(g);
    Tensor stack_t, w_t;
    const float* xs = stacked_input(g, x, stack_t);
    const float* ws = stacked_weights(g, w, w_t);
    const Algo a = algorithm(
        kForward, g,
        [&](cudnnHandle_t h, void* work, std::size_t bytes) {
            cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnFindConvolutionForwardAlgorithmEx(h, d.stack, xs, d.filter, ws, d.conv, d.plain, y,
                                                      kAlgos, &n, perf, work, bytes),
               "cudnnFindConvolutionForwardAlgorithmEx");
            return first_usable(perf, n);
        },
        [&](cudnnHandle_t h) {
            cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnGetConvolutionForwardAlgorithm_v7(h, d.stack, d.filter, d.conv, d.plain, kAlgos, &n,
                                                      perf),
               "cudnnGetConvolutionForwardAlgorithm_v7");
            return first_usable(perf, n);
        });
    ok(cudnnSetConvolutionMathType(d.conv, a.math), "cudnnSetConvolutionMathType");
    const Tensor work = workspace(a);
    ok(cudnnConvolutionForward(handle(), &kOne, d.stack, xs, d.filter, ws, d.conv,
                               static_cast<cudnnConvolutionFwdAlgo_t>(a.id), work.raw_data(), a.workspace,
                               &kZero, d.plain, y),
       "cudnnConvolutionForward");
    cuda::oper_bias_activation(y, b, g.N, g.Cout, g.Hout * g.Wout, g.Q, act, cuda::stream());
}

void backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz, float* dx) {
    cuda::oper_conv_check_geometry(cuda::OperPass::Forward, g);  // reflect pads are taken here
    const Descriptors d(g);
    const bool direct = stack_is_x(g);
    const Tensor dstack_t = direct ? Tensor() : scratch_floats(stack_floats(g));
    float* dxs = direct ? dx : ptr(dstack_t);
    Tensor w_t;
    const float* ws = stacked_weights(g, w, w_t);
    const Algo a = algorithm(
        kData, g,
        [&](cudnnHandle_t h, void* work, std::size_t bytes) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.filter, ws, d.plain, dz, d.conv, d.stack, dxs,
                                                           kAlgos, &n, perf, work, bytes),
               "cudnnFindConvolutionBackwardDataAlgorithmEx");
            return first_usable(perf, n);
        },
        [&](cudnnHandle_t h) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.filter, d.plain, d.conv, d.stack, kAlgos, &n,
                                                           perf),
               "cudnnGetConvolutionBackwardDataAlgorithm_v7");
            return first_usable(perf, n);
        });
    ok(cudnnSetConvolutionMathType(d.conv, a.math), "cudnnSetConvolutionMathType");
    const Tensor work = workspace(a);
    ok(cudnnConvolutionBackwardData(handle(), &kOne, d.filter, ws, d.plain, dz, d.conv,
                                    static_cast<cudnnConvolutionBwdDataAlgo_t>(a.id), work.raw_data(),
                                    a.workspace, &kZero, d.stack, dxs),
       "cudnnConvolutionBackwardData");
    if (!direct) cuda::oper_power_stack_backward(cuda::oper_stack_geometry(g), x, dxs, dx, cuda::stream());
}

void backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw, float* db) {
    cuda::oper_conv_check_geometry(cuda::OperPass::BackwardWeights, g);
    const Descriptors d(g);
    Tensor stack_t;
    const float* xs = stacked_input(g, x, stack_t);
    const Tensor dw_t = g.Q > 1 ? scratch_floats(weight_floats(g)) : Tensor();
    float* dws = g.Q > 1 ? ptr(dw_t) : dw;
    const Algo a = algorithm(
        kFilter, g,
        [&](cudnnHandle_t h, void* work, std::size_t bytes) {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.stack, xs, d.plain, dz, d.conv, d.filter,
                                                             dws, kAlgos, &n, perf, work, bytes),
               "cudnnFindConvolutionBackwardFilterAlgorithmEx");
            return first_usable(perf, n);
        },
        [&](cudnnHandle_t h) {
            cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
            int n = 0;
            ok(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.stack, d.plain, d.conv, d.filter, kAlgos,
                                                             &n, perf),
               "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
            return first_usable(perf, n);
        });
    ok(cudnnSetConvolutionMathType(d.conv, a.math), "cudnnSetConvolutionMathType");
    const Tensor work = workspace(a);
    ok(cudnnConvolutionBackwardFilter(handle(), &kOne, d.stack, xs, d.plain, dz, d.conv,
                                      static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.id), work.raw_data(),
                                      a.workspace, &kZero, d.filter, dws),
       "cudnnConvolutionBackwardFilter");
    if (g.Q > 1) cuda::oper_weights_unstack(dws, dw, g.Q, g.Cout, g.Cin, g.k * g.k, cuda::stream());
    if (db != nullptr) cuda::oper_bias_backward(dz, db, g.N, g.Cout, g.Hout * g.Wout, g.Q, cuda::stream());
}

}  // namespace r2c::ops::cudnn
#else  // R2C_HAVE_CUDNN

namespace r2c::ops::cudnn {

namespace {
[[noreturn]] void missing(const cuda::OperConvGeometry& g) {
    throw Error(detail::concat("the cuDNN path of the operational convolution (", cuda::oper_geometry_str(g),
                               ") is not in this build: it was built without cuDNN"));
}
}  // namespace

bool runs(cuda::OperPass, cuda::OperPrecision) {
    return false;
}
void forward(const cuda::OperConvGeometry& g, const float*, const float*, const float*, float*,
             cuda::OperActivation) {
    missing(g);
}
void backward_data(const cuda::OperConvGeometry& g, const float*, const float*, const float*, float*) {
    missing(g);
}
void backward_weights(const cuda::OperConvGeometry& g, const float*, const float*, float*, float*) {
    missing(g);
}

}  // namespace r2c::ops::cudnn

#endif  // R2C_HAVE_CUDNN
#endif  // R2C_WITH_CUDA
