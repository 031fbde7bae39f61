// Global max pooling: CPU reference implementation and the dispatch of CUDA tensors to kernels/pool.cu.
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/ops.h"

namespace r2c {

namespace {

constexpr const char* kOp = "global_max_pool";

void check_args(const Tensor& x) {
    ops::check_ndim(kOp, "x", x, 4);
    R2C_CHECK(x.dim(2) * x.dim(3) > 0, kOp, ": x ", x.str(), " has empty planes");
    ops::check_cuda_float32(kOp, x);
    ops::check_kernel_size(kOp, x);
}

// Position of the first maximal value among m values (strict comparison keeps the first of ties).
template <typename T>
std::int64_t first_argmax(const T* v, std::int64_t m) {
    std::int64_t best = 0;
    for (std::int64_t i = 1; i < m; ++i)
        if (v[i] > v[best]) best = i;
    return best;
}

}  // namespace

Tensor global_max_pool(const Tensor& x) {
    const OpScope scope(kOp, x);
    check_args(x);
    const Shape in_shape = x.shape();
    const std::int64_t planes = in_shape[0] * in_shape[1], m = in_shape[2] * in_shape[3];
    Tensor y = Tensor::empty({in_shape[0], in_shape[1]}, x.dtype(), x.device());
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA) {
        // Position in its plane of each plane's maximum, kept on the device for the backward pass.
        auto argmax =
            std::make_shared<Storage>(static_cast<std::size_t>(planes) * sizeof(std::int32_t), Device::CUDA);
        auto* pos = static_cast<std::int32_t*>(argmax->data());
        cuda::global_max_pool_forward(ops::f32(x), static_cast<int>(planes), static_cast<int>(m), ops::f32(y),
                                      pos);
        return record(y, kOp, {x}, [in_shape, planes, m, argmax](const Tensor& g) {
            Tensor dx = Tensor::empty(in_shape, g.dtype(), g.device());
            cuda::global_max_pool_backward(ops::f32(g), static_cast<const std::int32_t*>(argmax->data()),
                                           static_cast<int>(planes), static_cast<int>(m), ops::f32(dx));
            return std::vector<Tensor>{dx};
        });
    }
#endif
    // Absolute index into x of each plane's maximum: where the backward pass sends the gradient.
    std::vector<std::int64_t> argmax(static_cast<std::size_t>(planes));
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* px = x.data<T>();
        T* py = y.data<T>();
#pragma omp parallel for
        for (std::int64_t p = 0; p < planes; ++p) {
            argmax[p] = p * m + first_argmax(px + p * m, m);
            py[p] = px[argmax[p]];
        }
    });
    return record(y, kOp, {x}, [in_shape, argmax = std::move(argmax)](const Tensor& g) {
        Tensor dx = Tensor::zeros(in_shape, g.dtype());
        ops::dispatch_float(g.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* pg = g.data<T>();
            T* pdx = dx.data<T>();
            for (std::size_t p = 0; p < argmax.size(); ++p)
                pdx[argmax[p]] = pg[p];
        });
        return std::vector<Tensor>{dx};
    });
}

}  // namespace r2c
