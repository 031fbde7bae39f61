// oper_conv2d and oper_conv_transpose2d on CUDA tensors against the same ops on the CPU: outputs and the
// gradients of x, w and b for a random upstream gradient, with fused activations and reflect padding, and
// the multiply-adds counted.
// Tolerances (relative L2): FP32 1e-5; TF32 5e-3 and BF16 2e-2 where the layer is wide enough for tensor
// cores (kernels/oper_conv.h's dispatch rule). Each layer runs by the fused kernels, in each precision also
// by cuDNN on the power stack (BF16: on bfloat16 data), transposed layers included, and by Auto's checked and
// timed choice between the two (engine/device.h's ConvAlgorithm); Auto's choosing itself is checked with
// stand-ins for the two ways, so it runs on the emulator too.
#include <catch2/catch.hpp>

#include <cmath>
#include <iterator>

#ifdef R2C_CUDA_EMULATION
#include <cuda_runtime.h>  // the emulator's: its device memory size
#endif

#include "engine/device.h"
#include "engine/graph.h"
#include "engine/ops.h"
#include "tests/support.h"

#ifdef R2C_WITH_CUDA
#include "engine/ops/conv_choice.h"
#include "kernels/oper_conv.h"
#endif

using namespace r2c;

namespace {

struct Layer {
    bool transposed;
    std::int64_t n, cin, h, w, cout, k;
    int stride, q;
    Padding padding;
    bool bias;
    Activation act;  // fused into the layer
};

void check_layer(const Layer& l, cuda::MathPrecision precision, double tolerance,
                 cuda::ConvAlgorithm algorithm = cuda::ConvAlgorithm::Fused) {
    INFO((l.transposed ? "transposed " : "conv ")
         << l.n << "x" << l.cin << "x" << l.h << "x" << l.w << " -> " << l.cout << ", k " << l.k
         << ", stride " << l.stride << ", Q " << l.q << ", activation " << static_cast<int>(l.act) << ", "
         << cuda::math_precision_name(precision) << ", " << cuda::conv_algorithm_name(algorithm));
    cuda::set_math_precision(precision);
    cuda::set_conv_algorithm(algorithm);
    Rng rng(static_cast<std::uint64_t>(l.cin * 31 + l.cout * 7 + l.q));
    const Tensor x = test::rand({l.n, l.cin, l.h, l.w}, rng, -1, 1, false).to(DType::F32);
    const Shape ws = l.transposed ? Shape{l.q, l.cin, l.cout, l.k, l.k} : Shape{l.q, l.cout, l.cin, l.k, l.k};
    const Tensor w = test::rand(ws, rng, -0.3, 0.3, false).to(DType::F32);
    const Tensor b = l.bias ? test::rand({l.q, l.cout}, rng, -1, 1, false).to(DType::F32) : Tensor();
    const auto run = [&](Device d, const Tensor& r) {
        Tensor xd = x.to(d).set_requires_grad(true), wd = w.to(d).set_requires_grad(true);
        Tensor bd = l.bias ? b.to(d).set_requires_grad(true) : Tensor();
        const Tensor y = l.transposed ? oper_conv_transpose2d(xd, wd, bd, l.stride, l.padding, l.act)
                                      : oper_conv2d(xd, wd, bd, l.stride, l.padding, l.act);
        const Tensor upstream = r.defined() ? r.to(d) : Tensor();
        if (upstream.defined()) sum(mul(y, upstream)).backward();
        return std::vector<Tensor>{y, xd.grad(), wd.grad(), bd.defined() ? bd.grad() : Tensor()};
    };
    const std::vector<Tensor> cpu_y = run(Device::CPU, Tensor());
    const Tensor r = test::rand(cpu_y[0].shape(), rng, -1, 1, false).to(DType::F32);
    // Both devices count the same multiply-adds for the three passes.
    const std::uint64_t start = conv_multiply_adds();
    const std::vector<Tensor> cpu = run(Device::CPU, r);
    const std::uint64_t cpu_macs = conv_multiply_adds() - start;
    const std::vector<Tensor> gpu = run(Device::CUDA, r);
    CHECK(conv_multiply_adds() - start - cpu_macs == cpu_macs);
    const char* names[] = {"y", "dx", "dw", "db"};
    for (std::size_t i = 0; i < cpu.size(); ++i) {
        if (!cpu[i].defined()) continue;
        INFO(names[i]);
        REQUIRE(gpu[i].defined());
        REQUIRE(gpu[i].device() == Device::CUDA);
        CHECK(test::rel_l2(gpu[i].to(Device::CPU), cpu[i]) <= tolerance);
    }
    cuda::set_math_precision(cuda::MathPrecision::TF32);
    cuda::set_conv_algorithm(cuda::ConvAlgorithm::Auto);
}

const Layer kLayers[] = {
    // first-layer-like, odd sizes
    {false, 2, 3, 9, 7, 5, 3, 2, 3, Padding::same(), true, Activation::LeakyRelu},
    // discriminator head, no bias
    {false, 1, 5, 8, 8, 1, 4, 1, 2, Padding::valid(), false, Activation::None},
    // stride 4, wide enough for tensor cores
    {false, 1, 20, 6, 5, 24, 4, 4, 1, Padding::same(), true, Activation::Relu},
    // generator output layer
    {true, 2, 4, 5, 6, 3, 3, 2, 3, Padding::same(), true, Activation::Tanh},
    // transposed, valid, tensor-core width
    {true, 1, 24, 3, 4, 20, 4, 2, 2, Padding::valid(), false, Activation::LeakyRelu},
    {true, 1, 4, 3, 4, 6, 3, 2, 2, Padding::same(), true, Activation::Relu},
    // reflect padding read by the kernels: a residual-block conv, CNN's 7x7 outer layer (tensor-core width),
    // strided
    {false, 2, 5, 7, 9, 6, 3, 1, 3, Padding::reflect(1), false, Activation::Tanh},
    {false, 1, 3, 9, 8, 20, 7, 1, 1, Padding::reflect(3), true, Activation::None},
    {false, 1, 20, 6, 7, 3, 3, 2, 2, Padding::reflect(1), true, Activation::LeakyRelu},
    // transposed with a crop: k - stride = 3, one row and column cut before the output, two after
    {true, 1, 3, 4, 5, 4, 5, 2, 2, Padding::same(), true, Activation::Tanh},
};

}  // namespace

TEST_CASE("operational convolutions on CUDA match the CPU, forward and backward", "[cuda][conv]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    for (const Layer& l : kLayers) {
        check_layer(l, cuda::MathPrecision::FP32, 1e-5);
        // In TF32 and BF16 an output within rounding of zero may land on the other side of a kinked
        // activation than on the CPU, and its gradient then differs by the slope's jump: these layers are
        // checked with the smooth tanh instead.
        Layer smooth = l;
        if (l.act == Activation::Relu || l.act == Activation::LeakyRelu) smooth.act = Activation::Tanh;
        check_layer(smooth, cuda::MathPrecision::TF32, 5e-3);
        check_layer(smooth, cuda::MathPrecision::BF16, 2e-2);
    }
}

#ifdef R2C_WITH_CUDA
// The fused weight gradients split their reduction into parts whose partial gradients the op keeps in a
// workspace and adds in order (kernels/oper_conv.h): right, and the same bits on every run. The layer has
// pixels enough for several parts even on the emulated device.
TEST_CASE("the fused weight gradient of an operational convolution is right and the same bits on every run",
          "[cuda][conv]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    const Layer l{false, 2, 5, 17, 15, 67, 3, 1, 3, Padding::reflect(1), true, Activation::None};
    check_layer(l, cuda::MathPrecision::FP32, 1e-5);
    check_layer(l, cuda::MathPrecision::TF32, 5e-3);
    Rng rng(21);
    const Tensor x = test::rand({l.n, l.cin, l.h, l.w}, rng, -1, 1, false).to(DType::F32).to(Device::CUDA);
    const Tensor w =
        test::rand({l.q, l.cout, l.cin, l.k, l.k}, rng, -0.3, 0.3, false).to(DType::F32).to(Device::CUDA);
    const Tensor r = test::rand({l.n, l.cout, l.h, l.w}, rng, -1, 1, false).to(DType::F32).to(Device::CUDA);
    cuda::set_conv_algorithm(cuda::ConvAlgorithm::Fused);
    for (cuda::MathPrecision precision : {cuda::MathPrecision::FP32, cuda::MathPrecision::TF32}) {
        INFO(cuda::math_precision_name(precision));
        cuda::set_math_precision(precision);
        const cuda::OperConvGeometry g = cuda::oper_conv_geometry_reflect(
            int(l.n), int(l.cin), int(l.h), int(l.w), int(l.cout), int(l.k), l.stride, 1, l.q);
        cuda::OperConvOptions opt;
        opt.precision =
            precision == cuda::MathPrecision::FP32 ? cuda::OperPrecision::FP32 : cuda::OperPrecision::TF32;
        CHECK(cuda::oper_conv_weights_workspace(g, false, opt) > 0);  // more than one part
        std::vector<double> first;
        for (int run = 0; run < 2; ++run) {
            const Tensor wd = w.detach().set_requires_grad(true);
            sum(mul(oper_conv2d(x, wd, Tensor(), l.stride, l.padding), r)).backward();
            const std::vector<double> dw = wd.grad().to(Device::CPU).to_vector();
            if (run == 0)
                first = dw;
            else
                CHECK(dw == first);
        }
    }
    cuda::set_math_precision(cuda::MathPrecision::TF32);
    cuda::set_conv_algorithm(cuda::ConvAlgorithm::Auto);
}
#endif

TEST_CASE("operational convolutions through cuDNN on the power stack match the CPU", "[cuda][conv][cudnn]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    if (!cuda::cudnn_compiled()) return test::skip("this build has no cuDNN");
    const std::size_t before = cuda::conv_choices().size();
    // BF16 runs the stacked convolution on bfloat16 data, which needs BF16 tensor cores (sm_80+).
#ifdef R2C_WITH_CUDA
    const bool bf16_cores = cuda::oper_device_compute_capability() >= 80;
#else
    const bool bf16_cores = false;  // not reached: no CUDA device
#endif
    for (const Layer& l : kLayers) {
        check_layer(l, cuda::MathPrecision::FP32, 1e-5, cuda::ConvAlgorithm::Cudnn);
        check_layer(l, cuda::MathPrecision::FP32, 1e-5, cuda::ConvAlgorithm::Auto);
        Layer smooth = l;
        if (l.act == Activation::Relu || l.act == Activation::LeakyRelu) smooth.act = Activation::Tanh;
        check_layer(smooth, cuda::MathPrecision::TF32, 5e-3, cuda::ConvAlgorithm::Cudnn);
        check_layer(smooth, cuda::MathPrecision::TF32, 5e-3, cuda::ConvAlgorithm::Auto);
        if (!bf16_cores) continue;
        // Auto compares cuDNN in BF16 with the fused kernels in BF16.
        check_layer(smooth, cuda::MathPrecision::BF16, 2e-2, cuda::ConvAlgorithm::Cudnn);
        check_layer(smooth, cuda::MathPrecision::BF16, 2e-2, cuda::ConvAlgorithm::Auto);
    }
    // Auto found cuDNN agreeing with the fused kernels and timed both ways once for each of the three passes
    // of each layer in each precision, and again for none of them: its choices are remembered.
    const std::vector<cuda::ConvChoice> made = cuda::conv_choices();
    REQUIRE(made.size() - before == 3 * (bf16_cores ? 3 : 2) * std::size(kLayers));
    for (std::size_t i = before; i < made.size(); ++i) {
        INFO(made[i].pass << " " << made[i].shape);
        CHECK(made[i].note.empty());
        CHECK(made[i].fused_ms > 0);
        CHECK(made[i].cudnn_ms > 0);
        CHECK(made[i].cudnn == (made[i].cudnn_ms < made[i].fused_ms));
    }
    check_layer(kLayers[6], cuda::MathPrecision::TF32, 5e-3, cuda::ConvAlgorithm::Auto);  // tanh
    CHECK(cuda::conv_choices().size() == made.size());
    // Every cuDNN problem was searched, timed, within the scaled limit, and took a candidate that ran; the
    // FP32 ones (searched apart from the others) with FMA math, the BF16 ones (also apart) on bfloat16 data.
    const std::vector<cuda::CudnnSearch> searched = cuda::cudnn_searches();
    REQUIRE_FALSE(searched.empty());
    std::size_t fma = 0, bf16 = 0;
    for (const cuda::CudnnSearch& s : searched) {
        INFO(s.pass << " " << s.problem);
        CHECK_FALSE(s.heuristic);
        CHECK(s.limit >= (std::size_t(128) << 20));
        REQUIRE(s.chosen >= 0);
        const cuda::CudnnCandidate& taken = s.candidates[static_cast<std::size_t>(s.chosen)];
        CHECK(taken.ran);
        CHECK(taken.ms >= 0);
        CHECK(taken.workspace <= s.limit);
        const bool exact = s.problem.find("FMA math") != std::string::npos;
        fma += exact ? 1 : 0;
        if (exact) CHECK(taken.math == "fma");
        const bool bfloat16 = s.problem.find("bfloat16") != std::string::npos;
        bf16 += bfloat16 ? 1 : 0;
        if (bfloat16) CHECK_FALSE(exact);
    }
    CHECK(fma > 0);
    CHECK((bf16 > 0) == bf16_cores);
    CHECK(fma + bf16 < searched.size());
}

TEST_CASE(
    "cuDNN's workspace limit scales with the pass; a search takes the leanest of the fastest usable "
    "candidates",
    "[conv]") {
    constexpr std::size_t MiB = std::size_t(1) << 20, GiB = std::size_t(1) << 30;
    const std::size_t setting = cuda::conv_workspace_limit();
    cuda::set_conv_workspace_limit(0);
    CHECK(cuda::conv_workspace_for(10 * MiB, 80 * GiB) == 128 * MiB);    // the floor
    CHECK(cuda::conv_workspace_for(549 * MiB, 80 * GiB) == 1098 * MiB);  // twice the tensors
    CHECK(cuda::conv_workspace_for(8 * GiB, 80 * GiB) == 10 * GiB);      // an eighth of the device
    CHECK(cuda::conv_workspace_for(8 * GiB, 512 * MiB) == 128 * MiB);    // never below the floor
    cuda::set_conv_workspace_limit(64 * MiB);
    CHECK(cuda::conv_workspace_for(8 * GiB, 80 * GiB) == 64 * MiB);  // a setting holds for every pass
    cuda::set_conv_workspace_limit(setting);

    const auto candidate = [](const char* math, bool ran, std::size_t workspace, double ms = 0.1) {
        return cuda::CudnnCandidate{"ALGO", math, ran ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_NOT_SUPPORTED",
                                    ran,    ms,   workspace};
    };
    const std::vector<cuda::CudnnCandidate> found = {
        candidate("tensor_op", false, 0),                  // did not run
        candidate("tensor_op_allow_conversion", true, 0),  // converts FP32 operands to FP16
        candidate("tensor_op", true, 200 * MiB, 0.05),     // the fastest, needs more than the limit
        candidate("default", true, 100 * MiB), candidate("fma", true, 0, 0.2)};
    CHECK(cuda::usable_cudnn_candidate(found, 128 * MiB) == 3);
    CHECK(cuda::usable_cudnn_candidate(found, 256 * MiB) == 2);
    CHECK(cuda::usable_cudnn_candidate(found, 50 * MiB) == 4);
    CHECK(cuda::usable_cudnn_candidate({found[0], found[1]}, 256 * MiB) == -1);
    // FP32 exact: only FMA math, however fast the others.
    CHECK(cuda::usable_cudnn_candidate(found, 256 * MiB, true) == 4);
    CHECK(cuda::usable_cudnn_candidate({found[2], found[3]}, 256 * MiB, true) == -1);

    // Timed within 3% of the fastest, the least workspace wins; the earliest of equals; slower ones never,
    // however lean, and the fastest is found wherever it stands.
    const std::vector<cuda::CudnnCandidate> timed = {
        candidate("tensor_op", true, 90 * MiB, 0.100), candidate("tensor_op", true, 30 * MiB, 0.1029),
        candidate("tensor_op", true, 30 * MiB, 0.101), candidate("tensor_op", true, 0, 0.1031),
        candidate("tensor_op", true, 0, 0.120)};
    CHECK(cuda::usable_cudnn_candidate(timed, 128 * MiB) == 1);
    CHECK(cuda::usable_cudnn_candidate({timed[3], timed[0]}, 128 * MiB) == 1);
    CHECK(cuda::usable_cudnn_candidate({timed[4], timed[2], timed[0]}, 128 * MiB) == 1);
    // Within the limit the fastest usable takes 0.101 ms: the one of 0.1031 ms is as fast, and leaner.
    CHECK(cuda::usable_cudnn_candidate(timed, 60 * MiB) == 3);
    // A heuristic's candidates are not timed: its first usable one, whatever the others need.
    const std::vector<cuda::CudnnCandidate> guessed = {candidate("tensor_op", true, 90 * MiB, -1),
                                                       candidate("tensor_op", true, 0, -1)};
    CHECK(cuda::usable_cudnn_candidate(guessed, 128 * MiB) == 0);
}

#ifdef R2C_WITH_CUDA
TEST_CASE("Auto checks cuDNN against the fused kernels before timing both, and keeps its choices",
          "[cuda][conv]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    // Stand-ins for the two ways, each writing `out` on the device: the fused value, one within TF32's
    // rounding of it, one far from it.
    Rng rng(11);
    const Tensor fused_value = test::rand({257}, rng, -1, 1, false).to(DType::F32).to(Device::CUDA);
    const Tensor close = mul_scalar(fused_value, 1 + 1e-4), far = mul_scalar(fused_value, 2);
    Tensor out = Tensor::empty({257}, DType::F32, Device::CUDA);
    int fused_runs = 0, cudnn_runs = 0;
    const auto fused = [&] {
        ++fused_runs;
        out.copy_from(fused_value);
    };
    const auto writes = [&](const Tensor& value) {
        return [&, value] {
            ++cudnn_runs;
            out.copy_from(value);
        };
    };
    const auto holds = [&](const Tensor& value) {
        return test::rel_l2(out.to(Device::CPU), value.to(Device::CPU));
    };
    const auto reset = [&] { fused_runs = cudnn_runs = 0; };
    const std::size_t before = cuda::conv_choices().size();

    // Agreeing: one checking run each, three timed each, and the fused way once more where it is chosen, so
    // that the outputs are the chosen way's, as in every later run; then the choice is kept.
    ops::run_chosen({-1, 1}, "pass", "agreeing", {out}, fused, writes(close));
    std::vector<cuda::ConvChoice> made = cuda::conv_choices();
    REQUIRE(made.size() == before + 1);
    const cuda::ConvChoice agreeing = made.back();
    CHECK(fused_runs == (agreeing.cudnn ? 4 : 5));
    CHECK(cudnn_runs == 4);
    CHECK(holds(agreeing.cudnn ? close : fused_value) == 0.0);
    CHECK(agreeing.shape == "agreeing");
    CHECK(agreeing.note.empty());
    CHECK(agreeing.fused_ms >= 0);
    CHECK(agreeing.cudnn_ms >= 0);
    CHECK(agreeing.cudnn == (agreeing.cudnn_ms < agreeing.fused_ms));
    reset();
    ops::run_chosen({-1, 1}, "pass", "agreeing", {out}, fused, writes(close));
    CHECK(fused_runs == (agreeing.cudnn ? 0 : 1));
    CHECK(cudnn_runs == (agreeing.cudnn ? 1 : 0));
    CHECK(cuda::conv_choices().size() == before + 1);

    // Disagreeing, or failing: the fused way is kept, its outputs restored, and the note says why.
    reset();
    ops::run_chosen({-1, 2}, "pass", "disagreeing", {out}, fused, writes(far));
    CHECK(fused_runs == 2);
    CHECK(cudnn_runs == 1);
    CHECK(holds(fused_value) == 0.0);
    made = cuda::conv_choices();
    REQUIRE(made.size() == before + 2);
    CHECK_FALSE(made.back().cudnn);
    CHECK_THAT(made.back().note, Catch::Contains("differs from the fused kernels' by a relative L2"));
    reset();
    ops::run_chosen({-1, 2}, "pass", "disagreeing", {out}, fused, writes(far));
    CHECK(fused_runs == 1);
    CHECK(cudnn_runs == 0);
    reset();
    ops::run_chosen({-1, 3}, "pass", "failing", {out}, fused, [] { throw Error("no algorithm"); });
    CHECK(fused_runs == 2);
    CHECK(holds(fused_value) == 0.0);
    made = cuda::conv_choices();
    REQUIRE(made.size() == before + 3);
    CHECK_FALSE(made.back().cudnn);
    CHECK(made.back().note == "cuDNN failed: no algorithm");

    // A fused output that is not finite (a NaN batch) is not compared: timed as usual.
    const Tensor nan = Tensor::full({257}, NAN, DType::F32, Device::CUDA);
    reset();
    ops::run_chosen(
        {-1, 4}, "pass", "nan", {out}, [&] { out.copy_from(nan); }, writes(far));
    CHECK(cudnn_runs == 4);
    CHECK(cuda::conv_choices().back().note.empty());

    // Met first inside a graph capture: the fused way is captured, and nothing is chosen.
    cuda::GraphSequence graphs;
    reset();
    graphs.capture([&] { ops::run_chosen({-1, 5}, "pass", "captured", {out}, fused, writes(close)); });
    CHECK(fused_runs == 1);
    CHECK(cudnn_runs == 0);
    out.copy_from(far);
    graphs.replay(0);
    CHECK(holds(fused_value) == 0.0);
    CHECK(cuda::conv_choices().size() == before + 4);
}
#endif

TEST_CASE("a CUDA convolution error names the op, the shapes and a hint", "[cuda][conv]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    const Tensor x = Tensor::zeros({1, 2, 5, 5}, DType::F64, Device::CUDA);
    const Tensor w = Tensor::zeros({1, 3, 2, 3, 3}, DType::F64, Device::CUDA);
    CHECK_THROWS_WITH(oper_conv2d(x, w, Tensor(), 1, Padding::same()),
                      Catch::Contains("oper_conv2d") && Catch::Contains("float32"));
    // Explicit pads of k or more are beyond what the kernels take: the geometry error carries the shapes.
    const Tensor x32 = Tensor::zeros({1, 2, 5, 5}, DType::F32, Device::CUDA);
    const Tensor w32 = Tensor::zeros({1, 3, 2, 3, 3}, DType::F32, Device::CUDA);
    CHECK_THROWS_WITH(oper_conv2d(x32, w32, Tensor(), 1, Padding::explicit_pads(3, 3, 0, 0)),
                      Catch::Contains("oper_conv2d (forward)") && Catch::Contains("x[1,2,5,5]") &&
                          Catch::Contains("pads must lie in [0, k)"));
}

#ifdef R2C_CUDA_EMULATION
TEST_CASE("running out of device memory names the op, the shapes and the batch-size hint", "[cuda][oom]") {
    // The emulated device's memory is shrunk around the test's own tensors, with nothing cached by the
    // allocator (the scratch of earlier passes, of cuDNN's or of Auto's trials). Each image is 1.25 MiB, so
    // it takes a 2 MiB segment of its own (engine/allocator.h).
    Rng rng(3);
    const Tensor x = test::rand({1, 64, 64, 80}, rng, -1, 1, false).to(DType::F32).to(Device::CUDA);
    const Tensor w = test::rand({3, 64, 64, 3, 3}, rng, -0.1, 0.1, false).to(DType::F32).to(Device::CUDA);
    const std::size_t limit_before = 8192ull << 20;
    const auto room = [](std::size_t bytes) {
        cuda::allocator().empty_cache();
        r2c_emu::set_memory_limit(r2c_emu::memory_in_use() + bytes);
    };
    room(512u << 10);
    CHECK_THROWS_WITH(oper_conv2d(x, w, Tensor(), 1, Padding::same()),
                      Catch::Contains("oper_conv2d (forward)") && Catch::Contains("[1,64,64,80]") &&
                          Catch::Contains("out of device memory") && Catch::Contains("smaller batch size"));

    // Every op names itself the same way (engine/op_scope.h).
    const Tensor gamma = Tensor::full({64}, 1.0, DType::F32, Device::CUDA);
    const Tensor beta = Tensor::zeros({64}, DType::F32, Device::CUDA);
    CHECK_THROWS_WITH(instance_norm(x, gamma, beta),
                      Catch::Contains("instance_norm on float32[1,64,64,80] cuda: out of device memory") &&
                          Catch::Contains("smaller batch size"));

    Tensor xg = x.detach().set_requires_grad(true);
    r2c_emu::set_memory_limit(limit_before);
    const Tensor loss = sum(oper_conv2d(xg, w, Tensor(), 1, Padding::same()));
    // Room for the gradient of sum (as large as y), not for dx as well.
    room(3u << 20);
    CHECK_THROWS_WITH(loss.backward(), Catch::Contains("backward of 'oper_conv2d' (output [1,64,64,80]") &&
                                           Catch::Contains("out of device memory") &&
                                           Catch::Contains("smaller batch size"));
    r2c_emu::set_memory_limit(limit_before);
}
#endif
