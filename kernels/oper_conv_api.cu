// The public entry points of kernels/oper_conv.h: validate the geometry and pointers, pick the variant
// (oper_conv_choose), map a transposed pass onto its adjoint convolution, and launch.
#include <cstdint>

#include "kernels/check.cuh"
#include "kernels/oper_conv.h"
#include "kernels/oper_conv_launch.cuh"

namespace r2c::cuda {

using namespace oper_detail;

namespace {

void require(OperPass pass, const OperConvGeometry& g, const void* p, const char* what) {
    R2C_CHECK(p != nullptr, oper_pass_name(pass), ": ", what, " is null (", oper_geometry_str(g), ")");
}

int multiprocessors() {
    int dev = 0, sms = 0;
    R2C_CUDA_CHECK(cudaGetDevice(&dev), "oper_conv");
    R2C_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "oper_conv");
    return sms;
}

OperChoice choose(OperPass pass, const OperConvGeometry& g, const OperConvOptions& opt) {
    oper_conv_check_geometry(pass, g);
    return oper_conv_choose(pass, g, opt, oper_device_compute_capability());
}

std::size_t weight_count(const OperConvGeometry& g) {
    return std::size_t(g.Q) * g.Cout * g.Cin * g.k * g.k;
}

// The split-K parts of a weight-gradient pass run as c on d (the conv dims its kernel takes, of g): as
// many as its kernel would take and, beyond one, as the workspace holds partial gradients.
int weight_parts(const OperConvGeometry& g, const ConvDims& d, const OperChoice& c, std::size_t workspace) {
    int parts = 1;
    if (c.variant == OperVariant::Tiled) parts = tiled_weight_parts(d, multiprocessors());
    if (c.variant == OperVariant::TensorCore) parts = wmma_weight_parts(d, c.precision, multiprocessors());
    const std::size_t fit = workspace / (weight_count(g) * sizeof(float));
    if (static_cast<std::size_t>(parts) > fit) parts = fit > 1 ? static_cast<int>(fit) : 1;
    return parts;
}
// The workspace bytes a pass may use: none without a pointer.
std::size_t usable_workspace(const OperConvOptions& opt) {
    return opt.workspace != nullptr ? opt.workspace_bytes : 0;
}

// A weight-gradient pass in `parts` parts: the kernel writes dw itself, or the workspace's slabs, added.
template <class Launch>
void run_weights(const OperConvGeometry& g, int parts, float* dw, const OperConvOptions& opt, cudaStream_t st,
                 const Launch& launch) {
    if (parts == 1) {
        launch(dw);
        return;
    }
    launch(static_cast<float*>(opt.workspace));
    sum_parts(static_cast<const float*>(opt.workspace), parts, weight_count(g), dw, st);
}

}  // namespace

int oper_device_compute_capability() {
    int dev = 0, major = 0, minor = 0;
    R2C_CUDA_CHECK(cudaGetDevice(&dev), "oper_device_compute_capability");
    R2C_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev),
                   "oper_device_compute_capability");
    R2C_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev),
                   "oper_device_compute_capability");
    return major * 10 + minor;
}

void oper_conv_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
                       OperActivation act, const OperConvOptions& opt) {
    constexpr OperPass pass = OperPass::Forward;
    const OperChoice c = choose(pass, g, opt);
    require(pass, g, x, "x");
    require(pass, g, w, "w");
    require(pass, g, y, "y");
    const cudaStream_t st = detail::launch_stream(opt.stream);
    switch (c.variant) {
        case OperVariant::Naive:
            naive_forward(g, x, w, b, y, act, st);
            return;
        case OperVariant::Tiled:
            tiled_window(make_dims(g), true, x, w, b, y, act, st);
            return;
        case OperVariant::Narrow:
            narrow_forward(make_dims(g), x, w, b, y, act, st);
            return;
        default:
            wmma_window(make_dims(g), true, x, w, b, y, act, c.precision, st);
            return;
    }
}

void oper_conv_backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                             float* dx, const OperConvOptions& opt) {
    constexpr OperPass pass = OperPass::BackwardData;
    const OperChoice c = choose(pass, g, opt);
    require(pass, g, x, "x");
    require(pass, g, w, "w");
    require(pass, g, dz, "dz");
    require(pass, g, dx, "dx");
    const cudaStream_t st = detail::launch_stream(opt.stream);
    switch (c.variant) {
        case OperVariant::Naive:
            naive_backward_data(g, x, w, dz, dx, st);
            return;
        case OperVariant::Tiled:
            tiled_transposed(make_dims(g), false, dz, w, x, dx, OperActivation::None, st);
            return;
        default:
            wmma_transposed(make_dims(g), false, dz, w, x, dx, OperActivation::None, c.precision, st);
            return;
    }
}

void oper_conv_backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                float* db, const OperConvOptions& opt) {
    constexpr OperPass pass = OperPass::BackwardWeights;
    const OperChoice c = choose(pass, g, opt);
    require(pass, g, x, "x");
    require(pass, g, dz, "dz");
    require(pass, g, dw, "dw");
    const cudaStream_t st = detail::launch_stream(opt.stream);
    const ConvDims d = make_dims(g);
    const int parts = weight_parts(g, d, c, usable_workspace(opt));
    switch (c.variant) {
        case OperVariant::Naive:
            naive_backward_weights(g, x, dz, dw, st);
            break;
        case OperVariant::Tiled:
            run_weights(g, parts, dw, opt, st,
                        [&](float* slabs) { tiled_weights(d, true, x, dz, slabs, parts, st); });
            break;
        default:
            run_weights(g, parts, dw, opt, st,
                        [&](float* slabs) { wmma_weights(d, true, x, dz, slabs, parts, c.precision, st); });
            break;
    }
    if (db != nullptr) bias_grad(dz, db, g.N, g.Cout, g.Hout * g.Wout, g.Q, st);
}

void oper_conv_transpose_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b,
                                 float* y, OperActivation act, const OperConvOptions& opt) {
    constexpr OperPass pass = OperPass::TransposeForward;
    const OperChoice c = choose(pass, g, opt);
    require(pass, g, x, "x");
    require(pass, g, w, "w");
    require(pass, g, y, "y");
    const cudaStream_t st = detail::launch_stream(opt.stream);
    const ConvDims adj = make_dims(oper_adjoint_geometry(g));
    switch (c.variant) {
        case OperVariant::Naive:
            naive_transpose_forward(g, x, w, b, y, act, st);
            return;
        case OperVariant::Tiled:
            tiled_transposed(adj, true, x, w, b, y, act, st);
            return;
        case OperVariant::Narrow:
            narrow_transpose_forward(make_dims(g), x, w, b, y, act, st);
            return;
        default:
            wmma_transposed(adj, true, x, w, b, y, act, c.precision, st);
            return;
    }
}

void oper_conv_transpose_backward_data(const OperConvGeometry& g, const float* x, const float* w,
                                       const float* dz, float* dx, const OperConvOptions& opt) {
    constexpr OperPass pass = OperPass::TransposeBackwardData;
    const OperChoice c = choose(pass, g, opt);
    require(pass, g, x, "x");
    require(pass, g, w, "w");
    require(pass, g, dz, "dz");
    require(pass, g, dx, "dx");
    const cudaStream_t st = detail::launch_stream(opt.stream);
    const ConvDims adj = make_dims(oper_adjoint_geometry(g));
    switch (c.variant) {
        case OperVariant::Naive:
            naive_transpose_backward_data(g, x, w, dz, dx, st);
            return;
        case OperVariant::Tiled:
            tiled_window(adj, false, dz, w, x, dx, OperActivation::None, st);
            return;
        default:
            wmma_window(adj, false, dz, w, x, dx, OperActivation::None, c.precision, st);
            return;
    }
}

void oper_conv_transpose_backward_weights(const OperConvGeometry& g, const float* x, const float* dz,
                                          float* dw, float* db, const OperConvOptions& opt) {
    constexpr OperPass pass = OperPass::TransposeBackwardWeights;
    const OperChoice c = choose(pass, g, opt);
    require(pass, g, x, "x");
    require(pass, g, dz, "dz");
    require(pass, g, dw, "dw");
    const cudaStream_t st = detail::launch_stream(opt.stream);
    const ConvDims adj = make_dims(oper_adjoint_geometry(g));
    const int parts = weight_parts(g, adj, c, usable_workspace(opt));
    switch (c.variant) {
        case OperVariant::Naive:
            naive_transpose_backward_weights(g, x, dz, dw, st);
            break;
        case OperVariant::Tiled:
            run_weights(g, parts, dw, opt, st,
                        [&](float* slabs) { tiled_weights(adj, false, dz, x, slabs, parts, st); });
            break;
        default:
            run_weights(g, parts, dw, opt, st, [&](float* slabs) {
                wmma_weights(adj, false, dz, x, slabs, parts, c.precision, st);
            });
            break;
    }
    if (db != nullptr) bias_grad(dz, db, g.N, g.Cout, g.Hout * g.Wout, g.Q, st);
}

std::size_t oper_conv_weights_workspace(const OperConvGeometry& g, bool transposed,
                                        const OperConvOptions& opt) {
    const OperChoice c =
        choose(transposed ? OperPass::TransposeBackwardWeights : OperPass::BackwardWeights, g, opt);
    const int parts = weight_parts(g, make_dims(transposed ? oper_adjoint_geometry(g) : g), c, SIZE_MAX);
    return parts > 1 ? parts * weight_count(g) * sizeof(float) : 0;
}

void oper_activation_backward(OperActivation act, const float* y, const float* dy, float* dz, std::size_t n,
                              void* stream) {
    R2C_CHECK(n == 0 || (dy != nullptr && dz != nullptr && (act == OperActivation::None || y != nullptr)),
              "oper_activation_backward: null pointer for ", n, " elements");
    activation_backward(act, y, dy, dz, n, detail::launch_stream(stream));
}

}  // namespace r2c::cuda
