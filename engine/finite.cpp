#include "engine/finite.h"

#include <cmath>

#ifdef R2C_WITH_CUDA
#include "kernels/finite.h"
#endif

namespace r2c {

namespace {

template <typename T>
bool scan_nonfinite(const T* p, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return true;
    return false;
}

}  // namespace

std::vector<bool> nonfinite(const std::vector<Tensor>& tensors) {
    std::vector<bool> flags(tensors.size(), false);
#ifdef R2C_WITH_CUDA
    std::vector<std::size_t> on_device;
    std::vector<const float*> data;
    std::vector<std::int64_t> sizes;
#endif
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i];
        if (!t.defined()) continue;
#ifdef R2C_WITH_CUDA
        if (t.device() == Device::CUDA) {
            R2C_CHECK(t.dtype() == DType::F32, "nonfinite: CUDA tensors must be float32, got ", t.str());
            on_device.push_back(i);
            data.push_back(static_cast<const float*>(t.raw_data()));
            sizes.push_back(t.numel());
            continue;
        }
#endif
        flags[i] = t.dtype() == DType::F32 ? scan_nonfinite(t.data<float>(), t.numel())
                                           : scan_nonfinite(t.data<double>(), t.numel());
    }
#ifdef R2C_WITH_CUDA
    const std::vector<bool> device_flags = cuda::nonfinite(data, sizes);
    for (std::size_t k = 0; k < on_device.size(); ++k)
        flags[on_device[k]] = device_flags[k];
#endif
    return flags;
}

}  // namespace r2c
