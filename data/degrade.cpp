#include "data/degrade.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <vector>

#include "engine/error.h"

namespace r2c {

namespace {

constexpr double kPi = 3.14159265358979323846;

void clamp_values(ImageF& image) {
    for (float& v : image.values)
        v = std::clamp(v, 0.0f, 255.0f);
}

// Smooth random field in [1 - variation, 1 + variation]: a 4x4 lattice of random values, interpolated.
std::vector<float> smooth_field(int width, int height, double variation, Rng& rng) {
    R2C_CHECK(variation >= 0 && variation < 1, "noise: variation must be in [0, 1), got ", variation);
    ImageF lattice(4, 4, 1);
    for (float& v : lattice.values)
        v = static_cast<float>(1 + variation * rng.uniform(-1.0, 1.0));
    return resize_bilinear(lattice, width, height).values;
}

// Mirror an index into [0, n) (edge pixel repeated: -1 -> 0, n -> n - 1), for any distance outside.
int mirror(int i, int n) {
    const int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

// The image with an r-pixel mirrored border (see mirror()).
ImageF mirror_pad(const ImageF& image, int r) {
    ImageF out(image.width + 2 * r, image.height + 2 * r, image.channels);
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x)
            for (int ch = 0; ch < image.channels; ++ch)
                out.at(x, y, ch) = image.at(mirror(x - r, image.width), mirror(y - r, image.height), ch);
    return out;
}

// 2-D convolution with a (2r+1) x (2r+1) kernel, mirrored borders. Works a row at a time over the padded
// image, one kernel tap after another (zero taps, common in motion kernels, skipped), so the inner loop
// runs over contiguous memory.
ImageF convolve(const ImageF& image, const std::vector<double>& kernel, int r) {
    const int w = image.width, h = image.height, c = image.channels, size = 2 * r + 1;
    const ImageF padded = mirror_pad(image, r);
    const std::size_t row = static_cast<std::size_t>(w) * c;
    ImageF out(w, h, c);
    std::vector<double> acc(row);
    for (int y = 0; y < h; ++y) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int ky = 0; ky < size; ++ky)
            for (int kx = 0; kx < size; ++kx) {
                const double k = kernel[static_cast<std::size_t>(ky * size + kx)];
                if (k == 0) continue;
                const float* src = &padded.values[(static_cast<std::size_t>(y + ky) * padded.width + kx) * c];
                for (std::size_t i = 0; i < row; ++i)
                    acc[i] += k * src[i];
            }
        for (std::size_t i = 0; i < row; ++i)
            out.values[y * row + i] = static_cast<float>(acc[i]);
    }
    return out;
}

// The same 1-D kernel (2r+1 taps) along x, then along y; each pass runs over contiguous memory, the x pass
// through a mirrored copy of the row, the y pass a whole row per tap.
ImageF convolve_separable(const ImageF& image, const std::vector<double>& taps, int r) {
    const int w = image.width, h = image.height, c = image.channels;
    const std::size_t row = static_cast<std::size_t>(w) * c;
    ImageF along_x(w, h, c), out(w, h, c);
    std::vector<float> padded(static_cast<std::size_t>(w + 2 * r) * c);
    std::vector<double> acc(row);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w + 2 * r; ++x)
            for (int ch = 0; ch < c; ++ch)
                padded[static_cast<std::size_t>(x) * c + ch] = image.at(mirror(x - r, w), y, ch);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int k = 0; k <= 2 * r; ++k) {
            const float* src = &padded[static_cast<std::size_t>(k) * c];
            for (std::size_t i = 0; i < row; ++i)
                acc[i] += taps[static_cast<std::size_t>(k)] * src[i];
        }
        for (std::size_t i = 0; i < row; ++i)
            along_x.values[y * row + i] = static_cast<float>(acc[i]);
    }
    for (int y = 0; y < h; ++y) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int k = -r; k <= r; ++k) {
            const float* src = &along_x.values[static_cast<std::size_t>(mirror(y + k, h)) * row];
            for (std::size_t i = 0; i < row; ++i)
                acc[i] += taps[static_cast<std::size_t>(k + r)] * src[i];
        }
        for (std::size_t i = 0; i < row; ++i)
            out.values[y * row + i] = static_cast<float>(acc[i]);
    }
    return out;
}

void normalise(std::vector<double>& kernel) {
    double sum = 0;
    for (const double k : kernel)
        sum += k;
    for (double& k : kernel)
        k /= sum;
}

std::int64_t poisson(double lambda, Rng& rng) {
    if (lambda <= 0) return 0;
    if (lambda < 30) {  // Knuth: multiply uniforms until the product drops below e^-lambda
        const double limit = std::exp(-lambda);
        std::int64_t k = -1;
        double p = 1;
        do {
            ++k;
            p *= rng.uniform();
        } while (p > limit);
        return k;
    }
    // Normal approximation; the skew of the Poisson distribution is negligible at these counts.
    return std::max<std::int64_t>(0, std::llround(lambda + std::sqrt(lambda) * rng.normal()));
}

double channel_mean(const ImageF& image, int x, int y) {
    double sum = 0;
    for (int ch = 0; ch < image.channels; ++ch)
        sum += image.at(x, y, ch);
    return sum / image.channels;
}

}  // namespace

ImageF gaussian_noise(const ImageF& image, double sigma, double variation, Rng& rng) {
    R2C_CHECK(sigma >= 0, "gaussian_noise: sigma must be non-negative, got ", sigma);
    const std::vector<float> field = smooth_field(image.width, image.height, variation, rng);
    ImageF out = image;
    for (int y = 0; y < image.height; ++y)
        for (int x = 0; x < image.width; ++x) {
            const auto n = static_cast<float>(sigma * field[static_cast<std::size_t>(y) * image.width + x] *
                                              rng.normal());
            for (int ch = 0; ch < image.channels; ++ch)
                out.at(x, y, ch) += n;
        }
    clamp_values(out);
    return out;
}

ImageF poisson_noise(const ImageF& image, double photons, double variation, Rng& rng) {
    R2C_CHECK(photons > 0, "poisson_noise: photons must be positive, got ", photons);
    const std::vector<float> field = smooth_field(image.width, image.height, variation, rng);
    ImageF out = image;
    for (int y = 0; y < image.height; ++y)
        for (int x = 0; x < image.width; ++x) {
            const double scale = photons * field[static_cast<std::size_t>(y) * image.width + x] / 255.0;
            const double lambda = std::max(channel_mean(image, x, y), 0.0) * scale;
            const auto delta =
                static_cast<float>((static_cast<double>(poisson(lambda, rng)) - lambda) / scale);
            for (int ch = 0; ch < image.channels; ++ch)
                out.at(x, y, ch) += delta;
        }
    clamp_values(out);
    return out;
}

ImageF gaussian_blur(const ImageF& image, double sigma_major, double sigma_minor, double angle) {
    R2C_CHECK(sigma_major > 0 && sigma_minor > 0, "gaussian_blur: sigmas must be positive, got ", sigma_major,
              " and ", sigma_minor);
    const int r = static_cast<int>(std::ceil(3 * std::max(sigma_major, sigma_minor)));
    if (sigma_major == sigma_minor) {
        std::vector<double> taps(static_cast<std::size_t>(2 * r + 1));
        for (int k = -r; k <= r; ++k)
            taps[static_cast<std::size_t>(k + r)] = std::exp(-0.5 * k * k / (sigma_major * sigma_major));
        normalise(taps);
        return convolve_separable(image, taps, r);
    }
    const int size = 2 * r + 1;
    const double ca = std::cos(angle), sa = std::sin(angle);
    std::vector<double> kernel(static_cast<std::size_t>(size * size));
    for (int y = -r; y <= r; ++y)
        for (int x = -r; x <= r; ++x) {
            const double along = (x * ca + y * sa) / sigma_major, across = (-x * sa + y * ca) / sigma_minor;
            // Cut at 3 sigma along the ellipse, as the isotropic kernel is at 3 sigma of radius: the square's
            // corners, most of an elongated kernel, become zero taps that convolve() skips.
            const double q = along * along + across * across;
            kernel[static_cast<std::size_t>((y + r) * size + x + r)] = q > 9 ? 0.0 : std::exp(-0.5 * q);
        }
    normalise(kernel);
    return convolve(image, kernel, r);
}

ImageF motion_blur(const ImageF& image, double length, double angle) {
    R2C_CHECK(length >= 1, "motion_blur: length must be at least 1 pixel, got ", length);
    const int r = static_cast<int>(std::ceil(length / 2)) + 1, size = 2 * r + 1;
    std::vector<double> kernel(static_cast<std::size_t>(size * size), 0.0);
    // Points spread evenly along the line, each shared bilinearly among its four nearest kernel cells.
    const int points = static_cast<int>(std::ceil(8 * length));
    for (int i = 0; i < points; ++i) {
        const double t = (static_cast<double>(i) / (points - 1) - 0.5) * length;
        const double px = r + t * std::cos(angle), py = r + t * std::sin(angle);
        const int x0 = static_cast<int>(std::floor(px)), y0 = static_cast<int>(std::floor(py));
        const double fx = px - x0, fy = py - y0;
        kernel[static_cast<std::size_t>(y0 * size + x0)] += (1 - fx) * (1 - fy);
        kernel[static_cast<std::size_t>(y0 * size + x0 + 1)] += fx * (1 - fy);
        kernel[static_cast<std::size_t>((y0 + 1) * size + x0)] += (1 - fx) * fy;
        kernel[static_cast<std::size_t>((y0 + 1) * size + x0 + 1)] += fx * fy;
    }
    normalise(kernel);
    return convolve(image, kernel, r);
}

ImageF exposure(const ImageF& image, double gain, double gamma) {
    R2C_CHECK(gain > 0 && gamma > 0, "exposure: gain and gamma must be positive, got ", gain, " and ", gamma);
    ImageF out = image;
    for (float& v : out.values)
        v = static_cast<float>(255 * gain * std::pow(std::clamp(v / 255.0, 0.0, 1.0), gamma));
    clamp_values(out);
    return out;
}

ImageF reduce_contrast(const ImageF& image, double factor, double clip_lo, double clip_hi) {
    R2C_CHECK(factor > 0 && clip_lo < clip_hi, "reduce_contrast: need factor > 0 and clip_lo < clip_hi, got ",
              factor, ", ", clip_lo, ", ", clip_hi);
    double mean = 0;
    for (const float v : image.values)
        mean += v;
    mean /= static_cast<double>(std::max<std::size_t>(image.values.size(), 1));
    ImageF out = image;
    for (float& v : out.values)
        v = static_cast<float>(std::clamp(mean + factor * (v - mean), clip_lo, clip_hi));
    clamp_values(out);
    return out;
}

ImageF jpeg_roundtrip(const ImageF& image, int quality) {
    return to_float(decode_image(encode_jpeg(to_uint8(image), quality), "jpeg_roundtrip"));
}

ImageF down_up(const ImageF& image, double factor) {
    R2C_CHECK(factor > 1, "down_up: factor must exceed 1, got ", factor);
    const int w = std::max(1, static_cast<int>(std::lround(image.width / factor)));
    const int h = std::max(1, static_cast<int>(std::lround(image.height / factor)));
    return resize_bilinear(resize_bilinear(image, w, h), image.width, image.height);
}

ImageF grid_lines(const ImageF& image, double period, double angle, double depth) {
    R2C_CHECK(period >= 2 && depth >= 0 && depth <= 1,
              "grid_lines: need period >= 2 and depth in [0, 1], got ", period, " and ", depth);
    // Lines run along `angle`: the pattern varies along the perpendicular direction.
    const double nx = -std::sin(angle), ny = std::cos(angle);
    ImageF out = image;
    for (int y = 0; y < image.height; ++y)
        for (int x = 0; x < image.width; ++x) {
            const double phase = 2 * kPi * (x * nx + y * ny) / period;
            const auto gain = static_cast<float>(1 - depth * 0.5 * (1 + std::cos(phase)));
            for (int ch = 0; ch < image.channels; ++ch)
                out.at(x, y, ch) *= gain;
        }
    return out;
}

Degraded degrade(const ImageF& image, Rng& rng) {
    enum Op { Noise, Blur, Exposure, Contrast, Jpeg, Resolution, Grid, kOps };
    static const double kChance[kOps] = {0.7, 0.6, 0.5, 0.4, 0.4, 0.3, 0.2};
    std::vector<int> ops;
    for (int op = 0; op < kOps; ++op)
        if (rng.uniform() < kChance[op]) ops.push_back(op);
    while (ops.size() < 2) {
        const int op = static_cast<int>(rng.below(kOps));
        if (std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
    }
    for (std::size_t i = ops.size(); i > 1; --i)
        std::swap(ops[i - 1], ops[rng.below(i)]);

    // Blur sizes are meant for a 256-pixel image and grow with larger ones.
    const double px = std::max(1.0, std::min(image.width, image.height) / 256.0);
    std::ostringstream recipe;
    recipe << std::fixed << std::setprecision(2);
    ImageF im = image;
    for (const int op : ops) {
        if (!recipe.str().empty()) recipe << " > ";
        switch (op) {
            case Noise: {
                const double variation = rng.uniform(0.2, 0.7);
                if (rng.uniform() < 0.5) {
                    const double sigma = rng.uniform(3, 15);
                    im = gaussian_noise(im, sigma, variation, rng);
                    recipe << "gaussian_noise(sigma " << sigma << ", variation " << variation << ")";
                } else {
                    const double photons = rng.uniform(60, 600);
                    im = poisson_noise(im, photons, variation, rng);
                    recipe << "poisson_noise(photons " << photons << ", variation " << variation << ")";
                }
                break;
            }
            case Blur: {
                const double kind = rng.uniform(), angle = rng.uniform(0, kPi);
                if (kind < 0.4) {
                    const double sigma = rng.uniform(0.8, 2.5) * px;
                    im = gaussian_blur(im, sigma, sigma, 0);
                    recipe << "blur(sigma " << sigma << ")";
                } else if (kind < 0.75) {
                    const double major = rng.uniform(1.2, 3.0) * px, minor = rng.uniform(0.3, 1.0) * px;
                    im = gaussian_blur(im, major, minor, angle);
                    recipe << "blur(sigma " << major << " x " << minor << ", angle " << angle << ")";
                } else {
                    const double length = rng.uniform(3, 11) * px;
                    im = motion_blur(im, length, angle);
                    recipe << "motion_blur(length " << length << ", angle " << angle << ")";
                }
                break;
            }
            case Exposure: {
                const double gain = rng.uniform() < 0.5 ? rng.uniform(0.45, 0.8) : rng.uniform(1.2, 1.7);
                const double gamma = rng.uniform(0.6, 1.6);
                im = exposure(im, gain, gamma);
                recipe << "exposure(gain " << gain << ", gamma " << gamma << ")";
                break;
            }
            case Contrast: {
                const double factor = rng.uniform(0.35, 0.75), lo = rng.uniform(0, 40),
                             hi = rng.uniform(200, 255);
                im = reduce_contrast(im, factor, lo, hi);
                recipe << "contrast(factor " << factor << ", clip " << lo << ".." << hi << ")";
                break;
            }
            case Jpeg: {
                const int quality = 8 + static_cast<int>(rng.below(38));
                im = jpeg_roundtrip(im, quality);
                recipe << "jpeg(quality " << quality << ")";
                break;
            }
            case Resolution: {
                const double factor = rng.uniform(1.5, 4);
                im = down_up(im, factor);
                recipe << "down_up(factor " << factor << ")";
                break;
            }
            case Grid: {
                const double period = rng.uniform(2.5, 7), depth = rng.uniform(0.04, 0.15);
                const double angle = (rng.uniform() < 0.5 ? 0 : kPi / 2) + rng.uniform(-0.05, 0.05);
                im = grid_lines(im, period, angle, depth);
                recipe << "grid_lines(period " << period << ", angle " << angle << ", depth " << depth << ")";
                break;
            }
        }
    }
    return {std::move(im), recipe.str()};
}

}  // namespace r2c
