// Transforms (bilinear resize against hand-computed values, the antialiased shrink, flip, crop, the [-1, 1]
// tensor conversion) and dataset loading: folder layout errors, labels from paths, epoch length and
// cycling, determinism per seed, undecodable files skipped and counted, and 1 x 1 images through the
// loaders and the degradations.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "data/dataset.h"
#include "data/degrade.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "data/transform.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "tests/support.h"

using namespace r2c;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

ImageF from_rows(const std::vector<std::vector<float>>& rows) {
    ImageF im(static_cast<int>(rows[0].size()), static_cast<int>(rows.size()), 1);
    for (int y = 0; y < im.height; ++y)
        for (int x = 0; x < im.width; ++x)
            im.at(x, y, 0) = rows[y][x];
    return im;
}

std::vector<float> plane(const ImageF& im) {
    return im.values;
}

// A small RGB image whose pixels encode `id`, so a loaded tensor can be traced back to its file.
Image tagged_image(int id, int w = 20, int h = 16) {
    Image im(w, h, 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            im.at(x, y, 0) = static_cast<std::uint8_t>(id * 20);
            im.at(x, y, 1) = static_cast<std::uint8_t>(x * 10);
            im.at(x, y, 2) = static_cast<std::uint8_t>(y * 10);
        }
    return im;
}

void write_images(const TempDir& dir, const std::string& folder, const std::vector<std::string>& names) {
    int id = 0;
    for (const std::string& n : names)
        write_png(dir.new_file(folder + "/" + n), tagged_image(++id));
}

std::vector<std::string> names_of(const std::vector<Sample>& s) {
    std::vector<std::string> out;
    for (const Sample& x : s)
        out.push_back(x.name);
    return out;
}

LoaderOptions small_options(int batch, std::uint64_t seed) {
    LoaderOptions o;
    o.batch_size = batch;
    o.load_size = 12;
    o.crop_size = 8;
    o.seed = seed;
    return o;
}

}  // namespace

TEST_CASE("bilinear resize matches TensorFlow's half-pixel-centre sampling", "[transform]") {
    // Up 2 -> 4: samples at -0.25, 0.25, 0.75, 1.25; outside the image the edge pixel repeats.
    CHECK(plane(resize_bilinear(from_rows({{0, 100}}), 4, 1)) == std::vector<float>{0, 25, 75, 100});
    // Down 4 -> 2: samples at 0.5 and 2.5, no antialiasing.
    CHECK(plane(resize_bilinear(from_rows({{0, 10, 20, 30}}), 2, 1)) == std::vector<float>{5, 25});
    // 2x2 -> 3x3: samples at -1/6, 1/2, 7/6 on both axes.
    CHECK(plane(resize_bilinear(from_rows({{0, 60}, {120, 180}}), 3, 3)) ==
          std::vector<float>{0, 30, 60, 60, 90, 120, 120, 150, 180});
    // 3 -> 2: samples at 0.25 and 1.75 (weights in float as TF computes them).
    const std::vector<float> down = plane(resize_bilinear(from_rows({{0, 40, 80}}), 2, 1));
    CHECK(down[0] == Approx(10).epsilon(1e-6));
    CHECK(down[1] == Approx(70).epsilon(1e-6));
    // Same size: the identity.
    const ImageF same = from_rows({{1, 2, 3}, {4, 5, 6}});
    CHECK(plane(resize_bilinear(same, 3, 2)) == same.values);
    CHECK_THROWS_WITH(resize_bilinear(same, 0, 2), Contains("resize_bilinear"));
}

TEST_CASE("the antialiased resize averages what a large shrink would skip", "[transform]") {
    // Columns alternating 0 and 200 over a vertical ramp, shrunk 3x across: bilinear alone samples every
    // third column (aliasing into new stripes); halving first averages each pair. The rows, not shrunk,
    // keep their values.
    ImageF stripes(48, 6, 1);
    for (int y = 0; y < 6; ++y)
        for (int x = 0; x < 48; ++x)
            stripes.at(x, y, 0) = (x % 2 == 0 ? 0.0f : 200.0f) + 10.0f * y;
    const std::vector<float> aliased = plane(resize_bilinear(stripes, 16, 6));
    CHECK(*std::min_element(aliased.begin(), aliased.end()) == 0.0f);
    CHECK(*std::max_element(aliased.begin(), aliased.end()) == 250.0f);
    const ImageF smooth = resize_antialiased(stripes, 16, 6);
    REQUIRE(smooth.width == 16);
    REQUIRE(smooth.height == 6);
    for (int y = 0; y < 6; ++y)
        for (int x = 0; x < 16; ++x)
            CHECK(smooth.at(x, y, 0) == Approx(100 + 10 * y).margin(1e-3));
    // Shrinking by less than 2x is resize_bilinear itself.
    const ImageF rows = from_rows({{0, 40, 80}, {120, 160, 200}});
    CHECK(plane(resize_antialiased(rows, 2, 2)) == plane(resize_bilinear(rows, 2, 2)));
    CHECK_THROWS_WITH(resize_antialiased(rows, 0, 2), Contains("resize_antialiased"));
}

TEST_CASE("flip and crop move the right pixels", "[transform]") {
    const ImageF im = from_rows({{1, 2, 3}, {4, 5, 6}});
    CHECK(plane(flip_horizontal(im)) == std::vector<float>{3, 2, 1, 6, 5, 4});
    CHECK(plane(crop(im, 1, 0, 2, 2)) == std::vector<float>{2, 3, 5, 6});
    CHECK(plane(crop(im, 0, 1, 3, 1)) == std::vector<float>{4, 5, 6});
    CHECK_THROWS_WITH(crop(im, 2, 0, 2, 2), Contains("does not fit"));
}

TEST_CASE("images become [-1, 1] NCHW tensors and come back exactly", "[transform]") {
    std::vector<ImageF> batch;
    std::vector<Image> originals;
    for (int i = 0; i < 2; ++i) {
        Image im(5, 3, 3);
        for (std::size_t k = 0; k < im.pixels.size(); ++k)
            im.pixels[k] = static_cast<std::uint8_t>((k * 37 + i * 101) % 256);
        originals.push_back(im);
        batch.push_back(to_float(im));
    }
    originals[0].at(0, 0, 0) = 0;
    originals[0].at(1, 0, 0) = 255;
    originals[0].at(2, 0, 0) = 51;
    batch[0] = to_float(originals[0]);
    const Tensor t = images_to_tensor(batch);
    REQUIRE(t.shape() == Shape{2, 3, 3, 5});
    const float* p = t.data<float>();
    CHECK(p[0] == -1.0f);
    CHECK(p[1] == 1.0f);
    CHECK(p[2] == Approx(-0.6).epsilon(1e-6));
    // Channel-major layout: element [1, 2, 1, 3] is image 1, channel 2, row 1, column 3.
    CHECK(p[((1 * 3 + 2) * 3 + 1) * 5 + 3] == Approx(originals[1].at(3, 1, 2) / 255.0 * 2 - 1).epsilon(1e-6));
    const std::vector<Image> back = tensor_to_images(t);
    REQUIRE(back.size() == 2);
    CHECK(back[0].pixels == originals[0].pixels);
    CHECK(back[1].pixels == originals[1].pixels);

    // Out-of-range values are clamped both ways.
    ImageF wild(1, 1, 3);
    wild.values = {-20, 300, 127.5f};
    const Tensor w = images_to_tensor({wild});
    CHECK(w.to_vector() == std::vector<double>{-1, 1, 0});
    const Tensor beyond = Tensor::from_vector({-3, 3, 0}, {1, 3, 1, 1});
    CHECK(tensor_to_images(beyond)[0].pixels == std::vector<std::uint8_t>{0, 255, 128});
    CHECK_THROWS_WITH(images_to_tensor({wild, ImageF(2, 1, 3)}), Contains("image 1"));
}

TEST_CASE("dataset folders: recursive sorted listing, labels from the path, clear errors", "[dataset]") {
    TempDir dir;
    write_images(dir, "trainA",
                 {"normal_2.png", "covid_1.PNG", "sub/covid/x.jpeg", "COVID_3.png", "b/normal.jpg"});
    write_file_atomic(dir.new_file("trainA/readme.txt"), "not an image");
    const std::vector<Sample> a = list_domain(dir.str(), "trainA");
    CHECK(names_of(a) == std::vector<std::string>{"COVID_3.png", "b/normal.jpg", "covid_1.PNG",
                                                  "normal_2.png", "sub/covid/x.jpeg"});
    // The authors' test is a case-sensitive "covid" in the path.
    CHECK(a[0].label == 0);
    CHECK(a[1].label == 0);
    CHECK(a[2].label == 1);
    CHECK(a[3].label == 0);
    CHECK(a[4].label == 1);
    CHECK(a[2].path == (fs::path(dir.str()) / "trainA" / "covid_1.PNG").string());

    // Only the path below the domain folder counts: a parent folder named "covid..." labels nothing.
    write_images(dir, "covid-study/trainB", {"normal_1.png"});
    CHECK(list_domain(dir.str() + "/covid-study", "trainB")[0].label == 0);

    CHECK_THROWS_WITH(list_domain(dir.str(), "testA"), Contains("testA") && Contains("does not exist"));
    fs::create_directories(dir.str() + "/trainB/empty_sub");
    write_file_atomic(dir.new_file("trainB/notes.txt"), "x");
    CHECK_THROWS_WITH(list_domain(dir.str(), "trainB"),
                      Contains("trainB") && Contains("holds no image files"));
    CHECK_THROWS_WITH(list_domain(dir.str(), "trainA/readme.txt"), Contains("is not a folder"));
}

TEST_CASE("training batches: epoch length, shapes, labels, cycling of the shorter domain", "[loader]") {
    TempDir dir;
    write_images(dir, "trainA",
                 {"covid_1.png", "covid_2.png", "normal_1.png", "normal_2.png", "normal_3.png"});
    write_images(dir, "trainB", {"covid_1.png", "normal_1.png", "normal_2.png"});
    TrainLoader loader(list_domain(dir.str(), "trainA"), list_domain(dir.str(), "trainB"),
                       small_options(2, 7));
    REQUIRE(loader.iterations_per_epoch() == 2);  // max(5, 3) // 2

    std::vector<std::string> seen_a, seen_b;
    for (std::int64_t it = 0; it < 2; ++it) {
        const Batch b = loader.next();
        CHECK(b.epoch == 0);
        CHECK(b.iteration == it);
        CHECK(b.a.shape() == Shape{2, 3, 8, 8});
        CHECK(b.b.shape() == Shape{2, 3, 8, 8});
        CHECK(b.label_a.shape() == Shape{2, 2});
        const std::vector<double> la = b.label_a.to_vector(), lb = b.label_b.to_vector();
        for (int i = 0; i < 2; ++i) {
            const bool covid_a = b.names_a[i].find("covid") != std::string::npos;
            CHECK(la[i * 2 + 1] == (covid_a ? 1.0 : 0.0));
            CHECK(la[i * 2] + la[i * 2 + 1] == 1.0);
            CHECK(lb[i * 2 + 1] == (b.names_b[i].find("covid") != std::string::npos ? 1.0 : 0.0));
        }
        for (const float v : std::vector<float>(b.a.data<float>(), b.a.data<float>() + b.a.numel())) {
            REQUIRE(v >= -1.0f);
            REQUIRE(v <= 1.0f);
        }
        seen_a.insert(seen_a.end(), b.names_a.begin(), b.names_a.end());
        seen_b.insert(seen_b.end(), b.names_b.begin(), b.names_b.end());
    }
    // The longer domain is visited without repeats; the shorter one is cycled: all 3 before any repeat.
    CHECK(std::set<std::string>(seen_a.begin(), seen_a.end()).size() == 4);
    CHECK(std::set<std::string>(seen_b.begin(), seen_b.begin() + 3).size() == 3);
    CHECK(loader.next().epoch == 1);
    CHECK(loader.skipped_files() == 0);

    CHECK_THROWS_WITH(
        TrainLoader(list_domain(dir.str(), "trainA"), list_domain(dir.str(), "trainB"), small_options(6, 0)),
        Contains("fewer than the batch size 6"));
    LoaderOptions bad = small_options(1, 0);
    bad.crop_size = 20;
    CHECK_THROWS_WITH(TrainLoader(list_domain(dir.str(), "trainA"), list_domain(dir.str(), "trainB"), bad),
                      Contains("crop_size"));
}

TEST_CASE("training batches are fixed by the seed and the epoch", "[loader]") {
    TempDir dir;
    write_images(dir, "trainA", {"a1.png", "a2.png", "a3.png", "a4.png"});
    write_images(dir, "trainB", {"b1.png", "b2.png", "b3.png"});
    const auto a = list_domain(dir.str(), "trainA"), b = list_domain(dir.str(), "trainB");
    auto run = [&](std::uint64_t seed, std::int64_t first_epoch) {
        LoaderOptions o = small_options(1, seed);
        o.first_epoch = first_epoch;
        o.prefetch = 2;
        TrainLoader loader(a, b, o);
        std::vector<std::vector<double>> values;
        std::vector<std::string> names;
        for (int i = 0; i < 8; ++i) {
            const Batch batch = loader.next();
            values.push_back(batch.a.to_vector());
            values.push_back(batch.b.to_vector());
            names.push_back(batch.names_a[0] + "|" + batch.names_b[0]);
        }
        return std::make_pair(values, names);
    };
    const auto first = run(3, 0);
    CHECK(run(3, 0) == first);
    CHECK(run(4, 0) != first);
    // Resuming at epoch 1 gives what the uninterrupted run gave for epoch 1 (iterations 4..7).
    const auto resumed = run(3, 1);
    CHECK(std::vector<std::string>(resumed.second.begin(), resumed.second.begin() + 4) ==
          std::vector<std::string>(first.second.begin() + 4, first.second.end()));
    CHECK(std::vector<std::vector<double>>(resumed.first.begin(), resumed.first.begin() + 8) ==
          std::vector<std::vector<double>>(first.first.begin() + 8, first.first.end()));
}

TEST_CASE("an undecodable file is skipped, reported once and counted", "[loader]") {
    TempDir dir;
    write_images(dir, "trainA", {"a1.png", "a2.png"});
    write_file_atomic(dir.new_file("trainA/broken.png"), "\x89PNG\r\n\x1a\n but nothing after");
    write_images(dir, "trainB", {"b1.png", "b2.png", "b3.png", "b4.png"});
    TrainLoader loader(list_domain(dir.str(), "trainA"), list_domain(dir.str(), "trainB"),
                       small_options(1, 1));
    REQUIRE(loader.iterations_per_epoch() == 4);
    for (int i = 0; i < 12; ++i)
        CHECK(loader.next().names_a[0] != "broken.png");  // 3 epochs: met every pass
    CHECK(loader.skipped_files() == 1);

    // Every file of a domain bad: an error naming the folder.
    write_file_atomic(dir.new_file("bad/trainA/x.png"), "junk");
    write_file_atomic(dir.new_file("bad/trainA/y.jpg"), "");
    write_images(dir, "bad/trainB", {"b1.png"});
    TrainLoader hopeless(list_domain(dir.str() + "/bad", "trainA"), list_domain(dir.str() + "/bad", "trainB"),
                         small_options(1, 0));
    CHECK_THROWS_WITH(hopeless.next(), Contains("none of the 2 image files") && Contains("trainA"));
}

TEST_CASE("1 x 1 images pass through the loaders and every degradation", "[loader][degrade]") {
    TempDir dir;
    Image one(1, 1, 3);
    one.pixels = {200, 100, 50};
    for (const char* folder : {"trainA", "trainB", "testA"})
        write_png(dir.new_file(std::string(folder) + "/covid_1.png"), one);
    TrainLoader train(list_domain(dir.str(), "trainA"), list_domain(dir.str(), "trainB"),
                      small_options(1, 0));
    const Batch b = train.next();
    REQUIRE(b.a.shape() == Shape{1, 3, 8, 8});
    // Resized, every pixel is the one pixel: 200 -> 200 / 127.5 - 1 in the [-1, 1] tensor.
    CHECK(b.a.to_vector().front() == Approx(200 / 127.5 - 1).margin(1e-6));
    TestLoader test(list_domain(dir.str(), "testA"), small_options(1, 0));
    CHECK(test.next()->images.shape() == Shape{1, 3, 8, 8});
    CHECK(train.skipped_files() + test.skipped_files() == 0);

    // Blur kernels, JPEG blocks and resolution loss are all larger than the image; any seed picks a mix.
    const ImageF f = to_float(one);
    for (std::uint64_t seed = 0; seed < 40; ++seed) {
        Rng rng(seed);
        const Degraded d = degrade(f, rng);
        CAPTURE(d.recipe);
        REQUIRE(d.image.width == 1);
        REQUIRE(d.image.height == 1);
        for (const float v : d.image.values) {
            CHECK(v >= 0.0f);
            CHECK(v <= 255.0f);
        }
    }
}

TEST_CASE("test batches keep the listing order and resize to crop_size", "[loader]") {
    TempDir dir;
    write_images(dir, "testA",
                 {"covid_1.png", "covid_2.png", "normal_1.png", "normal_2.png", "normal_3.png"});
    write_file_atomic(dir.new_file("testA/covid_0_broken.png"), "garbage");
    LoaderOptions o = small_options(2, 0);
    TestLoader loader(list_domain(dir.str(), "testA"), o);
    std::vector<std::string> names;
    std::vector<std::int64_t> sizes;
    while (std::optional<TestBatch> b = loader.next()) {
        CHECK(b->images.dim(1) == 3);
        CHECK(b->images.dim(2) == 8);
        CHECK(b->images.dim(3) == 8);
        CHECK(b->labels.shape() == Shape{b->images.dim(0), 2});
        sizes.push_back(b->images.dim(0));
        names.insert(names.end(), b->names.begin(), b->names.end());
    }
    CHECK(names == std::vector<std::string>{"covid_1.png", "covid_2.png", "normal_1.png", "normal_2.png",
                                            "normal_3.png"});
    CHECK(sizes == std::vector<std::int64_t>{2, 2, 1});
    CHECK(loader.skipped_files() == 1);
    CHECK_FALSE(loader.next().has_value());
}
