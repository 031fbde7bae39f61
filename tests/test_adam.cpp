// Adam against the Keras formula worked by hand, global step counting, skipped parameters, the linear
// learning-rate decay, and a save/restore of the optimiser state that continues bit for bit.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/adam.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Contains;

namespace {

// Sets p's gradient to exactly g by differentiating sum(p * g).
void set_grad(Tensor& p, const std::vector<double>& g) {
    p.zero_grad();
    sum(mul(p, Tensor::from_vector(g, p.shape(), p.dtype()))).backward();
}

AdamOptions with_lr(double lr) {
    AdamOptions o;
    o.lr = lr;
    return o;
}

Tensor param(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F64) {
    return Tensor::from_vector(values, shape, dtype).set_requires_grad(true);
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() &&
           std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

std::string temp_file(const std::string& name) {
    return (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))).string();
}

}  // namespace

TEST_CASE("Adam follows the Keras update on a scalar, step by step", "[adam]") {
    // Hand-worked first step (lr 0.1, beta1 0.5, beta2 0.999, eps 1e-7, g = 0.5, p = 1):
    //   m = 0.5*0 + 0.5*0.5 = 0.25            v = 0.999*0 + 0.001*0.25 = 0.00025
    //   lr_t = 0.1 * sqrt(1 - 0.999) / (1 - 0.5) = 0.0063245553
    //   p = 1 - 0.0063245553 * 0.25 / (sqrt(0.00025) + 1e-7) = 1 - 0.0063245553 * 15.8112883 = 0.90000063
    // Then g = -0.1: m = 0.075, v = 0.00025975, lr_t = 0.0059613570, p = 0.87225939;
    // and g = 2.0: m = 1.0375, v = 0.00425949, lr_t = 0.0062565568, p = 0.77280041.
    Tensor p = param({1.0}, {1});
    Adam adam({p}, AdamOptions{0.1, {}, 0.5, 0.999, 1e-7});
    const double grads[3] = {0.5, -0.1, 2.0};
    const double by_hand[3] = {0.90000063, 0.87225939, 0.77280041};
    double expected = 1.0, m = 0.0, v = 0.0;
    for (int t = 1; t <= 3; ++t) {
        const double g = grads[t - 1];
        m = 0.5 * m + (1 - 0.5) * g;
        v = 0.999 * v + (1 - 0.999) * g * g;
        const double lr_t = 0.1 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.5, t));
        expected -= lr_t * m / (std::sqrt(v) + 1e-7);

        set_grad(p, {g});
        adam.step();
        CHECK(adam.iterations() == t);
        CHECK(p.item() == Approx(expected).epsilon(1e-14));
        CHECK(p.item() == Approx(by_hand[t - 1]).epsilon(1e-8));
    }
}

TEST_CASE("Adam's defaults are the paper's", "[adam]") {
    const AdamOptions o;
    CHECK(o.lr == 2e-4);
    CHECK(o.beta1 == 0.5);
    CHECK(o.beta2 == 0.999);
    CHECK(o.epsilon == 1e-7);
    // With the defaults the first step moves each element by lr (to within epsilon's effect) against the
    // sign of its gradient, whatever the gradient's scale.
    Tensor p = param({0.0, 0.0, 0.0}, {3});
    Adam adam({p});
    set_grad(p, {3.0, -0.01, 100.0});
    adam.step();
    const auto after = p.to_vector();
    CHECK(after[0] == Approx(-2e-4).epsilon(1e-5));
    CHECK(after[1] == Approx(2e-4).epsilon(1e-3));
    CHECK(after[2] == Approx(-2e-4).epsilon(1e-5));
}

TEST_CASE("float32 parameters follow the float64 ones to float32 accuracy", "[adam]") {
    Rng rng(2);
    const std::vector<double> init = Tensor::uniform({64}, -1, 1, rng, DType::F64).to_vector();
    Tensor p32 = param(init, {64}, DType::F32), p64 = param(init, {64});
    Adam a32({p32}, with_lr(0.01)), a64({p64}, with_lr(0.01));
    for (int step = 0; step < 5; ++step) {
        const std::vector<double> g = Tensor::uniform({64}, -1, 1, rng, DType::F64).to_vector();
        set_grad(p32, g);
        set_grad(p64, g);
        a32.step();
        a64.step();
    }
    CHECK(test::rel_l2(p32.to_vector(), p64.to_vector()) < 1e-6);
}

TEST_CASE("parameters without a gradient are skipped and the step count is global", "[adam]") {
    Tensor a = param({1.0, 2.0}, {2}), b = param({3.0}, {1});
    Adam adam({a, b}, with_lr(0.1));
    set_grad(a, {1.0, 1.0});
    adam.step();
    CHECK(b.item() == 3.0);
    const NamedTensors state = adam.state("");
    CHECK(state[2].first == "m.1");
    CHECK(state[2].second.item() == 0.0);
    CHECK(state[3].second.item() == 0.0);

    // b's first update happens at t = 2, so its bias corrections use t = 2.
    a.zero_grad();
    set_grad(b, {0.4});
    const std::vector<double> a_before = a.to_vector();
    adam.step();
    CHECK(a.to_vector() == a_before);
    const double m = 0.5 * 0.4, v = 0.001 * 0.4 * 0.4;
    const double lr_t = 0.1 * std::sqrt(1 - 0.999 * 0.999) / (1 - 0.5 * 0.5);
    CHECK(b.item() == Approx(3.0 - lr_t * m / (std::sqrt(v) + 1e-7)).epsilon(1e-14));
    CHECK(adam.iterations() == 2);
}

TEST_CASE("Adam rejects bad parameters and steps without gradients", "[adam]") {
    Tensor p = param({1.0}, {1});
    CHECK_THROWS_WITH(Adam(std::vector<Tensor>{}), Contains("no parameters"));
    CHECK_THROWS_WITH(Adam({p, p}), Contains("parameter 1 is listed twice"));
    CHECK_THROWS_WITH(Adam({Tensor::zeros({1})}), Contains("parameter 0"));
    AdamOptions beta1_one;
    beta1_one.beta1 = 1.0;
    CHECK_THROWS_WITH(Adam({p}, beta1_one), Contains("betas"));
    Adam adam({p});
    CHECK_THROWS_WITH(adam.step(), Contains("no parameter has a gradient"));
    CHECK(adam.iterations() == 0);
    set_grad(p, {1.0});
    adam.zero_grad();
    CHECK_FALSE(p.grad().defined());
}

TEST_CASE("a nonzero skip flag leaves parameters and moments as they were", "[adam]") {
    Tensor p = param({1.0, -2.0}, {2});
    Adam adam({p}, with_lr(0.1));
    set_grad(p, {0.5, 0.5});
    adam.step(Tensor::from_vector({0.0}, {1}));  // a zero flag: the update applies
    const std::vector<double> after_one = p.to_vector();
    CHECK(after_one != std::vector<double>{1.0, -2.0});
    const NamedTensors moments = adam.state("");
    const std::vector<double> m = moments[0].second.to_vector(), v = moments[1].second.to_vector();

    adam.step(Tensor::from_vector({2.0}, {1}));
    CHECK(p.to_vector() == after_one);
    CHECK(adam.state("")[0].second.to_vector() == m);
    CHECK(adam.state("")[1].second.to_vector() == v);
    CHECK(adam.iterations() == 2);
    adam.uncount_step();
    CHECK(adam.iterations() == 1);

    CHECK_THROWS_WITH(adam.step(Tensor::from_vector({0.0, 0.0}, {2})),
                      Contains("expected float32[1] on cpu"));
    CHECK_THROWS_WITH(adam.step(Tensor::from_vector({0.0}, {1}, DType::F64)), Contains("the skip flag"));
    CHECK(adam.iterations() == 1);
    Adam fresh({p});
    CHECK_THROWS_WITH(fresh.uncount_step(), Contains("no step to take back"));
}

TEST_CASE("LinearDecay holds, then falls linearly to zero", "[adam][schedule]") {
    // The paper's run: 2000 epochs of 2460 steps, decay from epoch 100.
    const LinearDecay paper(2e-4, 2000 * 2460, 100 * 2460);
    CHECK(paper(0) == 2e-4);
    CHECK(paper(100 * 2460 - 1) == 2e-4);
    CHECK(paper(100 * 2460) == 2e-4);
    CHECK(paper(1050 * 2460) == Approx(1e-4).epsilon(1e-14));
    // The last step's 1 - (n-1)/n cancels about 7 of double's 16 significant digits.
    CHECK(paper(2000 * 2460 - 1) == Approx(2e-4 / (1900 * 2460)).epsilon(1e-8));
    CHECK(paper(2000 * 2460) == 0.0);
    CHECK(paper(2000 * 2460 + 5) == 0.0);

    const LinearDecay small(1.0, 10, 6);  // 1 until step 6, then 1 - (step - 6) / 4
    CHECK(small(5) == 1.0);
    CHECK(small(6) == 1.0);
    CHECK(small(8) == 0.5);
    CHECK(small(9) == 0.25);
    CHECK_THROWS_WITH(LinearDecay(1.0, 10, 10), Contains("decay_start_step"));
    CHECK_THROWS_WITH(LinearDecay(1.0, 10, -1), Contains("decay_start_step"));
}

TEST_CASE("Adam asks the schedule for the rate at its iteration count before each update",
          "[adam][schedule]") {
    std::vector<std::int64_t> asked;
    AdamOptions options;
    options.schedule = [&](std::int64_t step) {
        asked.push_back(step);
        return step >= 2 ? 0.0 : 0.1;
    };
    Tensor p = param({1.0}, {1});
    Adam adam({p}, options);
    for (int i = 0; i < 2; ++i) {
        set_grad(p, {1.0});
        adam.step();
    }
    CHECK((asked == std::vector<std::int64_t>{0, 1}));
    const double moved = p.item();
    CHECK(moved < 1.0);
    set_grad(p, {1.0});
    adam.step();  // rate 0: the moments advance, the parameter stays
    CHECK(p.item() == moved);
    CHECK(asked.back() == 2);
    CHECK(adam.lr() == 0.0);

    Tensor q = param({1.0}, {1});
    AdamOptions decaying;
    decaying.schedule = LinearDecay(0.1, 4, 1);
    Adam with_decay({q}, decaying);
    CHECK(with_decay.lr() == 0.1);
    set_grad(q, {1.0});
    with_decay.step();
    set_grad(q, {1.0});
    with_decay.step();
    CHECK(with_decay.lr() == Approx(0.1 * (1 - 1.0 / 3)).epsilon(1e-15));
}

TEST_CASE("a saved and restored optimiser continues exactly like an uninterrupted one", "[adam][state]") {
    const std::string path = temp_file("r2c_test_adam_state.safetensors");
    Rng rng(4);
    const std::vector<double> w0 = Tensor::uniform({2, 3}, -1, 1, rng, DType::F64).to_vector();
    const std::vector<double> b0 = Tensor::uniform({3}, -1, 1, rng, DType::F64).to_vector();
    std::vector<std::vector<double>> grads;
    for (int i = 0; i < 12; ++i)
        grads.push_back(Tensor::uniform({9}, -1, 1, rng, DType::F64).to_vector());
    auto make_params = [&] { return std::vector<Tensor>{param(w0, {2, 3}, DType::F32), param(b0, {3})}; };
    AdamOptions options;
    options.schedule = LinearDecay(0.01, 6, 2);
    auto run = [&](Adam& adam, std::vector<Tensor>& ps, int from, int to) {
        for (int s = from; s < to; ++s) {
            const std::vector<double>& g = grads[static_cast<std::size_t>(s)];
            set_grad(ps[0], std::vector<double>(g.begin(), g.begin() + 6));
            // b has a gradient on even steps only, so the state includes a parameter that skipped steps.
            if (s % 2 == 0)
                set_grad(ps[1], std::vector<double>(g.begin() + 6, g.end()));
            else
                ps[1].zero_grad();
            adam.step();
        }
    };

    std::vector<Tensor> straight = make_params();
    Adam uninterrupted(straight, options);
    run(uninterrupted, straight, 0, 6);

    std::vector<Tensor> first = make_params();
    Adam before(first, options);
    run(before, first, 0, 3);
    NamedTensors checkpoint = before.state("opt.");
    checkpoint.emplace_back("w", first[0]);
    checkpoint.emplace_back("b", first[1]);
    save_safetensors(path, checkpoint);

    std::vector<Tensor> second = make_params();
    Adam after(second, options);
    const SafetensorsFile file = load_safetensors(path);
    std::remove(path.c_str());
    load_tensors_into(file, {{"w", second[0]}, {"b", second[1]}});
    after.load_state(file, "opt.");
    CHECK(after.iterations() == 3);
    run(after, second, 3, 6);

    CHECK(after.iterations() == uninterrupted.iterations());
    for (std::size_t i = 0; i < 2; ++i)
        CHECK(same_bits(second[i], straight[i]));
    const NamedTensors s1 = after.state(""), s2 = uninterrupted.state("");
    for (std::size_t i = 0; i < s1.size(); ++i)
        CHECK(same_bits(s1[i].second, s2[i].second));
}

TEST_CASE("loading a mismatched optimiser state is an error that changes nothing", "[adam][state]") {
    Tensor a = param({1.0, 2.0}, {2}), b = param({3.0}, {1});
    Adam two({a, b});
    set_grad(a, {1.0, 1.0});
    set_grad(b, {1.0});
    two.step();
    NamedTensors saved = two.state("g.");
    const std::string path = temp_file("r2c_test_adam_mismatch.safetensors");
    save_safetensors(path, saved);
    const SafetensorsFile file = load_safetensors(path);
    std::remove(path.c_str());

    Tensor c = param({0.0, 0.0}, {2});
    Adam one({c});
    CHECK_THROWS_WITH(one.load_state(file, "g."), Contains("holds 2 tensors named g.m.<i>") &&
                                                      Contains("1 parameters") && Contains(path));

    Tensor d = param({0.0, 0.0}, {2}), e = param({0.0, 0.0}, {2});
    Adam reshaped({d, e});
    CHECK_THROWS_WITH(reshaped.load_state(file, "g."),
                      Contains("'g.m.1'") && Contains("float64[1]") && Contains("expected float64[2]"));
    CHECK(reshaped.iterations() == 0);
    CHECK(reshaped.state("")[0].second.to_vector() == std::vector<double>{0.0, 0.0});

    CHECK_THROWS_WITH(two.load_state(file, "d."), Contains("holds 0 tensors named d.m.<i>"));
}

TEST_CASE("the multi-tensor CUDA Adam follows the CPU Adam", "[adam][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    // More tensors than one launch takes, sizes around the kernel's chunk of 1024, and some parameters
    // without a gradient. Tolerance: float32 rounding of the fused update (relative L2 <= 1e-6).
    Rng rng(17);
    const std::vector<std::int64_t> sizes = {1, 1023, 1024, 1025, 3000, 7};
    std::vector<Tensor> cpu, gpu;
    for (int i = 0; i < 40; ++i) {
        const Tensor init = test::rand({sizes[i % sizes.size()]}, rng, -1, 1, false).to(DType::F32);
        cpu.push_back(init.to(Device::CPU).set_requires_grad(true));
        gpu.push_back(init.to(Device::CUDA).set_requires_grad(true));
    }
    Adam a_cpu(cpu), a_gpu(gpu);
    for (int step = 0; step < 3; ++step) {
        for (std::size_t i = 0; i < cpu.size(); ++i) {
            cpu[i].zero_grad();
            gpu[i].zero_grad();
            if ((i + step) % 5 == 0) continue;
            const Tensor g = test::rand(cpu[i].shape(), rng, -2, 2, false).to(DType::F32);
            cpu[i].impl().grad = g.impl_ptr();
            gpu[i].impl().grad = g.to(Device::CUDA).impl_ptr();
        }
        a_cpu.step();
        a_gpu.step();
    }
    CHECK(a_gpu.iterations() == 3);
    // A nonzero flag on the device cancels a fourth update there, without the host waiting for it.
    const Tensor skip = Tensor::from_vector({1.0}, {1}, DType::F32, Device::CUDA);
    const std::uint64_t waits = cuda::host_waits();
    a_gpu.step(skip);
    CHECK(cuda::host_waits() == waits);
    a_gpu.uncount_step();
    CHECK(a_gpu.iterations() == 3);
    const NamedTensors s_cpu = a_cpu.state(""), s_gpu = a_gpu.state("");
    for (std::size_t i = 0; i < cpu.size(); ++i)
        CHECK(test::rel_l2(gpu[i].to(Device::CPU), cpu[i]) <= 1e-6);
    for (std::size_t i = 0; i < s_cpu.size(); ++i)
        CHECK(test::rel_l2(s_gpu[i].second.to(Device::CPU), s_cpu[i].second) <= 1e-6);
}
