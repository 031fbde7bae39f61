// Whole training steps on the CUDA device against the CPU: the same seed (hence the same initial weights
// and pool draws) and the same batches must give the same loss terms and the same updated parameters for
// five consecutive iterations of Algorithm 1. FP32 convolutions (no tensor cores), so the two differ only
// by float32 rounding order: every loss term within relative 1e-3, and each network's parameters, taken
// together, within relative L2 1e-4 after five steps. (Parameter by parameter would not do: a bias
// followed by instance normalisation has a gradient of pure rounding noise, which Adam's normalised
// update turns into steps of the learning rate in either direction.) The first step makes Auto's choices
// between the fused kernels and cuDNN for each convolution pass (engine/ops/conv_choice.h), each after
// trials that wait for the device; every later step, and every step of a trainer meeting those choices,
// waits for the device once and launches as many kernels as the others.
// A third trainer replays CUDA graphs of its sub-steps from the third step on (TrainConfig::cuda_graphs):
// its losses and parameters equal those of the trainer that launches every kernel, bit for bit, while its
// replayed steps launch no kernel outside the graphs.
// In BF16 with every convolution pass on cuDNN (bfloat16 stacks), four steps stay within relative 5e-2
// of the CPU's loss terms, and replayed graphs again give the same bits as launched kernels.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <tuple>
#include <vector>

#include "engine/device.h"
#include "models/trainer.h"
#include "tests/support.h"

#ifdef R2C_WITH_CUDA
#include "kernels/oper_conv.h"
#endif

using namespace r2c;

namespace {

TrainConfig on_cuda(TrainConfig c, bool graphs) {
    c.device = Device::CUDA;
    c.cuda_graphs = graphs;
    return c;
}

// Trainers of one configuration on the CPU, on CUDA launching every kernel, and on CUDA replaying graphs.
struct Trainers {
    explicit Trainers(const TrainConfig& c) : cpu(c), gpu(on_cuda(c, false)), graphed(on_cuda(c, true)) {}
    Trainer cpu, gpu, graphed;
};

// One iteration's 8x8 batch and classes, on the CPU and on the device.
struct Batch {
    explicit Batch(Rng& rng)
        : A(Tensor::uniform({1, 3, 8, 8}, -1, 1, rng)),
          B(Tensor::uniform({1, 3, 8, 8}, -1, 1, rng)),
          cA(Tensor::from_vector({0, 1}, {1, 2})),
          cB(Tensor::from_vector({1, 0}, {1, 2})),
          dA(A.to(Device::CUDA)),
          dB(B.to(Device::CUDA)),
          dcA(cA.to(Device::CUDA)),
          dcB(cB.to(Device::CUDA)) {}
    Tensor A, B, cA, cB, dA, dB, dcA, dcB;
};

// Every loss term of the CUDA step within `tolerance` of the CPU's, relative to at least 1.
void losses_near(const StepLog& cpu, const StepLog& gpu, double tolerance) {
    REQUIRE(cpu.size() == gpu.size());
    for (std::size_t i = 0; i < cpu.size(); ++i) {
        INFO(cpu[i].first << ": cpu " << cpu[i].second << ", cuda " << gpu[i].second);
        CHECK(gpu[i].first == cpu[i].first);
        CHECK(std::abs(gpu[i].second - cpu[i].second) <= tolerance * std::max(1.0, std::abs(cpu[i].second)));
    }
}

void five_steps_agree(Method method, int q) {
    cuda::set_math_precision(cuda::MathPrecision::FP32);
    TrainConfig c;
    c.method = method;
    c.q = q;
    c.epochs = 10;
    c.epoch_decay = 1;
    c.iterations_per_epoch = 2;
    c.pool_size = 2;
    c.seed = 11;
    Trainers t(c);
    Trainer &cpu = t.cpu, &gpu = t.gpu, &graphed = t.graphed;

    Rng rng(12);
    std::vector<std::uint64_t> step_launches, graphed_launches, step_copies, graphed_copies;
    for (int step = 0; step < 5; ++step) {
        INFO("step " << step);
        const Batch batch(rng);
        const Tensor &dA = batch.dA, &dB = batch.dB, &dcA = batch.dcA, &dcB = batch.dcB;
        const StepLog l_cpu = cpu.step(batch.A, batch.B, batch.cA, batch.cB);
        const std::uint64_t waits = cuda::host_waits(), launches = cuda::kernel_launches(),
                            copies = cuda::memory_operations();
        const std::size_t choices = cuda::conv_choices().size();
        const StepLog l_gpu = gpu.step(dA, dB, dcA, dcB);
        // After the first, the losses and finite flags, together at the end.
        if (step > 0) CHECK(cuda::host_waits() - waits == 1);
        CHECK((cuda::conv_choices().size() > choices) == (step == 0 && cuda::cudnn_compiled()));
        step_launches.push_back(cuda::kernel_launches() - launches);
        step_copies.push_back(cuda::memory_operations() - copies);
        const std::uint64_t before_graphed = cuda::kernel_launches(), graphed_waits = cuda::host_waits(),
                            graphed_before_copies = cuda::memory_operations();
        const StepLog l_graphed = graphed.step(dA, dB, dcA, dcB);
        CHECK(cuda::host_waits() - graphed_waits == 1);
        graphed_launches.push_back(cuda::kernel_launches() - before_graphed);
        graphed_copies.push_back(cuda::memory_operations() - graphed_before_copies);
        CHECK(graphed.replaying() == (step > 1));
        CHECK(l_graphed == l_gpu);
        losses_near(l_cpu, l_gpu, 1e-3);
    }
    // Every step after Auto's choices launches the same number of kernels, and a replayed step (after the
    // capture) none: even the kernel that gathers its flags and loss values for the one wait is in the
    // discriminator graph.
    CHECK(step_launches[1] > 0);
    CHECK(std::set<std::uint64_t>(step_launches.begin() + 1, step_launches.end()).size() == 1);
    CHECK(graphed_launches[0] == step_launches[1]);
    CHECK(graphed_launches[1] == step_launches[1]);  // the rehearsal runs as it is
    for (std::size_t i = 3; i < graphed_launches.size(); ++i)
        CHECK(graphed_launches[i] == 0);
    // The same for the copies and fills queued besides the kernels: a replayed step queues only those that
    // stay outside its graphs (its batch and pooled fakes copied into the tensors the graphs read, the
    // pools' own copies, and the gathered report brought back).
    CHECK(std::set<std::uint64_t>(step_copies.begin() + 1, step_copies.end()).size() == 1);
    CHECK(graphed_copies[0] == step_copies[1]);
    for (std::size_t i = 3; i < graphed_copies.size(); ++i) {
        INFO("step " << i << ": " << graphed_copies[i] << " copies and fills replayed, " << step_copies[1]
                     << " unreplayed");
        CHECK(graphed_copies[i] * 4 < step_copies[1]);
    }
    const R2CNetworks& a = cpu.networks();
    const R2CNetworks& b = gpu.networks();
    const R2CNetworks& g = graphed.networks();
    using Trio = std::tuple<const Module*, const Module*, const Module*>;
    for (auto [ma, mb, mg] :
         {Trio{a.G.get(), b.G.get(), g.G.get()}, Trio{a.F.get(), b.F.get(), g.F.get()},
          Trio{a.D_A.get(), b.D_A.get(), g.D_A.get()}, Trio{a.D_B.get(), b.D_B.get(), g.D_B.get()}}) {
        const auto pa = ma->parameters(), pb = mb->parameters(), pg = mg->parameters();
        REQUIRE(pa.size() == pb.size());
        std::vector<double> va, vb, vg;
        for (std::size_t i = 0; i < pa.size(); ++i) {
            REQUIRE(pb[i].second.device() == Device::CUDA);
            const std::vector<double> a_i = pa[i].second.to_vector(),
                                      b_i = pb[i].second.to(Device::CPU).to_vector(),
                                      g_i = pg[i].second.to(Device::CPU).to_vector();
            va.insert(va.end(), a_i.begin(), a_i.end());
            vb.insert(vb.end(), b_i.begin(), b_i.end());
            vg.insert(vg.end(), g_i.begin(), g_i.end());
        }
        CHECK(test::rel_l2(vb, va) <= 1e-4);
        CHECK(vg == vb);
    }
    cuda::set_math_precision(cuda::MathPrecision::TF32);
}

}  // namespace

TEST_CASE("five training steps on CUDA match the CPU: operational Q=3", "[cuda][step]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    five_steps_agree(Method::Operational, 3);
}

TEST_CASE("training steps in BF16 through cuDNN stay near the CPU's and replay bit for bit",
          "[cuda][step][cudnn]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    if (!cuda::cudnn_compiled()) return test::skip("this build has no cuDNN");
#ifdef R2C_WITH_CUDA
    if (cuda::oper_device_compute_capability() < 80) return test::skip("no BF16 tensor cores (sm_80+)");
#endif
    cuda::set_math_precision(cuda::MathPrecision::BF16);
    cuda::set_conv_algorithm(cuda::ConvAlgorithm::Cudnn);
    TrainConfig c;
    c.q = 3;
    c.iterations_per_epoch = 2;
    c.pool_size = 2;
    c.seed = 5;
    Trainers t(c);
    Rng rng(6);
    for (int step = 0; step < 4; ++step) {
        INFO("step " << step);
        const Batch b(rng);
        const StepLog l_gpu = t.gpu.step(b.dA, b.dB, b.dcA, b.dcB);
        CHECK(t.graphed.step(b.dA, b.dB, b.dcA, b.dcB) == l_gpu);
        losses_near(t.cpu.step(b.A, b.B, b.cA, b.cB), l_gpu, 5e-2);
    }
    CHECK(t.graphed.replaying());
    cuda::set_math_precision(cuda::MathPrecision::TF32);
    cuda::set_conv_algorithm(cuda::ConvAlgorithm::Auto);
}

TEST_CASE("five training steps on CUDA match the CPU: compact CNN", "[cuda][step]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    five_steps_agree(Method::ConvolutionalLight, 1);
}
