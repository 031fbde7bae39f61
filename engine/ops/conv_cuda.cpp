// The operational convolutions on CUDA tensors: geometry for the kernels, the precision and algorithm
// settings (the fused kernels, cuDNN on the power stack, or Auto's checked and timed choice per pass and
// shape), the three passes, and errors that name the op, the shapes and what to try.
#ifdef R2C_WITH_CUDA
#include "engine/ops/conv_cuda.h"

#include <climits>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/ops/common.h"
#include "engine/ops/conv_choice.h"
#include "engine/ops/conv_cudnn.h"
#include "kernels/oper_conv.h"
#include "kernels/ops.h"

namespace r2c::ops {

namespace {

float* device_floats(const Tensor& t) {
    return t.defined() ? static_cast<float*>(t.raw_data()) : nullptr;
}

cuda::OperConvOptions options() {
    cuda::OperConvOptions opt;
    switch (cuda::math_precision()) {
        case cuda::MathPrecision::FP32:
            opt.precision = cuda::OperPrecision::FP32;
            break;
        case cuda::MathPrecision::TF32:
            opt.precision = cuda::OperPrecision::TF32;
            break;
        case cuda::MathPrecision::BF16:
            opt.precision = cuda::OperPrecision::BF16;
            break;
    }
    return opt;
}

// Runs f, turning any error into one that names the op, its tensors and a hint.
template <typename F>
void with_context(const char* op, const char* pass, const Tensor& x, const Tensor& w, F f) {
    try {
        f();
    } catch (const Error& e) {
        throw Error(detail::concat(op, " (", pass, ") on CUDA with x ", x.str(), ", w ", w.str(), ": ",
                                   e.what(),
                                   " (an asynchronous launch failure is pinned to its op by rerunning with "
                                   "CUDA_LAUNCH_BLOCKING=1)"));
    }
}

// The data gradient of a reflect-padded convolution by the fused kernels: the valid pass on the padded
// input (formed here for the power derivative, and freed on return), folded back onto x, written to dx.
void reflect_backward_data(const cuda::OperConvGeometry& cg, const Tensor& x, const Tensor& w,
                           const Tensor& dz, const Tensor& dx, const cuda::OperConvOptions& opt) {
    const int planes = cg.N * cg.Cin, pad = cg.pad_top;
    cuda::OperConvGeometry valid = cg;
    valid.H += 2 * pad;
    valid.W += 2 * pad;
    valid.pad_top = valid.pad_left = 0;
    valid.reflect = false;
    const Tensor x_pad = Tensor::empty({cg.N, cg.Cin, valid.H, valid.W}, DType::F32, Device::CUDA);
    cuda::reflect_pad_forward(device_floats(x), planes, cg.H, cg.W, pad, device_floats(x_pad));
    const Tensor dx_pad = Tensor::empty(x_pad.shape(), DType::F32, Device::CUDA);
    cuda::oper_conv_backward_data(valid, device_floats(x_pad), device_floats(w), device_floats(dz),
                                  device_floats(dx_pad), opt);
    cuda::reflect_pad_backward(device_floats(dx_pad), planes, cg.H, cg.W, pad, device_floats(dx));
}

// Runs one pass as cuda::conv_algorithm() says; fused and dnn each compute all of the pass's `outputs`.
void run_pass(cuda::OperPass pass, const cuda::OperConvGeometry& cg, const cuda::OperConvOptions& opt,
              const std::vector<Tensor>& outputs, const std::function<void()>& fused,
              const std::function<void()>& dnn) {
    const cuda::ConvAlgorithm algorithm = cuda::conv_algorithm();
    if (algorithm == cuda::ConvAlgorithm::Fused ||
        (algorithm == cuda::ConvAlgorithm::Auto && !cuda::cudnn_compiled()))
        return fused();
    if (algorithm == cuda::ConvAlgorithm::Cudnn) return dnn();  // an error in a build without cuDNN
    // Everything that decides either side's speed: the geometry, the precision and cuDNN's workspace limit.
    const std::vector<std::int64_t> key{static_cast<int>(pass),
                                        static_cast<int>(opt.precision),
                                        cg.N,
                                        cg.Cin,
                                        cg.H,
                                        cg.W,
                                        cg.Cout,
                                        cg.k,
                                        cg.stride,
                                        cg.pad_top,
                                        cg.pad_left,
                                        cg.Hout,
                                        cg.Wout,
                                        cg.Q,
                                        cg.reflect ? 1 : 0,
                                        static_cast<std::int64_t>(cuda::conv_workspace_limit())};
    run_chosen(key, cuda::oper_pass_name(pass),
               detail::concat(cuda::oper_geometry_str(cg), ", ", cuda::oper_precision_name(opt.precision)),
               outputs, fused, dnn);
}

}  // namespace

Tensor oper_conv_cuda(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                      const ConvGeometry& g, std::int64_t q, std::int64_t cout, bool transposed, bool reflect,
                      Activation act) {
    R2C_CHECK(x.dtype() == DType::F32, op, ": CUDA ops take float32 tensors, got x ", x.str());
    for (std::int64_t v : {x.dim(0), x.dim(1), g.in_h, g.in_w, g.out_h, g.out_w, cout, q})
        R2C_CHECK(v <= INT_MAX, op, ": x ", x.str(), " is too large for the CUDA kernels");
    const auto i = [](std::int64_t v) { return static_cast<int>(v); };
    // Conv: x is the image side. Transposed: x is the column side and the image side is the output.
    cuda::OperConvGeometry cg =
        transposed
            ? cuda::OperConvGeometry{i(x.dim(0)), i(x.dim(1)),  i(g.out_h),    i(g.out_w), i(cout),   i(g.k),
                                     i(g.stride), i(g.pad_top), i(g.pad_left), i(g.in_h),  i(g.in_w), i(q)}
            : cuda::OperConvGeometry{i(x.dim(0)), i(x.dim(1)),  i(g.in_h),     i(g.in_w),  i(cout),    i(g.k),
                                     i(g.stride), i(g.pad_top), i(g.pad_left), i(g.out_h), i(g.out_w), i(q)};
    cg.reflect = reflect;
    const cuda::OperConvOptions opt = options();
    const cuda::OperActivation kact = kernel_activation(act);
    Tensor y;
    with_context(op, "forward", x, w, [&] {
        y = Tensor::empty({cg.N, cg.Cout, cg.Hout, cg.Wout}, DType::F32, Device::CUDA);
        const auto fused = [&] {
            (transposed ? cuda::oper_conv_transpose_forward : cuda::oper_conv_forward)(
                cg, device_floats(x), device_floats(w), device_floats(b), device_floats(y), kact, opt);
        };
        run_pass(transposed ? cuda::OperPass::TransposeForward : cuda::OperPass::Forward, cg, opt, {y}, fused,
                 [&] {
                     (transposed ? cudnn::transpose_forward : cudnn::forward)(
                         cg, device_floats(x), device_floats(w), device_floats(b), device_floats(y), kact,
                         opt);
                 });
    });
    count_oper_passes(g, x.dim(0), x.dim(1), cout, q, 1);
    const bool need_dx = x.requires_grad(), need_dw = w.requires_grad();
    const bool need_db = b.defined() && b.requires_grad();
    auto backward = [op, xd = x.detach(), wd = w.detach(),
                     yd = act == Activation::None ? Tensor() : y.detach(), kact, g, cg, q, cout, opt,
                     transposed, need_dx, need_dw, need_db](const Tensor& dy_out) {
        // The gradient at the pre-activation, from the saved output, as the passes below take it.
        Tensor dy = dy_out;
        if (kact != cuda::OperActivation::None) {
            with_context(op, "backward activation", xd, wd, [&] {
                dy = Tensor::empty(dy_out.shape(), DType::F32, Device::CUDA);
                cuda::oper_activation_backward(kact, device_floats(yd), device_floats(dy_out),
                                               device_floats(dy), static_cast<std::size_t>(dy.numel()));
            });
        }
        Tensor dx, dw, db;
        if (need_dx) {
            with_context(op, "backward data", xd, wd, [&] {
                dx = Tensor::empty(xd.shape(), DType::F32, Device::CUDA);
                const auto fused = [&] {
                    if (cg.reflect)
                        reflect_backward_data(cg, xd, wd, dy, dx, opt);
                    else
                        (transposed ? cuda::oper_conv_transpose_backward_data
                                    : cuda::oper_conv_backward_data)(cg, device_floats(xd), device_floats(wd),
                                                                     device_floats(dy), device_floats(dx),
                                                                     opt);
                };
                run_pass(transposed ? cuda::OperPass::TransposeBackwardData : cuda::OperPass::BackwardData,
                         cg, opt, {dx}, fused, [&] {
                             (transposed ? cudnn::transpose_backward_data : cudnn::backward_data)(
                                 cg, device_floats(xd), device_floats(wd), device_floats(dy),
                                 device_floats(dx), opt);
                         });
            });
        }
        if (need_dw || need_db) {
            // The bias gradient comes with the weight pass; dw is computed even when only db is wanted.
            with_context(op, "backward weights", xd, wd, [&] {
                dw = Tensor::empty(wd.shape(), DType::F32, Device::CUDA);
                if (need_db) db = Tensor::empty({cg.Q, cg.Cout}, DType::F32, Device::CUDA);
                const auto fused = [&] {
                    // The partial gradients of the kernel's split-K parts, added in order (the same bits
                    // on every run); freed on return, as the stream orders the work after it.
                    cuda::OperConvOptions with_parts = opt;
                    const std::size_t bytes = cuda::oper_conv_weights_workspace(cg, transposed, opt);
                    const Tensor slabs =
                        bytes > 0 ? Tensor::empty({static_cast<std::int64_t>(bytes / sizeof(float))},
                                                  DType::F32, Device::CUDA)
                                  : Tensor();
                    with_parts.workspace = slabs.defined() ? slabs.raw_data() : nullptr;
                    with_parts.workspace_bytes = bytes;
                    (transposed ? cuda::oper_conv_transpose_backward_weights
                                : cuda::oper_conv_backward_weights)(cg, device_floats(xd), device_floats(dy),
                                                                    device_floats(dw), device_floats(db),
                                                                    with_parts);
                };
                run_pass(
                    transposed ? cuda::OperPass::TransposeBackwardWeights : cuda::OperPass::BackwardWeights,
                    cg, opt, {dw, db}, fused, [&] {
                        (transposed ? cudnn::transpose_backward_weights : cudnn::backward_weights)(
                            cg, device_floats(xd), device_floats(dy), device_floats(dw), device_floats(db),
                            opt);
                    });
            });
            if (!need_dw) dw = Tensor();
        }
        count_oper_passes(g, xd.dim(0), xd.dim(1), cout, q, int(need_dx) + int(need_dw || need_db));
        return std::vector<Tensor>{dx, dw, db};
    };
    return record(y, op, {x, w, b}, backward);
}

}  // namespace r2c::ops
#endif  // R2C_WITH_CUDA
