// Internal helpers shared by the op implementations.
#pragma once

#include <initializer_list>

#include "engine/tensor.h"

namespace r2c::ops {

// All defined tensors share dtype and device (the first one's); the error names the op.
void check_same_kind(const char* op, std::initializer_list<Tensor> tensors);
// Tensor has exactly `ndim` dimensions; `what` names the argument.
void check_ndim(const char* op, const char* what, const Tensor& t, int ndim);
// The op has no CUDA implementation yet.
[[noreturn]] void no_cuda_kernel(const char* op);

// Calls f(T{}) with T = float or double according to dtype; inside: using T = decltype(tag);
template <typename F>
decltype(auto) dispatch_float(DType dtype, F&& f) {
    if (dtype == DType::F32) return f(float{});
    return f(double{});
}

}  // namespace r2c::ops
