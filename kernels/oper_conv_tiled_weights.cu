// Variant 1 of the weight gradients: dW_q for every q in one pass over x and dz (split-K over out pixels,
// parts added with atomics into a zeroed dW).
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_tiled.cuh"

namespace r2c::cuda::oper_detail {

namespace {

template <bool kPowerOnIn, class T>
void run(const ConvDims& d, const float* in, const float* outt, float* dw, int sms, cudaStream_t stream) {
    using P = WeightGrad<kPowerOnIn>;
    const char* kernel = kPowerOnIn ? "oper_conv weight-gradient kernel (conv backward-weights)"
                                    : "oper_conv weight-gradient kernel (transposed backward-weights)";
    const int splits = weight_grad_splits(d, T::BM, T::BN, T::BK, sms);
    const P prob{d, in, outt, dw, splits};
    with_q(d.Q, [&](auto q) {
        launch_tiled<P, decltype(q)::value, T>(prob, kernel, d.Cout, d.taps, splits, stream);
    });
}

}  // namespace

void tiled_weights(const ConvDims& d, bool power_on_in, const float* in, const float* outt, float* dw,
                   int sms, cudaStream_t stream) {
    const bool narrow = d.Cout <= kNarrowChannels;
    if (power_on_in) {
        if (narrow)
            run<true, TileWeightsNarrowRows>(d, in, outt, dw, sms, stream);
        else
            run<true, TileWeights>(d, in, outt, dw, sms, stream);
    } else {
        if (narrow)
            run<false, TileWeightsNarrowRows>(d, in, outt, dw, sms, stream);
        else
            run<false, TileWeights>(d, in, outt, dw, sms, stream);
    }
}

}  // namespace r2c::cuda::oper_detail
