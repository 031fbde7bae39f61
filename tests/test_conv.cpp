// The operational convolution and its transpose: TensorFlow padding, agreement with direct loops,
// the adjoint identity, finite-difference gradients, float32, tiling of large layers, argument checks.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/support.h"

using namespace r2c;
using V = std::vector<Tensor>;

namespace {

std::int64_t at(const Shape& s, std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) {
    return ((i0 * s[1] + i1) * s[2] + i2) * s[3] + i3;
}

// Output size and leading padding of one dimension, as the spec defines them.
Pads1D expected_pads(std::int64_t n, std::int64_t k, int s, const Padding& p, bool rows) {
    if (p.kind == Padding::Kind::Same) return tf_same_pads(n, k, s);
    const std::int64_t before = p.kind == Padding::Kind::Explicit ? (rows ? p.top : p.left) : 0;
    const std::int64_t after = p.kind == Padding::Kind::Explicit ? (rows ? p.bottom : p.right) : 0;
    return {(n + before + after - k) / s + 1, before, after};
}

// Sum over q of the bias b [Q,Cout] for channel co (0 without a bias).
double bias_sum(const Tensor& b, std::int64_t co) {
    if (!b.defined()) return 0;
    double acc = 0;
    for (std::int64_t q = 0; q < b.dim(0); ++q)
        acc += b.to_vector()[static_cast<std::size_t>(q * b.dim(1) + co)];
    return acc;
}

// y = sum_q conv(x^q, W_q) + b_q by direct loops over every output and kernel tap.
Tensor naive_oper_conv(const Tensor& x, const Tensor& w, const Tensor& b, int s, const Padding& p) {
    const Shape xs = x.shape(), ws = w.shape();
    const std::int64_t Q = ws[0], cout = ws[1], cin = ws[2], k = ws[3];
    const Pads1D ph = expected_pads(xs[2], k, s, p, true), pw = expected_pads(xs[3], k, s, p, false);
    const Shape ys{xs[0], cout, ph.out, pw.out};
    const std::vector<double> xv = x.to_vector(), wv = w.to_vector();
    std::vector<double> y(static_cast<std::size_t>(shape_numel(ys)));
    for (std::int64_t n = 0; n < xs[0]; ++n)
        for (std::int64_t co = 0; co < cout; ++co)
            for (std::int64_t oy = 0; oy < ph.out; ++oy)
                for (std::int64_t ox = 0; ox < pw.out; ++ox) {
                    double acc = bias_sum(b, co);
                    for (std::int64_t q = 0; q < Q; ++q)
                        for (std::int64_t ci = 0; ci < cin; ++ci)
                            for (std::int64_t ky = 0; ky < k; ++ky)
                                for (std::int64_t kx = 0; kx < k; ++kx) {
                                    const std::int64_t iy = oy * s - ph.before + ky,
                                                       ix = ox * s - pw.before + kx;
                                    if (iy < 0 || iy >= xs[2] || ix < 0 || ix >= xs[3]) continue;
                                    const double v = xv[at(xs, n, ci, iy, ix)];
                                    acc += wv[at({Q, cout, cin, k * k}, q, co, ci, ky * k + kx)] *
                                           std::pow(v, static_cast<double>(q + 1));
                                }
                    y[at(ys, n, co, oy, ox)] = acc;
                }
    return Tensor::from_vector(y, ys, DType::F64);
}

// y = sum_q conv_transpose(x^q, W_q) + b_q by scattering every input pixel through every kernel tap into
// the full output ((n-1)*s + k), then cropping as TensorFlow does.
Tensor naive_oper_conv_transpose(const Tensor& x, const Tensor& w, const Tensor& b, int s, const Padding& p) {
    const Shape xs = x.shape(), ws = w.shape();
    const std::int64_t Q = ws[0], cin = ws[1], cout = ws[2], k = ws[3];
    const bool same = p.kind == Padding::Kind::Same;
    const std::int64_t oh = same ? xs[2] * s : (xs[2] - 1) * s + k,
                       ow = same ? xs[3] * s : (xs[3] - 1) * s + k;
    const std::int64_t crop = same ? std::max<std::int64_t>(k - s, 0) / 2 : 0;
    const Shape ys{xs[0], cout, oh, ow};
    const std::vector<double> xv = x.to_vector(), wv = w.to_vector();
    std::vector<double> y(static_cast<std::size_t>(shape_numel(ys)));
    for (std::int64_t n = 0; n < xs[0]; ++n)
        for (std::int64_t co = 0; co < cout; ++co)
            for (std::int64_t i = 0; i < oh * ow; ++i)
                y[at(ys, n, co, 0, 0) + i] = bias_sum(b, co);
    for (std::int64_t n = 0; n < xs[0]; ++n)
        for (std::int64_t q = 0; q < Q; ++q)
            for (std::int64_t ci = 0; ci < cin; ++ci)
                for (std::int64_t iy = 0; iy < xs[2]; ++iy)
                    for (std::int64_t ix = 0; ix < xs[3]; ++ix) {
                        const double v = std::pow(xv[at(xs, n, ci, iy, ix)], static_cast<double>(q + 1));
                        for (std::int64_t co = 0; co < cout; ++co)
                            for (std::int64_t ky = 0; ky < k; ++ky)
                                for (std::int64_t kx = 0; kx < k; ++kx) {
                                    const std::int64_t oy = iy * s + ky - crop, ox = ix * s + kx - crop;
                                    if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                                    y[at(ys, n, co, oy, ox)] +=
                                        wv[at({Q, cin, cout, k * k}, q, ci, co, ky * k + kx)] * v;
                                }
                    }
    return Tensor::from_vector(y, ys, DType::F64);
}

double dot(const Tensor& a, const Tensor& b) {
    const std::vector<double> av = a.to_vector(), bv = b.to_vector();
    double acc = 0;
    for (std::size_t i = 0; i < av.size(); ++i)
        acc += av[i] * bv[i];
    return acc;
}

// A copy of t with `step` * v added (no autograd history).
Tensor shifted(const Tensor& t, const Tensor& v, double step) {
    Tensor out = t.clone();
    double* p = out.data<double>();
    const std::vector<double> dv = v.to_vector();
    for (std::size_t i = 0; i < dv.size(); ++i)
        p[i] += step * dv[i];
    return out;
}

// For each input requiring a gradient: the relative difference between <grad, v> and the central
// difference of L = sum(f(inputs) * R) along a random direction v. One pair of evaluations per input,
// so it suits layers too large for an element-by-element gradient check.
double max_directional_error(const std::function<Tensor(const V&)>& f, const V& inputs, Rng& rng) {
    const Tensor r = Tensor::uniform(f(inputs).shape(), 0.5, 1.5, rng, DType::F64);
    auto loss = [&](const V& xs) { return sum(mul(f(xs), r)); };
    loss(inputs).backward();
    double worst = 0;
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
        const Tensor v = Tensor::uniform(inputs[i].shape(), -1, 1, rng, DType::F64);
        const double eps = 1e-4;
        V up = inputs, down = inputs;
        up[i] = shifted(inputs[i], v, eps);
        down[i] = shifted(inputs[i], v, -eps);
        const double numeric = (loss(up).item() - loss(down).item()) / (2 * eps);
        const double analytic = dot(inputs[i].grad(), v);
        worst = std::max(worst, std::abs(analytic - numeric) / std::max(std::abs(numeric), 1e-30));
    }
    return worst;
}

// Limits OpenMP to `threads` threads for a scope (no effect without OpenMP).
class ThreadLimit {
  public:
    explicit ThreadLimit(int threads) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        (void)threads;
    }
    ~ThreadLimit() {
#ifdef _OPENMP
        omp_set_num_threads(previous_);
#endif
    }
    ThreadLimit(const ThreadLimit&) = delete;
    ThreadLimit& operator=(const ThreadLimit&) = delete;

  private:
#ifdef _OPENMP
    int previous_ = omp_get_max_threads();
#endif
};

std::string describe(int q, int k, int s, const Padding& p) {
    const char* kind = p.kind == Padding::Kind::Same    ? "same"
                       : p.kind == Padding::Kind::Valid ? "valid"
                                                        : "explicit";
    return "Q=" + std::to_string(q) + " k=" + std::to_string(k) + " stride=" + std::to_string(s) + " " + kind;
}

}  // namespace

TEST_CASE("tf_same_pads and tf_same_transpose_crop follow the spec's worked examples", "[conv]") {
    auto pads = [](Pads1D p) { return std::vector<std::int64_t>{p.out, p.before, p.after}; };
    CHECK(pads(tf_same_pads(256, 3, 2)) == std::vector<std::int64_t>{128, 0, 1});
    CHECK(pads(tf_same_pads(256, 4, 2)) == std::vector<std::int64_t>{128, 1, 1});
    CHECK(pads(tf_same_pads(128, 4, 4)) == std::vector<std::int64_t>{32, 0, 0});
    CHECK(pads(tf_same_pads(32, 4, 1)) == std::vector<std::int64_t>{32, 1, 2});
    CHECK(pads(tf_same_pads(7, 3, 2)) == std::vector<std::int64_t>{4, 1, 1});
    // Full transposed output (n-1)*s + k cropped to n*s.
    CHECK(pads(tf_same_transpose_crop(128, 3, 2)) == std::vector<std::int64_t>{256, 0, 1});
    CHECK(pads(tf_same_transpose_crop(128, 4, 2)) == std::vector<std::int64_t>{256, 1, 1});
    CHECK(pads(tf_same_transpose_crop(5, 5, 1)) == std::vector<std::int64_t>{5, 2, 2});
    // k < s: the full output is shorter than n*s, so zeros are appended (negative crop).
    CHECK(pads(tf_same_transpose_crop(5, 3, 4)) == std::vector<std::int64_t>{20, 0, -1});
}

TEST_CASE("operational layers produce the spec's output shapes", "[conv]") {
    Rng rng(1);
    NoGradGuard no_grad;
    const Tensor image = test::rand({1, 3, 256, 256}, rng, -1, 1, false);
    CHECK(oper_conv2d(image, test::rand({1, 2, 3, 3, 3}, rng), Tensor(), 2, Padding::same()).shape() ==
          Shape{1, 2, 128, 128});
    const Tensor features = test::rand({1, 4, 128, 128}, rng, -1, 1, false);
    CHECK(oper_conv_transpose2d(features, test::rand({1, 4, 3, 3, 3}, rng), Tensor(), 2, Padding::same())
              .shape() == Shape{1, 3, 256, 256});
    const Tensor odd = test::rand({2, 2, 7, 9}, rng, -1, 1, false);
    CHECK(oper_conv2d(odd, test::rand({3, 5, 2, 3, 3}, rng), Tensor(), 2, Padding::valid()).shape() ==
          Shape{2, 5, 3, 4});
    CHECK(oper_conv2d(odd, test::rand({3, 5, 2, 4, 4}, rng), Tensor(), 1, Padding::explicit_pads(1, 2, 0, 3))
              .shape() == Shape{2, 5, 7, 9});
    CHECK(
        oper_conv_transpose2d(odd, test::rand({2, 2, 3, 3, 3}, rng), Tensor(), 2, Padding::valid()).shape() ==
        Shape{2, 3, 15, 19});
    CHECK(oper_conv2d(odd, test::rand({1, 5, 2, 7, 7}, rng), Tensor(), 1, Padding::reflect(3)).shape() ==
          Shape{2, 5, 7, 9});
    CHECK(oper_conv2d(odd, test::rand({1, 5, 2, 3, 3}, rng), Tensor(), 2, Padding::reflect(1)).shape() ==
          Shape{2, 5, 4, 5});
}

TEST_CASE("each pass of an operational layer counts its implicit GEMM's multiply-adds", "[conv]") {
    Rng rng(3);
    const auto counted = [](const std::function<void()>& work) {
        const std::uint64_t start = conv_multiply_adds();
        work();
        return conv_multiply_adds() - start;
    };
    // Conv: 2 samples, 5x5 outputs (same), Cout 4, Q 2, Cin 3, 3x3: 2*25*4 x 2*3*9 = 10800 per pass.
    Tensor x = test::rand({2, 3, 5, 5}, rng, -1, 1, true), w = test::rand({2, 4, 3, 3, 3}, rng, -1, 1, true);
    Tensor y;
    CHECK(counted([&] { y = oper_conv2d(x, w, Tensor(), 1, Padding::same()); }) == 10800);
    CHECK(counted([&] { sum(y).backward(); }) == 2 * 10800);  // backward data and weights
    // Reflect padding (padded on the CPU, read in place on CUDA) counts the same GEMM.
    CHECK(counted([&] { oper_conv2d(x.detach(), w.detach(), Tensor(), 1, Padding::reflect(1)); }) == 10800);
    // Transposed: its 1 sample's 4x4 inputs, Cin 3, Cout 2, Q 2, 3x3: 16*2 x 2*3*9 = 1728 per pass; with
    // only w requiring a gradient, backward runs the weights pass alone.
    const Tensor xt = test::rand({1, 3, 4, 4}, rng, -1, 1, false);
    Tensor wt = test::rand({2, 3, 2, 3, 3}, rng, -1, 1, true);
    Tensor yt;
    CHECK(counted([&] { yt = oper_conv_transpose2d(xt, wt, Tensor(), 2, Padding::same()); }) == 1728);
    CHECK(counted([&] { sum(yt).backward(); }) == 1728);
}

TEST_CASE("Q=1 is an ordinary convolution: a box filter by hand", "[conv]") {
    // 3x3 image 1..9, all-ones 3x3 kernel, same padding: each output is the sum of its neighbourhood.
    const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, DType::F64);
    const Tensor w = Tensor::full({1, 1, 1, 3, 3}, 1.0, DType::F64);
    const Tensor b = Tensor::from_vector({0.5}, {1, 1}, DType::F64);
    CHECK(oper_conv2d(x, w, b, 1, Padding::same()).to_vector() ==
          std::vector<double>{12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5});
    // Stride 2, TF same on 3 pixels: 2 outputs, one zero row/column before and one after.
    CHECK(oper_conv2d(x, w, Tensor(), 2, Padding::same()).to_vector() == std::vector<double>{12, 16, 24, 28});
    // The transposed box filter spreads each pixel over its 3x3 neighbourhood: same values by symmetry.
    CHECK(oper_conv_transpose2d(x, w, Tensor(), 1, Padding::same()).to_vector() ==
          std::vector<double>{12, 21, 16, 27, 45, 33, 24, 39, 28});
}

TEST_CASE("an operational layer is the sum of ordinary convolutions of the powers", "[conv]") {
    Rng rng(2);
    const Tensor x = test::rand({2, 2, 6, 5}, rng, -1, 1, false);
    const Tensor w = test::rand({3, 4, 2, 3, 3}, rng, -1, 1, false);
    const Tensor b = test::rand({3, 4}, rng, -1, 1, false);
    const Tensor x2 = mul(x, x), x3 = mul(x2, x);
    const Tensor powers[3] = {x, x2, x3};
    Tensor expected;
    for (std::int64_t q = 0; q < 3; ++q) {
        // W_q alone (a Q=1 layer) applied to x^q, with its own bias.
        const Tensor wq = w.batch_item(q), bq = b.batch_item(q);
        const Tensor term = oper_conv2d(powers[q], wq, bq, 2, Padding::same());
        expected = expected.defined() ? add(expected, term) : term;
    }
    CHECK(test::rel_l2(oper_conv2d(x, w, b, 2, Padding::same()), expected) <= 1e-14);
}

TEST_CASE("oper_conv2d matches direct loops", "[conv]") {
    Rng rng(3);
    const Padding paddings[] = {Padding::same(), Padding::valid(), Padding::explicit_pads(1, 2, 0, 3)};
    for (int q = 1; q <= 5; ++q)
        for (int k : {1, 3, 4})
            for (int s : {1, 2, 3})
                for (const Padding& p : paddings) {
                    INFO(describe(q, k, s, p));
                    const Tensor x = test::rand({2, 2, 7, 9}, rng, -1, 1, false);
                    const Tensor w = test::rand({q, 3, 2, k, k}, rng, -1, 1, false);
                    const Tensor b = test::rand({q, 3}, rng, -1, 1, false);
                    CHECK(test::rel_l2(oper_conv2d(x, w, b, s, p), naive_oper_conv(x, w, b, s, p)) <= 1e-12);
                }
}

TEST_CASE("oper_conv_transpose2d matches direct loops", "[conv]") {
    Rng rng(4);
    for (int q = 1; q <= 5; ++q)
        for (int k : {1, 3, 4})
            for (int s : {1, 2, 3, 4})
                for (const Padding& p : {Padding::same(), Padding::valid()}) {
                    INFO(describe(q, k, s, p));
                    const Tensor x = test::rand({2, 2, 5, 4}, rng, -1, 1, false);
                    const Tensor w = test::rand({q, 2, 3, k, k}, rng, -1, 1, false);
                    const Tensor b = test::rand({q, 3}, rng, -1, 1, false);
                    CHECK(test::rel_l2(oper_conv_transpose2d(x, w, b, s, p),
                                       naive_oper_conv_transpose(x, w, b, s, p)) <= 1e-12);
                }
}

TEST_CASE("the transposed convolution is the adjoint of the convolution", "[conv]") {
    // <conv(u), v> = <u, conv_transpose(v)> for Q=1 without bias, the kernel read as [Cin,Cout] of the
    // transpose: same maps n*s -> n and back, valid maps (n-1)*s+k -> n and back.
    Rng rng(5);
    const std::int64_t n = 5;
    for (int k : {1, 3, 4})
        for (int s : {1, 2, 3, 4})
            for (const Padding& p : {Padding::same(), Padding::valid()}) {
                INFO(describe(1, k, s, p));
                const std::int64_t big = p.kind == Padding::Kind::Same ? n * s : (n - 1) * s + k;
                const Tensor u = test::rand({2, 3, big, big + s}, rng, -1, 1, false);
                const Tensor v = test::rand({2, 4, n, n + 1}, rng, -1, 1, false);
                const Tensor w = test::rand({1, 4, 3, k, k}, rng, -1, 1, false);
                const double lhs = dot(oper_conv2d(u, w, Tensor(), s, p), v);
                const double rhs = dot(u, oper_conv_transpose2d(v, w, Tensor(), s, p));
                CHECK(std::abs(lhs - rhs) <= 1e-12 * std::max(std::abs(lhs), 1.0));
            }
}

TEST_CASE("oper_conv2d gradients pass a finite-difference check", "[conv][gradcheck]") {
    struct Case {
        int q, k, s;
        Padding p;
        bool bias;
        Shape x;
    };
    const Case cases[] = {
        {1, 3, 1, Padding::same(), true, {2, 2, 7, 9}},
        {2, 4, 2, Padding::same(), false, {2, 2, 7, 9}},
        {3, 3, 2, Padding::valid(), true, {3, 2, 7, 9}},
        {3, 4, 4, Padding::same(), true, {2, 2, 7, 9}},
        {5, 3, 2, Padding::same(), true, {2, 2, 5, 5}},
        {5, 4, 1, Padding::explicit_pads(1, 2, 0, 3), true, {2, 2, 5, 5}},
        {2, 3, 4, Padding::valid(), false, {3, 2, 7, 9}},
    };
    Rng rng(6);
    for (const Case& c : cases) {
        INFO(describe(c.q, c.k, c.s, c.p) << (c.bias ? " bias" : " no bias"));
        const Tensor x = test::rand(c.x, rng);
        const Tensor w = test::rand({c.q, 3, c.x[1], c.k, c.k}, rng);
        const Tensor b = c.bias ? test::rand({c.q, 3}, rng) : Tensor();
        auto f = [&c](const V& t) { return oper_conv2d(t[0], t[1], t[2], c.s, c.p); };
        CHECK(test::max_gradcheck_error(f, {x, w, b}) <= 1e-6);
    }
}

TEST_CASE("oper_conv_transpose2d gradients pass a finite-difference check", "[conv][gradcheck]") {
    struct Case {
        int q, k, s;
        Padding p;
        bool bias;
        Shape x;
    };
    const Case cases[] = {
        {1, 3, 2, Padding::same(), true, {2, 2, 4, 5}},  {2, 4, 2, Padding::same(), false, {2, 2, 3, 5}},
        {3, 3, 1, Padding::valid(), true, {3, 2, 5, 5}}, {5, 4, 4, Padding::same(), true, {2, 2, 3, 3}},
        {3, 3, 4, Padding::same(), true, {2, 2, 3, 5}},  {5, 3, 2, Padding::valid(), true, {2, 2, 3, 5}},
    };
    Rng rng(7);
    for (const Case& c : cases) {
        INFO(describe(c.q, c.k, c.s, c.p) << (c.bias ? " bias" : " no bias"));
        const Tensor x = test::rand(c.x, rng);
        const Tensor w = test::rand({c.q, c.x[1], 3, c.k, c.k}, rng);
        const Tensor b = c.bias ? test::rand({c.q, 3}, rng) : Tensor();
        auto f = [&c](const V& t) { return oper_conv_transpose2d(t[0], t[1], t[2], c.s, c.p); };
        CHECK(test::max_gradcheck_error(f, {x, w, b}) <= 1e-6);
    }
}

// The separate activation op that a fused one must reproduce.
Tensor activate_separately(const Tensor& z, Activation act) {
    switch (act) {
        case Activation::Tanh:
            return tanh(z);
        case Activation::Relu:
            return relu(z);
        case Activation::LeakyRelu:
            return leaky_relu(z, 0.2);
        case Activation::None:
            break;
    }
    return z;
}

TEST_CASE("a fused activation equals the separate op after the layer, values and gradients",
          "[conv][fused]") {
    Rng rng(8);
    const Tensor x = test::rand({2, 3, 7, 6}, rng, -1.5, 1.5);
    const Tensor w = test::rand({3, 4, 3, 3, 3}, rng, -0.4, 0.4);
    const Tensor wt = test::rand({3, 3, 4, 3, 3}, rng, -0.4, 0.4);
    const Tensor b = test::rand({3, 4}, rng);
    for (Activation act : {Activation::Tanh, Activation::Relu, Activation::LeakyRelu}) {
        INFO("activation " << static_cast<int>(act));
        const V conv_in{x, w, b}, convt_in{x, wt, b};
        const auto conv = [act](const V& t) {
            return oper_conv2d(t[0], t[1], t[2], 2, Padding::same(), act);
        };
        const auto conv_then = [act](const V& t) {
            return activate_separately(oper_conv2d(t[0], t[1], t[2], 2, Padding::same()), act);
        };
        const auto convt = [act](const V& t) {
            return oper_conv_transpose2d(t[0], t[1], t[2], 2, Padding::same(), act);
        };
        const auto convt_then = [act](const V& t) {
            return activate_separately(oper_conv_transpose2d(t[0], t[1], t[2], 2, Padding::same()), act);
        };
        CHECK(test::max_disagreement(conv_then, conv, conv_in) <= 1e-14);
        CHECK(test::max_disagreement(convt_then, convt, convt_in) <= 1e-14);
        // The activation really is applied (a fused op that dropped it would fail here).
        CHECK(test::max_disagreement(
                  conv_then, [](const V& t) { return oper_conv2d(t[0], t[1], t[2], 2, Padding::same()); },
                  conv_in) > 1e-3);
        if (act != Activation::Relu) {  // relu's kink makes finite differences unreliable near zero
            CHECK(test::max_gradcheck_error(conv, conv_in) <= 1e-6);
            CHECK(test::max_gradcheck_error(convt, convt_in) <= 1e-6);
        }
    }
    // float32 too: the same single-precision epilogue as the separate op.
    const V in32{x.to(DType::F32).set_requires_grad(true), w.to(DType::F32).set_requires_grad(true),
                 b.to(DType::F32).set_requires_grad(true)};
    CHECK(test::max_disagreement(
              [](const V& t) { return tanh(oper_conv2d(t[0], t[1], t[2], 1, Padding::valid())); },
              [](const V& t) { return oper_conv2d(t[0], t[1], t[2], 1, Padding::valid(), Activation::Tanh); },
              in32) <= 1e-7);
}

TEST_CASE("gradients are right when only some inputs require them", "[conv][gradcheck]") {
    // Each backward pass skips the work for inputs that need no gradient (for Q=1 and dx alone it
    // builds no columns at all); the remaining gradients must not change.
    Rng rng(8);
    for (int q : {1, 3})
        for (int which = 0; which < 3; ++which) {
            INFO("Q=" << q << ", only input " << which << " requires a gradient");
            const Tensor x = test::rand({2, 2, 7, 9}, rng, -1, 1, which == 0);
            const Tensor w = test::rand({q, 3, 2, 3, 3}, rng, -1, 1, which == 1);
            const Tensor wt = test::rand({q, 2, 3, 3, 3}, rng, -1, 1, which == 1);
            const Tensor b = test::rand({q, 3}, rng, -1, 1, which == 2);
            auto conv = [](const V& t) { return oper_conv2d(t[0], t[1], t[2], 2, Padding::same()); };
            auto convt = [](const V& t) {
                return oper_conv_transpose2d(t[0], t[1], t[2], 2, Padding::same());
            };
            CHECK(test::max_gradcheck_error(conv, {x, w, b}) <= 1e-6);
            CHECK(test::max_gradcheck_error(convt, {x, wt, b}) <= 1e-6);
        }
}

TEST_CASE("large layers are computed in several tiles, split mid-row, without changing results", "[conv]") {
    // A column tile holds at most 4 MiB: in float64, the 720 rows (16 channels, 3x3, Q=5) of a 40x40
    // output take three tiles, the first ending inside an output row; so do the transposed layer's 1024
    // rows (64 channels, 4x4) of a 36x36 input. One thread runs the tiles in turn; two threads each
    // take whole tiles and sum their shares of the shared outputs.
    Rng rng(9);
    const Tensor x = test::rand({1, 16, 40, 40}, rng);
    const Tensor w = test::rand({5, 4, 16, 3, 3}, rng, -0.1, 0.1);
    const Tensor b = test::rand({5, 4}, rng);
    auto conv = [](const V& t) { return oper_conv2d(t[0], t[1], t[2], 1, Padding::same()); };
    const Tensor expected = naive_oper_conv(x, w, b, 1, Padding::same());

    const Tensor xt = test::rand({1, 2, 36, 36}, rng);
    const Tensor wt = test::rand({2, 2, 64, 4, 4}, rng);
    const Tensor bt = test::rand({2, 64}, rng);
    auto convt = [](const V& t) { return oper_conv_transpose2d(t[0], t[1], t[2], 2, Padding::same()); };
    const Tensor expected_t = naive_oper_conv_transpose(xt, wt, bt, 2, Padding::same());

    for (int threads : {1, 2}) {
        INFO(threads << " thread(s)");
        const ThreadLimit limit(threads);
        CHECK(test::rel_l2(conv({x, w, b}), expected) <= 1e-12);
        CHECK(max_directional_error(conv, {x, w, b}, rng) <= 1e-6);
        CHECK(test::rel_l2(convt({xt, wt, bt}), expected_t) <= 1e-12);
        CHECK(max_directional_error(convt, {xt, wt, bt}, rng) <= 1e-6);
        for (const Tensor& t : {x, w, b, xt, wt, bt})
            const_cast<Tensor&>(t).zero_grad();
    }
}

TEST_CASE("results are deterministic across calls", "[conv]") {
    Rng rng(10);
    Tensor x = test::rand({2, 16, 24, 24}, rng);
    Tensor w = test::rand({3, 8, 16, 3, 3}, rng);
    // Output and gradients of one call, with the given number of threads.
    auto run = [&](int threads) {
        const ThreadLimit limit(threads);
        x.zero_grad();
        w.zero_grad();
        const Tensor y = oper_conv2d(x, w, Tensor(), 1, Padding::same());
        sum(y).backward();
        return std::vector<std::vector<double>>{y.to_vector(), x.grad().to_vector(), w.grad().to_vector()};
    };
    const auto two = run(2);
    CHECK(run(2) == two);  // bit for bit
    const auto one = run(1);
    for (std::size_t i = 0; i < one.size(); ++i)
        CHECK(test::rel_l2(one[i], two[i]) <= 1e-13);  // the same up to the order of the sums
}

TEST_CASE("float32 agrees with float64", "[conv]") {
    Rng rng(11);
    for (bool transposed : {false, true}) {
        INFO((transposed ? "oper_conv_transpose2d" : "oper_conv2d"));
        const Tensor x = test::rand({2, 4, 9, 7}, rng);
        const Tensor w = transposed ? test::rand({5, 4, 3, 3, 3}, rng) : test::rand({5, 3, 4, 3, 3}, rng);
        const Tensor b = test::rand({5, 3}, rng);
        auto f = [transposed](const V& t) {
            return transposed ? oper_conv_transpose2d(t[0], t[1], t[2], 2, Padding::same())
                              : oper_conv2d(t[0], t[1], t[2], 2, Padding::same());
        };
        const V in64{x, w, b};
        V in32;
        for (const Tensor& t : in64)
            in32.push_back(t.detach().to(DType::F32).set_requires_grad(true));
        const Tensor y64 = f(in64), y32 = f(in32);
        REQUIRE(y32.dtype() == DType::F32);
        CHECK(test::rel_l2(y32.to(DType::F64), y64) <= 1e-5);
        sum(mul(y64, y64)).backward();
        sum(mul(y32, y32)).backward();
        for (std::size_t i = 0; i < in64.size(); ++i)
            CHECK(test::rel_l2(in32[i].grad().to(DType::F64), in64[i].grad()) <= 1e-5);
    }
}

TEST_CASE("bad arguments are rejected with the op's name", "[conv]") {
    const Tensor x = Tensor::zeros({1, 2, 5, 5}, DType::F64);
    const Tensor w = Tensor::zeros({3, 4, 2, 3, 3}, DType::F64);
    const Tensor wt = Tensor::zeros({3, 2, 4, 3, 3}, DType::F64);
    const Tensor b = Tensor::zeros({3, 4}, DType::F64);
    const auto same = Padding::same();
    using Catch::Contains;
    auto conv = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi, int s, Padding p) {
        return oper_conv2d(xi, wi, bi, s, p);
    };
    auto convt = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi, int s, Padding p) {
        return oper_conv_transpose2d(xi, wi, bi, s, p);
    };
    REQUIRE_NOTHROW(conv(x, w, b, 1, same));
    REQUIRE_NOTHROW(convt(x, wt, b, 1, same));

    CHECK_THROWS_WITH(conv(Tensor::zeros({2, 5, 5}, DType::F64), w, b, 1, same),
                      Contains("oper_conv2d") && Contains("[2,5,5]"));
    CHECK_THROWS_WITH(conv(x, Tensor::zeros({4, 2, 3, 3}, DType::F64), b, 1, same),
                      Contains("oper_conv2d") && Contains("5 dimensions"));
    CHECK_THROWS_WITH(conv(x, Tensor::zeros({3, 4, 5, 3, 3}, DType::F64), b, 1, same),
                      Contains("oper_conv2d") && Contains("[3,4,5,3,3]") && Contains("[1,2,5,5]"));
    CHECK_THROWS_WITH(conv(x, w, Tensor::zeros({2, 4}, DType::F64), 1, same),
                      Contains("oper_conv2d") && Contains("[2,4]") && Contains("[3,4,2,3,3]"));
    CHECK_THROWS_WITH(conv(x, w, Tensor::zeros({3, 5}, DType::F64), 1, same), Contains("oper_conv2d"));
    CHECK_THROWS_WITH(conv(x, Tensor::zeros({3, 4, 2, 3, 2}, DType::F64), b, 1, same),
                      Contains("oper_conv2d") && Contains("square"));
    CHECK_THROWS_WITH(conv(x, w, b, 0, same), Contains("oper_conv2d") && Contains("stride"));
    CHECK_THROWS_WITH(conv(Tensor::zeros({1, 2, 2, 2}, DType::F64), w, b, 1, Padding::valid()),
                      Contains("oper_conv2d") && Contains("larger than the padded input"));
    CHECK_THROWS_WITH(conv(x, w, b, 1, Padding::explicit_pads(-1, 0, 0, 0)), Contains("oper_conv2d"));
    CHECK_THROWS_WITH(conv(x.to(DType::F32), w, b, 1, same), Contains("oper_conv2d") && Contains("float32"));

    CHECK_THROWS_WITH(convt(Tensor::zeros({2, 5, 5}, DType::F64), wt, b, 1, same),
                      Contains("oper_conv_transpose2d"));
    CHECK_THROWS_WITH(convt(x, w, Tensor(), 1, same),
                      Contains("oper_conv_transpose2d") && Contains("[3,4,2,3,3]"));
    CHECK_THROWS_WITH(convt(x, wt, Tensor::zeros({1, 4}, DType::F64), 1, same),
                      Contains("oper_conv_transpose2d") && Contains("[1,4]"));
    CHECK_THROWS_WITH(convt(x, wt, b, 0, same), Contains("oper_conv_transpose2d") && Contains("stride"));
    CHECK_THROWS_WITH(convt(x, wt, b, 1, Padding::explicit_pads(1, 1, 1, 1)),
                      Contains("oper_conv_transpose2d") && Contains("explicit"));
    CHECK_THROWS_WITH(convt(x, wt, b, 1, Padding::reflect(1)),
                      Contains("oper_conv_transpose2d") && Contains("reflect"));
    CHECK_THROWS_WITH(conv(x, w, b, 1, Padding::reflect(5)),
                      Contains("oper_conv2d") && Contains("reflect padding 5") && Contains(x.str()));
    CHECK_THROWS_WITH(conv(x, w, b, 1, Padding::reflect(-1)), Contains("oper_conv2d"));
    CHECK_THROWS_AS(convt(x, wt, b, 0, same), Error);
    CHECK_THROWS_AS(conv(x, w, b, 0, same), Error);
}
