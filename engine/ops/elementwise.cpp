// Activations, elementwise arithmetic and the full sum: CPU reference implementations.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"

namespace r2c {

namespace {

// out[i] = f(x[i]) for a CPU tensor.
template <typename F>
Tensor map_cpu(const Tensor& x, F f) {
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* px = x.data<T>();
        T* py = y.data<T>();
        const std::int64_t n = x.numel();
        for (std::int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
    });
    return y;
}

// out[i] = f(a[i], b[i]) for CPU tensors of one shape.
template <typename F>
Tensor zip_cpu(const Tensor& a, const Tensor& b, F f) {
    Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
    ops::dispatch_float(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        T* py = y.data<T>();
        const std::int64_t n = a.numel();
        for (std::int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
    });
    return y;
}

void check_unary(const char* op, const Tensor& x) {
    R2C_CHECK(x.defined(), op, ": input is undefined");
    if (x.device() == Device::CUDA) ops::no_cuda_kernel(op);
}

void check_binary(const char* op, const Tensor& a, const Tensor& b) {
    R2C_CHECK(a.defined() && b.defined(), op, ": an input is undefined");
    ops::check_same_kind(op, {a, b});
    R2C_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.str(), " and ", b.str());
    if (a.device() == Device::CUDA) ops::no_cuda_kernel(op);
}

}  // namespace

Tensor tanh(const Tensor& x) {
    check_unary("tanh", x);
    Tensor y = map_cpu(x, [](auto v) { return std::tanh(v); });
    return record(y, "tanh", {x}, [yd = y.detach()](const Tensor& g) {
        return std::vector<Tensor>{zip_cpu(g, yd, [](auto gv, auto yv) { return gv * (1 - yv * yv); })};
    });
}

Tensor relu(const Tensor& x) {
    check_unary("relu", x);
    // NaN passes through (as in PyTorch), so that a fault upstream stays visible downstream.
    Tensor y = map_cpu(x, [](auto v) { return v > 0 || v != v ? v : decltype(v)(0); });
    return record(y, "relu", {x}, [xd = x.detach()](const Tensor& g) {
        return std::vector<Tensor>{
            zip_cpu(g, xd, [](auto gv, auto xv) { return xv > 0 ? gv : decltype(gv)(0); })};
    });
}

Tensor leaky_relu(const Tensor& x, double slope) {
    check_unary("leaky_relu", x);
    Tensor y = map_cpu(x, [slope](auto v) { return v > 0 ? v : static_cast<decltype(v)>(slope) * v; });
    return record(y, "leaky_relu", {x}, [xd = x.detach(), slope](const Tensor& g) {
        return std::vector<Tensor>{zip_cpu(
            g, xd, [slope](auto gv, auto xv) { return xv > 0 ? gv : static_cast<decltype(gv)>(slope) * gv; })};
    });
}

Tensor add(const Tensor& a, const Tensor& b) {
    check_binary("add", a, b);
    Tensor y = zip_cpu(a, b, [](auto u, auto v) { return u + v; });
    return record(y, "add", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
    check_binary("mul", a, b);
    Tensor y = zip_cpu(a, b, [](auto u, auto v) { return u * v; });
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    return record(y, "mul", {a, b}, [ad = a.detach(), bd = b.detach(), ga, gb](const Tensor& g) {
        auto prod = [](auto u, auto v) { return u * v; };
        return std::vector<Tensor>{ga ? zip_cpu(g, bd, prod) : Tensor(), gb ? zip_cpu(g, ad, prod) : Tensor()};
    });
}

Tensor mul_scalar(const Tensor& x, double s) {
    check_unary("mul_scalar", x);
    Tensor y = map_cpu(x, [s](auto v) { return static_cast<decltype(v)>(s) * v; });
    return record(y, "mul_scalar", {x}, [s](const Tensor& g) {
        return std::vector<Tensor>{map_cpu(g, [s](auto v) { return static_cast<decltype(v)>(s) * v; })};
    });
}

Tensor sum(const Tensor& x) {
    check_unary("sum", x);
    Tensor y = Tensor::empty({1}, x.dtype(), x.device());
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* p = x.data<T>();
        double acc = 0;  // double accumulation keeps float32 sums of large images accurate
        for (std::int64_t i = 0; i < x.numel(); ++i) acc += p[i];
        y.data<T>()[0] = static_cast<T>(acc);
    });
    return record(y, "sum", {x}, [shape = x.shape()](const Tensor& g) {
        return std::vector<Tensor>{Tensor::full(shape, g.item(), g.dtype(), g.device())};
    });
}

}  // namespace r2c
