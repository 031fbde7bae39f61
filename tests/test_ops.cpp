// Normalisation, padding, pooling, the dense head and the losses: forward values against hand-computed or
// independently computed expectations, float64 finite-difference gradients, float32 against float64,
// and argument checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/support.h"

using namespace r2c;

namespace {

using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

constexpr double kGradTol = 1e-6;

Tensor constant(const std::vector<double>& values, const Shape& shape) {
    return Tensor::from_vector(values, shape, DType::F64);
}
Tensor param(const std::vector<double>& values, const Shape& shape) {
    return constant(values, shape).set_requires_grad(true);
}

// Mean and biased variance of m values.
std::pair<double, double> mean_var(const double* v, std::int64_t m) {
    double mean = 0, var = 0;
    for (std::int64_t i = 0; i < m; ++i)
        mean += v[i];
    mean /= static_cast<double>(m);
    for (std::int64_t i = 0; i < m; ++i)
        var += (v[i] - mean) * (v[i] - mean);
    return {mean, var / static_cast<double>(m)};
}

// The output of f and the gradients of sum(f * weights) with respect to every input (undefined where an
// input needs none).
std::pair<Tensor, V> output_and_grads(const Fn& f, const V& inputs, const Tensor& weights) {
    for (const Tensor& t : inputs)
        const_cast<Tensor&>(t).zero_grad();
    Tensor y = f(inputs);
    sum(mul(y, weights.to(y.dtype()))).backward();
    V grads;
    for (const Tensor& t : inputs)
        grads.push_back(t.grad());
    return {y, grads};
}

// Largest relative L2 difference, over the output and every gradient, between f on float32 copies of
// the float64 inputs and f on the inputs themselves.
double float32_disagreement(const Fn& f, const V& inputs) {
    V inputs32;
    for (const Tensor& t : inputs)
        inputs32.push_back(t.to(DType::F32).set_requires_grad(t.requires_grad()));
    Rng rng(3);
    const Tensor weights = Tensor::uniform(f(inputs).shape(), 0.5, 1.5, rng, DType::F64);
    const auto [y64, g64] = output_and_grads(f, inputs, weights);
    const auto [y32, g32] = output_and_grads(f, inputs32, weights);
    REQUIRE(y32.dtype() == DType::F32);
    double worst = test::rel_l2(y32, y64);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        REQUIRE(g32[i].defined() == g64[i].defined());
        if (g64[i].defined()) worst = std::max(worst, test::rel_l2(g32[i], g64[i]));
    }
    return worst;
}

}  // namespace

// ---- instance_norm ----

TEST_CASE("instance_norm of a hand example", "[ops][instance_norm]") {
    // One plane [1 2; 3 4]: mean 2.5, biased variance 1.25.
    Tensor y =
        instance_norm(constant({1, 2, 3, 4}, {1, 1, 2, 2}), constant({2}, {1}), constant({0.5}, {1}), 1e-3);
    const double s = 1 / std::sqrt(1.25 + 1e-3);
    const std::vector<double> expected{2 * -1.5 * s + 0.5, 2 * -0.5 * s + 0.5, 2 * 0.5 * s + 0.5,
                                       2 * 1.5 * s + 0.5};
    CHECK(test::rel_l2(y.to_vector(), expected) <= 1e-14);
}

TEST_CASE("instance_norm output has per-plane mean beta and std gamma*sqrt(var/(var+eps))",
          "[ops][instance_norm]") {
    Rng rng(11);
    const std::int64_t n = 2, c = 3, m = 5 * 3;
    const double eps = 1e-3;
    Tensor x = test::rand({n, c, 5, 3}, rng, -2, 3, false);
    Tensor gamma = test::rand({c}, rng, 0.5, 1.5, false), beta = test::rand({c}, rng, -1, 1, false);
    Tensor y = instance_norm(x, gamma, beta, eps);
    for (std::int64_t p = 0; p < n * c; ++p) {
        const auto [x_mean, x_var] = mean_var(x.data<double>() + p * m, m);
        const auto [y_mean, y_var] = mean_var(y.data<double>() + p * m, m);
        const double g = gamma.data<double>()[p % c], b = beta.data<double>()[p % c];
        CHECK(y_mean == Approx(b).margin(1e-13));
        CHECK(std::sqrt(y_var) == Approx(g * std::sqrt(x_var / (x_var + eps))).epsilon(1e-12));
    }
}

TEST_CASE("instance_norm gradients pass a finite-difference check", "[ops][instance_norm][gradcheck]") {
    Rng rng(12);
    Tensor x = test::rand({2, 3, 5, 3}, rng, -2, 3);
    Tensor gamma = test::rand({3}, rng, 0.5, 1.5), beta = test::rand({3}, rng);
    const Fn f = [](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3); };
    CHECK(test::max_gradcheck_error(f, {x, gamma, beta}) <= kGradTol);
    // A constant input (an image) still gives gamma and beta their gradients.
    Tensor image = test::rand({2, 3, 3, 5}, rng, -1, 1, false);
    CHECK(test::max_gradcheck_error(f, {image, gamma, beta}) <= kGradTol);
    CHECK_FALSE(image.grad().defined());
}

TEST_CASE("instance_norm with a residual equals the add and activation after it, values and gradients",
          "[ops][instance_norm][fused]") {
    Rng rng(14);
    Tensor x = test::rand({2, 3, 5, 4}, rng, -2, 3), r = test::rand({2, 3, 5, 4}, rng, -1, 1);
    Tensor gamma = test::rand({3}, rng, 0.5, 1.5), beta = test::rand({3}, rng, -0.5, 0.5);
    const V in{x, gamma, beta, r};
    for (Activation act : {Activation::None, Activation::Tanh, Activation::LeakyRelu}) {
        INFO("activation " << static_cast<int>(act));
        const Fn separate = [act](const V& t) {
            const Tensor z = add(instance_norm(t[0], t[1], t[2], 1e-3), t[3]);
            return act == Activation::Tanh ? tanh(z) : act == Activation::LeakyRelu ? leaky_relu(z, 0.2) : z;
        };
        const Fn fused = [act](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3, act, t[3]); };
        CHECK(test::max_disagreement(separate, fused, in) <= 1e-14);
        // The residual is really added.
        const std::vector<double> without = instance_norm(x, gamma, beta, 1e-3, act).detach().to_vector(),
                                  with = fused(in).detach().to_vector();
        CHECK(test::rel_l2(with, without) > 1e-2);
        CHECK(test::max_gradcheck_error(fused, in) <= kGradTol);
    }
    // A residual that needs no gradient (an image) gets none; the others still do.
    Tensor image = test::rand({2, 3, 5, 4}, rng, -1, 1, false);
    sum(instance_norm(x, gamma, beta, 1e-3, Activation::Tanh, image)).backward();
    CHECK_FALSE(image.grad().defined());
    CHECK(x.grad().defined());
}

TEST_CASE("instance_norm with a fused activation equals the separate op after it, values and gradients",
          "[ops][instance_norm][fused]") {
    Rng rng(13);
    Tensor x = test::rand({2, 3, 5, 4}, rng, -2, 3);
    Tensor gamma = test::rand({3}, rng, 0.5, 1.5), beta = test::rand({3}, rng, -0.5, 0.5);
    const V in{x, gamma, beta};
    const Fn plain = [](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3); };
    const std::pair<Activation, Fn> cases[] = {
        {Activation::Tanh, [&](const V& t) { return tanh(plain(t)); }},
        {Activation::Relu, [&](const V& t) { return relu(plain(t)); }},
        {Activation::LeakyRelu, [&](const V& t) { return leaky_relu(plain(t), 0.2); }},
    };
    for (const auto& [act, separate] : cases) {
        INFO("activation " << static_cast<int>(act));
        const Fn fused = [act = act](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3, act); };
        CHECK(test::max_disagreement(separate, fused, in) <= 1e-14);
        CHECK(test::max_disagreement(plain, fused, in) > 1e-3);  // the activation is really applied
        if (act != Activation::Relu) CHECK(test::max_gradcheck_error(fused, in) <= kGradTol);
        // float32 as well.
        V in32;
        for (const Tensor& t : in)
            in32.push_back(t.to(DType::F32).set_requires_grad(true));
        CHECK(test::max_disagreement(separate, fused, in32) <= 1e-7);
    }
}

// ---- reflect_pad ----

TEST_CASE("reflect_pad mirrors a known matrix without repeating the edge", "[ops][reflect_pad]") {
    Tensor x = constant({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
    Tensor p1 = reflect_pad(x, 1);
    CHECK(p1.shape() == Shape{1, 1, 5, 5});
    CHECK(p1.to_vector() == std::vector<double>{5, 4, 5, 6, 5,  //
                                                2, 1, 2, 3, 2,  //
                                                5, 4, 5, 6, 5,  //
                                                8, 7, 8, 9, 8,  //
                                                5, 4, 5, 6, 5});
    CHECK(reflect_pad(x, 2).to_vector() == std::vector<double>{9, 8, 7, 8, 9, 8, 7,  //
                                                               6, 5, 4, 5, 6, 5, 4,  //
                                                               3, 2, 1, 2, 3, 2, 1,  //
                                                               6, 5, 4, 5, 6, 5, 4,  //
                                                               9, 8, 7, 8, 9, 8, 7,  //
                                                               6, 5, 4, 5, 6, 5, 4,  //
                                                               3, 2, 1, 2, 3, 2, 1});
    CHECK(reflect_pad(x, 0).to_vector() == x.to_vector());
}

TEST_CASE("reflect_pad gradients pass a finite-difference check", "[ops][reflect_pad][gradcheck]") {
    Rng rng(13);
    Tensor x = test::rand({2, 2, 3, 5}, rng);
    CHECK(test::max_gradcheck_error([](const V& t) { return reflect_pad(t[0], 2); }, {x}) <= kGradTol);
    CHECK(test::max_gradcheck_error([](const V& t) { return reflect_pad(t[0], 1); }, {x}) <= kGradTol);
}

TEST_CASE("reflect_pad gradient counts every read of an input", "[ops][reflect_pad]") {
    // Pad 1 of a row [a b c] is [b | a b c | b]: b is read 3 times, a and c once. In two dimensions the
    // counts multiply: the centre of a 3x3 plane is read 9 times, an edge middle 3 times, a corner once.
    Tensor x = param({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
    sum(reflect_pad(x, 1)).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{1, 3, 1, 3, 9, 3, 1, 3, 1});
}

// ---- global_max_pool ----

TEST_CASE("global_max_pool takes the plane maximum and sends its gradient to the first one",
          "[ops][global_max_pool]") {
    // Plane 0 has a tie (5 at positions 1 and 3); plane 1 is all negative.
    Tensor x = param({1, 5, 2, 5, 0, -1, -3, -2, -4, -2.5, -7, -6}, {1, 2, 2, 3});
    Tensor y = global_max_pool(x);
    CHECK(y.shape() == Shape{1, 2});
    CHECK(y.to_vector() == std::vector<double>{5, -2});
    sum(mul(y, constant({10, 20}, {1, 2}))).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{0, 10, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0});
}

TEST_CASE("global_max_pool gradients pass a finite-difference check", "[ops][global_max_pool][gradcheck]") {
    Rng rng(14);
    Tensor x = test::rand({2, 3, 5, 3}, rng);
    CHECK(test::max_gradcheck_error([](const V& t) { return global_max_pool(t[0]); }, {x}) <= kGradTol);
}

// ---- linear ----

TEST_CASE("linear computes x w^T + b", "[ops][linear]") {
    // x [2,3], w [2,3], b [2]: each output is a dot product plus the bias.
    Tensor x = constant({1, 2, 3, -1, 0, 2}, {2, 3});
    Tensor w = constant({0.5, -1, 2, 3, 1, -2}, {2, 3});
    Tensor b = constant({10, -10}, {2});
    CHECK(linear(x, w, b).to_vector() == std::vector<double>{0.5 - 2 + 6 + 10, 3 + 2 - 6 - 10,  //
                                                             -0.5 + 0 + 4 + 10, -3 + 0 - 4 - 10});
    CHECK(linear(x, w, Tensor()).to_vector() == std::vector<double>{4.5, -1, 3.5, -7});
}

TEST_CASE("linear gradients pass a finite-difference check", "[ops][linear][gradcheck]") {
    Rng rng(15);
    Tensor x = test::rand({3, 5}, rng), w = test::rand({4, 5}, rng), b = test::rand({4}, rng);
    CHECK(test::max_gradcheck_error([](const V& t) { return linear(t[0], t[1], t[2]); }, {x, w, b}) <=
          kGradTol);
    CHECK(test::max_gradcheck_error([](const V& t) { return linear(t[0], t[1], Tensor()); }, {x, w}) <=
          kGradTol);
}

// ---- softmax ----

TEST_CASE("softmax rows sum to one and match exp(x)/sum(exp(x))", "[ops][softmax]") {
    Rng rng(16);
    Tensor x = test::rand({3, 4}, rng, -3, 3, false);
    const std::vector<double> y = softmax(x).to_vector(), xv = x.to_vector();
    for (int r = 0; r < 3; ++r) {
        double row_sum = 0, denom = 0;
        for (int k = 0; k < 4; ++k) {
            row_sum += y[r * 4 + k];
            denom += std::exp(xv[r * 4 + k]);
        }
        CHECK(row_sum == Approx(1).epsilon(1e-15));
        for (int k = 0; k < 4; ++k)
            CHECK(y[r * 4 + k] == Approx(std::exp(xv[r * 4 + k]) / denom).epsilon(1e-14));
    }
}

TEST_CASE("softmax is stable for large logits", "[ops][softmax]") {
    // exp(1000) overflows; the result depends only on differences: [e^0, e^1, e^-1] / (1 + e + 1/e).
    Tensor y = softmax(constant({1000, 1001, 999}, {1, 3}));
    const double d = 1 + std::exp(1.0) + std::exp(-1.0);
    CHECK(test::rel_l2(y.to_vector(), {1 / d, std::exp(1.0) / d, std::exp(-1.0) / d}) <= 1e-15);
}

TEST_CASE("softmax gradients pass a finite-difference check", "[ops][softmax][gradcheck]") {
    Rng rng(17);
    Tensor x = test::rand({3, 4}, rng, -3, 3);
    CHECK(test::max_gradcheck_error([](const V& t) { return softmax(t[0]); }, {x}) <= kGradTol);
}

// ---- losses ----

TEST_CASE("categorical_crossentropy of a hand example with clipped entries", "[ops][loss]") {
    // Row 0: soft target, nothing clipped. Row 1: target on a zero probability (clipped up to 1e-7,
    // contributing -log(1e-7)) and a probability of one (clipped down, target zero).
    Tensor p = param({0.2, 0.7, 0.1, 0.0, 1.0, 0.0}, {2, 3});
    Tensor target = constant({0.25, 0.75, 0, 1, 0, 0}, {2, 3}).set_requires_grad(true);
    Tensor loss = categorical_crossentropy(p, target);
    const double row0 = -(0.25 * std::log(0.2) + 0.75 * std::log(0.7)), row1 = -std::log(1e-7);
    CHECK(loss.item() == Approx((row0 + row1) / 2).epsilon(1e-14));
    loss.backward();
    // d/dp = -t / (N p) where p was not clipped, 0 where it was.
    CHECK(test::rel_l2(p.grad().to_vector(), {-0.25 / (2 * 0.2), -0.75 / (2 * 0.7), 0, 0, 0, 0}) <= 1e-15);
    CHECK_FALSE(target.grad().defined());
}

TEST_CASE("categorical_crossentropy gradients pass a finite-difference check", "[ops][loss][gradcheck]") {
    Rng rng(18);
    Tensor p = test::rand({3, 4}, rng, 0.05, 0.95);
    Tensor target = test::rand({3, 4}, rng, 0, 1, false);
    CHECK(test::max_gradcheck_error([&](const V& t) { return categorical_crossentropy(t[0], target); },
                                    {p}) <= kGradTol);
    // As the class head uses it: on softmax probabilities, differentiated to the logits.
    Tensor logits = test::rand({3, 4}, rng, -3, 3);
    CHECK(test::max_gradcheck_error(
              [&](const V& t) { return categorical_crossentropy(softmax(t[0]), target); }, {logits}) <=
          kGradTol);
}

TEST_CASE("mse and mae of a hand example, with sign(0) = 0", "[ops][loss]") {
    // a - b = [-0.5, 0, 2, -1]
    Tensor a = param({1, 2, 3, 4}, {2, 2}), b = param({1.5, 2, 1, 5}, {2, 2});
    Tensor l2 = mse(a, b);
    CHECK(l2.item() == Approx((0.25 + 0 + 4 + 1) / 4).epsilon(1e-15));
    l2.backward();
    CHECK(a.grad().to_vector() == std::vector<double>{-0.25, 0, 1, -0.5});  // 2 (a - b) / 4
    CHECK(b.grad().to_vector() == std::vector<double>{0.25, 0, -1, 0.5});
    a.zero_grad();
    b.zero_grad();
    Tensor l1 = mae(a, b);
    CHECK(l1.item() == Approx((0.5 + 0 + 2 + 1) / 4).epsilon(1e-15));
    l1.backward();
    CHECK(a.grad().to_vector() == std::vector<double>{-0.25, 0, 0.25, -0.25});  // sign(a - b) / 4
    CHECK(b.grad().to_vector() == std::vector<double>{0.25, 0, -0.25, 0.25});
}

TEST_CASE("mse and mae against a constant give a gradient to the other argument only", "[ops][loss]") {
    Tensor a = param({1, 2, 3, 4}, {4}), ones = Tensor::full({4}, 1.0, DType::F64);
    mse(ones, a).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{0, 0.5, 1, 1.5});  // -2 (1 - a) / 4
    CHECK_FALSE(ones.grad().defined());
    a.zero_grad();
    mae(a, ones).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{0, 0.25, 0.25, 0.25});
}

TEST_CASE("mse and mae gradients pass a finite-difference check", "[ops][loss][gradcheck]") {
    Rng rng(19);
    Tensor a = test::rand({2, 3, 5, 3}, rng), b = test::rand({2, 3, 5, 3}, rng);
    CHECK(test::max_gradcheck_error([](const V& t) { return mse(t[0], t[1]); }, {a, b}) <= kGradTol);
    CHECK(test::max_gradcheck_error([](const V& t) { return mae(t[0], t[1]); }, {a, b}) <= kGradTol);
}

// ---- cat and narrow ----

TEST_CASE("cat joins along the first dimension and narrow takes items back", "[ops][batch]") {
    const Tensor a = constant({1, 2, 3, 4}, {2, 2}), b = constant({5, 6}, {1, 2});
    const Tensor ab = cat({a, b});
    CHECK(ab.shape() == Shape{3, 2});
    CHECK(ab.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
    CHECK(cat({b, a, b}).to_vector() == std::vector<double>{5, 6, 1, 2, 3, 4, 5, 6});
    CHECK(cat({b}).to_vector() == std::vector<double>{5, 6});
    CHECK(narrow(ab, 1, 2).to_vector() == std::vector<double>{3, 4, 5, 6});
    CHECK(narrow(ab, 3, 0).shape() == Shape{0, 2});
}

TEST_CASE("cat and narrow send each gradient to the items it came from", "[ops][batch]") {
    Tensor a = param({1, 2, 3, 4}, {2, 2});
    const Tensor b = constant({5, 6}, {1, 2});
    sum(mul(cat({a, b}), constant({1, 2, 3, 4, 5, 6}, {3, 2}))).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{1, 2, 3, 4});
    CHECK_FALSE(b.grad().defined());
    // A part given twice gets the sum of the gradients of both places.
    a.zero_grad();
    sum(mul(cat({a, b, a}), constant({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {5, 2}))).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{1 + 7, 2 + 8, 3 + 9, 4 + 10});
    Tensor x = param({1, 2, 3, 4, 5, 6}, {3, 2});
    sum(mul(narrow(x, 1, 1), constant({7, 8}, {1, 2}))).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 7, 8, 0, 0});
}

TEST_CASE("cat and narrow gradients pass a finite-difference check", "[ops][batch][gradcheck]") {
    Rng rng(21);
    Tensor a = test::rand({2, 3, 4, 3}, rng), b = test::rand({1, 3, 4, 3}, rng);
    Tensor c = test::rand({3, 3, 4, 3}, rng);
    const auto cat3 = [](const V& t) { return cat({t[0], t[1], t[2]}); };
    CHECK(test::max_gradcheck_error(cat3, {a, b, c}) <= kGradTol);
    // Two narrows of one tensor: the gradients of both reach it.
    CHECK(test::max_gradcheck_error([](const V& t) { return mul(narrow(t[0], 0, 1), narrow(t[0], 1, 1)); },
                                    {a}) <= kGradTol);
}

// ---- across ops ----

TEST_CASE("float32 agrees with float64, forward and backward", "[ops][float32]") {
    Rng rng(20);
    const Shape img{2, 3, 5, 3};
    Tensor x = test::rand(img, rng, -2, 3), y = test::rand(img, rng);
    Tensor gamma = test::rand({3}, rng, 0.5, 1.5), beta = test::rand({3}, rng);
    Tensor feats = test::rand({3, 5}, rng), w = test::rand({4, 5}, rng), b = test::rand({4}, rng);
    Tensor p = test::rand({3, 4}, rng, 0.05, 0.95), target = test::rand({3, 4}, rng, 0, 1, false);
    constexpr double tol = 1e-5;
    CHECK(float32_disagreement([](const V& t) { return instance_norm(t[0], t[1], t[2], 1e-3); },
                               {x, gamma, beta}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return reflect_pad(t[0], 2); }, {x}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return global_max_pool(t[0]); }, {x}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return linear(t[0], t[1], t[2]); }, {feats, w, b}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return softmax(t[0]); }, {feats}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return categorical_crossentropy(t[0], t[1]); },
                               {p, target}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return mse(t[0], t[1]); }, {x, y}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return mae(t[0], t[1]); }, {x, y}) <= tol);
    CHECK(float32_disagreement([](const V& t) { return narrow(cat({t[0], t[1]}), 1, 2); }, {x, y}) <= tol);
}

TEST_CASE("bad arguments are rejected with the op's name and the shapes", "[ops][errors]") {
    const auto zeros = [](const Shape& s) { return Tensor::zeros(s, DType::F64); };
    using Catch::Contains;
    CHECK_THROWS_WITH(instance_norm(zeros({2, 3, 4, 4}), zeros({2}), zeros({3})),
                      Contains("instance_norm") && Contains("[2]") && Contains("[2,3,4,4]"));
    CHECK_THROWS_WITH(instance_norm(zeros({3, 4, 4}), zeros({3}), zeros({3})),
                      Contains("instance_norm") && Contains("[3,4,4]"));
    CHECK_THROWS_WITH(instance_norm(zeros({1, 3, 4, 4}), Tensor::zeros({3}), zeros({3})),
                      Contains("instance_norm") && Contains("float32"));
    CHECK_THROWS_WITH(instance_norm(zeros({1, 3, 4, 4}), zeros({3}), zeros({3}), 1e-3, Activation::None,
                                    zeros({1, 3, 4, 5})),
                      Contains("instance_norm") && Contains("residual") && Contains("[1,3,4,5]"));
    CHECK_THROWS_WITH(reflect_pad(zeros({1, 1, 3, 5}), 3), Contains("reflect_pad") && Contains("[1,1,3,5]"));
    CHECK_THROWS_WITH(reflect_pad(zeros({1, 1, 5, 3}), 3), Contains("reflect_pad") && Contains("[1,1,5,3]"));
    CHECK_THROWS_WITH(reflect_pad(zeros({1, 1, 5, 5}), -1), Contains("reflect_pad"));
    CHECK_THROWS_WITH(global_max_pool(zeros({2, 3})), Contains("global_max_pool") && Contains("[2,3]"));
    CHECK_THROWS_WITH(linear(zeros({2, 3}), zeros({4, 5}), Tensor()),
                      Contains("linear") && Contains("[2,3]") && Contains("[4,5]"));
    CHECK_THROWS_WITH(linear(zeros({2, 3}), zeros({4, 3}), zeros({5})),
                      Contains("linear") && Contains("[5]"));
    CHECK_THROWS_WITH(softmax(zeros({2, 3, 4})), Contains("softmax") && Contains("[2,3,4]"));
    CHECK_THROWS_WITH(categorical_crossentropy(zeros({2, 3}), zeros({2, 2})),
                      Contains("categorical_crossentropy") && Contains("[2,3]") && Contains("[2,2]"));
    CHECK_THROWS_WITH(mse(zeros({2, 3}), zeros({3, 2})),
                      Contains("mse") && Contains("[2,3]") && Contains("[3,2]"));
    CHECK_THROWS_WITH(mae(zeros({2, 3}), Tensor::zeros({2, 3})), Contains("mae") && Contains("float32"));
    CHECK_THROWS_WITH(cat({zeros({2, 3}), zeros({2, 4})}),
                      Contains("cat") && Contains("[2,3]") && Contains("[2,4]"));
    CHECK_THROWS_WITH(cat({zeros({2, 3}), Tensor::zeros({2, 3})}), Contains("cat") && Contains("float32"));
    CHECK_THROWS_WITH(cat({}), Contains("cat: no tensors"));
    CHECK_THROWS_WITH(cat({zeros({2, 3}), Tensor()}), Contains("cat: an input is undefined"));
    CHECK_THROWS_WITH(narrow(zeros({2, 3}), 1, 2), Contains("narrow") && Contains("[2,3]"));
    CHECK_THROWS_WITH(narrow(zeros({2, 3}), -1, 1), Contains("narrow") && Contains("[2,3]"));
}
