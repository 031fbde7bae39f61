// Every non-convolution op of engine/ops.h on a CUDA device (kernels/ops.h) against the CPU reference, in
// the style of ggml's test-backend-ops: each case builds random float32 inputs (never all zero) of odd
// shapes, runs the op on the CPU and on the device, and compares the forward output and the gradient of
// every input of sum(op(...) * r), r random. Tolerance: relative L2 error <= 1e-5 (kTol) for each output
// and gradient; NaN must appear in exactly the same elements (the CPU result of the NaN cases).
// Before each device run the allocator's cache is refilled with NaN blocks (poison_device_cache), so an
// output element that a kernel fails to write reads as NaN and fails the comparison.
// Without a CUDA device every case reports SKIPPED; the emulation build (-DR2C_CUDA_EMULATION=ON) runs
// them on the CPU.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "tests/support.h"

#ifdef R2C_WITH_CUDA
#include <cuda_runtime.h>
#endif

using namespace r2c;

namespace {

constexpr double kTol = 1e-5;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

#ifdef R2C_WITH_CUDA
// Empties the device cache and refills it with NaN-filled blocks (all bits set), 16 of each power of two
// from 512 bytes to 1 MiB: every later allocation of up to 1 MiB is served from them (the allocator hands
// out a cached block at most twice the request), so it starts as NaN.
void poison_device_cache() {
    cuda::allocator().empty_cache();
    std::vector<Tensor> blocks;
    for (std::int64_t bytes = 512; bytes <= (1 << 20); bytes *= 2)
        for (int i = 0; i < 16; ++i) {
            blocks.push_back(Tensor::empty({bytes / 4}, DType::F32, Device::CUDA));
            REQUIRE(cudaMemset(blocks.back().raw_data(), 0xff, static_cast<std::size_t>(bytes)) ==
                    cudaSuccess);
        }
}
#endif

// Random float32 CPU tensor with entries uniform in [lo, hi).
Tensor rand32(const Shape& shape, Rng& rng, double lo = -1, double hi = 1, bool requires_grad = true) {
    return test::rand(shape, rng, lo, hi, false).to(DType::F32).set_requires_grad(requires_grad);
}

Tensor values32(const std::vector<double>& v, const Shape& shape, bool requires_grad = true) {
    return Tensor::from_vector(v, shape, DType::F32).set_requires_grad(requires_grad);
}

struct Run {
    Tensor y;
    V grads;  // one per input; undefined where the input needs none
};

// f on fresh copies of the inputs on `device` (requiring a gradient as the originals do), then the
// backward pass of sum(f(...) * r).
Run run_on(Device device, const Fn& f, const V& inputs, const Tensor& r) {
    V in;
    for (const Tensor& t : inputs) {
        Tensor c = Tensor::empty(t.shape(), t.dtype(), device);
        c.copy_from(t);
        in.push_back(c.set_requires_grad(t.requires_grad()));
    }
    Run out{f(in), {}};
    sum(mul(out.y, r.to(device))).backward();
    for (const Tensor& t : in)
        out.grads.push_back(t.grad().defined() ? t.grad().to(Device::CPU) : Tensor());
    out.y = out.y.to(Device::CPU);
    return out;
}

// The CUDA result against the CPU one: NaN in the same elements, relative L2 error <= kTol elsewhere.
void compare(const std::string& what, const Tensor& cuda_result, const Tensor& cpu_result) {
    INFO(what << ": CUDA " << cuda_result.str() << ", CPU " << cpu_result.str());
    REQUIRE(cuda_result.shape() == cpu_result.shape());
    const std::vector<double> got = cuda_result.to_vector(), want = cpu_result.to_vector();
    std::vector<double> got_finite, want_finite;
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": CUDA " << got[i] << ", CPU " << want[i]);
        REQUIRE(std::isnan(got[i]) == std::isnan(want[i]));
        if (std::isnan(want[i])) continue;
        got_finite.push_back(got[i]);
        want_finite.push_back(want[i]);
    }
    CHECK(test::rel_l2(got_finite, want_finite) <= kTol);
}

// Runs f on the CPU and on the device and compares the outputs and every input's gradient.
void check_op(const std::string& name, const Fn& f, const V& inputs, std::uint64_t seed = 7) {
    Rng rng(seed);
    const Tensor probe = f(inputs);
    const Tensor r = rand32(probe.shape(), rng, -1, 1, false);
    const Run cpu = run_on(Device::CPU, f, inputs, r);
#ifdef R2C_WITH_CUDA
    poison_device_cache();
#endif
    const Run dev = run_on(Device::CUDA, f, inputs, r);
    compare(name + " output", dev.y, cpu.y);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const std::string what = name + " gradient of input " + std::to_string(i);
        INFO(what);
        REQUIRE(dev.grads[i].defined() == cpu.grads[i].defined());
        if (cpu.grads[i].defined()) compare(what, dev.grads[i], cpu.grads[i]);
    }
}

const Shape kOdd{2, 3, 7, 5};
const Shape kPoint{2, 3, 1, 1};

}  // namespace

#ifdef R2C_WITH_CUDA
TEST_CASE("poison_device_cache makes fresh CUDA tensors read as NaN", "[ops_cuda]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    poison_device_cache();
    for (const Shape& s : {Shape{1}, Shape{2, 3, 7, 5}, Shape{2, 3, 128, 128}}) {
        const std::vector<double> v = Tensor::empty(s, DType::F32, Device::CUDA).to_vector();
        for (double e : v)
            REQUIRE(std::isnan(e));
    }
}
#endif

TEST_CASE("CUDA ops reject float64 tensors by name", "[ops_cuda]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    const Tensor x = Tensor::zeros({2, 3, 4, 4}, DType::F64, Device::CUDA);
    CHECK_THROWS_WITH(tanh(x), Catch::Contains("tanh: CUDA ops take float32 tensors"));
    CHECK_THROWS_WITH(instance_norm(x, Tensor::zeros({3}, DType::F64, Device::CUDA),
                                    Tensor::zeros({3}, DType::F64, Device::CUDA)),
                      Catch::Contains("instance_norm: CUDA ops take float32 tensors"));
    CHECK_THROWS_WITH(mse(x, x), Catch::Contains("mse: CUDA ops take float32 tensors"));
}

TEST_CASE("instance_norm on CUDA matches the CPU", "[ops_cuda][instance_norm]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(1);
    const Fn f = [](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3); };
    // Planes walked by the block (35 and 1 values; 16,637, past what registers hold) and planes held in
    // registers, 1, 2, 4, 8 and 16 values a thread (323, 1,221, 3,477, 6,319 and 16,384 values).
    for (const Shape& s : {kOdd, kPoint, Shape{2, 3, 17, 19}, Shape{1, 2, 33, 37}, Shape{1, 2, 57, 61},
                           Shape{1, 2, 71, 89}, Shape{1, 2, 128, 128}, Shape{1, 2, 131, 127}}) {
        const V in{rand32(s, rng, -2, 3), rand32({s[1]}, rng, 0.5, 1.5), rand32({s[1]}, rng)};
        check_op("instance_norm " + shape_str(s), f, in);
    }
    // With each fused activation: the kernel applies it and takes the gradient back through it.
    for (Activation act : {Activation::Tanh, Activation::Relu, Activation::LeakyRelu})
        for (const Shape& s : {kOdd, Shape{2, 3, 33, 37}}) {
            const V in{rand32(s, rng, -2, 3), rand32({3}, rng, 0.5, 1.5), rand32({3}, rng)};
            check_op(
                "instance_norm " + shape_str(s) + " with activation " + std::to_string(static_cast<int>(act)),
                [act](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3, act); }, in);
        }
    // A constant input (an image): gamma and beta still get their gradients, x none.
    for (const Shape& s : {kOdd, Shape{2, 3, 33, 37}})
        check_op("instance_norm of a constant " + shape_str(s), f,
                 {rand32(s, rng, -1, 1, false), rand32({3}, rng, 0.5, 1.5), rand32({3}, rng)});
    // With a residual added before the activation (or none), on a walked plane and on planes held in
    // registers: its gradient is the one at the pre-activation.
    for (Activation act : {Activation::None, Activation::Tanh})
        for (const Shape& s : {kOdd, Shape{2, 3, 33, 37}, Shape{1, 3, 128, 128}}) {
            const V in{rand32(s, rng, -2, 3), rand32({3}, rng, 0.5, 1.5), rand32({3}, rng),
                       rand32(s, rng, -1, 1)};
            check_op(
                "instance_norm " + shape_str(s) + " with a residual, activation " +
                    std::to_string(static_cast<int>(act)),
                [act](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3, act, t[3]); }, in);
        }
}

TEST_CASE("reflect_pad on CUDA matches the CPU", "[ops_cuda][reflect_pad]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(2);
    for (int pad : {0, 1, 2, 4})
        check_op("reflect_pad " + std::to_string(pad), [pad](const V& t) { return reflect_pad(t[0], pad); },
                 {rand32(kOdd, rng)});
    check_op("reflect_pad of a 1x1 plane", [](const V& t) { return reflect_pad(t[0], 0); },
             {rand32(kPoint, rng)});
    check_op("reflect_pad of 2x3", [](const V& t) { return reflect_pad(t[0], 1); },
             {rand32({1, 1, 2, 3}, rng)});
}

TEST_CASE("activations on CUDA match the CPU", "[ops_cuda][activation]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(3);
    for (const Shape& s : {kOdd, kPoint}) {
        check_op("tanh", [](const V& t) { return tanh(t[0]); }, {rand32(s, rng, -3, 3)});
        check_op("relu", [](const V& t) { return relu(t[0]); }, {rand32(s, rng)});
        check_op("leaky_relu", [](const V& t) { return leaky_relu(t[0], 0.2); }, {rand32(s, rng)});
    }
    // relu lets NaN through and sends no gradient there; exact zeros get none either.
    check_op("relu with NaN and zeros", [](const V& t) { return relu(t[0]); },
             {values32({0.5, kNaN, -1, 0, 2, kNaN, -0.25}, {7})});
}

TEST_CASE("elementwise arithmetic and sum on CUDA match the CPU", "[ops_cuda][elementwise]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(4);
    check_op("add", [](const V& t) { return add(t[0], t[1]); }, {rand32(kOdd, rng), rand32(kOdd, rng)});
    check_op("mul", [](const V& t) { return mul(t[0], t[1]); }, {rand32(kOdd, rng), rand32(kOdd, rng)});
    check_op("mul by a constant", [](const V& t) { return mul(t[0], t[1]); },
             {rand32(kOdd, rng), rand32(kOdd, rng, -1, 1, false)});
    check_op("mul_scalar", [](const V& t) { return mul_scalar(t[0], -1.7); }, {rand32(kOdd, rng)});
    // The upstream gradient of sum is r[0], read on the device by the backward pass.
    for (const Shape& s : {kOdd, Shape{1}, Shape{3, 130, 129}})
        check_op("sum " + shape_str(s), [](const V& t) { return sum(t[0]); }, {rand32(s, rng, -1, 3)});
}

TEST_CASE("cat and narrow on CUDA match the CPU", "[ops_cuda][batch]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(9);
    const auto cat2 = [](const V& t) { return cat({t[0], t[1]}); };
    const auto cat3 = [](const V& t) { return cat({t[0], t[1], t[2]}); };
    check_op("cat", cat2, {rand32(kOdd, rng), rand32(Shape{1, 3, 7, 5}, rng)});
    check_op("cat with a constant", cat2, {rand32(kOdd, rng, -1, 1, false), rand32(kOdd, rng)});
    check_op(
        "cat of three, a constant between", cat3,
        {rand32(Shape{1, 3, 7, 5}, rng), rand32(kOdd, rng, -1, 1, false), rand32(Shape{3, 3, 7, 5}, rng)});
    // The gradient of x is zero outside the items taken: written, not left as the poisoned cache's NaN.
    check_op("narrow", [](const V& t) { return narrow(t[0], 1, 2); }, {rand32(Shape{4, 3, 7, 5}, rng)});
}

TEST_CASE("global_max_pool on CUDA matches the CPU, ties included", "[ops_cuda][global_max_pool]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(5);
    const Fn f = [](const V& t) { return global_max_pool(t[0]); };
    check_op("global_max_pool", f, {rand32(kOdd, rng)});
    check_op("global_max_pool of 1x1 planes", f, {rand32(kPoint, rng)});
    check_op("global_max_pool of a 40x40 plane", f, {rand32({1, 1, 40, 40}, rng)});
    // Values from {0, 1, 2}: every plane has ties, and the first maximal element must win on both.
    std::vector<double> ties(2 * 3 * 7 * 5);
    for (double& v : ties)
        v = static_cast<double>(rng.below(3));
    check_op("global_max_pool with ties", f, {values32(ties, kOdd)});
    // A constant plane of 600 elements: the maximum is its first element, across thread strides.
    check_op("global_max_pool of a constant plane", f,
             {values32(std::vector<double>(600, 0.5), {1, 1, 20, 30})});
    // NaN: never the maximum, except in the first position, where the CPU's scan keeps it.
    check_op("global_max_pool with NaN", f, {values32({1, kNaN, 3, -2, kNaN, 0.5, -1, 4}, {1, 2, 2, 2})});
}

TEST_CASE("linear and softmax on CUDA match the CPU", "[ops_cuda][dense]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(6);
    check_op("linear, the R2C-GAN head", [](const V& t) { return linear(t[0], t[1], t[2]); },
             {rand32({5, 128}, rng), rand32({2, 128}, rng), rand32({2}, rng)});
    check_op("linear 3x7 -> 4 without bias", [](const V& t) { return linear(t[0], t[1], Tensor()); },
             {rand32({3, 7}, rng), rand32({4, 7}, rng)});
    check_op("linear with a constant input", [](const V& t) { return linear(t[0], t[1], t[2]); },
             {rand32({3, 7}, rng, -1, 1, false), rand32({4, 7}, rng), rand32({4}, rng)});
    for (const Shape& s : {Shape{5, 2}, Shape{3, 7}, Shape{1, 1}})
        check_op("softmax " + shape_str(s), [](const V& t) { return softmax(t[0]); },
                 {rand32(s, rng, -3, 3)});
}

TEST_CASE("losses on CUDA match the CPU", "[ops_cuda][loss]") {
    if (!cuda::available()) {
        test::skip("no CUDA device: " + cuda::describe());
        return;
    }
    Rng rng(7);
    const Fn cce = [](const V& t) { return categorical_crossentropy(t[0], t[1]); };
    check_op("categorical_crossentropy", cce,
             {rand32({5, 2}, rng, 0.01, 0.99), rand32({5, 2}, rng, 0, 1, false)});
    // Probabilities outside [1e-7, 1 - 1e-7] (0, 1, 1e-9 and just below 1) are clipped: no gradient there.
    check_op("categorical_crossentropy with clipped probabilities", cce,
             {values32({0, 1, 1e-9, 0.3, 0.7, 1 - 1e-8, 0.5, 0.25, 0.25}, {3, 3}),
              values32({1, 0, 0.5, 0.5, 0.2, 0.3, 0, 1, 0}, {3, 3}, false)});
    for (const Shape& s : {kOdd, Shape{1}, Shape{2, 3, 64, 64}}) {
        check_op("mse " + shape_str(s), [](const V& t) { return mse(t[0], t[1]); },
                 {rand32(s, rng), rand32(s, rng)});
        check_op("mae " + shape_str(s), [](const V& t) { return mae(t[0], t[1]); },
                 {rand32(s, rng), rand32(s, rng)});
    }
    check_op("mse against a constant", [](const V& t) { return mse(t[0], t[1]); },
             {rand32(kOdd, rng), rand32(kOdd, rng, -1, 1, false)});
    // mae at a == b: the sign, hence the gradient, is 0 there.
    const std::vector<double> a{0.5, -1, 2, 0.25, -0.75, 3};
    check_op("mae where a equals b", [](const V& t) { return mae(t[0], t[1]); },
             {values32(a, {2, 3}), values32({0.5, -1, 1, 0.25, 0, 3}, {2, 3})});
}
