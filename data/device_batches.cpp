#include "data/device_batches.h"

#include <vector>

#include "engine/error.h"

namespace r2c {

DeviceBatches::DeviceBatches(Device device) : device_(device) {
    if (device_ == Device::CUDA) uploader_.emplace(kSlots);
}

void DeviceBatches::put(const Batch& batch) {
    R2C_CHECK(!waiting_, "DeviceBatches::put: the batch put before has not been taken");
    for (const Tensor* t : {&batch.a, &batch.b, &batch.label_a, &batch.label_b})
        R2C_CHECK(t->device() == Device::CPU, "DeviceBatches::put: batch tensors must be on the CPU, got ",
                  t->str());
    Batch& slot = slots_[next_];
    if (device_ == Device::CPU) {
        slot = batch;
    } else {
        // The slot keeps its device tensors from batch to batch while the shapes stay the same.
        std::vector<cuda::Uploader::Part> parts;
        for (Tensor Batch::*field : {&Batch::a, &Batch::b, &Batch::label_a, &Batch::label_b}) {
            const Tensor& src = batch.*field;
            Tensor& dst = slot.*field;
            if (!dst.defined() || dst.shape() != src.shape() || dst.dtype() != src.dtype())
                dst = Tensor::empty(src.shape(), src.dtype(), Device::CUDA);
            parts.push_back({dst.raw_data(), src.raw_data(), src.nbytes()});
        }
        uploader_->upload(next_, parts);
        slot.epoch = batch.epoch;
        slot.iteration = batch.iteration;
        slot.names_a = batch.names_a;
        slot.names_b = batch.names_b;
    }
    waiting_ = true;
}

Batch DeviceBatches::take() {
    R2C_CHECK(waiting_, "DeviceBatches::take: no batch was put");
    const int slot = next_;
    if (uploader_) uploader_->acquire(slot);
    next_ = (next_ + 1) % kSlots;
    waiting_ = false;
    return slots_[slot];
}

}  // namespace r2c
