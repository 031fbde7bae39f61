// Variant 1 of the weight gradients: dW_q for every q in one pass over x and dz (split-K over out pixels,
// each part's dW in a slab).
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_tiled.cuh"

namespace r2c::cuda::oper_detail {

namespace {

// Runs f(tile) with the tile of d's weight gradient.
template <class F>
void with_weights_tile(const ConvDims& d, const F& f) {
    if (d.Cout <= kNarrowChannels)
        f(TileWeightsNarrowRows{});
    else
        f(TileWeights{});
}

template <bool kPowerOnIn, class T>
void run(const ConvDims& d, const float* in, const float* outt, float* slabs, int parts,
         cudaStream_t stream) {
    using P = WeightGrad<kPowerOnIn>;
    const char* kernel = kPowerOnIn ? "oper_conv weight-gradient kernel (conv backward-weights)"
                                    : "oper_conv weight-gradient kernel (transposed backward-weights)";
    const P prob{d, in, outt, slabs, parts};
    with_q(d.Q, [&](auto q) {
        launch_tiled<P, decltype(q)::value, T>(prob, kernel, d.Cout, d.taps, parts, stream);
    });
}

}  // namespace

int tiled_weight_parts(const ConvDims& d, int sms) {
    int parts = 1;
    with_weights_tile(d, [&](auto t) {
        using T = decltype(t);
        parts = weight_grad_splits(d, T::BM, T::BN, T::BK, sms);
    });
    return parts;
}

void tiled_weights(const ConvDims& d, bool power_on_in, const float* in, const float* outt, float* slabs,
                   int parts, cudaStream_t stream) {
    with_weights_tile(d, [&](auto t) {
        if (power_on_in)
            run<true, decltype(t)>(d, in, outt, slabs, parts, stream);
        else
            run<false, decltype(t)>(d, in, outt, slabs, parts, stream);
    });
}

}  // namespace r2c::cuda::oper_detail
