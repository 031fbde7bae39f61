// Image decoding and encoding: PNG in every colour type and bit depth that matters, plain and Adam7
// interlaced (the 16-bit, palette and interlaced files are assembled by hand here, since stb_image_write
// cannot write them), JPEG baseline, progressive, CMYK and YCCK (libjpeg-written fixtures in tests/data),
// 1 x 1 images, format detection from content, rejection of broken, hostile and ambiguous files with the
// file named, and, when present, every real X-ray of ../shared/data/cxr.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "data/image_io.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tests/image_pattern.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

// ---- A minimal PNG writer: stored (uncompressed) deflate blocks, any colour type and bit depth ----

std::uint32_t crc32(const std::string& data) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (const unsigned char b : data) {
        c ^= b;
        for (int k = 0; k < 8; ++k)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
            static_cast<char>(v)};
}

std::string chunk(const std::string& type, const std::string& data) {
    return be32(static_cast<std::uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

std::string zlib_stored(const std::string& raw) {
    std::string z = "\x78\x01";
    std::size_t pos = 0;
    do {
        const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
        const bool last = pos + n == raw.size();
        z += static_cast<char>(last ? 1 : 0);
        z += static_cast<char>(n & 0xFF);
        z += static_cast<char>(n >> 8);
        z += static_cast<char>(~n & 0xFF);
        z += static_cast<char>((~n >> 8) & 0xFF);
        z += raw.substr(pos, n);
        pos += n;
    } while (pos < raw.size());
    std::uint32_t a = 1, b = 0;
    for (const unsigned char c : raw) {
        a = (a + c) % 65521;
        b = (b + a) % 65521;
    }
    return z + be32((b << 16) | a);
}

// `rows` holds the raw scanlines without filter bytes (for an interlaced image those of every pass, in
// order: see scanlines()); each row gets filter type 0.
std::string make_png(std::uint32_t w, std::uint32_t h, int bit_depth, int color_type,
                     const std::vector<std::string>& rows, const std::string& palette = "",
                     bool adam7 = false) {
    std::string ihdr = be32(w) + be32(h);
    ihdr += static_cast<char>(bit_depth);
    ihdr += static_cast<char>(color_type);
    ihdr += std::string(2, '\0');  // deflate, adaptive filtering
    ihdr += static_cast<char>(adam7 ? 1 : 0);
    std::string raw;
    for (const std::string& r : rows)
        raw += '\0' + r;
    std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr);
    if (!palette.empty()) png += chunk("PLTE", palette);
    return png + chunk("IDAT", zlib_stored(raw)) + chunk("IEND", "");
}

std::string u16(unsigned v) {
    return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)};
}

// The scanlines of a w x h image, plain or Adam7 interlaced (pass after pass, each a reduced image; a pass
// without pixels has no rows). `row(xs, y)` gives the scanline of the pixels of row y at columns xs.
std::vector<std::string> scanlines(int w, int h, bool adam7,
                                   const std::function<std::string(const std::vector<int>&, int)>& row) {
    struct Pass {
        int x0, dx, y0, dy;
    };
    const std::vector<Pass> passes =
        adam7 ? std::vector<Pass>{{0, 8, 0, 8}, {4, 8, 0, 8}, {0, 4, 4, 8}, {2, 4, 0, 4},
                                  {0, 2, 2, 4}, {1, 2, 0, 2}, {0, 1, 1, 2}}
              : std::vector<Pass>{{0, 1, 0, 1}};
    std::vector<std::string> rows;
    for (const Pass& p : passes) {
        std::vector<int> xs;
        for (int x = p.x0; x < w; x += p.dx)
            xs.push_back(x);
        if (xs.empty()) continue;
        for (int y = p.y0; y < h; y += p.dy)
            rows.push_back(row(xs, y));
    }
    return rows;
}

// The picture of tests/image_pattern.h (any size) as 8-bit RGB.
Image pattern_image(int w, int h) {
    Image im(w, h, 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < 3; ++c)
                im.at(x, y, c) = static_cast<std::uint8_t>(test::pattern(x, y, c));
    return im;
}

// A fixture of tests/data (written by tests/make_image_fixtures.cpp).
std::string fixture(const std::string& name) {
    return (fs::path(R2C_SOURCE_DIR) / "tests" / "data" / name).string();
}

// Mean and largest absolute difference of a 20 x 12 decoded fixture from the picture it holds.
struct Deviation {
    double mean = 0;
    int max = 0;
};
Deviation deviation_from_pattern(const Image& im) {
    REQUIRE(im.width == test::kPatternWidth);
    REQUIRE(im.height == test::kPatternHeight);
    const Image expected = pattern_image(im.width, im.height);
    Deviation d;
    for (std::size_t i = 0; i < im.pixels.size(); ++i) {
        const int diff = std::abs(im.pixels[i] - expected.pixels[i]);
        d.mean += diff;
        d.max = std::max(d.max, diff);
    }
    d.mean /= static_cast<double>(im.pixels.size());
    return d;
}

Image gradient_image(int w, int h, int channels) {
    Image im(w, h, channels);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < channels; ++c)
                im.at(x, y, c) = static_cast<std::uint8_t>((x * 7 + y * 13 + c * 50) % 256);
    return im;
}

// The error message of decoding `bytes` under `name`, or "" if it decodes.
std::string decode_error(const std::string& bytes, const std::string& name,
                         std::int64_t max_pixels = kDefaultMaxPixels) {
    try {
        decode_image(bytes, name, max_pixels);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// The first field of a CSV line, unquoted ("a ""b"".png" -> a "b".png).
std::string first_csv_field(const std::string& line) {
    if (line.empty() || line[0] != '"') return line.substr(0, line.find(','));
    std::string field;
    for (std::size_t i = 1; i < line.size(); ++i) {
        if (line[i] != '"') {
            field += line[i];
        } else if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            ++i;
        } else {
            break;
        }
    }
    return field;
}

}  // namespace

TEST_CASE("8-bit PNG round trips in gray, gray+alpha, RGB and RGBA", "[image_io]") {
    for (const int channels : {1, 2, 3, 4}) {
        CAPTURE(channels);
        const Image src = gradient_image(17, 9, channels);
        const Image out = decode_image(encode_png(src), "mem.png");
        REQUIRE(out.width == 17);
        REQUIRE(out.height == 9);
        REQUIRE(out.channels == 3);
        REQUIRE(out.pixels.size() == 17u * 9u * 3u);
        bool same = true;
        for (int y = 0; y < 9; ++y)
            for (int x = 0; x < 17; ++x)
                for (int c = 0; c < 3; ++c) {
                    // Gray (with or without alpha) is replicated; alpha is dropped, never composited.
                    const int from = channels <= 2 ? 0 : c;
                    same = same && out.at(x, y, c) == src.at(x, y, from);
                }
        CHECK(same);
    }
}

TEST_CASE("16-bit PNG samples are rounded to the nearest 8-bit level", "[image_io]") {
    // 2699 = 10.50 * 257 and 65280 = 254.0 * 257: rounding gives 11 and 254 where taking the high byte would
    // give 10 and 255.
    const std::vector<unsigned> samples = {0, 2699, 32896, 65280, 65535};
    std::string gray_row, rgb_row;
    for (const unsigned v : samples) {
        gray_row += u16(v);
        rgb_row += u16(v) + u16(65535 - v) + u16(v);
    }
    const std::vector<int> expected = {0, 11, 128, 254, 255};
    const Image gray = decode_image(make_png(5, 1, 16, 0, {gray_row}), "gray16.png");
    const Image rgb = decode_image(make_png(5, 1, 16, 2, {rgb_row}), "rgb16.png");
    for (int x = 0; x < 5; ++x) {
        CAPTURE(x);
        for (int c = 0; c < 3; ++c)
            CHECK(gray.at(x, 0, c) == expected[x]);
        CHECK(rgb.at(x, 0, 0) == expected[x]);
        CHECK(rgb.at(x, 0, 1) == 255 - expected[x]);
        CHECK(rgb.at(x, 0, 2) == expected[x]);
    }
    // 16-bit gray + alpha: the alpha samples are dropped.
    const Image ga = decode_image(make_png(1, 1, 16, 4, {u16(2699) + u16(0)}), "ga16.png");
    CHECK(ga.at(0, 0, 0) == 11);
}

TEST_CASE("palette and low-bit-depth PNGs are expanded to RGB", "[image_io]") {
    const std::string palette = std::string("\x00\x00\x00", 3) + "\xFF\x80\x10" + "\x20\x40\xFF";
    const Image p =
        decode_image(make_png(3, 1, 8, 3, {std::string("\x00\x01\x02", 3)}, palette), "palette.png");
    CHECK(p.at(1, 0, 0) == 0xFF);
    CHECK(p.at(1, 0, 1) == 0x80);
    CHECK(p.at(1, 0, 2) == 0x10);
    CHECK(p.at(2, 0, 2) == 0xFF);
    // 1-bit gray: bits 1,0,1,1 -> white, black, white, white.
    const Image bits =
        decode_image(make_png(4, 1, 1, 0, {std::string(1, static_cast<char>(0xB0))}), "bits.png");
    CHECK(bits.at(0, 0, 0) == 255);
    CHECK(bits.at(1, 0, 0) == 0);
    CHECK(bits.at(3, 0, 1) == 255);
}

TEST_CASE("Adam7-interlaced PNGs decode to the same pixels as plain ones", "[image_io]") {
    // 20 x 12 fills every pass; 3 x 2 leaves passes 2, 3 and 5 empty; 1 x 1 has only pass 1.
    for (const auto& [w, h] : std::vector<std::pair<int, int>>{{20, 12}, {3, 2}, {1, 1}}) {
        CAPTURE(w, h);
        const Image expected = pattern_image(w, h);
        auto rgb8 = [](const std::vector<int>& xs, int y) {
            std::string r;
            for (const int x : xs)
                for (int c = 0; c < 3; ++c)
                    r += static_cast<char>(test::pattern(x, y, c));
            return r;
        };
        // 16-bit gray: the red ramp times 257, which rounds back to it exactly.
        auto gray16 = [](const std::vector<int>& xs, int y) {
            std::string r;
            for (const int x : xs)
                r += u16(static_cast<unsigned>(test::pattern(x, y, 0)) * 257);
            return r;
        };
        // 2-bit gray, four pixels a byte, most significant first: level (x + y) % 4, 85 apart in 8 bits.
        auto gray2 = [](const std::vector<int>& xs, int y) {
            std::string r((xs.size() + 3) / 4, '\0');
            for (std::size_t i = 0; i < xs.size(); ++i)
                r[i / 4] = static_cast<char>(r[i / 4] | (((xs[i] + y) % 4) << (6 - 2 * (i % 4))));
            return r;
        };
        for (const bool adam7 : {false, true}) {
            CAPTURE(adam7);
            const Image rgb =
                decode_image(make_png(w, h, 8, 2, scanlines(w, h, adam7, rgb8), "", adam7), "rgb.png");
            CHECK(rgb.pixels == expected.pixels);
            const Image g16 =
                decode_image(make_png(w, h, 16, 0, scanlines(w, h, adam7, gray16), "", adam7), "gray16.png");
            const Image g2 =
                decode_image(make_png(w, h, 2, 0, scanlines(w, h, adam7, gray2), "", adam7), "gray2.png");
            bool same = true;
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    for (int c = 0; c < 3; ++c)
                        same = same && g16.at(x, y, c) == expected.at(x, y, 0) &&
                               g2.at(x, y, c) == (x + y) % 4 * 85;
            CHECK(same);
        }
    }
}

TEST_CASE("progressive JPEG decodes to the same pixels as baseline JPEG", "[image_io]") {
    // libjpeg quantises both files identically; progressive only orders the coefficients differently
    // (spectral selection, successive approximation), so the decoded pixels must agree exactly.
    const Image baseline = read_image(fixture("baseline.jpg"));
    const Image progressive = read_image(fixture("progressive.jpg"));
    const Deviation d = deviation_from_pattern(baseline);
    CHECK(d.mean < 2.0);
    CHECK(d.max <= 16);
    CHECK(progressive.pixels == baseline.pixels);
    const Image one = read_image(fixture("one_pixel_progressive.jpg"));
    REQUIRE(one.width == 1);
    REQUIRE(one.height == 1);
    for (int c = 0; c < 3; ++c)
        CHECK(std::abs(one.at(0, 0, c) - test::pattern(0, 0, c)) <= 2);
}

TEST_CASE("CMYK and YCCK JPEGs are converted to RGB when Adobe-marked, refused when ambiguous",
          "[image_io]") {
    // The fixtures hold the RGB picture as Adobe-inverted inks; decoded right they give the picture back.
    for (const char* name : {"cmyk_adobe.jpg", "ycck_adobe.jpg"}) {
        CAPTURE(name);
        const Deviation d = deviation_from_pattern(read_image(fixture(name)));
        CHECK(d.mean < 2.0);
        CHECK(d.max <= 16);
    }
    // The same inks without the Adobe marker: stb would decode them as YCbCr with K dropped.
    const std::string plain = fixture("cmyk_plain.jpg");
    CHECK_THROWS_WITH(read_image(plain),
                      Contains(plain) && Contains("CMYK") && Contains("without an Adobe APP14 marker"));
    // Adobe transform 1 (YCbCr) is defined for three components only.
    std::string transform1 = read_file(fixture("cmyk_adobe.jpg"));
    const std::size_t adobe = transform1.find(std::string("Adobe\0", 6));
    REQUIRE(adobe != std::string::npos);
    transform1[adobe + 11] = 1;
    CHECK_THAT(decode_error(transform1, "transform1.jpg"),
               Contains("transform1.jpg") && Contains("CMYK") && Contains("Adobe colour transform 1"));
}

TEST_CASE("1 x 1 images decode in every format", "[image_io]") {
    Image gray(1, 1, 1);
    gray.pixels = {77};
    const Image from_gray = decode_image(encode_png(gray), "gray.png");
    CHECK(from_gray.pixels == std::vector<std::uint8_t>{77, 77, 77});
    const Image rgb = pattern_image(1, 1);
    CHECK(decode_image(encode_png(rgb), "rgb.png").pixels == rgb.pixels);
    const Image jpeg = decode_image(encode_jpeg(rgb, 95), "rgb.jpg");
    REQUIRE(jpeg.pixels.size() == 3);
    for (int c = 0; c < 3; ++c)
        CHECK(std::abs(jpeg.pixels[c] - rgb.pixels[c]) <= 3);
}

TEST_CASE("JPEG encodes and decodes close to the original", "[image_io]") {
    Image src(32, 24, 3);
    for (int y = 0; y < 24; ++y)
        for (int x = 0; x < 32; ++x)
            for (int c = 0; c < 3; ++c)
                src.at(x, y, c) = static_cast<std::uint8_t>(40 + 4 * x + 2 * y);
    const std::string jpeg = encode_jpeg(src, 95);
    REQUIRE(jpeg.size() > 4);
    CHECK(static_cast<unsigned char>(jpeg[0]) == 0xFF);
    CHECK(static_cast<unsigned char>(jpeg[1]) == 0xD8);
    const Image out = decode_image(jpeg, "smooth.jpg");
    REQUIRE(out.width == 32);
    REQUIRE(out.height == 24);
    double err = 0;
    for (std::size_t i = 0; i < out.pixels.size(); ++i)
        err += std::abs(out.pixels[i] - src.pixels[i]);
    CHECK(err / static_cast<double>(out.pixels.size()) < 3.0);
    CHECK_THROWS_WITH(encode_jpeg(src, 0), Contains("quality"));
}

TEST_CASE("the format comes from the content, not the file extension", "[image_io]") {
    TempDir dir;
    const Image src = gradient_image(8, 8, 3);
    write_file_atomic(dir.file("really_png.jpg"), encode_png(src));
    write_file_atomic(dir.file("really_jpeg.png"), encode_jpeg(src, 90));
    CHECK(read_image(dir.file("really_png.jpg")).pixels == src.pixels);
    CHECK(read_image(dir.file("really_jpeg.png")).width == 8);
}

TEST_CASE("broken and hostile files are refused with the file named", "[image_io]") {
    TempDir dir;
    const std::string png = encode_png(gradient_image(40, 30, 3));
    const std::string jpeg = encode_jpeg(gradient_image(40, 30, 3), 90);

    write_file_atomic(dir.file("empty.png"), "");
    CHECK_THROWS_WITH(read_image(dir.file("empty.png")), Contains("empty.png") && Contains("empty"));
    write_file_atomic(dir.file("notes.png"), "just some text, not an image");
    CHECK_THROWS_WITH(read_image(dir.file("notes.png")),
                      Contains("notes.png") && Contains("not a PNG or JPEG"));
    CHECK_THROWS_WITH(read_image(dir.file("missing.png")), Contains("missing.png"));

    // Cut anywhere after the header: the data is incomplete.
    for (const std::size_t keep : {png.size() / 2, png.size() - 13}) {
        CAPTURE(keep);
        CHECK_THAT(decode_error(png.substr(0, keep), "cut.png"), Contains("cut.png"));
    }
    for (const std::size_t keep : {jpeg.size() / 2, jpeg.size() - 2}) {
        CAPTURE(keep);
        CHECK_THAT(decode_error(jpeg.substr(0, keep), "cut.jpg"),
                   Contains("cut.jpg") && Contains("truncated"));
    }
    CHECK_THAT(decode_error(png.substr(0, 12), "stub.png"), Contains("stub.png"));
    // A chunk declaring more bytes than the file holds is refused before the decoder reserves them.
    const std::string huge_idat = std::string("\x7f\xff\xff\x00IDAT", 8) + std::string(16, 'x');
    CHECK_THAT(decode_error(png.substr(0, 33) + huge_idat + png.substr(33), "huge_chunk.png"),
               Contains("huge_chunk.png") && Contains("at byte 33 declares 2147483392 bytes, past the end"));

    // Zero-size and oversized images are refused from the header alone, before any pixel memory exists.
    CHECK_THAT(decode_error(make_png(0, 5, 8, 0, {}), "zero.png"), Contains("zero.png"));
    CHECK_THAT(decode_error(make_png(10000, 10000, 8, 0, {"x"}), "bomb.png"),
               Contains("bomb.png") && Contains("exceeds the limit"));
    CHECK_THAT(decode_error(png, "small_limit.png", 1000), Contains("1200 pixels exceeds the limit of 1000"));
    CHECK(decode_error(png, "exact_limit.png", 1200).empty());
}

TEST_CASE("write_png replaces the file atomically and reads back", "[image_io]") {
    TempDir dir;
    const std::string path = dir.file("out.png");
    write_png(path, gradient_image(5, 4, 3));
    write_png(path, gradient_image(6, 4, 3));
    const Image back = read_image(path);
    CHECK(back.width == 6);
    CHECK(back.pixels == gradient_image(6, 4, 3).pixels);
    CHECK_THROWS_WITH(write_png(dir.file("no/such/dir/x.png"), gradient_image(2, 2, 3)),
                      Contains("no/such/dir"));
    Image inconsistent(4, 4, 3);
    inconsistent.pixels.pop_back();
    CHECK_THROWS_WITH(encode_png(inconsistent), Contains("encode_png"));
}

TEST_CASE("every real chest X-ray in ../shared/data/cxr decodes", "[image_io][real_data]") {
    const fs::path root = fs::path(R2C_SOURCE_DIR) / ".." / "shared" / "data" / "cxr";
    if (!fs::exists(root / "labels.csv"))
        return test::skip("no real X-rays at " + root.string() +
                          " (labels.csv missing); decoding not tested on them");
    std::ifstream csv(root / "labels.csv");
    std::string line;
    std::getline(csv, line);  // header
    int decoded = 0;
    std::vector<std::string> failures;
    while (std::getline(csv, line)) {
        const std::string file = first_csv_field(line);
        if (file.empty()) continue;
        try {
            const Image im = read_image((root / file).string());
            decoded += im.width > 0 && im.height > 0 && im.channels == 3;
        } catch (const Error& e) {
            failures.push_back(e.what());
        }
    }
    std::ostringstream report;
    for (const std::string& f : failures)
        report << f << "\n";
    INFO(decoded << " decoded, " << failures.size() << " failed:\n" << report.str());
    CHECK(decoded > 1000);
    CHECK(failures.empty());
}
