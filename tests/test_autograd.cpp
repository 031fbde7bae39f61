// The tape: gradient accumulation across repeated use, no_grad, freed buffers, elementwise op gradients.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "tests/support.h"

using namespace r2c;

TEST_CASE("a parameter used several times accumulates its gradient", "[autograd]") {
    Tensor w = Tensor::from_vector({0.5, -2.0, 3.0}, {3}, DType::F64).set_requires_grad(true);
    // loss = sum(w*w) + sum(3*w) + sum(tanh(w)) : dL/dw = 2w + 3 + (1 - tanh^2 w)
    Tensor loss = add(add(sum(mul(w, w)), sum(mul_scalar(w, 3.0))), sum(tanh(w)));
    loss.backward();
    const auto g = w.grad().to_vector();
    const double wv[3] = {0.5, -2.0, 3.0};
    for (int i = 0; i < 3; ++i) {
        const double t = std::tanh(wv[i]);
        CHECK(g[i] == Approx(2 * wv[i] + 3 + (1 - t * t)).epsilon(1e-14));
    }
}

TEST_CASE("a gradient handed to several inputs is never added into in place", "[autograd]") {
    // d/dx of (3x + x) + x: the outer add hands one gradient to the inner add and to the leaf, the inner one
    // to the leaf and to 3x, so that the leaf's first gradient is shared when a second one arrives.
    Tensor x = Tensor::from_vector({0.5, -2.0}, {2}, DType::F64).set_requires_grad(true);
    sum(add(add(mul_scalar(x, 3.0), x), x)).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{5.0, 5.0});
    // d/dx of (e + e) + e with e = 2x: the gradients of e from the two adds add up at e's node, one of them
    // shared with the other input of its add.
    Tensor y = Tensor::from_vector({1.5}, {1}, DType::F64).set_requires_grad(true);
    const Tensor e = mul_scalar(y, 2.0);
    sum(add(add(e, e), e)).backward();
    CHECK(y.grad().to_vector() == std::vector<double>{6.0});
}

#ifdef R2C_WITH_CUDA
TEST_CASE("a leaf takes a gradient nothing else holds without copying it", "[autograd][cuda]") {
    if (!cuda::available()) return test::skip("no CUDA device: " + cuda::describe());
    Rng rng(3);
    const Tensor x = test::rand({4, 5}, rng, -1, 1, false).to(DType::F32).to(Device::CUDA);
    Tensor w = test::rand({4, 5}, rng, -1, 1, false).to(DType::F32).to(Device::CUDA).set_requires_grad(true);
    const Tensor loss = sum(mul(x, w));
    std::uint64_t before = cuda::memory_operations();
    loss.backward();
    CHECK(cuda::memory_operations() == before);  // mul's gradient of w, made by a kernel, is taken as it is
    CHECK(test::rel_l2(w.grad().to(Device::CPU), x.to(Device::CPU)) == 0.0);
    // A gradient the backward pass hands to two inputs is copied for the leaf, and then added into.
    w.zero_grad();
    const Tensor twice = sum(add(w, w));
    before = cuda::memory_operations();
    twice.backward();
    CHECK(cuda::memory_operations() == before + 1);
    CHECK(w.grad().to(Device::CPU).to_vector() == std::vector<double>(20, 2.0));
}
#endif

TEST_CASE("gradients add up over several backward calls until zeroed", "[autograd]") {
    Tensor w = Tensor::from_vector({1.0, 2.0}, {2}, DType::F64).set_requires_grad(true);
    sum(mul_scalar(w, 2.0)).backward();
    sum(mul_scalar(w, 5.0)).backward();
    CHECK(w.grad().to_vector() == std::vector<double>{7.0, 7.0});
    w.zero_grad();
    CHECK_FALSE(w.grad().defined());
}

TEST_CASE("no_grad records nothing", "[autograd]") {
    Tensor w = Tensor::from_vector({1.0}, {1}, DType::F64).set_requires_grad(true);
    NoGradGuard guard;
    Tensor y = tanh(w);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
}

TEST_CASE("a second backward through a freed graph is an error that names the op", "[autograd]") {
    Tensor w = Tensor::from_vector({1.0, 2.0}, {2}, DType::F64).set_requires_grad(true);
    Tensor loss = sum(tanh(w));
    loss.backward();
    CHECK_THROWS_WITH(loss.backward(), Catch::Contains("sum"));
}

TEST_CASE("backward frees each node's saved tensors", "[autograd]") {
    Tensor w = Tensor::from_vector({1.0, 2.0}, {2}, DType::F64).set_requires_grad(true);
    Tensor h = tanh(w);
    Tensor loss = sum(h);
    CHECK(h.grad_fn()->backward_fn != nullptr);
    loss.backward();
    CHECK(h.grad_fn()->backward_fn == nullptr);
}

TEST_CASE("elementwise ops pass a float64 finite-difference gradient check", "[autograd][gradcheck]") {
    Rng rng(7);
    const Shape s{2, 3, 5, 4};
    Tensor a = test::rand(s, rng), b = test::rand(s, rng);
    using V = std::vector<Tensor>;
    CHECK(test::max_gradcheck_error([](const V& x) { return tanh(x[0]); }, {a}) <= 1e-6);
    CHECK(test::max_gradcheck_error([](const V& x) { return relu(x[0]); }, {a}) <= 1e-6);
    CHECK(test::max_gradcheck_error([](const V& x) { return leaky_relu(x[0], 0.2); }, {a}) <= 1e-6);
    CHECK(test::max_gradcheck_error([](const V& x) { return add(x[0], x[1]); }, {a, b}) <= 1e-6);
    CHECK(test::max_gradcheck_error([](const V& x) { return mul(x[0], x[1]); }, {a, b}) <= 1e-6);
    CHECK(test::max_gradcheck_error([](const V& x) { return mul_scalar(x[0], -1.7); }, {a}) <= 1e-6);
    CHECK(test::max_gradcheck_error([](const V& x) { return sum(x[0]); }, {a}) <= 1e-6);
}

TEST_CASE("ops reject mismatched shapes and dtypes with the op's name", "[autograd]") {
    Tensor a = Tensor::zeros({2, 3}, DType::F64), b = Tensor::zeros({3, 2}, DType::F64);
    CHECK_THROWS_WITH(add(a, b),
                      Catch::Contains("add") && Catch::Contains("[2,3]") && Catch::Contains("[3,2]"));
    Tensor c = Tensor::zeros({2, 3}, DType::F32);
    CHECK_THROWS_WITH(mul(a, c), Catch::Contains("mul") && Catch::Contains("float32"));
}

TEST_CASE("activations let NaN through so that faults stay visible", "[autograd]") {
    const Tensor x = Tensor::from_vector({NAN, -1.0, 2.0}, {3}, DType::F64);
    for (const Tensor& y : {relu(x), leaky_relu(x, 0.2), tanh(x)})
        CHECK(std::isnan(y.to_vector()[0]));
    CHECK(relu(x).to_vector()[1] == 0.0);
}
