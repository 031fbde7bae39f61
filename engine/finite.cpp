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

Tensor nonfinite_flags(const std::vector<Tensor>& tensors, Device device) {
    const auto n = static_cast<std::int64_t>(tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i];
        R2C_CHECK(!t.defined() || t.device() == device, "nonfinite_flags: tensor ", i, " is ", t.str(),
                  ", expected one on ", device_name(device));
        R2C_CHECK(!t.defined() || device == Device::CPU || t.dtype() == DType::F32,
                  "nonfinite_flags: tensor ", i, " is ", t.str(), "; CUDA tensors must be float32");
    }
    if (device == Device::CPU) {
        Tensor flags = Tensor::zeros({n}, DType::F32);
        float* f = flags.data<float>();
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            const Tensor& t = tensors[i];
            if (!t.defined()) continue;
            const bool bad = t.dtype() == DType::F32 ? scan_nonfinite(t.data<float>(), t.numel())
                                                     : scan_nonfinite(t.data<double>(), t.numel());
            f[i] = bad ? 1.f : 0.f;
        }
        return flags;
    }
    Tensor flags = Tensor::empty({n}, DType::F32, device);
#ifdef R2C_WITH_CUDA
    // Undefined tensors take part as empty buffers: their flags are cleared and never raised.
    std::vector<const float*> data;
    std::vector<std::int64_t> sizes;
    for (const Tensor& t : tensors) {
        data.push_back(t.defined() ? static_cast<const float*>(t.raw_data()) : nullptr);
        sizes.push_back(t.defined() ? t.numel() : 0);
    }
    cuda::nonfinite_flags(data, sizes, static_cast<float*>(flags.raw_data()));
#endif
    return flags;
}

}  // namespace r2c
