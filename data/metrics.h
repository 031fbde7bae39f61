// Full-reference image quality, for scoring restorations against the clean originals.
#pragma once

#include "data/image_io.h"

namespace r2c {

// Peak signal-to-noise ratio in dB with data range 255: 10 log10(255^2 / MSE), the MSE taken over every
// pixel and channel; +infinity for identical images. Images must have the same size and channel count.
double psnr(const Image& a, const Image& b);

// Mean structural similarity (Wang et al. 2004) as scikit-image's
// structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
// data_range=255): per channel, local statistics under an 11-tap Gaussian window (sigma 1.5, truncated at
// 3.5 sigma, borders mirrored as scipy's mode 'reflect'), K1 = 0.01, K2 = 0.03, the SSIM map averaged
// without a 5-pixel border; the channel values are then averaged (for gray images stored as 3 equal
// channels this is the gray SSIM). Both sides must be at least 11 pixels.
double ssim(const Image& a, const Image& b);

}  // namespace r2c
