// Images before they become tensors: decoding PNG and JPEG from untrusted bytes into 8-bit RGB, and
// encoding PNG (atomic file writes) and JPEG (for the degradation model).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace r2c {

// 8-bit image, rows top to bottom, channels interleaved: pixels[(y * width + x) * channels + c].
struct Image {
    int width = 0;
    int height = 0;
    int channels = 3;
    std::vector<std::uint8_t> pixels;

    Image() = default;
    Image(int w, int h, int c = 3);  // zero-filled
    std::uint8_t& at(int x, int y, int c) {
        return pixels[(static_cast<std::size_t>(y) * width + x) * channels + c];
    }
    std::uint8_t at(int x, int y, int c) const {
        return pixels[(static_cast<std::size_t>(y) * width + x) * channels + c];
    }
};

// Images with more pixels than this are refused before any pixel memory is allocated (decompression
// bombs: a few kilobytes of PNG can declare a 100000 x 100000 image). 64 Mi pixels.
constexpr std::int64_t kDefaultMaxPixels = std::int64_t{1} << 26;

// Decodes a PNG or JPEG held in `bytes`; the format is recognised from the content, never from a file
// extension; baseline and progressive JPEG, interlaced and plain PNG. Every input becomes 3-channel 8-bit
// RGB: gray is replicated, alpha is dropped (not composited), palettes are expanded, 16-bit samples are
// rounded to the nearest 8-bit value (v * 255 / 65535), CMYK and YCCK JPEGs with an Adobe APP14 marker are
// converted (inks stored inverted, as Adobe writes them); other 4-channel JPEGs are refused as ambiguous.
// EXIF orientation tags are ignored (pixels are returned as stored). `name` only labels errors: every
// failure (empty input, unknown format, zero or too many pixels, corrupt or truncated data) is an
// r2c::Error that names it and gives the reason.
Image decode_image(const std::string& bytes, const std::string& name,
                   std::int64_t max_pixels = kDefaultMaxPixels);
Image read_image(const std::string& path, std::int64_t max_pixels = kDefaultMaxPixels);

// PNG (8-bit, the image's channel count) and baseline JPEG (quality 1..100) as bytes.
std::string encode_png(const Image& image);
std::string encode_jpeg(const Image& image, int quality);

// Writes a PNG through write_file_atomic: a reader sees the old file or the complete new one.
void write_png(const std::string& path, const Image& image);

}  // namespace r2c
