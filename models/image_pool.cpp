#include "models/image_pool.h"

namespace r2c {

Tensor ImagePool::query(const Tensor& batch, Rng& rng, Tensor out) {
    R2C_CHECK(batch.ndim() == 4, "ImagePool::query: expected [N,C,H,W], got ", batch.str());
    if (out.defined()) {
        R2C_CHECK(
            out.shape() == batch.shape() && out.dtype() == batch.dtype() && out.device() == batch.device(),
            "ImagePool::query: the output ", out.str(), " does not match the batch ", batch.str());
        if (capacity_ <= 0) {
            out.copy_from(batch);
            return out;
        }
    } else {
        if (capacity_ <= 0) return batch;
        out = Tensor::empty(batch.shape(), batch.dtype(), batch.device());
    }
    for (std::int64_t i = 0; i < batch.dim(0); ++i) {
        const Tensor item = batch.batch_item(i);
        Tensor chosen = item;
        if (static_cast<int>(items_.size()) < capacity_) {
            items_.push_back(item);
        } else if (rng.uniform() > 0.5) {
            const std::size_t k = rng.below(items_.size());
            chosen = items_[k];
            items_[k] = item;
        }
        out.set_batch_item(i, chosen);
    }
    return out;
}

void ImagePool::set_items(std::vector<Tensor> items) {
    R2C_CHECK(static_cast<int>(items.size()) <= capacity_, "ImagePool: ", items.size(),
              " stored images exceed the capacity ", capacity_);
    items_ = std::move(items);
}

}  // namespace r2c
