// Activations, elementwise arithmetic and the full sum: CPU reference implementations and the dispatch of
// CUDA tensors to kernels/elementwise.cu.
#include <cmath>

#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/ops.h"

namespace r2c {

namespace {

// out[i] = f(x[i]); on CUDA the kernel `op` (with its parameter) computes the same.
template <typename F>
Tensor map(const Tensor& x, [[maybe_unused]] cuda::Unary op, [[maybe_unused]] float param, F f) {
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    const std::int64_t n = x.numel();
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA) {
        cuda::unary(op, ops::f32(x), ops::f32(y), static_cast<std::size_t>(n), param);
        return y;
    }
#endif
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* px = x.data<T>();
        T* py = y.data<T>();
        for (std::int64_t i = 0; i < n; ++i)
            py[i] = f(px[i]);
    });
    return y;
}

// out[i] = f(a[i], b[i]) for tensors of one shape, kind and device; on CUDA the kernel `op` computes it.
template <typename F>
Tensor zip(const Tensor& a, const Tensor& b, [[maybe_unused]] cuda::Binary op, [[maybe_unused]] float param,
           F f) {
    Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
    const std::int64_t n = a.numel();
#ifdef R2C_WITH_CUDA
    if (a.device() == Device::CUDA) {
        cuda::binary(op, ops::f32(a), ops::f32(b), ops::f32(y), static_cast<std::size_t>(n), param);
        return y;
    }
#endif
    ops::dispatch_float(a.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* pa = a.data<T>();
        const T* pb = b.data<T>();
        T* py = y.data<T>();
        for (std::int64_t i = 0; i < n; ++i)
            py[i] = f(pa[i], pb[i]);
    });
    return y;
}

void check_unary(const char* op, const Tensor& x) {
    R2C_CHECK(x.defined(), op, ": input is undefined");
    ops::check_cuda_float32(op, x);
}

void check_binary(const char* op, const Tensor& a, const Tensor& b) {
    R2C_CHECK(a.defined() && b.defined(), op, ": an input is undefined");
    ops::check_same_kind(op, {a, b});
    R2C_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.str(), " and ", b.str());
    ops::check_cuda_float32(op, a);
}

// A tensor of `shape` whose every element is the single element of g; on CUDA it is read on the device.
Tensor broadcast_scalar(const Shape& shape, const Tensor& g) {
#ifdef R2C_WITH_CUDA
    if (g.device() == Device::CUDA) {
        Tensor out = Tensor::empty(shape, g.dtype(), g.device());
        cuda::broadcast_scalar(ops::f32(g), ops::f32(out), static_cast<std::size_t>(out.numel()));
        return out;
    }
#endif
    return Tensor::full(shape, g.item(), g.dtype(), g.device());
}

}  // namespace

Tensor tanh(const Tensor& x) {
    const OpScope scope("tanh", x);
    check_unary("tanh", x);
    Tensor y = map(x, cuda::Unary::Tanh, 0, [](auto v) { return std::tanh(v); });
    return record(y, "tanh", {x}, [yd = y.detach()](const Tensor& g) {
        return std::vector<Tensor>{zip(g, yd, cuda::Binary::TanhBackward, 0,
                                       [](auto gv, auto yv) { return gv * ops::tanh_derivative(yv); })};
    });
}

Tensor relu(const Tensor& x) {
    const OpScope scope("relu", x);
    check_unary("relu", x);
    Tensor y = map(x, cuda::Unary::Relu, 0, [](auto v) { return ops::relu_value(v); });
    return record(y, "relu", {x}, [xd = x.detach()](const Tensor& g) {
        return std::vector<Tensor>{zip(g, xd, cuda::Binary::ReluBackward, 0,
                                       [](auto gv, auto xv) { return gv * ops::relu_derivative(xv); })};
    });
}

Tensor leaky_relu(const Tensor& x, double slope) {
    const OpScope scope("leaky_relu", x);
    check_unary("leaky_relu", x);
    Tensor y = map(x, cuda::Unary::LeakyRelu, static_cast<float>(slope),
                   [slope](auto v) { return ops::leaky_relu_value(v, static_cast<decltype(v)>(slope)); });
    return record(y, "leaky_relu", {x}, [xd = x.detach(), slope](const Tensor& g) {
        return std::vector<Tensor>{
            zip(g, xd, cuda::Binary::LeakyReluBackward, static_cast<float>(slope), [slope](auto gv, auto xv) {
                return gv * ops::leaky_relu_derivative(xv, static_cast<decltype(gv)>(slope));
            })};
    });
}

Tensor add(const Tensor& a, const Tensor& b) {
    const OpScope scope("add", a);
    check_binary("add", a, b);
    Tensor y = zip(a, b, cuda::Binary::Add, 0, [](auto u, auto v) { return u + v; });
    return record(y, "add", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
    const OpScope scope("mul", a);
    check_binary("mul", a, b);
    Tensor y = zip(a, b, cuda::Binary::Mul, 0, [](auto u, auto v) { return u * v; });
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    return record(y, "mul", {a, b}, [ad = a.detach(), bd = b.detach(), ga, gb](const Tensor& g) {
        auto prod = [](auto u, auto v) { return u * v; };
        return std::vector<Tensor>{ga ? zip(g, bd, cuda::Binary::Mul, 0, prod) : Tensor(),
                                   gb ? zip(g, ad, cuda::Binary::Mul, 0, prod) : Tensor()};
    });
}

Tensor mul_scalar(const Tensor& x, double s) {
    const OpScope scope("mul_scalar", x);
    check_unary("mul_scalar", x);
    Tensor y = map(x, cuda::Unary::Scale, static_cast<float>(s),
                   [s](auto v) { return static_cast<decltype(v)>(s) * v; });
    return record(y, "mul_scalar", {x}, [s](const Tensor& g) {
        return std::vector<Tensor>{map(g, cuda::Unary::Scale, static_cast<float>(s),
                                       [s](auto v) { return static_cast<decltype(v)>(s) * v; })};
    });
}

Tensor sum(const Tensor& x) {
    const OpScope scope("sum", x);
    check_unary("sum", x);
    Tensor y = Tensor::empty({1}, x.dtype(), x.device());
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA) cuda::sum(ops::f32(x), static_cast<std::size_t>(x.numel()), ops::f32(y));
#endif
    if (x.device() == Device::CPU)
        ops::dispatch_float(x.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* p = x.data<T>();
            double acc = 0;  // double accumulation keeps float32 sums of large images accurate
            for (std::int64_t i = 0; i < x.numel(); ++i)
                acc += p[i];
            y.data<T>()[0] = static_cast<T>(acc);
        });
    return record(y, "sum", {x}, [shape = x.shape()](const Tensor& g) {
        return std::vector<Tensor>{broadcast_scalar(shape, g)};
    });
}

}  // namespace r2c
