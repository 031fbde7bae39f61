// Training batches moved to the device one step ahead: put() starts copying the next batch while the
// step on the current one runs, take() hands it over. On CUDA the copy goes through pinned memory on a
// stream of its own (cuda::Uploader) into one of two alternating sets of device tensors, so it never
// writes the tensors of the step in flight; on the CPU the batch passes through.
#pragma once

#include <optional>

#include "data/loader.h"
#include "engine/device.h"

namespace r2c {

class DeviceBatches {
  public:
    explicit DeviceBatches(Device device);

    // Starts moving `batch` (CPU tensors) to the device. One batch at most waits for take().
    void put(const Batch& batch);
    // The batch put() last, on the device, ready for the ops queued after this call. On CUDA its tensors
    // are overwritten by the second put() after this take().
    Batch take();

  private:
    static constexpr int kSlots = 2;
    Device device_;
    std::optional<cuda::Uploader> uploader_;
    Batch slots_[kSlots];
    int next_ = 0;  // the slot put() fills next
    bool waiting_ = false;
};

}  // namespace r2c
