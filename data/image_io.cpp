#include "data/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace r2c {

Image::Image(int w, int h, int c)
    : width(w), height(h), channels(c), pixels(static_cast<std::size_t>(w) * h * c, 0) {}

namespace {

enum class Format { Png, Jpeg, Unknown };

Format detect_format(const std::string& b) {
    static const char kPng[] = "\x89PNG\r\n\x1a\n";
    if (b.size() >= 8 && b.compare(0, 8, kPng, 8) == 0) return Format::Png;
    if (b.size() >= 3 && static_cast<unsigned char>(b[0]) == 0xFF &&
        static_cast<unsigned char>(b[1]) == 0xD8 && static_cast<unsigned char>(b[2]) == 0xFF)
        return Format::Jpeg;
    return Format::Unknown;
}

// A DHT segment's tables: class and slot in range, at most 256 codes each, all inside the segment. The
// Debian stb_image (2.27) does not check the code count and overruns its tables on a hostile file.
bool valid_huffman_tables(const std::string& b, std::size_t pos, std::size_t end) {
    while (pos < end) {
        if (pos + 17 > end) return false;
        const auto q = static_cast<unsigned char>(b[pos]);
        if ((q >> 4) > 1 || (q & 15) > 3) return false;
        std::size_t codes = 0;
        for (std::size_t i = 1; i <= 16; ++i)
            codes += static_cast<unsigned char>(b[pos + i]);
        if (codes > 256) return false;
        pos += 17 + codes;
    }
    return pos == end;
}

// stb decodes 4-component JPEGs the way Adobe writes them: Adobe transform 0 is CMYK and 2 is YCCK (the
// YCbCr of 255 - C, 255 - M, 255 - Y, and K as is), every ink stored inverted (255 = no ink). Without the
// Adobe marker, or with another transform, it takes the first three components for YCbCr and drops K:
// wrong colours. What such a file holds is not agreed on (libjpeg reads it as CMYK but leaves open whether
// inverted, and a wrong guess turns a radiograph into its negative), so it is refused.
std::string cmyk_problem(int adobe_transform) {
    if (adobe_transform == 0 || adobe_transform == 2) return "";
    const std::string why = adobe_transform < 0
                                ? "without an Adobe APP14 marker"
                                : detail::concat("with Adobe colour transform ", adobe_transform);
    return "4-channel (CMYK) JPEG " + why +
           ": its colours are ambiguous, so it is not decoded; convert it to RGB or grayscale";
}

// Start-of-frame markers (SOF0..SOF15 less DHT, JPG and DAC): their segment gives the component count.
bool is_start_of_frame(unsigned char marker) {
    return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Walks every segment of a JPEG before stb sees it; returns what is wrong, or "" when the file can be
// handed to stb. This finds files cut short, which stb decodes without complaint (the missing part comes
// out gray), Huffman tables stb would overrun, and 4-component files stb would decode with wrong colours.
// Segments are walked by their lengths, so the end marker of an EXIF thumbnail inside APP1 is never
// mistaken for the real one; entropy-coded data after a scan header runs to the next 0xFF that is not a
// stuffed 0xFF 0x00 or a restart marker.
std::string jpeg_structure_problem(const std::string& b) {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
    bool scanned = false;
    int components = 0;
    int adobe_transform = -1;  // the colour transform of the Adobe APP14 segment; -1: there is none
    std::size_t pos = 2;
    for (;;) {
        if (pos + 1 >= b.size()) return "truncated JPEG (no end-of-image marker)";
        if (byte(pos) != 0xFF) return "corrupt JPEG (no marker where a segment should start)";
        const unsigned char marker = byte(pos + 1);
        if (marker == 0xFF) {  // fill byte before a marker
            ++pos;
            continue;
        }
        if (marker == 0xD9) {
            if (!scanned) return "JPEG without image data";
            return components == 4 ? cmyk_problem(adobe_transform) : "";
        }
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
            pos += 2;
            continue;
        }
        if (pos + 3 >= b.size()) return "truncated JPEG (in a segment header)";
        const std::size_t length = (std::size_t{byte(pos + 2)} << 8) | byte(pos + 3);
        if (length < 2 || pos + 2 + length > b.size()) return "truncated JPEG (a segment runs past the end)";
        if (marker == 0xC4 && !valid_huffman_tables(b, pos + 4, pos + 2 + length))
            return "corrupt JPEG (invalid Huffman table)";
        if (is_start_of_frame(marker) && length >= 8) components = byte(pos + 9);
        // As stb reads it: "Adobe\0" (the version's high byte), version, two flag words, the transform.
        if (marker == 0xEE && length >= 14 && b.compare(pos + 4, 6, "Adobe\0", 6) == 0)
            adobe_transform = byte(pos + 15);
        pos += 2 + length;
        if (marker == 0xDA) {
            scanned = true;
            while (pos + 1 < b.size() && !(byte(pos) == 0xFF && byte(pos + 1) != 0x00 &&
                                           (byte(pos + 1) < 0xD0 || byte(pos + 1) > 0xD7)))
                ++pos;
        }
    }
}

// Every chunk up to IEND lies inside the file. The Debian stb_image (2.27) reserves an IDAT chunk's declared
// length before reading it: without this walk, a file of a few bytes declaring a 2 GiB chunk costs 2 GiB.
std::string png_structure_problem(const std::string& b) {
    auto be32 = [&](std::size_t i) {
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < 4; ++k)
            v = (v << 8) | static_cast<unsigned char>(b[i + k]);
        return v;
    };
    std::size_t pos = 8;  // after the signature
    for (;;) {
        if (b.size() - pos < 12) return "truncated PNG (no IEND chunk)";
        const std::uint32_t length = be32(pos);
        if (length > b.size() - pos - 12)
            return detail::concat("truncated PNG (the chunk at byte ", pos, " declares ", length,
                                  " bytes, past the end of the file)");
        if (b.compare(pos + 4, 4, "IEND") == 0) return "";
        pos += 12 + std::size_t{length};
    }
}

struct StbFree {
    void operator()(void* p) const { stbi_image_free(p); }
};

[[noreturn]] void fail(const std::string& name, const std::string& why) {
    throw Error("cannot decode image '" + name + "': " + why);
}

void append_bytes(void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<std::size_t>(size));
}

void check_encodable(const Image& image, const char* what) {
    R2C_CHECK(image.width > 0 && image.height > 0 && image.channels >= 1 && image.channels <= 4, what,
              ": cannot encode a ", image.width, "x", image.height, "x", image.channels, " image");
    R2C_CHECK(image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * image.channels,
              what, ": the image holds ", image.pixels.size(), " bytes, expected ", image.width, "x",
              image.height, "x", image.channels);
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name, std::int64_t max_pixels) {
    if (bytes.empty()) fail(name, "the file is empty");
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) fail(name, "the file is larger than 2 GiB");
    const Format format = detect_format(bytes);
    if (format == Format::Unknown) fail(name, "not a PNG or JPEG image (unrecognised content)");

    const std::string problem =
        format == Format::Jpeg ? jpeg_structure_problem(bytes) : png_structure_problem(bytes);
    if (!problem.empty()) fail(name, problem);

    const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
    const int len = static_cast<int>(bytes.size());
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(data, len, &w, &h, &comp))
        fail(name, std::string("unreadable header (") + stbi_failure_reason() + ")");
    if (w <= 0 || h <= 0) fail(name, detail::concat("zero-size image (", w, "x", h, ")"));
    const std::int64_t pixels = std::int64_t{w} * h;
    if (pixels > max_pixels)
        fail(name, detail::concat(w, "x", h, " = ", pixels, " pixels exceeds the limit of ", max_pixels));

    Image out(w, h, 3);
    if (stbi_is_16_bit_from_memory(data, len)) {
        std::unique_ptr<stbi_us, StbFree> p(stbi_load_16_from_memory(data, len, &w, &h, &comp, 3));
        if (!p) fail(name, std::string("corrupt or truncated data (") + stbi_failure_reason() + ")");
        // Rounded to the nearest level (v / 257), not stb's own truncation to the high byte, which comes out
        // up to one level darker.
        for (std::size_t i = 0; i < out.pixels.size(); ++i)
            out.pixels[i] = static_cast<std::uint8_t>((std::uint32_t{p.get()[i]} * 255 + 32767) / 65535);
    } else {
        std::unique_ptr<stbi_uc, StbFree> p(stbi_load_from_memory(data, len, &w, &h, &comp, 3));
        if (!p) fail(name, std::string("corrupt or truncated data (") + stbi_failure_reason() + ")");
        std::copy(p.get(), p.get() + out.pixels.size(), out.pixels.begin());
    }
    return out;
}

Image read_image(const std::string& path, std::int64_t max_pixels) {
    return decode_image(read_file(path), path, max_pixels);
}

std::string encode_png(const Image& image) {
    check_encodable(image, "encode_png");
    std::string out;
    const int ok = stbi_write_png_to_func(append_bytes, &out, image.width, image.height, image.channels,
                                          image.pixels.data(), image.width * image.channels);
    R2C_CHECK(ok, "encode_png: stb_image_write failed on a ", image.width, "x", image.height, " image");
    return out;
}

std::string encode_jpeg(const Image& image, int quality) {
    check_encodable(image, "encode_jpeg");
    R2C_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in [1, 100], got ", quality);
    std::string out;
    const int ok = stbi_write_jpg_to_func(append_bytes, &out, image.width, image.height, image.channels,
                                          image.pixels.data(), quality);
    R2C_CHECK(ok, "encode_jpeg: stb_image_write failed on a ", image.width, "x", image.height, " image");
    return out;
}

void write_png(const std::string& path, const Image& image) {
    write_file_atomic(path, encode_png(image));
}

}  // namespace r2c
