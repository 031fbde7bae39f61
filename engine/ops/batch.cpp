// Joining and splitting batches along the first dimension, on any device (copies; no kernels of their
// own), with their gradients.
#include <vector>

#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"

namespace r2c {

Tensor cat(const Tensor& a, const Tensor& b) {
    const OpScope scope("cat", a);
    R2C_CHECK(a.defined() && b.defined(), "cat: an input is undefined");
    ops::check_same_kind("cat", {a, b});
    const Tensor y = cat_batch({a, b});  // checks the shapes
    const std::int64_t na = a.dim(0), nb = b.dim(0);
    const bool grad_a = needs_grad({a}), grad_b = needs_grad({b});
    return record(y, "cat", {a, b}, [na, nb, grad_a, grad_b](const Tensor& g) {
        return std::vector<Tensor>{grad_a ? g.batch_range(0, na) : Tensor(),
                                   grad_b ? g.batch_range(na, nb) : Tensor()};
    });
}

Tensor narrow(const Tensor& x, std::int64_t begin, std::int64_t count) {
    const OpScope scope("narrow", x);
    R2C_CHECK(x.defined(), "narrow: input is undefined");
    R2C_CHECK(x.ndim() >= 1 && begin >= 0 && count >= 0 && count <= x.dim(0) - begin, "narrow: items [",
              begin, ", ", begin + count, ") are not within the first dimension of ", x.str());
    const Shape shape = x.shape();
    return record(x.batch_range(begin, count), "narrow", {x}, [shape, begin](const Tensor& g) {
        Tensor dx = Tensor::zeros(shape, g.dtype(), g.device());
        dx.set_batch_range(begin, g);
        return std::vector<Tensor>{dx};
    });
}

}  // namespace r2c
