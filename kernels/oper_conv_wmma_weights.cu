// Variant 2 (tensor cores) of the weight gradients (split-K over out pixels, each part's dW in a slab).
#include "kernels/oper_conv_launch.cuh"
#include "kernels/oper_conv_wmma.cuh"

namespace r2c::cuda::oper_detail {

namespace {

template <bool kPowerOnIn>
void run(const ConvDims& d, const float* in, const float* outt, float* slabs, int parts,
         OperPrecision precision, cudaStream_t stream) {
    using P = WeightGrad<kPowerOnIn>;
    const char* kernel = kPowerOnIn ? "oper_conv weight-gradient kernel (conv backward-weights)"
                                    : "oper_conv weight-gradient kernel (transposed backward-weights)";
    with_precision(precision, [&](auto prec) {
        const P prob{d, in, outt, slabs, parts};
        with_q(d.Q, [&](auto q) {
            launch_wmma<P, decltype(q)::value, decltype(prec)>(prob, kernel, d.Cout, d.taps, parts, stream);
        });
    });
}

}  // namespace

int wmma_weight_parts(const ConvDims& d, OperPrecision precision, int sms) {
    int parts = 1;
    with_precision(precision, [&](auto prec) {
        parts = weight_grad_splits(d, WmmaTile::BM, WmmaTile::BN, decltype(prec)::kK, sms);
    });
    return parts;
}

void wmma_weights(const ConvDims& d, bool power_on_in, const float* in, const float* outt, float* slabs,
                  int parts, OperPrecision precision, cudaStream_t stream) {
    if (power_on_in)
        run<true>(d, in, outt, slabs, parts, precision, stream);
    else
        run<false>(d, in, outt, slabs, parts, precision, stream);
}

}  // namespace r2c::cuda::oper_detail
