// Variant 2 (tensor cores) of the window-gather passes: conv forward and transposed backward-data.
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_wmma.cuh"

namespace r2c::cuda::oper_detail {

namespace {

template <bool kPowerOnLoad>
void run(const WindowGather<kPowerOnLoad>& prob, OperPrecision precision, cudaStream_t stream) {
    using P = WindowGather<kPowerOnLoad>;
    const char* kernel = kPowerOnLoad ? "oper_conv window-gather kernel (conv forward)"
                                      : "oper_conv window-gather kernel (transposed backward-data)";
    const int rows = prob.d.N * prob.d.Hout * prob.d.Wout;
    with_precision(precision, [&](auto prec) {
        with_q(prob.d.Q, [&](auto q) {
            launch_wmma<P, decltype(q)::value, decltype(prec)>(prob, kernel, rows, prob.d.Cout, 1, stream);
        });
    });
}

}  // namespace

void wmma_window(const ConvDims& d, bool power_on_load, const float* in, const float* w, const float* aux,
                 float* out, OperActivation act, OperPrecision precision, cudaStream_t stream) {
    if (power_on_load)
        run(WindowGather<true>{d, in, w, aux, out, act}, precision, stream);
    else
        run(WindowGather<false>{d, in, w, aux, out, act}, precision, stream);
}

}  // namespace r2c::cuda::oper_detail
