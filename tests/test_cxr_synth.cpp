// The procedural chest radiographs (determinism, a plausible intensity layout, a measurable COVID-19 signal
// in the lower lung zones), the degradation model (each operation's measurable effect, determinism) and the
// synthetic dataset writer.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <set>

#include "data/cxr_synth.h"
#include "data/dataset.h"
#include "data/dataset_maker.h"
#include "data/degrade.h"
#include "data/image_io.h"
#include "data/transform.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

Image synth(std::uint64_t seed, bool covid, int size = 96) {
    Rng rng(seed);
    return render_cxr(draw_cxr_case(rng, covid), size);
}

// Mean of channel 0 over the box [x0, x1) x [y0, y1) given as fractions of the image size.
double box_mean(const Image& im, double x0, double x1, double y0, double y1) {
    double sum = 0;
    int n = 0;
    for (int y = static_cast<int>(y0 * im.height); y < static_cast<int>(y1 * im.height); ++y)
        for (int x = static_cast<int>(x0 * im.width); x < static_cast<int>(x1 * im.width); ++x, ++n)
            sum += im.at(x, y, 0);
    return sum / n;
}

// Lower lung zones towards the chest wall, both sides; upper zones.
double lower_zones(const Image& im) {
    return 0.5 * (box_mean(im, 0.14, 0.3, 0.52, 0.66) + box_mean(im, 0.7, 0.86, 0.52, 0.66));
}
double upper_zones(const Image& im) {
    return 0.5 * (box_mean(im, 0.2, 0.35, 0.22, 0.35) + box_mean(im, 0.65, 0.8, 0.22, 0.35));
}

double mean(const ImageF& im) {
    double s = 0;
    for (const float v : im.values)
        s += v;
    return s / static_cast<double>(im.values.size());
}

double stddev(const ImageF& im) {
    const double m = mean(im);
    double s = 0;
    for (const float v : im.values)
        s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(im.values.size()));
}

// Mean squared difference of neighbouring pixels: the image's high-frequency energy.
double high_frequency(const ImageF& im) {
    double s = 0;
    int n = 0;
    for (int y = 0; y + 1 < im.height; ++y)
        for (int x = 0; x + 1 < im.width; ++x, n += 2) {
            const double dx = im.at(x + 1, y, 0) - im.at(x, y, 0), dy = im.at(x, y + 1, 0) - im.at(x, y, 0);
            s += dx * dx + dy * dy;
        }
    return s / n;
}

bool channels_equal(const ImageF& im) {
    for (std::size_t i = 0; i < im.values.size(); i += 3)
        if (im.values[i] != im.values[i + 1] || im.values[i] != im.values[i + 2]) return false;
    return true;
}

}  // namespace

TEST_CASE("synthetic radiographs are fixed by the seed", "[cxr_synth]") {
    const Image a = synth(11, true), b = synth(11, true), c = synth(12, true);
    CHECK(a.pixels == b.pixels);
    CHECK(a.pixels != c.pixels);
    // The anatomy is drawn before the finding: the same seed with and without COVID-19 is the same patient.
    Rng r1(5), r2(5);
    const CxrCase covid = draw_cxr_case(r1, true), control = draw_cxr_case(r2, false);
    CHECK(covid.dome_v[0] == control.dome_v[0]);
    CHECK(covid.lateral_u[1] == control.lateral_u[1]);
    CHECK(covid.texture_seed == control.texture_seed);
    CHECK_THROWS_WITH(render_cxr(covid, 8), Contains("size"));
}

TEST_CASE("synthetic radiographs look like a PA chest film", "[cxr_synth]") {
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
        CAPTURE(seed);
        const Image im = synth(seed, seed % 2 == 0);
        REQUIRE(im.channels == 3);
        CHECK(channels_equal(to_float(im)));
        // Air outside the body is dark, the abdomen under the diaphragm bright, the lungs in between, and
        // the mediastinum brighter than the lungs beside it.
        const double corner = box_mean(im, 0.0, 0.03, 0.6, 0.9), abdomen = box_mean(im, 0.3, 0.7, 0.9, 1.0);
        const double lungs = upper_zones(im), mediastinum = box_mean(im, 0.47, 0.53, 0.25, 0.35);
        CHECK(corner < 40);
        CHECK(abdomen > 170);
        CHECK(lungs > corner + 30);
        CHECK(lungs < abdomen - 60);
        CHECK(mediastinum > lungs + 40);
    }
}

TEST_CASE("COVID-19 cases carry ground-glass opacities in the lower lung zones", "[cxr_synth]") {
    // The same patient with and without the finding: brighter lower zones, unchanged upper zones.
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
        CAPTURE(seed);
        Rng rng(seed);
        CxrCase c = draw_cxr_case(rng, true);
        const Image covid = render_cxr(c, 96);
        c.finding = Finding::None;
        const Image clear = render_cxr(c, 96);
        CHECK(lower_zones(covid) > lower_zones(clear) + 2);
        CHECK(std::abs(upper_zones(covid) - upper_zones(clear)) < 0.5);
    }
    // Across different patients the class signal is still there on average.
    double covid_lower = 0, control_lower = 0;
    for (std::uint64_t seed = 100; seed < 116; ++seed) {
        covid_lower += lower_zones(synth(seed, true)) / 16;
        control_lower += lower_zones(synth(seed + 1000, false)) / 16;
    }
    CHECK(covid_lower > control_lower + 3);
}

TEST_CASE("each degradation has its measurable effect", "[degrade]") {
    const ImageF clean = to_float(synth(3, false, 96));
    const double hf = high_frequency(clean), m = mean(clean);
    Rng rng(1);
    CHECK(high_frequency(gaussian_noise(clean, 8, 0.5, rng)) > hf + 30);
    CHECK(high_frequency(poisson_noise(clean, 100, 0.5, rng)) > hf + 30);
    CHECK(high_frequency(gaussian_blur(clean, 1.5, 1.5, 0)) < 0.5 * hf);
    CHECK(high_frequency(gaussian_blur(clean, 2.5, 0.5, 0.7)) < 0.7 * hf);
    CHECK(high_frequency(motion_blur(clean, 7, 0.3)) < 0.7 * hf);
    CHECK(high_frequency(down_up(clean, 3)) < 0.7 * hf);
    CHECK(mean(exposure(clean, 0.6, 1.0)) < m - 20);
    CHECK(mean(exposure(clean, 1.5, 1.0)) > m + 20);
    CHECK(mean(exposure(clean, 1.0, 1.5)) < m - 5);  // gamma > 1 darkens the midtones
    const ImageF flat = reduce_contrast(clean, 0.5, 30, 200);
    CHECK(stddev(flat) < 0.55 * stddev(clean));
    CHECK(*std::min_element(flat.values.begin(), flat.values.end()) >= 30);
    CHECK(*std::max_element(flat.values.begin(), flat.values.end()) <= 200);

    // Grid lines along y (angle pi/2): every column constant, the pattern repeating every `period` columns,
    // darkening by up to `depth`.
    ImageF gray(64, 64, 3);
    std::fill(gray.values.begin(), gray.values.end(), 128.0f);
    const ImageF grid = grid_lines(gray, 4, std::acos(0.0), 0.2);
    for (int x = 0; x < 60; ++x) {
        CHECK(grid.at(x, 37, 0) == Approx(grid.at(x, 0, 0)).margin(1e-3));
        CHECK(grid.at(x + 4, 0, 0) == Approx(grid.at(x, 0, 0)).margin(1e-3));
    }
    CHECK(*std::min_element(grid.values.begin(), grid.values.end()) == Approx(128 * 0.8).margin(1e-3));
    CHECK(*std::max_element(grid.values.begin(), grid.values.end()) == Approx(128).margin(1e-3));

    // JPEG: the encoder writes a valid JPEG that decodes; the round trip changes the image a little.
    const std::string jpeg = encode_jpeg(to_uint8(clean), 20);
    CHECK(decode_image(jpeg, "q20.jpg").width == 96);
    const ImageF compressed = jpeg_roundtrip(clean, 20);
    double err = 0;
    for (std::size_t i = 0; i < clean.values.size(); ++i)
        err += std::abs(compressed.values[i] - clean.values[i]);
    err /= static_cast<double>(clean.values.size());
    CHECK(err > 0.3);
    CHECK(err < 8);

    // The noise variance varies over the image: compare the noise in the left and right halves of a flat
    // image, over several fields.
    double largest_ratio = 1;
    for (int trial = 0; trial < 4; ++trial) {
        const ImageF noisy = gaussian_noise(gray, 10, 0.6, rng);
        double left = 0, right = 0;
        for (int y = 0; y < 64; ++y)
            for (int x = 0; x < 32; ++x) {
                left += (noisy.at(x, y, 0) - 128) * (noisy.at(x, y, 0) - 128);
                right += (noisy.at(x + 32, y, 0) - 128) * (noisy.at(x + 32, y, 0) - 128);
            }
        largest_ratio = std::max(largest_ratio, std::max(left / right, right / left));
    }
    CHECK(largest_ratio > 1.3);
}

TEST_CASE("blur kernels have the requested spread, orientation and unit sum", "[degrade]") {
    // The response to a single bright pixel is the kernel; its second moments are its variances.
    ImageF impulse(41, 41, 3);
    for (int c = 0; c < 3; ++c)
        impulse.at(20, 20, c) = 1000;
    auto moments = [](const ImageF& im) {
        double sum = 0, xx = 0, yy = 0, xy = 0;
        for (int y = 0; y < im.height; ++y)
            for (int x = 0; x < im.width; ++x) {
                const double v = im.at(x, y, 1), dx = x - 20, dy = y - 20;
                sum += v;
                xx += v * dx * dx;
                yy += v * dy * dy;
                xy += v * dx * dy;
            }
        return std::array<double, 4>{sum, xx / sum, yy / sum, xy / sum};
    };
    const auto iso = moments(gaussian_blur(impulse, 2.0, 2.0, 0));
    CHECK(iso[0] == Approx(1000).epsilon(1e-5));
    CHECK(iso[1] == Approx(4.0).epsilon(0.03));
    CHECK(iso[2] == Approx(4.0).epsilon(0.03));
    // Major axis along x: the elliptical 3-sigma cut trims the variances by a few percent.
    const auto aniso = moments(gaussian_blur(impulse, 3.0, 1.0, 0));
    CHECK(aniso[0] == Approx(1000).epsilon(1e-5));
    CHECK(aniso[1] == Approx(9.0).epsilon(0.1));
    CHECK(aniso[2] == Approx(1.0).epsilon(0.1));
    // Rotated by 45 degrees the spread lies on the diagonal.
    const auto diagonal = moments(gaussian_blur(impulse, 3.0, 1.0, std::acos(0.0) / 2));
    CHECK(diagonal[3] == Approx((9.0 - 1.0) / 2).epsilon(0.1));
    // A horizontal motion of 9 pixels: a line with variance about 9^2 / 12 along x, none along y.
    const auto motion = moments(motion_blur(impulse, 9, 0));
    CHECK(motion[0] == Approx(1000).epsilon(1e-5));
    CHECK(motion[1] == Approx(81.0 / 12).epsilon(0.15));
    CHECK(motion[2] < 0.3);
}

TEST_CASE("random degradation mixes are fixed by the seed and keep gray images gray", "[degrade]") {
    const ImageF clean = to_float(synth(4, true, 64));
    std::set<std::string> recipes;
    for (std::uint64_t seed = 0; seed < 8; ++seed) {
        Rng r1(seed), r2(seed);
        const Degraded a = degrade(clean, r1), b = degrade(clean, r2);
        CHECK(a.image.values == b.image.values);
        CHECK(a.recipe == b.recipe);
        CHECK(a.image.values != clean.values);
        CHECK(channels_equal(a.image));
        CHECK(std::count(a.recipe.begin(), a.recipe.end(), '>') >= 1);  // at least two operations
        recipes.insert(a.recipe);
    }
    CHECK(recipes.size() == 8);
}

TEST_CASE("the synthetic dataset has the authors' layout, both classes and clean test originals",
          "[dataset_maker]") {
    TempDir dir;
    const DatasetCounts c = make_synthetic_dataset(dir.str(), 6, 4, 4, 48, 0.5, 9);
    CHECK(c.train_a_covid == 3);
    CHECK(c.train_a_control == 3);
    CHECK(c.train_b_covid == 2);
    CHECK(c.test_control == 2);
    const std::vector<Sample> a = list_domain(dir.str(), "trainA"), b = list_domain(dir.str(), "trainB"),
                              test = list_domain(dir.str(), "testA"),
                              clean = list_domain(dir.str(), "testA_clean");
    CHECK(a.size() == 6);
    CHECK(b.size() == 4);
    CHECK(a[0].name == "covid_0001.png");
    CHECK(a[0].label == 1);
    CHECK(a[5].name == "normal_0003.png");
    CHECK(a[5].label == 0);
    int covid_b = 0;
    for (const Sample& s : b)
        covid_b += s.label;
    CHECK(covid_b == 2);
    REQUIRE(test.size() == clean.size());
    for (std::size_t i = 0; i < test.size(); ++i) {
        CHECK(test[i].name == clean[i].name);
        CHECK(read_image(test[i].path).pixels != read_image(clean[i].path).pixels);
    }
    // trainB holds other patients than trainA.
    CHECK(read_image(b[0].path).pixels != read_image(clean[0].path).pixels);
    const std::string manifest = read_file(dir.file("manifest.csv"));
    CHECK_THAT(manifest, Contains("folder,file,finding,degradation\ntrainA,covid_0001.png,covid,\""));

    // The same seed writes the same files; an existing dataset is never mixed into.
    TempDir again;
    make_synthetic_dataset(again.str(), 6, 4, 4, 48, 0.5, 9);
    CHECK(read_file(again.file("trainA/normal_0002.png")) == read_file(dir.file("trainA/normal_0002.png")));
    CHECK(read_file(again.file("manifest.csv")) == manifest);
    CHECK_THROWS_WITH(make_synthetic_dataset(dir.str(), 1, 1, 1, 48, 0.5, 9),
                      Contains("already holds files"));
    CHECK_THROWS_WITH(make_synthetic_dataset(again.str() + "/x", 1, 1, 1, 48, 1.5, 9),
                      Contains("covid_fraction"));
    CHECK_THROWS_WITH(make_synthetic_dataset("", 1, 1, 1, 48, 0.5, 9), Contains("no output folder"));
}

TEST_CASE("degrade_folder writes a degraded PNG for every image, skipping undecodable ones",
          "[dataset_maker]") {
    TempDir dir;
    fs::create_directories(dir.file("in/sub"));
    write_png(dir.file("in/one.png"), synth(1, false, 32));
    write_file_atomic(dir.file("in/sub/two.jpg"), encode_jpeg(synth(2, true, 32), 90));
    write_file_atomic(dir.file("in/broken.png"), "nope");
    const DegradeFolderResult r = degrade_folder(dir.file("in"), dir.file("out"), 5);
    CHECK(r.written == 2);
    CHECK(r.skipped == 1);
    CHECK(read_image(dir.file("out/sub/two.png")).width == 32);
    CHECK(read_image(dir.file("out/one.png")).pixels != synth(1, false, 32).pixels);
    CHECK_THAT(read_file(dir.file("out/degradations.csv")), Contains("\"sub/two.png\""));
    CHECK_THROWS_WITH(degrade_folder(dir.file("in"), dir.file("in"), 5), Contains("input folder"));
    write_png(dir.file("in/sub/two.png"), synth(3, false, 32));
    CHECK_THROWS_WITH(degrade_folder(dir.file("in"), dir.file("out2"), 5), Contains("would both be written"));
}
