#include "data/metrics.h"

#include <cmath>
#include <limits>
#include <vector>

#include "engine/error.h"

namespace r2c {

namespace {

void check_same(const Image& a, const Image& b, const char* what) {
    R2C_CHECK(
        a.width == b.width && a.height == b.height && a.channels == b.channels && a.width > 0 && a.height > 0,
        what, ": images differ in size or are empty: ", a.width, "x", a.height, "x", a.channels, " and ",
        b.width, "x", b.height, "x", b.channels);
}

constexpr int kRadius = 5;  // int(3.5 * 1.5 + 0.5), as scipy.ndimage computes it

// scipy.ndimage mode 'reflect': the edge sample is repeated (d c b a | a b c d | d c b a).
int reflect(int i, int n) {
    const int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

// Gaussian filter along x then y, as scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5).
std::vector<double> gaussian_filter(const std::vector<double>& in, int w, int h) {
    static const std::vector<double> taps = [] {
        std::vector<double> t(2 * kRadius + 1);
        double sum = 0;
        for (int k = -kRadius; k <= kRadius; ++k)
            sum += t[k + kRadius] = std::exp(-0.5 * k * k / (1.5 * 1.5));
        for (double& v : t)
            v /= sum;
        return t;
    }();
    std::vector<double> tmp(in.size()), out(in.size());
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            double acc = 0;
            for (int k = -kRadius; k <= kRadius; ++k)
                acc += taps[k + kRadius] * in[static_cast<std::size_t>(y) * w + reflect(x + k, w)];
            tmp[static_cast<std::size_t>(y) * w + x] = acc;
        }
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            double acc = 0;
            for (int k = -kRadius; k <= kRadius; ++k)
                acc += taps[k + kRadius] * tmp[static_cast<std::size_t>(reflect(y + k, h)) * w + x];
            out[static_cast<std::size_t>(y) * w + x] = acc;
        }
    return out;
}

double ssim_channel(const Image& a, const Image& b, int channel) {
    const int w = a.width, h = a.height;
    const std::size_t n = static_cast<std::size_t>(w) * h;
    std::vector<double> x(n), y(n), xx(n), yy(n), xy(n);
    for (std::size_t i = 0; i < n; ++i) {
        x[i] = a.pixels[i * a.channels + channel];
        y[i] = b.pixels[i * b.channels + channel];
        xx[i] = x[i] * x[i];
        yy[i] = y[i] * y[i];
        xy[i] = x[i] * y[i];
    }
    const std::vector<double> ux = gaussian_filter(x, w, h), uy = gaussian_filter(y, w, h);
    const std::vector<double> uxx = gaussian_filter(xx, w, h), uyy = gaussian_filter(yy, w, h),
                              uxy = gaussian_filter(xy, w, h);
    const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
    double sum = 0;
    for (int r = kRadius; r < h - kRadius; ++r)
        for (int c = kRadius; c < w - kRadius; ++c) {
            const std::size_t i = static_cast<std::size_t>(r) * w + c;
            const double vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i],
                         vxy = uxy[i] - ux[i] * uy[i];
            sum += ((2 * ux[i] * uy[i] + c1) * (2 * vxy + c2)) /
                   ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
        }
    return sum / (static_cast<double>(w - 2 * kRadius) * (h - 2 * kRadius));
}

}  // namespace

double psnr(const Image& a, const Image& b) {
    check_same(a, b, "psnr");
    double se = 0;
    for (std::size_t i = 0; i < a.pixels.size(); ++i) {
        const double d = static_cast<double>(a.pixels[i]) - b.pixels[i];
        se += d * d;
    }
    if (se == 0) return std::numeric_limits<double>::infinity();
    return 10 * std::log10(255.0 * 255.0 / (se / static_cast<double>(a.pixels.size())));
}

double ssim(const Image& a, const Image& b) {
    check_same(a, b, "ssim");
    R2C_CHECK(a.width >= 2 * kRadius + 1 && a.height >= 2 * kRadius + 1,
              "ssim: images must be at least 11x11, got ", a.width, "x", a.height);
    double sum = 0;
    for (int c = 0; c < a.channels; ++c)
        sum += ssim_channel(a, b, c);
    return sum / a.channels;
}

}  // namespace r2c
