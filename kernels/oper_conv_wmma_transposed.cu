// Variant 2 (tensor cores) of the transposed-gather passes: conv backward-data and transposed forward.
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_wmma.cuh"

namespace r2c::cuda::oper_detail {

namespace {

template <bool kPowerOnLoad>
void run(const ConvDims& d, const float* src, const float* w, const float* aux, float* out,
         OperActivation act, OperPrecision precision, cudaStream_t stream) {
    using P = TransposedGather<kPowerOnLoad>;
    const char* kernel = kPowerOnLoad ? "oper_conv transposed-gather kernel (transposed forward)"
                                      : "oper_conv transposed-gather kernel (conv backward-data)";
    int rows = 0;
    const P prob = make_transposed_gather<kPowerOnLoad>(d, src, w, aux, out, act, rows);
    with_precision(precision, [&](auto prec) {
        with_q(d.Q, [&](auto q) {
            launch_wmma<P, decltype(q)::value, decltype(prec)>(prob, kernel, rows, d.Cin, d.s * d.s, stream);
        });
    });
}

}  // namespace

void wmma_transposed(const ConvDims& d, bool power_on_load, const float* src, const float* w,
                     const float* aux, float* out, OperActivation act, OperPrecision precision,
                     cudaStream_t stream) {
    if (power_on_load)
        run<true>(d, src, w, aux, out, act, precision, stream);
    else
        run<false>(d, src, w, aux, out, act, precision, stream);
}

}  // namespace r2c::cuda::oper_detail
