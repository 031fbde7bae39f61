// Variant 1 of the window-gather passes: conv forward (powers on load, bias + activation fused) and
// transposed backward-data (Q accumulators, power derivative fused).
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_tiled.cuh"

namespace r2c::cuda::oper_detail {

namespace {

template <bool kPowerOnLoad>
void run(const WindowGather<kPowerOnLoad>& prob, cudaStream_t stream) {
    using P = WindowGather<kPowerOnLoad>;
    const char* kernel = kPowerOnLoad ? "oper_conv window-gather kernel (conv forward)"
                                      : "oper_conv window-gather kernel (transposed backward-data)";
    const int rows = prob.d.N * prob.d.Hout * prob.d.Wout;
    const int cols = prob.d.Cout;
    with_q(prob.d.Q, [&](auto q) {
        if (cols <= kNarrowChannels)
            launch_tiled<P, decltype(q)::value, TileNarrowCols>(prob, kernel, rows, cols, 1, stream);
        else if constexpr (kPowerOnLoad)
            launch_tiled<P, decltype(q)::value, TileWide>(prob, kernel, rows, cols, 1, stream);
        else
            launch_tiled<P, decltype(q)::value, TileSquare>(prob, kernel, rows, cols, 1, stream);
    });
}

}  // namespace

void tiled_window(const ConvDims& d, bool power_on_load, const float* in, const float* w, const float* aux,
                  float* out, OperActivation act, cudaStream_t stream) {
    if (power_on_load)
        run(WindowGather<true>{d, in, w, aux, out, act}, stream);
    else
        run(WindowGather<false>{d, in, w, aux, out, act}, stream);
}

}  // namespace r2c::cuda::oper_detail
