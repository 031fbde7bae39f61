#include "engine/ops/common.h"

#include <limits>

namespace r2c::ops {

void check_same_kind(const char* op, std::initializer_list<Tensor> tensors) {
    const Tensor* first = nullptr;
    for (const Tensor& t : tensors) {
        if (!t.defined()) continue;
        if (first == nullptr) {
            first = &t;
            continue;
        }
        R2C_CHECK(t.dtype() == first->dtype() && t.device() == first->device(), op,
                  ": all tensors must share dtype and device, got ", first->str(), " and ", t.str());
    }
}

void check_ndim(const char* op, const char* what, const Tensor& t, int ndim) {
    R2C_CHECK(t.defined(), op, ": ", what, " is undefined");
    R2C_CHECK(t.ndim() == ndim, op, ": ", what, " must have ", ndim, " dimensions, got ", t.str());
}

void check_cuda_float32(const char* op, const Tensor& t) {
    R2C_CHECK(t.device() != Device::CUDA || t.dtype() == DType::F32, op,
              ": CUDA ops take float32 tensors; got ", t.str(), " (convert on the CPU first)");
}

void check_kernel_size(const char* op, const Tensor& t) {
    R2C_CHECK(t.device() != Device::CUDA || t.numel() <= std::numeric_limits<int>::max(), op, ": ", t.str(),
              " has too many elements for the CUDA kernels");
}

void no_cuda_kernel(const char* op) {
    throw Error(detail::concat(op, ": no CUDA implementation yet; move the tensors to the CPU"));
}

}  // namespace r2c::ops
