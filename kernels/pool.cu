// Global max pooling forward (one block per plane, first maximal element) and backward (kernels/ops.h).
#include "kernels/ops.h"
#include "kernels/ops_device.cuh"

namespace r2c::cuda {

namespace {

using namespace ops_detail;

// A candidate maximum: value and position (-1: none yet). NaN is never a candidate.
struct Best {
    float v;
    int i;
};

// The better of two candidates: the larger value, on a tie the earlier position.
__device__ __forceinline__ Best better(Best a, Best b) {
    if (b.i < 0) return a;
    if (a.i < 0 || b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
    return a;
}

// The CPU reference scans `if (v[i] > v[best]) best = i` from best = 0: NaN never wins, except at
// position 0, which then stays (nothing compares greater than NaN). Elsewhere the result is the first
// maximum of the non-NaN values, which this block finds as a fixed-order tree of per-thread candidates.
__global__ void __launch_bounds__(kThreads)
    global_max_pool_forward_kernel(const float* x, int m, float* y, std::int32_t* argmax) {
    const float* xp = x + static_cast<std::size_t>(blockIdx.x) * m;
    Best best{0.f, -1};
    for (int i = threadIdx.x; i < m; i += kThreads)
        if (xp[i] == xp[i]) best = better(best, Best{xp[i], i});
    __shared__ Best tree[kThreads];
    tree[threadIdx.x] = best;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
        if (static_cast<int>(threadIdx.x) < half)
            tree[threadIdx.x] = better(tree[threadIdx.x], tree[threadIdx.x + half]);
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const int i = xp[0] != xp[0] || tree[0].i < 0 ? 0 : tree[0].i;
        argmax[blockIdx.x] = i;
        y[blockIdx.x] = xp[i];
    }
}

__global__ void global_max_pool_backward_kernel(const float* dy, const std::int32_t* argmax,
                                                std::size_t total, int m, float* dx) {
    for (std::size_t e = global_index(); e < total; e += grid_stride()) {
        const std::size_t p = e / m;
        dx[e] = static_cast<std::size_t>(argmax[p]) == e % m ? dy[p] : 0.f;
    }
}

}  // namespace

void global_max_pool_forward(const float* x, int planes, int m, float* y, std::int32_t* argmax,
                             void* stream) {
    if (planes == 0) return;
    R2C_LAUNCH(planes, kThreads, 0, detail::launch_stream(stream), global_max_pool_forward_kernel)
    (x, m, y, argmax);
    R2C_CUDA_LAUNCH_CHECK("global_max_pool_forward_kernel");
}

void global_max_pool_backward(const float* dy, const std::int32_t* argmax, int planes, int m, float* dx,
                              void* stream) {
    const std::size_t total = static_cast<std::size_t>(planes) * m;
    if (total == 0) return;
    R2C_LAUNCH(elementwise_grid(total), kThreads, 0, detail::launch_stream(stream),
               global_max_pool_backward_kernel)
    (dy, argmax, total, m, dx);
    R2C_CUDA_LAUNCH_CHECK("global_max_pool_backward_kernel");
}

}  // namespace r2c::cuda
