// PSNR and SSIM against hand-computed values and, when /usr/bin/python3 has scikit-image, against
// skimage.metrics on the same pixels.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/cxr_synth.h"
#include "data/degrade.h"
#include "data/metrics.h"
#include "data/transform.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

Image constant(int w, int h, std::uint8_t v) {
    Image im(w, h, 3);
    std::fill(im.pixels.begin(), im.pixels.end(), v);
    return im;
}

Image noise_image(int w, int h, Rng& rng) {
    Image im(w, h, 3);
    for (auto& p : im.pixels)
        p = static_cast<std::uint8_t>(rng.below(256));
    return im;
}

// Runs skimage on each pair (raw HxWxC uint8 files) and returns "psnr ssim" per pair.
const char* kOracle = R"(import sys
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
args = sys.argv[1:]
for i in range(0, len(args), 5):
    a_path, b_path, h, w, c = args[i:i + 5]
    shape = (int(h), int(w), int(c))
    a = np.fromfile(a_path, dtype=np.uint8).reshape(shape)
    b = np.fromfile(b_path, dtype=np.uint8).reshape(shape)
    p = peak_signal_noise_ratio(a, b, data_range=255)
    s = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=255)
    print(repr(float(p)), repr(float(s)))
)";

}  // namespace

TEST_CASE("PSNR against hand-computed values", "[metrics]") {
    const Image a = constant(4, 4, 10);
    Image b = a;
    b.at(2, 1, 1) = 13;  // one error of 3 over 48 samples: MSE = 9 / 48
    CHECK(psnr(a, b) == Approx(10 * std::log10(255.0 * 255.0 / (9.0 / 48.0))).epsilon(1e-12));
    CHECK(psnr(a, b) == Approx(55.40079).epsilon(1e-6));
    CHECK(std::isinf(psnr(a, a)));
    CHECK(psnr(constant(3, 3, 0), constant(3, 3, 255)) == Approx(0.0).margin(1e-12));
    CHECK_THROWS_WITH(psnr(a, constant(4, 5, 10)),
                      Contains("psnr") && Contains("4x4x3") && Contains("4x5x3"));
}

TEST_CASE("SSIM is 1 for an image with itself and the luminance term for constant images", "[metrics]") {
    Rng rng(3);
    const Image n = noise_image(24, 20, rng);
    CHECK(ssim(n, n) == Approx(1.0).epsilon(1e-12));
    // Constant images have zero variance, so SSIM = (2 a b + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 255)^2.
    const double c1 = 2.55 * 2.55;
    CHECK(ssim(constant(16, 16, 100), constant(16, 16, 120)) ==
          Approx((2 * 100.0 * 120 + c1) / (100.0 * 100 + 120.0 * 120 + c1)).epsilon(1e-12));
    // Unrelated noise is far from similar.
    CHECK(ssim(n, noise_image(24, 20, rng)) < 0.1);
    CHECK_THROWS_WITH(ssim(constant(10, 20, 0), constant(10, 20, 0)), Contains("at least 11x11"));
}

TEST_CASE("PSNR and SSIM agree with scikit-image", "[metrics][oracle]") {
    if (std::system("/usr/bin/python3 -c 'import skimage' >/dev/null 2>&1") != 0)
        return test::skip(
            "scikit-image is not importable by /usr/bin/python3 (Debian: python3-skimage); "
            "PSNR/SSIM not compared with it");
    TempDir dir;
    Rng rng(17);
    std::vector<std::pair<Image, Image>> pairs;
    {
        Rng anatomy(2);
        const Image clean = render_cxr(draw_cxr_case(anatomy, true), 64);
        Rng deg(5);
        pairs.emplace_back(clean, to_uint8(degrade(to_float(clean), deg).image));
    }
    pairs.emplace_back(noise_image(40, 30, rng), noise_image(40, 30, rng));
    {
        // Colour with different content per channel, and a mild perturbation of it.
        Image a(33, 21, 3), b(33, 21, 3);
        for (int y = 0; y < 21; ++y)
            for (int x = 0; x < 33; ++x)
                for (int c = 0; c < 3; ++c) {
                    a.at(x, y, c) = static_cast<std::uint8_t>((x * (c + 3) + y * (5 - c)) * 3 % 256);
                    b.at(x, y, c) = static_cast<std::uint8_t>(
                        std::clamp(a.at(x, y, c) + static_cast<int>(rng.below(21)) - 10, 0, 255));
                }
        pairs.emplace_back(a, b);
    }
    pairs.emplace_back(noise_image(11, 13, rng), noise_image(11, 13, rng));  // the smallest allowed size

    const std::string script = dir.file("oracle.py");
    write_file_atomic(script, std::string(kOracle));
    std::string command = "/usr/bin/python3 " + script;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        const Image& a = pairs[i].first;
        const std::string pa = dir.file("a" + std::to_string(i) + ".raw"),
                          pb = dir.file("b" + std::to_string(i) + ".raw");
        write_file_atomic(pa, std::string(a.pixels.begin(), a.pixels.end()));
        write_file_atomic(pb, std::string(pairs[i].second.pixels.begin(), pairs[i].second.pixels.end()));
        command +=
            " " + pa + " " + pb + " " + std::to_string(a.height) + " " + std::to_string(a.width) + " 3";
    }
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char buf[256];
    while (std::fgets(buf, sizeof buf, pipe))
        output += buf;
    REQUIRE(::pclose(pipe) == 0);

    std::istringstream lines(output);
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        CAPTURE(i);
        double want_psnr = 0, want_ssim = 0;
        REQUIRE(lines >> want_psnr >> want_ssim);
        CHECK(psnr(pairs[i].first, pairs[i].second) == Approx(want_psnr).epsilon(1e-12));
        CHECK(ssim(pairs[i].first, pairs[i].second) == Approx(want_ssim).margin(1e-10));
    }
}
