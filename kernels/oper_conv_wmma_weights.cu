// Variant 2 (tensor cores) of the weight gradients (split-K over out pixels, atomics into a zeroed dW).
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_wmma.cuh"

namespace r2c::cuda::oper_detail {

namespace {

template <bool kPowerOnIn>
void run(const ConvDims& d, const float* in, const float* outt, float* dw, int sms, OperPrecision precision,
         cudaStream_t stream) {
    using P = WeightGrad<kPowerOnIn>;
    const char* kernel = kPowerOnIn ? "oper_conv weight-gradient kernel (conv backward-weights)"
                                    : "oper_conv weight-gradient kernel (transposed backward-weights)";
    with_precision(precision, [&](auto prec) {
        using Prec = decltype(prec);
        const int splits = weight_grad_splits(d, WmmaTile::BM, WmmaTile::BN, Prec::kK, sms);
        const P prob{d, in, outt, dw, splits};
        with_q(d.Q, [&](auto q) {
            launch_wmma<P, decltype(q)::value, Prec>(prob, kernel, d.Cout, d.taps, splits, stream);
        });
    });
}

}  // namespace

void wmma_weights(const ConvDims& d, bool power_on_in, const float* in, const float* outt, float* dw, int sms,
                  OperPrecision precision, cudaStream_t stream) {
    if (power_on_in)
        run<true>(d, in, outt, dw, sms, precision, stream);
    else
        run<false>(d, in, outt, dw, sms, precision, stream);
}

}  // namespace r2c::cuda::oper_detail
