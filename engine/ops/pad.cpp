// Reflect padding: CPU reference implementation and the dispatch of CUDA tensors to kernels/reflect_pad.cu.
#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/ops.h"

namespace r2c {

namespace {

constexpr const char* kOp = "reflect_pad";

void check_args(const Tensor& x, int pad) {
    ops::check_ndim(kOp, "x", x, 4);
    R2C_CHECK(pad >= 0, kOp, ": pad must be non-negative, got ", pad);
    R2C_CHECK(pad < x.dim(2) && pad < x.dim(3), kOp, ": pad ", pad,
              " must be smaller than height and width of ", x.str());
    ops::check_cuda_float32(kOp, x);
    ops::check_kernel_size(kOp, x);
}

// Index into the unpadded dimension of size n for position i of the padded one: the mirror without
// repeating the edge, so pad 2 of [a b c] reads [c b | a b c | b a].
std::int64_t reflect(std::int64_t i, std::int64_t pad, std::int64_t n) {
    std::int64_t s = i - pad;
    if (s < 0) s = -s;
    if (s >= n) s = 2 * (n - 1) - s;
    return s;
}

// Calls f(out_index, in_index) for every element of the padded tensor `out` of the unpadded `in`.
// Each plane is visited by one thread, so f may accumulate into either index without races.
template <typename F>
void for_each_reflection(const Shape& in, std::int64_t pad, F f) {
    const std::int64_t planes = in[0] * in[1], h = in[2], w = in[3];
    const std::int64_t oh = h + 2 * pad, ow = w + 2 * pad;
#pragma omp parallel for
    for (std::int64_t p = 0; p < planes; ++p)
        for (std::int64_t i = 0; i < oh; ++i) {
            const std::int64_t row_in = p * h * w + reflect(i, pad, h) * w;
            const std::int64_t row_out = (p * oh + i) * ow;
            for (std::int64_t j = 0; j < ow; ++j)
                f(row_out + j, row_in + reflect(j, pad, w));
        }
}

}  // namespace

Tensor reflect_pad(const Tensor& x, int pad) {
    const OpScope scope(kOp, x);
    check_args(x, pad);
    const Shape in_shape = x.shape();
    Tensor y = Tensor::empty({in_shape[0], in_shape[1], in_shape[2] + 2 * pad, in_shape[3] + 2 * pad},
                             x.dtype(), x.device());
#ifdef R2C_WITH_CUDA
    if (x.device() == Device::CUDA) {
        const int planes = static_cast<int>(in_shape[0] * in_shape[1]), h = static_cast<int>(in_shape[2]),
                  w = static_cast<int>(in_shape[3]);
        cuda::reflect_pad_forward(ops::f32(x), planes, h, w, pad, ops::f32(y));
        return record(y, kOp, {x}, [in_shape, planes, h, w, pad](const Tensor& g) {
            Tensor dx = Tensor::empty(in_shape, g.dtype(), g.device());
            cuda::reflect_pad_backward(ops::f32(g), planes, h, w, pad, ops::f32(dx));
            return std::vector<Tensor>{dx};
        });
    }
#endif
    ops::dispatch_float(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T* px = x.data<T>();
        T* py = y.data<T>();
        for_each_reflection(in_shape, pad, [&](std::int64_t o, std::int64_t i) { py[o] = px[i]; });
    });
    return record(y, kOp, {x}, [in_shape, pad](const Tensor& g) {
        // Edge-adjacent inputs are read several times; their gradients add up.
        Tensor dx = Tensor::zeros(in_shape, g.dtype());
        ops::dispatch_float(g.dtype(), [&](auto tag) {
            using T = decltype(tag);
            const T* pg = g.data<T>();
            T* pdx = dx.data<T>();
            for_each_reflection(in_shape, pad, [&](std::int64_t o, std::int64_t i) { pdx[i] += pg[o]; });
        });
        return std::vector<Tensor>{dx};
    });
}

}  // namespace r2c
