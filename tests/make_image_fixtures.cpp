// Writes the JPEG fixtures of tests/test_image_io.cpp with libjpeg, the reference implementation, so that
// they are laid out as real-world files are. The picture of tests/image_pattern.h as
//   baseline.jpg       baseline YCbCr
//   progressive.jpg    progressive YCbCr, libjpeg's default script (spectral selection and successive
//                      approximation), quantised exactly as baseline.jpg
//   cmyk_adobe.jpg     CMYK with the Adobe APP14 marker, transform 0; inks stored inverted, as Photoshop
//                      writes CMYK
//   ycck_adobe.jpg     the same inks as YCCK (Adobe transform 2)
//   cmyk_plain.jpg     the same inks as CMYK without an Adobe marker
// and one_pixel_progressive.jpg, a 1 x 1 progressive JPEG of the colour pattern(0, 0).
// Not part of the build (libjpeg is not a dependency of r2c). To regenerate, from the repository root:
//   c++ -std=c++17 -O2 -I. tests/make_image_fixtures.cpp -ljpeg -o /tmp/make_image_fixtures &&
//   /tmp/make_image_fixtures tests/data
#include <cstddef>
#include <cstdio>  // before jpeglib.h, which uses size_t and FILE without including their headers

#include <jpeglib.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/image_pattern.h"

namespace {

using r2c::test::pattern;

struct Picture {
    int width, height, components;
    J_COLOR_SPACE space;
    std::vector<JSAMPLE> samples;  // rows top to bottom, components interleaved
};

Picture rgb_pattern(int width, int height) {
    Picture p{width, height, 3, JCS_RGB, {}};
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < 3; ++c)
                p.samples.push_back(static_cast<JSAMPLE>(pattern(x, y, c)));
    return p;
}

// Adobe's inverted CMYK for an RGB picture: stored K = max(R, G, B) (no black ink is 255) and stored
// C, M, Y = R, G, B * 255 / K, so that R = C * K / 255 and so on.
Picture inverted_cmyk(const Picture& rgb) {
    Picture p{rgb.width, rgb.height, 4, JCS_CMYK, {}};
    for (std::size_t i = 0; i < rgb.samples.size(); i += 3) {
        const int k = std::max({rgb.samples[i], rgb.samples[i + 1], rgb.samples[i + 2]});
        for (int c = 0; c < 3; ++c)
            p.samples.push_back(static_cast<JSAMPLE>(k == 0 ? 0 : (rgb.samples[i + c] * 255 + k / 2) / k));
        p.samples.push_back(static_cast<JSAMPLE>(k));
    }
    return p;
}

// `stored`: the colour space of the file; `adobe`: whether the Adobe APP14 marker is written.
void write_jpeg(const std::string& path, const Picture& p, J_COLOR_SPACE stored, bool progressive,
                bool adobe) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) {
        std::perror(path.c_str());
        std::exit(1);
    }
    jpeg_compress_struct c{};
    jpeg_error_mgr err{};
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = static_cast<JDIMENSION>(p.width);
    c.image_height = static_cast<JDIMENSION>(p.height);
    c.input_components = p.components;
    c.in_color_space = p.space;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, stored);
    jpeg_set_quality(&c, 95, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    c.write_Adobe_marker = adobe ? TRUE : FALSE;
    jpeg_start_compress(&c, TRUE);
    const std::size_t stride = static_cast<std::size_t>(p.width) * p.components;
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = const_cast<JSAMPLE*>(&p.samples[c.next_scanline * stride]);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTPUT_FOLDER\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const Picture rgb = rgb_pattern(r2c::test::kPatternWidth, r2c::test::kPatternHeight);
    const Picture cmyk = inverted_cmyk(rgb);
    write_jpeg(dir + "/baseline.jpg", rgb, JCS_YCbCr, false, false);
    write_jpeg(dir + "/progressive.jpg", rgb, JCS_YCbCr, true, false);
    write_jpeg(dir + "/cmyk_adobe.jpg", cmyk, JCS_CMYK, false, true);
    write_jpeg(dir + "/ycck_adobe.jpg", cmyk, JCS_YCCK, false, true);
    write_jpeg(dir + "/cmyk_plain.jpg", cmyk, JCS_CMYK, false, false);
    write_jpeg(dir + "/one_pixel_progressive.jpg", rgb_pattern(1, 1), JCS_YCbCr, true, false);
    return 0;
}
