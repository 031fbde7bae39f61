// Variant 1 of the transposed-gather passes: conv backward-data (Q accumulators, power derivative fused)
// and transposed forward (powers on load, bias + activation fused), one block row per residue class.
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_tiled.cuh"

namespace r2c::cuda::oper_detail {

namespace {

template <bool kPowerOnLoad>
void run(const ConvDims& d, const float* src, const float* w, const float* aux, float* out,
         OperActivation act, cudaStream_t stream) {
    using P = TransposedGather<kPowerOnLoad>;
    const char* kernel = kPowerOnLoad ? "oper_conv transposed-gather kernel (transposed forward)"
                                      : "oper_conv transposed-gather kernel (conv backward-data)";
    int rows = 0;
    const P prob = make_transposed_gather<kPowerOnLoad>(d, src, w, aux, out, act, rows);
    const int classes = d.s * d.s;
    with_q(d.Q, [&](auto q) {
        if (d.Cin <= kNarrowChannels)
            launch_tiled<P, decltype(q)::value, TileNarrowCols>(prob, kernel, rows, d.Cin, classes, stream);
        else if constexpr (kPowerOnLoad)
            launch_tiled<P, decltype(q)::value, TileWide>(prob, kernel, rows, d.Cin, classes, stream);
        else
            launch_tiled<P, decltype(q)::value, TileSquare>(prob, kernel, rows, d.Cin, classes, stream);
    });
}

}  // namespace

void tiled_transposed(const ConvDims& d, bool power_on_load, const float* src, const float* w,
                      const float* aux, float* out, OperActivation act, cudaStream_t stream) {
    if (power_on_load)
        run<true>(d, src, w, aux, out, act, stream);
    else
        run<false>(d, src, w, aux, out, act, stream);
}

}  // namespace r2c::cuda::oper_detail
