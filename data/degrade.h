// A blind degradation model for radiographs: random mixtures, in random order and at random strengths, of
// noise, blur, exposure and contrast faults, JPEG compression, resolution loss and grid lines, to turn clean
// images into the "poor quality" domain. Every operation works on float images on the 0..255 scale and
// clamps its result to that range (a detector saturates). Noise is drawn once per pixel and applied to every
// channel, so a gray image stays gray. All randomness comes from the Rng passed in.
#pragma once

#include <string>

#include "data/transform.h"
#include "engine/rng.h"

namespace r2c {

// Additive Gaussian noise with standard deviation sigma * f(x, y), where f is a smooth random field in
// [1 - variation, 1 + variation] (variation in [0, 1)).
ImageF gaussian_noise(const ImageF& image, double sigma, double variation, Rng& rng);
// Quantum (Poisson) noise: a pixel of value x counts Poisson(x / 255 * photons * f(x, y)) photons, f as
// above; fewer photons, more noise.
ImageF poisson_noise(const ImageF& image, double photons, double variation, Rng& rng);
// Gaussian blur with standard deviations sigma_major along `angle` (radians from the x axis) and sigma_minor
// across it (equal: isotropic). Borders mirror the image.
ImageF gaussian_blur(const ImageF& image, double sigma_major, double sigma_minor, double angle);
// Motion blur: the average along a line `length` pixels long at `angle`.
ImageF motion_blur(const ImageF& image, double length, double angle);
// Under- or over-exposure: 255 * gain * (x / 255)^gamma.
ImageF exposure(const ImageF& image, double gain, double gamma);
// Low contrast: values pulled towards the mean by `factor` (< 1), then clipped to [clip_lo, clip_hi].
ImageF reduce_contrast(const ImageF& image, double factor, double clip_lo, double clip_hi);
// Encodes as JPEG at `quality` and decodes again (blocking and ringing artefacts).
ImageF jpeg_roundtrip(const ImageF& image, int quality);
// Loss of resolution: bilinear down by `factor` (> 1, no antialiasing, so fine detail aliases) and back up.
ImageF down_up(const ImageF& image, double factor);
// Anti-scatter grid lines: a multiplicative sinusoid of depth `depth` (0..1), `period` pixels, lines
// running along `angle`.
ImageF grid_lines(const ImageF& image, double period, double angle, double depth);

struct Degraded {
    ImageF image;
    std::string recipe;  // the operations applied, in order, with their strengths
};

// Two to seven of the operations above (each kind at most once: one noise, one blur), shuffled.
Degraded degrade(const ImageF& image, Rng& rng);

}  // namespace r2c
