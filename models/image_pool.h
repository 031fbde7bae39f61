// The history of generated images the discriminators see (Shrivastava et al.; CycleGAN): while the pool
// is not full each image is stored and returned; afterwards, with probability 1/2 a random stored image
// is returned and the new one takes its place, otherwise the new image is returned.
#pragma once

#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace r2c {

class ImagePool {
  public:
    explicit ImagePool(int capacity) : capacity_(capacity) {}

    // batch [N,C,H,W] (no autograd history) -> [N,C,H,W], item by item, written into `out` when it is
    // given (a tensor of the batch's shape, dtype and device; returned), else into a new tensor.
    Tensor query(const Tensor& batch, Rng& rng, Tensor out = Tensor());

    int capacity() const { return capacity_; }
    // The stored images, each [1,C,H,W], for checkpoints.
    const std::vector<Tensor>& items() const { return items_; }
    void set_items(std::vector<Tensor> items);

  private:
    int capacity_;
    std::vector<Tensor> items_;
};

}  // namespace r2c
