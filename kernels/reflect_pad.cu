// Reflect padding forward (a gather from the mirrored position) and backward (kernels/ops.h).
#include "kernels/ops.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

__global__ void reflect_pad_forward_kernel(const float* x, std::size_t total, int h, int w, int pad,
                                           float* y) {
    const int oh = h + 2 * pad, ow = w + 2 * pad;
    for (std::size_t o = global_index(); o < total; o += grid_stride()) {
        const int j = static_cast<int>(o % ow), i = static_cast<int>(o / ow % oh);
        const std::size_t plane = o / ow / oh;
        y[o] = x[(plane * h + frame_source(i, pad, h, true)) * w + frame_source(j, pad, w, true)];
    }
}

// Each input element adds the padded positions that read it, rows then columns in increasing order (the
// order of the CPU reference's scatter), so no two threads write one element.
__global__ void reflect_pad_backward_kernel(const float* dy, std::size_t total, int h, int w, int pad,
                                            float* dx) {
    const int oh = h + 2 * pad, ow = w + 2 * pad;
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const int j = static_cast<int>(e % w), i = static_cast<int>(e / w % h);
        const float* g = dy + e / w / h * oh * ow;
        int rows[3], cols[3];
        const int nr = frame_positions(i, pad, h, oh, true, rows),
                  nc = frame_positions(j, pad, w, ow, true, cols);
        float acc = 0.f;
        for (int a = 0; a < nr; ++a)
            for (int b = 0; b < nc; ++b)
                acc += g[static_cast<std::size_t>(rows[a]) * ow + cols[b]];
        dx[e] = acc;
    }
}

}  // namespace

void reflect_pad_forward(const float* x, int planes, int h, int w, int pad, float* y, void* stream) {
    const std::size_t total = static_cast<std::size_t>(planes) * (h + 2 * pad) * (w + 2 * pad);
    if (total == 0) return;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream),
               reflect_pad_forward_kernel)
    (x, total, h, w, pad, y);
    R2C_CUDA_LAUNCH_CHECK("reflect_pad_forward_kernel");
}

void reflect_pad_backward(const float* dy, int planes, int h, int w, int pad, float* dx, void* stream) {
    const std::size_t total = static_cast<std::size_t>(planes) * h * w;
    if (total == 0) return;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream),
               reflect_pad_backward_kernel)
    (dy, total, h, w, pad, dx);
    R2C_CUDA_LAUNCH_CHECK("reflect_pad_backward_kernel");
}

}  // namespace r2c::cuda
