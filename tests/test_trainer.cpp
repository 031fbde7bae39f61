// Algorithm 1: the objectives' gradients, the image pool, the schedule, and exact resumption.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "engine/autograd.h"
#include "engine/device.h"
#include "models/trainer.h"
#include "tests/support.h"

using namespace r2c;

namespace {

// The weights of L_G's twelve terms with the default LossWeights, as the specification gives them.
constexpr double kGeneratorTermWeights[] = {1, 1, 0.1, 0.1, 10, 10, 0.1, 0.1, 5, 5, 0.1, 0.1};

R2CNetworks float64_networks(Method method, int q, std::uint64_t seed) {
    Rng rng(seed);
    R2CNetworks n{make_generator(method, q, rng), make_generator(method, q, rng),
                  make_discriminator(method, q, rng), make_discriminator(method, q, rng)};
    for (Module* m : std::initializer_list<Module*>{n.G.get(), n.F.get(), n.D_A.get(), n.D_B.get()})
        m->to(DType::F64);
    return n;
}

Tensor one_hot(std::initializer_list<int> labels, DType dtype) {
    std::vector<double> v;
    for (int l : labels) {
        v.push_back(l == 0);
        v.push_back(l == 1);
    }
    return Tensor::from_vector(v, {static_cast<std::int64_t>(labels.size()), 2}, dtype);
}

// Central difference of f() with respect to element i of parameter p.
double numeric_grad(const std::function<double()>& f, Tensor p, std::size_t i, double eps = 1e-6) {
    double* d = p.data<double>();
    const double saved = d[i];
    d[i] = saved + eps;
    const double up = f();
    d[i] = saved - eps;
    const double down = f();
    d[i] = saved;
    return (up - down) / (2 * eps);
}

// Checks a few elements of every listed parameter: analytic gradient of loss() vs central differences.
void check_gradients(const std::function<Tensor()>& loss,
                     const std::vector<std::pair<std::string, Tensor>>& params) {
    for (const auto& [name, p] : params)
        const_cast<Tensor&>(p).zero_grad();
    loss().backward();
    auto value = [&] {
        NoGradGuard no_grad;
        return loss().item();
    };
    for (const auto& [name, p] : params) {
        INFO(name);
        REQUIRE(p.grad().defined());
        const std::vector<double> g = p.grad().to_vector();
        for (std::size_t i : {std::size_t(0), g.size() / 2, g.size() - 1}) {
            const double n = numeric_grad(value, p, i);
            CHECK(std::abs(g[i] - n) <= 1e-6 * std::max(1.0, std::abs(n)));
        }
    }
}

}  // namespace

TEST_CASE("one Algorithm-1 step: gradients of L_G and L_D match finite differences", "[trainer][gradcheck]") {
    for (Method method : {Method::Operational, Method::ConvolutionalLight}) {
        INFO(method_name(method));
        R2CNetworks nets = float64_networks(method, 3, 11);
        Rng rng(3);
        const Tensor A = Tensor::uniform({2, 3, 16, 16}, -1, 1, rng, DType::F64);
        const Tensor B = Tensor::uniform({2, 3, 16, 16}, -1, 1, rng, DType::F64);
        const Tensor cA = one_hot({1, 0}, DType::F64), cB = one_hot({0, 0}, DType::F64);
        const LossWeights w;

        auto pick = [](const Module& m, std::initializer_list<std::size_t> idx) {
            std::vector<std::pair<std::string, Tensor>> out;
            for (std::size_t i : idx)
                out.push_back(m.parameters()[i]);
            return out;
        };
        // G and F: first encoder kernel, a norm scale, the class head, the output layer's bias.
        auto gparams =
            pick(*nets.G, {0, 1, nets.G->parameters().size() - 3, nets.G->parameters().size() - 1});
        for (auto& p : pick(*nets.F, {0, nets.F->parameters().size() - 2}))
            gparams.push_back(p);
        check_gradients([&] { return generator_loss(nets, A, B, cA, cB, w).loss.total; }, gparams);

        const GeneratorPass g = [&] {
            NoGradGuard no_grad;
            return generator_loss(nets, A, B, cA, cB, w);
        }();
        auto dparams = pick(*nets.D_A, {0, 1, nets.D_A->parameters().size() - 1});
        for (auto& p : pick(*nets.D_B, {0, 2}))
            dparams.push_back(p);
        check_gradients([&] { return discriminator_loss(nets, A, B, g.B2A, g.A2B).total; }, dparams);
    }
}

TEST_CASE("L_G weighs its terms as the specification says", "[trainer]") {
    R2CNetworks nets = float64_networks(Method::Operational, 1, 2);
    Rng rng(4);
    const Tensor A = Tensor::uniform({1, 3, 16, 16}, -1, 1, rng, DType::F64);
    const Tensor B = Tensor::uniform({1, 3, 16, 16}, -1, 1, rng, DType::F64);
    NoGradGuard no_grad;
    const GeneratorPass g =
        generator_loss(nets, A, B, one_hot({1}, DType::F64), one_hot({0}, DType::F64), {});
    double expected = 0;
    REQUIRE(g.loss.terms.size() == 12);
    for (std::size_t i = 0; i < 12; ++i)
        expected += kGeneratorTermWeights[i] * g.loss.terms[i].second.item();
    CHECK(g.loss.total.item() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("the joined network calls give each loss term and gradient of one call per input", "[trainer]") {
    // The reference: L_G and L_D as the specification writes them, one network call per image batch.
    R2CNetworks nets = float64_networks(Method::Operational, 3, 5);
    Rng rng(6);
    const Tensor A = Tensor::uniform({2, 3, 16, 16}, -1, 1, rng, DType::F64);
    const Tensor B = Tensor::uniform({1, 3, 16, 16}, -1, 1, rng, DType::F64);
    const Tensor cA = one_hot({1, 0}, DType::F64), cB = one_hot({0}, DType::F64);
    const auto ones_like = [](const Tensor& t, double v) { return Tensor::full(t.shape(), v, DType::F64); };
    const auto reference_g = [&] {
        const GeneratorOutput A2B = nets.G->forward(A), B2A = nets.F->forward(B);
        const GeneratorOutput A2B2A = nets.F->forward(A2B.image), B2A2B = nets.G->forward(B2A.image);
        const GeneratorOutput A2A = nets.F->forward(A), B2B = nets.G->forward(B);
        const Tensor dB = nets.D_B->forward(A2B.image), dA = nets.D_A->forward(B2A.image);
        return std::vector<Tensor>{mse(dB, ones_like(dB, 1)),
                                   mse(dA, ones_like(dA, 1)),
                                   categorical_crossentropy(A2B.probs, cA),
                                   categorical_crossentropy(B2A.probs, cB),
                                   mae(A, A2B2A.image),
                                   mae(B, B2A2B.image),
                                   categorical_crossentropy(A2B2A.probs, cA),
                                   categorical_crossentropy(B2A2B.probs, cB),
                                   mae(A, A2A.image),
                                   mae(B, B2B.image),
                                   categorical_crossentropy(A2A.probs, cA),
                                   categorical_crossentropy(B2B.probs, cB)};
    };
    const auto grads = [](const std::vector<Module*>& modules) {
        std::vector<Tensor> g;
        for (Module* m : modules)
            for (const auto& [name, p] : m->parameters()) {
                g.push_back(p.grad());
                const_cast<Tensor&>(p).zero_grad();
            }
        return g;
    };
    const std::vector<Module*> generators{nets.G.get(), nets.F.get()};
    const std::vector<Module*> discriminators{nets.D_A.get(), nets.D_B.get()};

    const GeneratorPass g = generator_loss(nets, A, B, cA, cB, {});
    g.loss.total.backward();
    const std::vector<Tensor> g_joined = grads(generators);
    grads(discriminators);
    const std::vector<Tensor> terms = reference_g();
    Tensor total = mul_scalar(terms[0], kGeneratorTermWeights[0]);
    for (std::size_t i = 1; i < terms.size(); ++i)
        total = add(total, mul_scalar(terms[i], kGeneratorTermWeights[i]));
    total.backward();
    const std::vector<Tensor> g_reference = grads(generators);
    grads(discriminators);
    REQUIRE(g.loss.terms.size() == terms.size());
    for (std::size_t i = 0; i < terms.size(); ++i) {
        INFO(g.loss.terms[i].first);
        CHECK(g.loss.terms[i].second.item() == Approx(terms[i].item()).epsilon(1e-12));
    }
    REQUIRE(g_joined.size() == g_reference.size());
    for (std::size_t i = 0; i < g_joined.size(); ++i) {
        INFO("generator parameter " << i);
        REQUIRE(g_joined[i].defined() == g_reference[i].defined());
        if (g_reference[i].defined()) CHECK(test::rel_l2(g_joined[i], g_reference[i]) <= 1e-12);
    }
    CHECK(test::rel_l2(g.A2B, nets.G->forward(A).image) <= 1e-12);
    CHECK(test::rel_l2(g.B2A, nets.F->forward(B).image) <= 1e-12);

    // L_D on fakes of another batch size than the real images.
    const Tensor A_fake = Tensor::uniform({1, 3, 16, 16}, -1, 1, rng, DType::F64);
    const Tensor B_fake = Tensor::uniform({3, 3, 16, 16}, -1, 1, rng, DType::F64);
    const LossTerms d = discriminator_loss(nets, A, B, A_fake, B_fake);
    d.total.backward();
    const std::vector<Tensor> d_joined = grads(discriminators);
    const Tensor real_A = nets.D_A->forward(A), fake_A = nets.D_A->forward(A_fake);
    const Tensor real_B = nets.D_B->forward(B), fake_B = nets.D_B->forward(B_fake);
    const std::vector<Tensor> d_terms{mse(real_A, ones_like(real_A, 1)), mse(fake_A, ones_like(fake_A, 0)),
                                      mse(real_B, ones_like(real_B, 1)), mse(fake_B, ones_like(fake_B, 0))};
    add(add(d_terms[0], d_terms[1]), add(d_terms[2], d_terms[3])).backward();
    const std::vector<Tensor> d_reference = grads(discriminators);
    for (std::size_t i = 0; i < d_terms.size(); ++i) {
        INFO(d.terms[i].first);
        CHECK(d.terms[i].second.item() == Approx(d_terms[i].item()).epsilon(1e-12));
    }
    for (std::size_t i = 0; i < d_joined.size(); ++i) {
        INFO("discriminator parameter " << i);
        REQUIRE(d_joined[i].defined());
        CHECK(test::rel_l2(d_joined[i], d_reference[i]) <= 1e-12);
    }
}

TEST_CASE("the image pool fills, then swaps half of the time", "[trainer]") {
    ImagePool pool(3);
    Rng rng(9);
    auto image = [](double v) { return Tensor::full({1, 1, 2, 2}, v); };
    for (int i = 0; i < 3; ++i)
        CHECK(pool.query(image(i), rng).to_vector()[0] == i);  // filling: returned as is
    int from_pool = 0;
    for (int i = 3; i < 403; ++i) {
        const double got = pool.query(image(i), rng).to_vector()[0];
        CHECK(got <= i);
        if (got != i) ++from_pool;
        std::set<double> stored;
        for (const Tensor& t : pool.items())
            stored.insert(t.to_vector()[0]);
        CHECK(stored.size() == 3);
    }
    CHECK(from_pool > 150);
    CHECK(from_pool < 250);
    // Batches are pooled item by item.
    ImagePool batch_pool(4);
    const Tensor two = Tensor::from_vector({1, 1, 1, 1, 2, 2, 2, 2}, {2, 1, 2, 2});
    CHECK(batch_pool.query(two, rng).to_vector() == two.to_vector());
    CHECK(batch_pool.items().size() == 2);
}

TEST_CASE("the image pool writes into a given tensor what it would return", "[trainer]") {
    for (const int capacity : {0, 2}) {
        ImagePool returning(capacity), writing(capacity);
        Rng r1(4), r2(4);
        Tensor out = Tensor::full({2, 1, 2, 2}, -1.0);
        for (int i = 0; i < 6; ++i) {
            const Tensor batch = Tensor::from_vector({1. * i, 2, 3, 4, 5, 6, 7, 10. + i}, {2, 1, 2, 2});
            const std::vector<double> expected = returning.query(batch, r1).to_vector();
            const Tensor got = writing.query(batch, r2, out);
            CHECK(got.to_vector() == expected);
            CHECK(out.to_vector() == expected);
        }
        CHECK(r1.uniform() == r2.uniform());  // the same draws made
    }
    ImagePool pool(2);
    Rng rng(1);
    CHECK_THROWS_WITH(pool.query(Tensor::zeros({2, 1, 2, 2}), rng, Tensor::zeros({1, 1, 2, 2})),
                      Catch::Contains("does not match the batch"));
}

TEST_CASE("the generator learning rate is constant, then decays linearly per step", "[trainer]") {
    TrainConfig c;
    c.method = Method::ConvolutionalLight;
    c.epochs = 4;
    c.epoch_decay = 2;
    c.iterations_per_epoch = 1;
    c.lr = 2e-4;
    Trainer t(c);
    Rng rng(1);
    const Tensor A = Tensor::uniform({1, 3, 8, 8}, -1, 1, rng), B = Tensor::uniform({1, 3, 8, 8}, -1, 1, rng);
    const Tensor label = one_hot({0}, DType::F32);
    const double expected[] = {2e-4, 2e-4, 2e-4, 1e-4};
    for (double lr : expected) {
        CHECK(t.generator_lr() == Approx(lr).epsilon(1e-12));
        t.step(A, B, label, label);
    }
}

TEST_CASE("a run resumed from a checkpoint continues bit for bit", "[trainer]") {
    TrainConfig c;
    c.method = Method::Operational;
    c.q = 2;
    c.epochs = 10;
    c.epoch_decay = 1;
    c.iterations_per_epoch = 2;
    c.pool_size = 2;
    c.seed = 5;
    Rng data_rng(6);
    std::vector<Tensor> As, Bs;
    for (int i = 0; i < 5; ++i) {
        As.push_back(Tensor::uniform({1, 3, 8, 8}, -1, 1, data_rng));
        Bs.push_back(Tensor::uniform({1, 3, 8, 8}, -1, 1, data_rng));
    }
    const Tensor cA = one_hot({1}, DType::F32), cB = one_hot({0}, DType::F32);

    Trainer straight(c);
    std::vector<StepLog> expected;
    for (int i = 0; i < 5; ++i)
        expected.push_back(straight.step(As[i], Bs[i], cA, cB));

    const std::string path = (std::filesystem::temp_directory_path() /
                              ("r2c_resume_" + std::to_string(::getpid()) + ".safetensors"))
                                 .string();
    {
        Trainer first(c);
        for (int i = 0; i < 3; ++i)
            first.step(As[i], Bs[i], cA, cB);  // the pool is full after step 2
        first.save_checkpoint(path);
    }
    TrainConfig other_seed = c;
    other_seed.seed = 99;  // everything random must come from the checkpoint
    Trainer resumed(other_seed);
    resumed.load_checkpoint(path);
    std::remove(path.c_str());
    CHECK(resumed.iteration() == 3);
    for (int i = 3; i < 5; ++i)
        CHECK(resumed.step(As[i], Bs[i], cA, cB) == expected[i]);

    TrainConfig wrong = c;
    wrong.q = 3;
    Trainer mismatched(wrong);
    straight.save_checkpoint(path);
    CHECK_THROWS_WITH(mismatched.load_checkpoint(path), Catch::Contains(path) && Catch::Contains("q=2"));
    std::remove(path.c_str());
}

namespace {

// A batch with a NaN: under NanPolicy::Stop the step's error names the loss; under Skip no weight changes,
// both updates count as skipped, and the step's translations stay out of the pools. On CUDA the step
// still waits for the device only once.
void nan_batch_stops_or_skips(Device device) {
    TrainConfig c;
    c.method = Method::ConvolutionalLight;
    c.epochs = 2;
    c.epoch_decay = 1;
    c.device = device;
    Rng rng(2);
    Tensor host_A = Tensor::uniform({1, 3, 8, 8}, -1, 1, rng);
    host_A.data<float>()[5] = NAN;
    const Tensor A = host_A.to(device);
    const Tensor B = Tensor::uniform({1, 3, 8, 8}, -1, 1, rng).to(device);
    const Tensor label = one_hot({0}, DType::F32).to(device);

    Trainer stopping(c);
    CHECK_THROWS_WITH(stopping.step(A, B, label, label), Catch::Contains("generator step of iteration 1") &&
                                                             Catch::Contains("loss cycle_A2B2A = nan"));

    c.on_nan = NanPolicy::Skip;
    Trainer skipping(c);
    const std::vector<const Module*> trained = {skipping.networks().G.get(), skipping.networks().D_A.get()};
    std::vector<std::vector<double>> before;
    for (const Module* m : trained)
        for (const auto& [name, t] : m->parameters())
            before.push_back(t.to_vector());
    const std::uint64_t waits = cuda::host_waits();
    skipping.step(A, B, label, label);
    if (device == Device::CUDA) CHECK(cuda::host_waits() - waits == 1);
    CHECK(skipping.iteration() == 1);
    CHECK(skipping.skipped_updates() == 2);
    std::size_t k = 0;
    for (const Module* m : trained)
        for (const auto& [name, t] : m->parameters())
            CHECK(t.to_vector() == before[k++]);
    const test::TempDir dir;
    skipping.save_checkpoint(dir.file("skip.ckpt"));
    const SafetensorsFile saved = load_safetensors(dir.file("skip.ckpt"));
    CHECK(saved.tensors.count("pool_A2B.0") == 0);
    CHECK(saved.tensors.count("pool_B2A.0") == 0);
}

}  // namespace

TEST_CASE("a NaN in the data stops the step, or skips it leaving every weight untouched", "[trainer]") {
    nan_batch_stops_or_skips(Device::CPU);
}

TEST_CASE("a NaN in a CUDA batch stops the step, or skips it leaving every weight untouched",
          "[trainer][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    nan_batch_stops_or_skips(Device::CUDA);
}

TEST_CASE("replayed CUDA steps skip a NaN batch as the unreplayed steps do, bit for bit", "[trainer][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    cuda::set_math_precision(cuda::MathPrecision::FP32);  // CUDA cores: quicker on the emulator
    TrainConfig c;
    c.method = Method::ConvolutionalLight;
    c.epochs = 5;
    c.epoch_decay = 1;
    c.pool_size = 1;
    c.device = Device::CUDA;
    c.on_nan = NanPolicy::Skip;
    c.cuda_graphs = false;
    Trainer plain(c);
    c.cuda_graphs = true;
    Trainer graphed(c);
    Rng rng(3);
    const Tensor label = one_hot({1}, DType::F32).to(Device::CUDA);
    // Clean, clean (rehearsed), clean (captured), NaN (replayed and skipped), clean.
    for (int step = 0; step < 5; ++step) {
        INFO("step " << step);
        Tensor host_A = Tensor::uniform({1, 3, 8, 8}, -1, 1, rng);
        if (step == 3) host_A.data<float>()[7] = NAN;
        const Tensor A = host_A.to(Device::CUDA),
                     B = Tensor::uniform({1, 3, 8, 8}, -1, 1, rng).to(Device::CUDA);
        const StepLog expected = plain.step(A, B, label, label);
        const StepLog got = graphed.step(A, B, label, label);
        CHECK(graphed.replaying() == (step > 1));
        CHECK(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size() && i < expected.size(); ++i) {
            INFO(expected[i].first);
            CHECK((got[i].second == expected[i].second ||
                   (std::isnan(got[i].second) && std::isnan(expected[i].second))));
        }
        CHECK(graphed.skipped_updates() == plain.skipped_updates());
        CHECK(graphed.generator_lr() == plain.generator_lr());
    }
    CHECK(plain.skipped_updates() == 2);
    const test::TempDir dir;
    plain.save_checkpoint(dir.file("plain.ckpt"));
    graphed.save_checkpoint(dir.file("graphed.ckpt"));
    const SafetensorsFile a = load_safetensors(dir.file("plain.ckpt")),
                          b = load_safetensors(dir.file("graphed.ckpt"));
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (const auto& [name, t] : a.tensors) {
        INFO(name);
        REQUIRE(b.tensors.count(name) == 1);
        CHECK(b.tensors.at(name).to_vector() == t.to_vector());
    }
    CHECK(a.metadata == b.metadata);
    cuda::set_math_precision(cuda::MathPrecision::TF32);
}
