// The CUDA emulator itself (kernels/emulator/): block barriers, shared memory per block, warp shuffles,
// atomics across blocks running in parallel, the reverse thread order that exposes races between
// barriers, launch-configuration errors, deadlock detection, skipped kernels, the ordering of streams and
// events, graph capture and replay, the stand-in for cuDNN, and (hidden, for AddressSanitizer builds) an
// out-of-bounds write. The emulated kernel tests elsewhere rely on these; they exist only in a
// -DR2C_CUDA_EMULATION=ON build.
#include <catch2/catch.hpp>

#include <numeric>
#include <string>
#include <vector>

#include "tests/support.h"

#ifdef R2C_CUDA_EMULATION
#include <cuda_bf16.h>
#include <cudnn.h>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "kernels/check.cuh"

namespace {

constexpr int kSlice = 64;

// Reverses each block's slice through shared memory: correct only if the barrier holds every thread
// until all have stored, and if each block has its own shared array.
__global__ void reverse_kernel(const int* in, int* out) {
    __shared__ int s[kSlice];
    const int t = threadIdx.x, base = blockIdx.x * kSlice;
    s[t] = in[base + t];
    __syncthreads();
    out[base + t] = s[kSlice - 1 - t];
}

// Lane 0 of each warp writes the warp's sum (shuffle down); every lane writes the butterfly sum (xor).
__global__ void warp_sums_kernel(const float* in, float* down, float* butterfly) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float d = in[i], b = in[i];
    for (int off = 16; off > 0; off /= 2) {
        d += __shfl_down_sync(0xffffffffu, d, off);
        b += __shfl_xor_sync(0xffffffffu, b, off);
    }
    if (threadIdx.x % 32 == 0) down[i / 32] = d;
    butterfly[i] = b;
}

// Shifts each block's slice by one through shared memory, with the barrier missing: a data race that the
// order of the threads between barriers decides.
__global__ void racy_shift_kernel(const int* in, int* out) {
    __shared__ int s[kSlice];
    const int t = threadIdx.x, base = blockIdx.x * kSlice;
    s[t] = in[base + t];
    out[base + t] = t > 0 ? s[t - 1] : s[t];
}

// Two block sums through one shared array; without the barrier between them, a warp that reaches the
// second sum first overwrites its partial before the other warp has read the first.
__global__ void two_sums_kernel(const float* in, float* out, bool barrier) {
    __shared__ float partial[2];
    const int t = threadIdx.x;
    float total[2];
    for (int pass = 0; pass < 2; ++pass) {
        float v = in[t] * static_cast<float>(pass + 1);
        for (int off = 16; off > 0; off /= 2)
            v += __shfl_down_sync(0xffffffffu, v, off);
        if (t % 32 == 0) partial[t / 32] = v;
        __syncthreads();
        total[pass] = partial[0] + partial[1];
        if (barrier) __syncthreads();
    }
    out[t] = total[0];
    out[64 + t] = total[1];
}

// Writes element n of a buffer of n: one past its end.
__global__ void write_past_end_kernel(float* p, int n) {
    if (threadIdx.x == 0) p[n] = 1.f;
}

__global__ void count_kernel(float* counter) {
    atomicAdd(counter, 1.f);
}

__global__ void add_kernel(float* x, float value) {
    x[threadIdx.x] += value;
}

// Odd lanes wait at the block barrier, even lanes at a shuffle: neither can complete.
__global__ void deadlock_kernel(float* out) {
    if (threadIdx.x % 2 == 1)
        __syncthreads();
    else
        out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.f, 1);
}

}  // namespace

TEST_CASE("emulated barriers order shared-memory stores before loads, per block", "[emulator]") {
    const int blocks = 5;
    std::vector<int> in(blocks * kSlice), out(in.size(), -1);
    std::iota(in.begin(), in.end(), 0);
    R2C_LAUNCH(blocks, kSlice, 0, nullptr, reverse_kernel)(in.data(), out.data());
    REQUIRE(cudaGetLastError() == cudaSuccess);
    for (int b = 0; b < blocks; ++b)
        for (int t = 0; t < kSlice; ++t)
            REQUIRE(out[b * kSlice + t] == b * kSlice + kSlice - 1 - t);
}

TEST_CASE("running threads in reverse order between barriers exposes a missing barrier", "[emulator]") {
    const r2c_emu::Order before = r2c_emu::order();
    const int blocks = 3;
    std::vector<int> in(blocks * kSlice), out(in.size(), -1);
    const auto wrong = [&](r2c_emu::Order order, int first) {
        std::iota(in.begin(), in.end(), first);
        r2c_emu::set_order(order);
        R2C_LAUNCH(blocks, kSlice, 0, nullptr, racy_shift_kernel)(in.data(), out.data());
        REQUIRE(cudaGetLastError() == cudaSuccess);
        int count = 0;
        for (int b = 0; b < blocks; ++b)
            for (int t = 1; t < kSlice; ++t)
                count += out[b * kSlice + t] != in[b * kSlice + t - 1];
        return count;
    };
    CHECK(wrong(r2c_emu::Order::Forward, 1000) == 0);
    CHECK(wrong(r2c_emu::Order::Reverse, 2000) == blocks * (kSlice - 1));
    CHECK(wrong(r2c_emu::Order::Forward, 3000) == 0);

    // With the barrier in place, the reverse order changes nothing.
    std::iota(in.begin(), in.end(), 0);
    r2c_emu::set_order(r2c_emu::Order::Reverse);
    R2C_LAUNCH(blocks, kSlice, 0, nullptr, reverse_kernel)(in.data(), out.data());
    r2c_emu::set_order(before);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    for (int b = 0; b < blocks; ++b)
        for (int t = 0; t < kSlice; ++t)
            REQUIRE(out[b * kSlice + t] == b * kSlice + kSlice - 1 - t);
}

TEST_CASE("each warp runs on to the next block barrier before the next warp resumes", "[emulator]") {
    const r2c_emu::Order before = r2c_emu::order();
    std::vector<float> in(64), out(128);
    for (int i = 0; i < 64; ++i)
        in[i] = static_cast<float>(i % 5 + 1);
    const float sum = std::accumulate(in.begin(), in.end(), 0.f);
    const auto wrong = [&](r2c_emu::Order order, bool barrier) {
        r2c_emu::set_order(order);
        R2C_LAUNCH(1, 64, 0, nullptr, two_sums_kernel)(in.data(), out.data(), barrier);
        REQUIRE(cudaGetLastError() == cudaSuccess);
        int count = 0;
        for (int t = 0; t < 64; ++t)
            count += (out[t] != sum) + (out[64 + t] != 2 * sum);
        return count;
    };
    CHECK(wrong(r2c_emu::Order::Forward, true) == 0);
    CHECK(wrong(r2c_emu::Order::Reverse, true) == 0);
    CHECK(wrong(r2c_emu::Order::Forward, false) == 32);  // the second warp reads the first's new partial
    CHECK(wrong(r2c_emu::Order::Reverse, false) == 32);
    r2c_emu::set_order(before);
}

TEST_CASE("emulated warp shuffles exchange values between lanes", "[emulator]") {
    const int blocks = 3, threads = 96;
    std::vector<float> in(blocks * threads), down(in.size() / 32, -1.f), butterfly(in.size(), -1.f);
    for (std::size_t i = 0; i < in.size(); ++i)
        in[i] = static_cast<float>(i % 7) + 0.5f;
    R2C_LAUNCH(blocks, threads, 0, nullptr, warp_sums_kernel)(in.data(), down.data(), butterfly.data());
    REQUIRE(cudaGetLastError() == cudaSuccess);
    for (std::size_t w = 0; w < down.size(); ++w) {
        const float expect = std::accumulate(in.begin() + w * 32, in.begin() + (w + 1) * 32, 0.f);
        REQUIRE(down[w] == expect);
        for (std::size_t lane = 0; lane < 32; ++lane)
            REQUIRE(butterfly[w * 32 + lane] == expect);
    }
}

TEST_CASE("emulated atomics add exactly across parallel blocks", "[emulator]") {
    float counter = 0.f;
    R2C_LAUNCH(dim3(40, 3), 128, 0, nullptr, count_kernel)(&counter);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    REQUIRE(counter == 40.f * 3 * 128);
}

TEST_CASE("the emulator reports bad launch configurations and barrier deadlocks as CUDA errors",
          "[emulator]") {
    float counter = 0.f;
    R2C_LAUNCH(1, 2048, 0, nullptr, count_kernel)(&counter);
    REQUIRE(cudaGetLastError() == cudaErrorInvalidConfiguration);
    REQUIRE(counter == 0.f);
    R2C_LAUNCH(dim3(1, 70000), 32, 0, nullptr, count_kernel)(&counter);
    REQUIRE(cudaGetLastError() == cudaErrorInvalidConfiguration);
    REQUIRE(cudaGetLastError() == cudaSuccess);  // reading the error clears it

    std::vector<float> out(32, 0.f);
    R2C_LAUNCH(1, 32, 0, nullptr, deadlock_kernel)(out.data());
    REQUIRE(cudaGetLastError() == cudaErrorLaunchFailure);
}

TEST_CASE("with kernels skipped, launches are checked and counted but compute nothing; copies still run",
          "[emulator]") {
    struct Restore {
        ~Restore() { r2c_emu::set_kernels_skipped(false); }
    } restore;
    r2c_emu::set_kernels_skipped(true);
    cudaDeviceProp prop;
    REQUIRE(cudaGetDeviceProperties(&prop, 0) == cudaSuccess);
    CHECK(std::string(prop.name).find("kernels skipped") != std::string::npos);
    float counter = 0.f;
    const std::uint64_t launches = r2c::cuda::kernel_launches();
    R2C_LAUNCH(dim3(40, 3), 128, 0, nullptr, count_kernel)(&counter);
    R2C_CUDA_LAUNCH_CHECK("count_kernel");
    CHECK(r2c::cuda::kernel_launches() == launches + 1);
    CHECK(counter == 0.f);
    R2C_LAUNCH(1, 2048, 0, nullptr, count_kernel)(&counter);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    std::vector<float> src{1, 2, 3}, dst(3, 0.f), host(3, 5.f);
    REQUIRE(cudaMemcpy(dst.data(), src.data(), sizeof(float) * 3, cudaMemcpyDeviceToDevice) == cudaSuccess);
    CHECK(dst == src);
    REQUIRE(cudaMemcpy(host.data(), dst.data(), sizeof(float) * 3, cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(host == std::vector<float>(3, 0.f));
    r2c_emu::set_kernels_skipped(false);
    REQUIRE(cudaGetDeviceProperties(&prop, 0) == cudaSuccess);
    CHECK(std::string(prop.name) == "CUDA emulator on the CPU");
    R2C_LAUNCH(2, 32, 0, nullptr, count_kernel)(&counter);
    CHECK(counter == 64.f);
}

TEST_CASE("emulated streams run queued copies only when something orders them", "[emulator]") {
    std::vector<float> src(100), dst(100, -1.f);
    std::iota(src.begin(), src.end(), 0.f);
    const std::size_t bytes = src.size() * sizeof(float);
    cudaStream_t side = nullptr, blocking = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking) == cudaSuccess);
    REQUIRE(cudaStreamCreate(&blocking) == cudaSuccess);
    cudaEvent_t copied = nullptr;
    REQUIRE(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming) == cudaSuccess);

    // A non-blocking stream's copy is not ordered before legacy-stream work: not visible yet.
    REQUIRE(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyHostToDevice, side) == cudaSuccess);
    REQUIRE(cudaEventRecord(copied, side) == cudaSuccess);
    float counter = 0.f;
    R2C_LAUNCH(1, 1, 0, nullptr, count_kernel)(&counter);
    CHECK(dst[5] == -1.f);
    // Waiting for its event orders it.
    REQUIRE(cudaStreamWaitEvent(nullptr, copied, 0) == cudaSuccess);
    CHECK(dst == src);

    // An event covers only the work queued before it was recorded.
    std::vector<float> later(100, -1.f);
    REQUIRE(cudaEventRecord(copied, side) == cudaSuccess);
    REQUIRE(cudaMemcpyAsync(later.data(), src.data(), bytes, cudaMemcpyHostToDevice, side) == cudaSuccess);
    REQUIRE(cudaEventSynchronize(copied) == cudaSuccess);
    CHECK(later[5] == -1.f);
    REQUIRE(cudaStreamSynchronize(side) == cudaSuccess);
    CHECK(later == src);

    // A blocking stream's work completes before any legacy-stream work; a launch on a stream runs its queue.
    std::vector<float> via_blocking(100, -1.f), via_launch(100, -1.f);
    REQUIRE(cudaMemsetAsync(via_blocking.data(), 0, bytes, blocking) == cudaSuccess);
    R2C_LAUNCH(1, 1, 0, nullptr, count_kernel)(&counter);
    CHECK(via_blocking[5] == 0.f);
    REQUIRE(cudaMemsetAsync(via_launch.data(), 0, bytes, side) == cudaSuccess);
    R2C_LAUNCH(1, 1, 0, side, count_kernel)(&counter);
    CHECK(via_launch[5] == 0.f);
    CHECK(counter == 3.f);

    REQUIRE(cudaEventDestroy(copied) == cudaSuccess);
    REQUIRE(cudaStreamDestroy(side) == cudaSuccess);
    REQUIRE(cudaStreamDestroy(blocking) == cudaSuccess);
}

TEST_CASE("emulated graphs record a capture and replay it; what a capture forbids fails it", "[emulator]") {
    cudaStream_t s = nullptr;
    REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
    std::vector<float> x(4, 0.f), staged(4, 1.f);
    float value = 10.f;

    // Recorded, not run: kernel arguments by value, copy sources by address.
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess);
    REQUIRE(cudaMemcpyAsync(x.data(), staged.data(), 4 * sizeof(float), cudaMemcpyHostToDevice, s) ==
            cudaSuccess);
    R2C_LAUNCH(1, 4, 0, s, add_kernel)(x.data(), value);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    value = 100.f;
    void* p = nullptr;
    REQUIRE(cudaMalloc(&p, 256) == cudaSuccess);  // allowed in relaxed mode
    cudaGraph_t graph = nullptr;
    REQUIRE(cudaStreamEndCapture(s, &graph) == cudaSuccess);
    CHECK(x == std::vector<float>(4, 0.f));
    cudaGraphExec_t exec = nullptr;
    REQUIRE(cudaGraphInstantiateWithFlags(&exec, graph, 0) == cudaSuccess);
    REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
    staged.assign(4, 2.f);
    REQUIRE(cudaGraphLaunch(exec, s) == cudaSuccess);
    CHECK(x == std::vector<float>(4, 12.f));
    REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
    REQUIRE(cudaFree(p) == cudaSuccess);

    // Legacy-stream work during the capture of a blocking stream fails, and so does the capture.
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess);
    float host = 0.f;
    CHECK(cudaMemcpy(&host, x.data(), sizeof(float), cudaMemcpyDeviceToHost) ==
          cudaErrorStreamCaptureImplicit);
    CHECK(cudaStreamEndCapture(s, &graph) == cudaErrorStreamCaptureInvalidated);
    CHECK(graph == nullptr);
    // So do a wait on an event from outside the capture, a synchronisation, and cudaMalloc in global mode.
    cudaEvent_t outside = nullptr;
    REQUIRE(cudaEventCreate(&outside) == cudaSuccess);
    REQUIRE(cudaEventRecord(outside, s) == cudaSuccess);
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess);
    CHECK(cudaStreamWaitEvent(s, outside, 0) == cudaErrorStreamCaptureIsolation);
    CHECK(cudaStreamEndCapture(s, &graph) == cudaErrorStreamCaptureInvalidated);
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaStreamEndCapture(s, &graph) == cudaErrorStreamCaptureInvalidated);
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
    CHECK(cudaMalloc(&p, 256) == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaStreamEndCapture(s, &graph) == cudaErrorStreamCaptureInvalidated);
    cudaGetLastError();
    // Afterwards the stream runs work at once again.
    R2C_LAUNCH(1, 4, 0, s, add_kernel)(x.data(), 1.f);
    CHECK(x == std::vector<float>(4, 13.f));
    REQUIRE(cudaEventDestroy(outside) == cudaSuccess);
    REQUIRE(cudaStreamDestroy(s) == cudaSuccess);
}

// Hidden: run alone in an AddressSanitizer build (.ci/run), where ASan must report the write, as
// compute-sanitizer's memcheck does on a GPU. The write lands inside the 256-byte
// rounding of the allocation, which the emulator poisons under ASan.
// The stand-in for cuDNN (kernels/emulator/cudnn.h) against the engine's CPU convolution (Q = 1) in float64:
// forward, data gradient and filter gradient with padding and stride 2; exact with FMA math, TF32 operands
// otherwise; beta accumulating; the searches; cuDNN's errors.
TEST_CASE("the emulator's stand-in for cuDNN convolves as cuDNN does", "[emulator][cudnn]") {
    using r2c::Tensor;
    const std::int64_t n = 2, c = 3, h = 7, w = 6, k = 4, p = 4, q = 3;  // 3x3, pad 1, stride 2
    r2c::Rng rng(5);
    const Tensor x = r2c::test::rand({n, c, h, w}, rng);
    const Tensor wt = r2c::test::rand({1, k, c, 3, 3}, rng);
    const Tensor y = r2c::oper_conv2d(x, wt, Tensor(), 2, r2c::Padding::explicit_pads(1, 1, 1, 1));
    REQUIRE(y.shape() == r2c::Shape{n, k, p, q});
    const Tensor dy = r2c::test::rand({n, k, p, q}, rng, -1, 1, false);
    r2c::sum(r2c::mul(y, dy)).backward();
    const auto on_device = [](const Tensor& t) {
        return t.detach().to(r2c::DType::F32).to(r2c::Device::CUDA);
    };
    const auto values = [](const Tensor& t) {
        return t.to(r2c::Device::CPU).to(r2c::DType::F64).to_vector();
    };
    const auto f32 = [](const Tensor& t) { return static_cast<float*>(t.raw_data()); };
    const Tensor xd = on_device(x), wd = on_device(wt), dyd = on_device(dy);
    const Tensor out = on_device(y), dx = on_device(x), dw = on_device(wt);

    cudnnHandle_t handle = nullptr;
    REQUIRE(cudnnCreate(&handle) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetStream(handle, static_cast<cudaStream_t>(r2c::cuda::stream())) == CUDNN_STATUS_SUCCESS);
    cudnnTensorDescriptor_t xdesc = nullptr, ydesc = nullptr;
    cudnnFilterDescriptor_t wdesc = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    REQUIRE(cudnnCreateTensorDescriptor(&xdesc) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnCreateTensorDescriptor(&ydesc) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnCreateFilterDescriptor(&wdesc) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnCreateConvolutionDescriptor(&conv) == CUDNN_STATUS_SUCCESS);
    const float one = 1.f, zero = 0.f;
    // Unset descriptors are an error.
    CHECK(cudnnConvolutionForward(handle, &one, xdesc, f32(xd), wdesc, f32(wd), conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, ydesc,
                                  f32(out)) == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnSetTensor4dDescriptor(xdesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetFilter4dDescriptor(wdesc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, 3, 3) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolution2dDescriptor(conv, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS);
    // An output of the wrong size is an error.
    REQUIRE(cudnnSetTensor4dDescriptor(ydesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, k, p + 1, q) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(cudnnConvolutionForward(handle, &one, xdesc, f32(xd), wdesc, f32(wd), conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, ydesc,
                                  f32(out)) == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnSetTensor4dDescriptor(ydesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, k, p, q) ==
            CUDNN_STATUS_SUCCESS);

    // FMA math: the three passes to float rounding (outputs poisoned first).
    for (const Tensor* t : {&out, &dx, &dw})
        REQUIRE(cudaMemset(t->raw_data(), 0xff, t->numel() * sizeof(float)) == cudaSuccess);
    REQUIRE(cudnnConvolutionForward(handle, &one, xdesc, f32(xd), wdesc, f32(wd), conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, ydesc,
                                    f32(out)) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnConvolutionBackwardData(handle, &one, wdesc, f32(wd), ydesc, f32(dyd), conv,
                                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero, xdesc,
                                         f32(dx)) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnConvolutionBackwardFilter(handle, &one, xdesc, f32(xd), ydesc, f32(dyd), conv,
                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &zero, wdesc,
                                           f32(dw)) == CUDNN_STATUS_SUCCESS);
    CHECK(r2c::test::rel_l2(values(out), y.to_vector()) < 1e-6);
    CHECK(r2c::test::rel_l2(values(dx), x.grad().to_vector()) < 1e-6);
    CHECK(r2c::test::rel_l2(values(dw), wt.grad().to_vector()) < 1e-6);

    // beta = 1 adds to the output.
    REQUIRE(cudnnConvolutionForward(handle, &one, xdesc, f32(xd), wdesc, f32(wd), conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &one, ydesc,
                                    f32(out)) == CUDNN_STATUS_SUCCESS);
    CHECK(r2c::test::rel_l2(values(out), r2c::add(y, y).to_vector()) < 1e-6);

    // The default math rounds the operands to TF32: near the exact result, not equal to it.
    REQUIRE(cudnnSetConvolutionMathType(conv, CUDNN_DEFAULT_MATH) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnConvolutionForward(handle, &one, xdesc, f32(xd), wdesc, f32(wd), conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, ydesc,
                                    f32(out)) == CUDNN_STATUS_SUCCESS);
    const double tf32 = r2c::test::rel_l2(values(out), y.to_vector());
    CHECK(tf32 > 1e-6);
    CHECK(tf32 < 5e-3);

    // A workspace smaller than the algorithm needs is an error; a search runs only what fits, fastest first.
    CHECK(cudnnConvolutionForward(handle, &one, xdesc, f32(xd), wdesc, f32(wd), conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_FFT, nullptr, 0, &zero, ydesc,
                                  f32(out)) == CUDNN_STATUS_BAD_PARAM);
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int returned = 0;
    REQUIRE(cudnnFindConvolutionForwardAlgorithmEx(handle, xdesc, f32(xd), wdesc, f32(wd), conv, ydesc,
                                                   f32(out), 8, &returned, perf, nullptr,
                                                   0) == CUDNN_STATUS_SUCCESS);
    REQUIRE(returned == 3);
    CHECK(perf[0].algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
    CHECK(perf[0].status == CUDNN_STATUS_SUCCESS);
    CHECK(perf[0].memory == 0);
    CHECK(perf[1].status == CUDNN_STATUS_ALLOC_FAILED);
    CHECK(perf[2].status == CUDNN_STATUS_ALLOC_FAILED);
    const Tensor workspace = r2c::Tensor::empty({1 << 20}, r2c::DType::F32, r2c::Device::CUDA);
    REQUIRE(cudnnFindConvolutionForwardAlgorithmEx(handle, xdesc, f32(xd), wdesc, f32(wd), conv, ydesc,
                                                   f32(out), 8, &returned, perf, workspace.raw_data(),
                                                   sizeof(float) << 20) == CUDNN_STATUS_SUCCESS);
    REQUIRE(returned == 3);
    CHECK(perf[0].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT);
    CHECK(perf[0].memory > 0);
    for (int i = 0; i < 3; ++i)
        CHECK(perf[i].status == CUDNN_STATUS_SUCCESS);
    CHECK(perf[0].time < perf[1].time);
    CHECK(r2c::test::rel_l2(values(out), y.to_vector()) < 5e-3);  // the search wrote the output

    // bfloat16 data in all three descriptors, FP32 compute: the FP32 sum of the bfloat16 operands, rounded
    // to bfloat16; a type that differs among the descriptors is an error.
    const auto bf16_values = [](const std::vector<double>& v) {
        std::vector<__nv_bfloat16> r(v.size());
        for (std::size_t i = 0; i < v.size(); ++i)
            r[i] = __float2bfloat16_rn(static_cast<float>(v[i]));
        return r;
    };
    const std::vector<__nv_bfloat16> x_h = bf16_values(x.to_vector()), w_h = bf16_values(wt.to_vector());
    const auto widened = [](const std::vector<__nv_bfloat16>& v) {
        std::vector<double> r(v.size());
        for (std::size_t i = 0; i < v.size(); ++i)
            r[i] = __bfloat162float(v[i]);
        return r;
    };
    const Tensor x_r = on_device(Tensor::from_vector(widened(x_h), x.shape()));
    const Tensor w_r = on_device(Tensor::from_vector(widened(w_h), wt.shape()));
    REQUIRE(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnConvolutionForward(handle, &one, xdesc, f32(x_r), wdesc, f32(w_r), conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, ydesc,
                                    f32(out)) == CUDNN_STATUS_SUCCESS);
    const std::vector<double> y_rounded = values(out);
    void *xb = nullptr, *wb = nullptr, *yb = nullptr;
    REQUIRE(cudaMalloc(&xb, x_h.size() * sizeof(__nv_bfloat16)) == cudaSuccess);
    REQUIRE(cudaMalloc(&wb, w_h.size() * sizeof(__nv_bfloat16)) == cudaSuccess);
    REQUIRE(cudaMalloc(&yb, y_rounded.size() * sizeof(__nv_bfloat16)) == cudaSuccess);
    REQUIRE(cudaMemcpy(xb, x_h.data(), x_h.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice) ==
            cudaSuccess);
    REQUIRE(cudaMemcpy(wb, w_h.data(), w_h.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice) ==
            cudaSuccess);
    REQUIRE(cudnnSetTensor4dDescriptor(xdesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_BFLOAT16, n, c, h, w) ==
            CUDNN_STATUS_SUCCESS);
    const auto forward_bf16 = [&] {
        return cudnnConvolutionForward(handle, &one, xdesc, xb, wdesc, wb, conv,
                                       CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, ydesc,
                                       yb);
    };
    CHECK(forward_bf16() == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnSetFilter4dDescriptor(wdesc, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NCHW, k, c, 3, 3) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetTensor4dDescriptor(ydesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_BFLOAT16, n, k, p, q) ==
            CUDNN_STATUS_SUCCESS);
    REQUIRE(forward_bf16() == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    std::vector<__nv_bfloat16> y_h(y_rounded.size());
    REQUIRE(cudaMemcpy(y_h.data(), yb, y_h.size() * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost) ==
            cudaSuccess);
    CHECK(widened(y_h) == widened(bf16_values(y_rounded)));
    CHECK(r2c::test::rel_l2(widened(y_h), y.to_vector()) < 2e-2);
    cudaFree(xb);
    cudaFree(wb);
    cudaFree(yb);

    // What the stand-in does not model is reported as unsupported.
    CHECK(cudnnSetTensor4dDescriptor(xdesc, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, c, h, w) ==
          CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(cudnnSetConvolution2dDescriptor(conv, 1, 1, 2, 2, 2, 2, CUDNN_CROSS_CORRELATION,
                                          CUDNN_DATA_FLOAT) == CUDNN_STATUS_NOT_SUPPORTED);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(wdesc);
    cudnnDestroyTensorDescriptor(ydesc);
    cudnnDestroyTensorDescriptor(xdesc);
    cudnnDestroy(handle);
}

TEST_CASE("a kernel that writes one element past its buffer", "[.][out-of-bounds]") {
    float* p = nullptr;
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&p), 100 * sizeof(float)) == cudaSuccess);
    R2C_LAUNCH(1, 32, 0, nullptr, write_past_end_kernel)(p, 100);
    cudaFree(p);
}

#else

TEST_CASE("the CUDA emulator", "[emulator]") {
    r2c::test::skip(
        "not an emulation build (configure with -DR2C_CUDA_EMULATION=ON to test the CUDA emulator)");
}

#endif
