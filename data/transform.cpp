#include "data/transform.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace r2c {

ImageF::ImageF(int w, int h, int c)
    : width(w), height(h), channels(c), values(static_cast<std::size_t>(w) * h * c, 0.0f) {}

ImageF to_float(const Image& image) {
    ImageF out(image.width, image.height, image.channels);
    std::copy(image.pixels.begin(), image.pixels.end(), out.values.begin());
    return out;
}

Image to_uint8(const ImageF& image) {
    Image out(image.width, image.height, image.channels);
    for (std::size_t i = 0; i < image.values.size(); ++i)
        out.pixels[i] = static_cast<std::uint8_t>(std::lround(std::clamp(image.values[i], 0.0f, 255.0f)));
    return out;
}

namespace {

// One output coordinate's two source pixels and the weight of the second, as TF's
// compute_interpolation_weights with HalfPixelScaler (float arithmetic on purpose, to match it).
struct Tap {
    int lower;
    int upper;
    float lerp;
};

std::vector<Tap> taps(int in_size, int out_size) {
    const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
    std::vector<Tap> t(static_cast<std::size_t>(out_size));
    for (int i = 0; i < out_size; ++i) {
        const float s = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
        const float s_floor = std::floor(s);
        t[i].lower = std::max(static_cast<int>(s_floor), 0);
        t[i].upper = std::min(static_cast<int>(std::ceil(s)), in_size - 1);
        t[i].lerp = s - s_floor;
    }
    return t;
}

}  // namespace

ImageF resize_bilinear(const ImageF& image, int width, int height) {
    R2C_CHECK(width > 0 && height > 0, "resize_bilinear: target size must be positive, got ", width, "x",
              height);
    R2C_CHECK(image.width > 0 && image.height > 0, "resize_bilinear: empty input image");
    const std::vector<Tap> xs = taps(image.width, width), ys = taps(image.height, height);
    const int c = image.channels;
    ImageF out(width, height, c);
    for (int y = 0; y < height; ++y) {
        const Tap& ty = ys[y];
        for (int x = 0; x < width; ++x) {
            const Tap& tx = xs[x];
            for (int k = 0; k < c; ++k) {
                const float top_left = image.at(tx.lower, ty.lower, k);
                const float top_right = image.at(tx.upper, ty.lower, k);
                const float bottom_left = image.at(tx.lower, ty.upper, k);
                const float bottom_right = image.at(tx.upper, ty.upper, k);
                const float top = top_left + (top_right - top_left) * tx.lerp;
                const float bottom = bottom_left + (bottom_right - bottom_left) * tx.lerp;
                out.at(x, y, k) = top + (bottom - top) * ty.lerp;
            }
        }
    }
    return out;
}

ImageF resize_antialiased(const ImageF& image, int width, int height) {
    R2C_CHECK(width > 0 && height > 0, "resize_antialiased: target size must be positive, got ", width, "x",
              height);
    ImageF im = image;
    while (im.width >= 2 * width || im.height >= 2 * height)
        im = resize_bilinear(im, im.width >= 2 * width ? im.width / 2 : im.width,
                             im.height >= 2 * height ? im.height / 2 : im.height);
    return resize_bilinear(im, width, height);
}

ImageF flip_horizontal(const ImageF& image) {
    ImageF out(image.width, image.height, image.channels);
    for (int y = 0; y < image.height; ++y)
        for (int x = 0; x < image.width; ++x)
            for (int k = 0; k < image.channels; ++k)
                out.at(x, y, k) = image.at(image.width - 1 - x, y, k);
    return out;
}

ImageF crop(const ImageF& image, int x, int y, int width, int height) {
    R2C_CHECK(
        x >= 0 && y >= 0 && width > 0 && height > 0 && x + width <= image.width && y + height <= image.height,
        "crop: window ", width, "x", height, " at (", x, ", ", y, ") does not fit in a ", image.width, "x",
        image.height, " image");
    ImageF out(width, height, image.channels);
    const std::size_t row = static_cast<std::size_t>(width) * image.channels;
    for (int r = 0; r < height; ++r) {
        const auto src =
            image.values.begin() +
            static_cast<std::ptrdiff_t>((static_cast<std::size_t>(y + r) * image.width + x) * image.channels);
        std::copy(src, src + static_cast<std::ptrdiff_t>(row),
                  out.values.begin() + static_cast<std::ptrdiff_t>(r * row));
    }
    return out;
}

Tensor images_to_tensor(const std::vector<ImageF>& images) {
    R2C_CHECK(!images.empty(), "images_to_tensor: no images");
    const ImageF& first = images.front();
    const std::int64_t n = static_cast<std::int64_t>(images.size()), c = first.channels, h = first.height,
                       w = first.width;
    Tensor t = Tensor::empty({n, c, h, w}, DType::F32);
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < n; ++i) {
        const ImageF& im = images[static_cast<std::size_t>(i)];
        R2C_CHECK(im.width == w && im.height == h && im.channels == c, "images_to_tensor: image ", i, " is ",
                  im.width, "x", im.height, "x", im.channels, ", image 0 is ", w, "x", h, "x", c);
        for (std::int64_t k = 0; k < c; ++k)
            for (std::int64_t y = 0; y < h; ++y)
                for (std::int64_t x = 0; x < w; ++x) {
                    const float v = std::clamp(
                        im.at(static_cast<int>(x), static_cast<int>(y), static_cast<int>(k)), 0.0f, 255.0f);
                    p[((i * c + k) * h + y) * w + x] = v / 255.0f * 2.0f - 1.0f;
                }
    }
    return t;
}

std::vector<Image> tensor_to_images(const Tensor& batch) {
    R2C_CHECK(batch.ndim() == 4, "tensor_to_images: expected [N, C, H, W], got ", batch.str());
    const Tensor t = batch.to(Device::CPU).to(DType::F32);
    const std::int64_t n = t.dim(0), c = t.dim(1), h = t.dim(2), w = t.dim(3);
    R2C_CHECK(c >= 1 && c <= 4, "tensor_to_images: expected 1 to 4 channels, got ", t.str());
    const float* p = t.data<float>();
    std::vector<Image> out;
    out.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        Image im(static_cast<int>(w), static_cast<int>(h), static_cast<int>(c));
        for (std::int64_t k = 0; k < c; ++k)
            for (std::int64_t y = 0; y < h; ++y)
                for (std::int64_t x = 0; x < w; ++x) {
                    const float v = (p[((i * c + k) * h + y) * w + x] + 1.0f) * 127.5f;
                    im.at(static_cast<int>(x), static_cast<int>(y), static_cast<int>(k)) =
                        static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f)));
                }
        out.push_back(std::move(im));
    }
    return out;
}

}  // namespace r2c
