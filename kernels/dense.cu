// The dense class head (kernels/ops.h): the fully connected layer and its gradients as one strided matrix
// product kernel, and the row softmax. The head is tiny ([N,128] x [128,2]): one thread per output
// element with a sequential dot product is enough.
#include "kernels/ops.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

// A matrix operand read through strides: element (r, l) of the left factor is p[r * outer + l * inner],
// element (l, c) of the right factor is p[l * inner + c * outer]. A null right factor is all ones.
struct Operand {
    const float* p;
    int outer, inner;
};

// out[r, c] = sum_l a(r, l) * b(l, c) (+ bias[c] when bias is not null), for rows x cols outputs.
__global__ void product_kernel(Operand a, Operand b, int rows, int cols, int depth, const float* bias,
                               float* out) {
    const std::size_t total = static_cast<std::size_t>(rows) * cols;
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const int r = static_cast<int>(e / cols), c = static_cast<int>(e % cols);
        float acc = 0.f;
        for (int l = 0; l < depth; ++l) {
            const float av =
                a.p[static_cast<std::size_t>(r) * a.outer + static_cast<std::size_t>(l) * a.inner];
            acc +=
                b.p == nullptr
                    ? av
                    : av * b.p[static_cast<std::size_t>(l) * b.inner + static_cast<std::size_t>(c) * b.outer];
        }
        out[e] = bias == nullptr ? acc : acc + bias[c];
    }
}

void product(Operand a, Operand b, int rows, int cols, int depth, const float* bias, float* out,
             void* stream) {
    const std::size_t total = static_cast<std::size_t>(rows) * cols;
    if (total == 0) return;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream), product_kernel)
    (a, b, rows, cols, depth, bias, out);
    R2C_CUDA_LAUNCH_CHECK("product_kernel");
}

// One thread per row; subtracting the row maximum keeps expf from overflowing.
__global__ void softmax_forward_kernel(const float* x, int rows, int k, float* y) {
    for (std::size_t r = global_index(); r < static_cast<std::size_t>(rows); r += grid_stride()) {
        const float* xr = x + r * k;
        float* yr = y + r * k;
        float top = xr[0];
        for (int i = 1; i < k; ++i)
            top = fmaxf(top, xr[i]);
        float total = 0.f;
        for (int i = 0; i < k; ++i) {
            yr[i] = expf(xr[i] - top);
            total += yr[i];
        }
        for (int i = 0; i < k; ++i)
            yr[i] /= total;
    }
}

__global__ void softmax_backward_kernel(const float* y, const float* dy, int rows, int k, float* dx) {
    for (std::size_t r = global_index(); r < static_cast<std::size_t>(rows); r += grid_stride()) {
        const std::size_t o = r * k;
        float dot = 0.f;
        for (int i = 0; i < k; ++i)
            dot += dy[o + i] * y[o + i];
        for (int i = 0; i < k; ++i)
            dx[o + i] = y[o + i] * (dy[o + i] - dot);
    }
}

}  // namespace

void linear_forward(const float* x, const float* w, const float* b, int n, int cin, int cout, float* y,
                    void* stream) {
    product({x, cin, 1}, {w, cin, 1}, n, cout, cin, b, y, stream);
}

void linear_backward(const float* dy, const float* x, const float* w, int n, int cin, int cout, float* dx,
                     float* dw, float* db, void* stream) {
    if (dx != nullptr) product({dy, cout, 1}, {w, 1, cin}, n, cin, cout, nullptr, dx, stream);
    if (dw != nullptr) product({dy, 1, cout}, {x, 1, cin}, cout, cin, n, nullptr, dw, stream);
    if (db != nullptr) product({dy, 1, cout}, {nullptr, 0, 0}, cout, 1, n, nullptr, db, stream);
}

void softmax_forward(const float* x, int rows, int k, float* y, void* stream) {
    if (rows == 0) return;
    R2C_LAUNCH(elementwise_grid(rows), kThreads, 0, detail::launch_stream(stream), softmax_forward_kernel)
    (x, rows, k, y);
    R2C_CUDA_LAUNCH_CHECK("softmax_forward_kernel");
}

void softmax_backward(const float* y, const float* dy, int rows, int k, float* dx, void* stream) {
    if (rows == 0) return;
    R2C_LAUNCH(elementwise_grid(rows), kThreads, 0, detail::launch_stream(stream), softmax_backward_kernel)
    (y, dy, rows, k, dx);
    R2C_CUDA_LAUNCH_CHECK("softmax_backward_kernel");
}

}  // namespace r2c::cuda
