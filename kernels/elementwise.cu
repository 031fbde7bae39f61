// Activations, elementwise arithmetic and their derivatives, the broadcast of a device scalar, and the full
// sum (kernels/ops.h).
#include "kernels/activation.cuh"
#include "kernels/ops.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

template <Unary op>
__device__ __forceinline__ float apply(float v, float param) {
    if constexpr (op == Unary::Tanh) return tanhf(v);
    if constexpr (op == Unary::Relu) return relu_value(v);
    if constexpr (op == Unary::LeakyRelu) return leaky_relu_value(v, param);
    return param * v;  // Scale
}

template <Binary op>
__device__ __forceinline__ float apply(float a, float b, float param) {
    if constexpr (op == Binary::Add) return a + b;
    if constexpr (op == Binary::Mul) return a * b;
    if constexpr (op == Binary::TanhBackward) return a * tanh_derivative(b);
    if constexpr (op == Binary::ReluBackward) return a * relu_derivative(b);
    return a * leaky_relu_derivative(b, param);  // LeakyReluBackward
}

template <Unary op>
__global__ void unary_kernel(const float* x, float* y, std::size_t n, float param) {
    for (std::size_t i = global_index(); i < n; i += grid_stride())
        y[i] = apply<op>(x[i], param);
}

template <Binary op>
__global__ void binary_kernel(const float* a, const float* b, float* y, std::size_t n, float param) {
    for (std::size_t i = global_index(); i < n; i += grid_stride())
        y[i] = apply<op>(a[i], b[i], param);
}

__global__ void broadcast_scalar_kernel(const float* value, float* y, std::size_t n) {
    const float v = value[0];
    for (std::size_t i = global_index(); i < n; i += grid_stride())
        y[i] = v;
}

struct SumTerm {
    const float* x;
    __device__ double operator()(std::size_t i) const { return x[i]; }
};

template <Unary op>
void launch_unary(const float* x, float* y, std::size_t n, float param, cudaStream_t stream) {
    R2C_LAUNCH(elementwise_grid(n), kThreads, 0, stream, unary_kernel<op>)(x, y, n, param);
    R2C_CUDA_LAUNCH_CHECK("unary_kernel");
}

template <Binary op>
void launch_binary(const float* a, const float* b, float* y, std::size_t n, float param,
                   cudaStream_t stream) {
    R2C_LAUNCH(elementwise_grid(n), kThreads, 0, stream, binary_kernel<op>)(a, b, y, n, param);
    R2C_CUDA_LAUNCH_CHECK("binary_kernel");
}

}  // namespace

void unary(Unary op, const float* x, float* y, std::size_t n, float param, void* stream) {
    if (n == 0) return;
    const auto s = detail::launch_stream(stream);
    switch (op) {
        case Unary::Tanh:
            return launch_unary<Unary::Tanh>(x, y, n, param, s);
        case Unary::Relu:
            return launch_unary<Unary::Relu>(x, y, n, param, s);
        case Unary::LeakyRelu:
            return launch_unary<Unary::LeakyRelu>(x, y, n, param, s);
        case Unary::Scale:
            return launch_unary<Unary::Scale>(x, y, n, param, s);
    }
}

void binary(Binary op, const float* a, const float* b, float* y, std::size_t n, float param, void* stream) {
    if (n == 0) return;
    const auto s = detail::launch_stream(stream);
    switch (op) {
        case Binary::Add:
            return launch_binary<Binary::Add>(a, b, y, n, param, s);
        case Binary::Mul:
            return launch_binary<Binary::Mul>(a, b, y, n, param, s);
        case Binary::TanhBackward:
            return launch_binary<Binary::TanhBackward>(a, b, y, n, param, s);
        case Binary::ReluBackward:
            return launch_binary<Binary::ReluBackward>(a, b, y, n, param, s);
        case Binary::LeakyReluBackward:
            return launch_binary<Binary::LeakyReluBackward>(a, b, y, n, param, s);
    }
}

void broadcast_scalar(const float* value, float* y, std::size_t n, void* stream) {
    if (n == 0) return;
    R2C_LAUNCH(elementwise_grid(n), kThreads, 0, detail::launch_stream(stream), broadcast_scalar_kernel)
    (value, y, n);
    R2C_CUDA_LAUNCH_CHECK("broadcast_scalar_kernel");
}

void sum(const float* x, std::size_t n, float* y, void* stream) {
    ops_detail::reduce(SumTerm{x}, n, 1.0, y, stream, "sum reduce_kernel");
}

}  // namespace r2c::cuda
