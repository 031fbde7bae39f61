// Training and test loaders: decoding and augmentation run on a background thread that keeps a few
// batches ready, and everything random derives from the seed, so the batches are the same on every run
// whatever the thread timing. A file that cannot be decoded is reported once on stderr (name and reason),
// counted, and replaced by the next file in the order; only when every file of a folder fails is it an error.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/prefetch.h"
#include "engine/tensor.h"

namespace r2c {

struct LoaderOptions {
    int batch_size = 1;
    int load_size = 286;  // training images are resized to load_size x load_size ...
    int crop_size = 256;  // ... and cropped at random to crop_size x crop_size; test images resized to it
    std::uint64_t seed = 0;
    std::int64_t first_epoch = 0;  // training: the epoch the first batch belongs to (for resuming)
    int prefetch = 4;              // prepared batches kept waiting
    std::int64_t max_pixels = kDefaultMaxPixels;
};

struct Batch {
    std::int64_t epoch = 0;
    std::int64_t iteration = 0;        // within the epoch
    Tensor a, b;                       // float32 [B, 3, crop, crop] in [-1, 1]
    Tensor label_a, label_b;           // one-hot float32 [B, 2]; column 1 is COVID-19
    std::vector<std::string> names_a;  // Sample::name of each image
    std::vector<std::string> names_b;
};

// Bad files seen by one loader: each reported once and counted.
class DecodeFailures {
  public:
    // Reports `why` on stderr and counts `path` the first time it is recorded.
    void record(const std::string& path, const std::string& why);
    bool known(const std::string& path) const { return bad_.count(path) > 0; }
    std::int64_t count() const { return count_.load(); }

  private:
    std::set<std::string> bad_;  // touched by the producer thread only
    std::atomic<std::int64_t> count_{0};
};

// Unpaired training batches from domains A and B. An epoch has max(|A|, |B|) / batch_size iterations
// (remainder dropped); each domain is visited in a random order per epoch, and the shorter one is cycled
// with a new random order for every pass. Per image: decode, left-right flip with probability 1/2, bilinear
// resize to load_size, random crop_size crop. Epochs follow one another without end, from first_epoch.
class TrainLoader {
  public:
    TrainLoader(std::vector<Sample> a, std::vector<Sample> b, const LoaderOptions& options);

    std::int64_t iterations_per_epoch() const { return iterations_; }
    Batch next();  // rethrows a failure of the background thread (e.g. every file of a domain is bad)
    std::int64_t skipped_files() const { return failures_.count(); }

  private:
    void produce(const std::function<bool(Batch)>& emit);

    std::vector<Sample> a_, b_;
    LoaderOptions options_;
    std::int64_t iterations_;
    DecodeFailures failures_;
    Prefetcher<Batch> prefetcher_;  // last: its thread uses the members above
};

struct TestBatch {
    Tensor images;  // float32 [B, 3, crop, crop] in [-1, 1]
    Tensor labels;  // one-hot float32 [B, 2]
    std::vector<std::string> names;
};

// The files in listing order, each resized to crop_size x crop_size; the last batch may be smaller.
// Undecodable files are skipped (and counted), so a batch may hold images from further on.
class TestLoader {
  public:
    TestLoader(std::vector<Sample> files, const LoaderOptions& options);

    std::optional<TestBatch> next();  // nullopt after the last file
    std::int64_t skipped_files() const { return failures_.count(); }

  private:
    void produce(const std::function<bool(TestBatch)>& emit);

    std::vector<Sample> files_;
    LoaderOptions options_;
    DecodeFailures failures_;
    Prefetcher<TestBatch> prefetcher_;
};

}  // namespace r2c
