// Joining and splitting batches along the first dimension, on any device (copies; no kernels of their
// own), with their gradients.
#include <vector>

#include "engine/autograd.h"
#include "engine/op_scope.h"
#include "engine/ops.h"
#include "engine/ops/common.h"

namespace r2c {

Tensor cat(const std::vector<Tensor>& parts) {
    R2C_CHECK(!parts.empty(), "cat: no tensors");
    const OpScope scope("cat", parts[0]);
    for (const Tensor& p : parts)
        R2C_CHECK(p.defined(), "cat: an input is undefined");
    ops::check_same_kind("cat", parts);
    const Tensor y = cat_batch(parts);  // checks the shapes
    std::vector<std::int64_t> items;
    std::vector<bool> wanted;
    for (const Tensor& p : parts) {
        items.push_back(p.dim(0));
        wanted.push_back(needs_grad({p}));
    }
    return record(y, "cat", parts, [items, wanted](const Tensor& g) {
        std::vector<Tensor> grads;
        std::int64_t begin = 0;
        for (std::size_t i = 0; i < items.size(); ++i) {
            grads.push_back(wanted[i] ? g.batch_range(begin, items[i]) : Tensor());
            begin += items[i];
        }
        return grads;
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
