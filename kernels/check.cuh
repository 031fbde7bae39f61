// Turns a CUDA status into an r2c::Error that names the operation, the call and the error.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "engine/device.h"
#include "engine/error.h"
#include "engine/op_scope.h"

namespace r2c::detail {
// The failing call's own name, and the engine op it ran for when one is open on this thread.
inline std::string cuda_error_context(const std::string& what) {
    const std::string op = current_op();
    return op.empty() ? what : what + " (in " + op + ")";
}
void count_cuda_launch();       // kernels/runtime.cu, behind cuda::kernel_launches()
void count_host_wait();         // the same, behind cuda::host_waits()
void count_memory_operation();  // the same, behind cuda::memory_operations()
// The stream a kernel API call queues its work on: the one it was given, or the engine's (cuda::stream()).
inline cudaStream_t launch_stream(void* given) {
    return static_cast<cudaStream_t>(given != nullptr ? given : cuda::stream());
}
}  // namespace r2c::detail

#define R2C_CUDA_CHECK(call, op)                                                                        \
    do {                                                                                                \
        cudaError_t r2c_err_ = (call);                                                                  \
        if (r2c_err_ != cudaSuccess)                                                                    \
            throw ::r2c::Error(::r2c::detail::cuda_error_context(op) + ": " #call " failed: " +         \
                               cudaGetErrorName(r2c_err_) + " (" + cudaGetErrorString(r2c_err_) + ")"); \
    } while (0)

// A kernel launch: R2C_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...). Under the CPU
// emulator (kernels/emulator/) the same line runs the kernel there.
#ifdef R2C_CUDA_EMULATION
#define R2C_LAUNCH(grid, block, smem, stream, ...) ::r2c_emu::launch(grid, block, smem, stream, __VA_ARGS__)
#else
#define R2C_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#endif

// After each kernel launch: counts it and reports launch-configuration errors immediately.
#define R2C_CUDA_LAUNCH_CHECK(op)               \
    do {                                        \
        ::r2c::detail::count_cuda_launch();     \
        R2C_CUDA_CHECK(cudaGetLastError(), op); \
    } while (0)
