#include "data/loader.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "data/seed.h"
#include "data/transform.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace r2c {

namespace {

// Purposes of the derived random streams.
enum Stream : std::uint64_t { kOrder = 1, kAugment = 2 };

Tensor one_hot(const std::vector<int>& labels) {
    const auto n = static_cast<std::int64_t>(labels.size());
    Tensor t = Tensor::zeros({n, 2}, DType::F32);
    for (std::int64_t i = 0; i < n; ++i)
        t.data<float>()[i * 2 + labels[static_cast<std::size_t>(i)]] = 1.0f;
    return t;
}

// The folder a listing came from, for messages.
std::string folder_of(const Sample& s) {
    return s.path.size() > s.name.size() + 1 ? s.path.substr(0, s.path.size() - s.name.size() - 1) : s.path;
}

[[noreturn]] void all_failed(const std::vector<Sample>& files) {
    throw Error(detail::concat("none of the ", files.size(), " image files in '", folder_of(files.front()),
                               "' could be decoded (the reasons are on stderr)"));
}

// Decodes `s`; on failure records it and returns nothing.
std::optional<Image> try_decode(const Sample& s, std::int64_t max_pixels, DecodeFailures& failures) {
    try {
        return read_image(s.path, max_pixels);
    } catch (const Error& e) {
        failures.record(s.path, e.what());
        return std::nullopt;
    }
}

// Walks one domain for one epoch: a fresh seeded permutation per pass over the files, known bad files
// passed over, each failing file replaced by the next one in the order.
class DomainCursor {
  public:
    DomainCursor(const std::vector<Sample>& files, std::uint64_t order_seed, std::int64_t max_pixels,
                 DecodeFailures& failures)
        : files_(files), order_seed_(order_seed), max_pixels_(max_pixels), failures_(failures) {}

    std::pair<const Sample*, Image> next() {
        for (;;) {
            const Sample& s = at(position_++);
            if (!failures_.known(s.path))
                if (std::optional<Image> im = try_decode(s, max_pixels_, failures_))
                    return {&s, std::move(*im)};
            if (std::all_of(files_.begin(), files_.end(),
                            [&](const Sample& f) { return failures_.known(f.path); }))
                all_failed(files_);
        }
    }

  private:
    const Sample& at(std::uint64_t position) {
        const std::uint64_t n = files_.size(), pass = position / n;
        if (pass != pass_ || order_.empty()) {
            order_.resize(n);
            for (std::uint64_t i = 0; i < n; ++i)
                order_[i] = i;
            Rng rng(derive_seed(order_seed_, {pass}));
            for (std::uint64_t i = n; i > 1; --i)
                std::swap(order_[i - 1], order_[rng.below(i)]);
            pass_ = pass;
        }
        return files_[order_[position % n]];
    }

    const std::vector<Sample>& files_;
    std::uint64_t order_seed_;
    std::int64_t max_pixels_;
    DecodeFailures& failures_;
    std::uint64_t position_ = 0;
    std::uint64_t pass_ = 0;
    std::vector<std::uint64_t> order_;
};

// Flip, resize and random crop as the authors' TensorFlow pipeline (tf.image.random_flip_left_right,
// tf.image.resize, tf.image.random_crop with an offset uniform over every position that fits).
ImageF augment(const Image& image, const LoaderOptions& o, Rng& rng) {
    ImageF f = to_float(image);
    if (rng.uniform() < 0.5) f = flip_horizontal(f);
    f = resize_bilinear(f, o.load_size, o.load_size);
    const auto span = static_cast<std::uint64_t>(o.load_size - o.crop_size + 1);
    const int y = static_cast<int>(rng.below(span));
    const int x = static_cast<int>(rng.below(span));
    return crop(f, x, y, o.crop_size, o.crop_size);
}

void check_options(const LoaderOptions& o) {
    R2C_CHECK(o.batch_size >= 1, "loader: batch size must be at least 1, got ", o.batch_size);
    R2C_CHECK(o.crop_size >= 1 && o.crop_size <= o.load_size,
              "loader: need 1 <= crop_size <= load_size, got ", o.crop_size, " and ", o.load_size);
    R2C_CHECK(o.prefetch >= 1, "loader: prefetch must be at least 1, got ", o.prefetch);
}

// Checked before the background thread starts, which must never see an empty domain.
std::int64_t epoch_length(const std::vector<Sample>& a, const std::vector<Sample>& b, int batch_size) {
    R2C_CHECK(!a.empty() && !b.empty(), "TrainLoader: domain ", a.empty() ? "A" : "B", " has no images");
    const std::size_t larger = std::max(a.size(), b.size());
    R2C_CHECK(larger >= static_cast<std::size_t>(batch_size), "TrainLoader: the larger domain has ", larger,
              " images, fewer than the batch size ", batch_size);
    return static_cast<std::int64_t>(larger) / batch_size;
}

}  // namespace

void DecodeFailures::record(const std::string& path, const std::string& why) {
    if (!bad_.insert(path).second) return;
    ++count_;
    std::cerr << ("warning: skipped: " + why + "\n") << std::flush;
}

TrainLoader::TrainLoader(std::vector<Sample> a, std::vector<Sample> b, const LoaderOptions& options)
    : a_(std::move(a)),
      b_(std::move(b)),
      options_((check_options(options), options)),
      iterations_(epoch_length(a_, b_, options.batch_size)),
      prefetcher_(static_cast<std::size_t>(options.prefetch),
                  [this](const std::function<bool(Batch)>& emit) { produce(emit); }) {}

Batch TrainLoader::next() {
    std::optional<Batch> b = prefetcher_.next();
    R2C_CHECK(b.has_value(), "TrainLoader: the background thread stopped");
    return std::move(*b);
}

void TrainLoader::produce(const std::function<bool(Batch)>& emit) {
    const LoaderOptions& o = options_;
    for (std::int64_t epoch = o.first_epoch;; ++epoch) {
        const auto e = static_cast<std::uint64_t>(epoch);
        DomainCursor cursor_a(a_, derive_seed(o.seed, {kOrder, e, 0}), o.max_pixels, failures_);
        DomainCursor cursor_b(b_, derive_seed(o.seed, {kOrder, e, 1}), o.max_pixels, failures_);
        for (std::int64_t it = 0; it < iterations_; ++it) {
            Batch batch;
            batch.epoch = epoch;
            batch.iteration = it;
            std::vector<ImageF> images_a, images_b;
            std::vector<int> labels_a, labels_b;
            for (int j = 0; j < o.batch_size; ++j) {
                const auto slot = static_cast<std::uint64_t>(it * o.batch_size + j);
                auto [sa, image_a] = cursor_a.next();
                auto [sb, image_b] = cursor_b.next();
                Rng rng_a(derive_seed(o.seed, {kAugment, e, 0, slot}));
                Rng rng_b(derive_seed(o.seed, {kAugment, e, 1, slot}));
                images_a.push_back(augment(image_a, o, rng_a));
                images_b.push_back(augment(image_b, o, rng_b));
                labels_a.push_back(sa->label);
                labels_b.push_back(sb->label);
                batch.names_a.push_back(sa->name);
                batch.names_b.push_back(sb->name);
            }
            batch.a = images_to_tensor(images_a);
            batch.b = images_to_tensor(images_b);
            batch.label_a = one_hot(labels_a);
            batch.label_b = one_hot(labels_b);
            if (!emit(std::move(batch))) return;
        }
    }
}

TestLoader::TestLoader(std::vector<Sample> files, const LoaderOptions& options)
    : files_(std::move(files)),
      options_((check_options(options), options)),
      prefetcher_(static_cast<std::size_t>(options.prefetch),
                  [this](const std::function<bool(TestBatch)>& emit) { produce(emit); }) {}

std::optional<TestBatch> TestLoader::next() {
    return prefetcher_.next();
}

void TestLoader::produce(const std::function<bool(TestBatch)>& emit) {
    const LoaderOptions& o = options_;
    std::size_t i = 0, emitted = 0;
    while (i < files_.size()) {
        TestBatch batch;
        std::vector<ImageF> images;
        std::vector<int> labels;
        while (images.size() < static_cast<std::size_t>(o.batch_size) && i < files_.size()) {
            const Sample& s = files_[i++];
            if (std::optional<Image> im = try_decode(s, o.max_pixels, failures_)) {
                images.push_back(resize_bilinear(to_float(*im), o.crop_size, o.crop_size));
                labels.push_back(s.label);
                batch.names.push_back(s.name);
            }
        }
        if (images.empty()) break;
        emitted += images.size();
        batch.images = images_to_tensor(images);
        batch.labels = one_hot(labels);
        if (!emit(std::move(batch))) return;
    }
    if (emitted == 0 && !files_.empty()) all_failed(files_);
}

}  // namespace r2c
