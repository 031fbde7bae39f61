// The CUDA side as the engine sees it: whether it exists, raw copies, and the device allocator.
// Implemented by kernels/runtime.cu in a CUDA build and by engine/no_cuda.cpp without CUDA.
#pragma once

#include <cstddef>
#include <string>

#include "engine/allocator.h"
#include "engine/dtype.h"

namespace r2c::cuda {

bool compiled();    // the engine was built with CUDA
bool available();   // compiled and a usable device is present
std::string describe();  // one line per device, or why there is none

CachingAllocator& allocator();  // throws when CUDA is not available

enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind);

// Elementwise helpers used by the engine itself (gradient accumulation, fills).
void fill(void* dst, std::size_t n, double value, DType dtype);
void axpy(void* y, const void* x, std::size_t n, double alpha, DType dtype);  // y += alpha * x

}  // namespace r2c::cuda
