// Host-side launchers of the operational-convolution kernels, one per kernel family and variant; the
// public functions in oper_conv_api.cu validate, dispatch and call these. Geometries here are conv
// geometries (a transposed pass passes its adjoint) except for the naive kernels, which take each pass
// in its own terms so that the reference shares no index mapping with the fast variants.
#pragma once

#include <cuda_runtime.h>

#include "kernels/oper_conv.h"
#include "kernels/oper_conv_device.cuh"

namespace r2c::cuda::oper_detail {

// ---- Variant 0 (oper_conv_naive.cu) ----
void naive_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b, float* y,
                   OperActivation act, cudaStream_t stream);
void naive_backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                         float* dx, cudaStream_t stream);
void naive_backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                            cudaStream_t stream);
void naive_transpose_forward(const OperConvGeometry& g, const float* x, const float* w, const float* b,
                             float* y, OperActivation act, cudaStream_t stream);
void naive_transpose_backward_data(const OperConvGeometry& g, const float* x, const float* w, const float* dz,
                                   float* dx, cudaStream_t stream);
void naive_transpose_backward_weights(const OperConvGeometry& g, const float* x, const float* dz, float* dw,
                                      cudaStream_t stream);

// ---- Shared by all variants (oper_conv_bias_act.cu) ----
// db[q, c] = sum over n and the hw pixels of dz[n, c, :] for every q (one block per channel).
void bias_grad(const float* dz, float* db, int n, int channels, int hw, int q, cudaStream_t stream);
void activation_backward(OperActivation act, const float* y, const float* dy, float* dz, std::size_t n,
                         cudaStream_t stream);

// ---- Variants 1 and 2, by problem. power_on_load: powers staged on load with bias + activation;
// otherwise Q accumulators and the power derivative of aux in the epilogue. ----
// Window gather: `in` "in"-shaped, out "out"-shaped, aux bias [Q,Cout] or x "out"-shaped.
void tiled_window(const ConvDims& d, bool power_on_load, const float* in, const float* w, const float* aux,
                  float* out, OperActivation act, cudaStream_t stream);
// Transposed gather: src "out"-shaped, out "in"-shaped, aux bias [Q,Cin] or x "in"-shaped.
void tiled_transposed(const ConvDims& d, bool power_on_load, const float* src, const float* w,
                      const float* aux, float* out, OperActivation act, cudaStream_t stream);
// Weight gradient in `parts` split-K parts, part z's whole dW written at slabs + z * (Q*Cout*taps) (slabs is
// dw itself for one part; sum_parts adds more); power_on_in: x^q on the gathered "in" operand, else on
// `outt`. *_weight_parts: the parts the kernel would take (weight_grad_splits with its tile).
int tiled_weight_parts(const ConvDims& d, int sms);
void tiled_weights(const ConvDims& d, bool power_on_in, const float* in, const float* outt, float* slabs,
                   int parts, cudaStream_t stream);

void wmma_window(const ConvDims& d, bool power_on_load, const float* in, const float* w, const float* aux,
                 float* out, OperActivation act, OperPrecision precision, cudaStream_t stream);
void wmma_transposed(const ConvDims& d, bool power_on_load, const float* src, const float* w,
                     const float* aux, float* out, OperActivation act, OperPrecision precision,
                     cudaStream_t stream);
int wmma_weight_parts(const ConvDims& d, OperPrecision precision, int sms);
void wmma_weights(const ConvDims& d, bool power_on_in, const float* in, const float* outt, float* slabs,
                  int parts, OperPrecision precision, cudaStream_t stream);
// dw[i] = the sum over z < parts of slabs[z * n + i], added in the order of z (oper_conv_bias_act.cu).
void sum_parts(const float* slabs, int parts, std::size_t n, float* dw, cudaStream_t stream);

// ---- Variant 3 (oper_conv_narrow.cu): forward passes with at most kOperMaxNarrowChannels outputs, in the
// pass's own terms (d of the transposed geometry for the transposed forward). ----
void narrow_forward(const ConvDims& d, const float* x, const float* w, const float* b, float* y,
                    OperActivation act, cudaStream_t stream);
void narrow_transpose_forward(const ConvDims& d, const float* x, const float* w, const float* b, float* y,
                              OperActivation act, cudaStream_t stream);

// Split-K parts of a weight gradient: enough blocks to fill the device about four times over, each part
// at least 8 depth chunks long.
inline int weight_grad_splits(const ConvDims& d, int bm, int bn, int bk, int sms) {
    const int tiles = ((d.Cout + bm - 1) / bm) * ((d.taps + bn - 1) / bn);
    const int pixels = d.N * d.Hout * d.Wout;
    int parts = (4 * sms + tiles - 1) / tiles;
    const int longest = pixels / (8 * bk);
    if (parts > longest) parts = longest;
    if (parts > 65535) parts = 65535;
    return parts < 1 ? 1 : parts;
}

}  // namespace r2c::cuda::oper_detail
