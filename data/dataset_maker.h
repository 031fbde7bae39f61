// Writing whole datasets in the authors' layout: a synthetic one from the procedural radiograph generator,
// and degraded copies of existing images. Work is spread over OpenMP threads; every image has its own
// random streams derived from the seed, so the output is the same whatever the thread count.
#pragma once

#include <cstdint>
#include <string>

namespace r2c {

struct SyntheticDatasetCounts {
    int train_a_covid = 0, train_a_normal = 0;
    int train_b_covid = 0, train_b_normal = 0;
    int test_covid = 0, test_normal = 0;
};

// Writes <out_dir>/trainA (degraded radiographs), trainB (clean ones, other anatomy draws), testA
// (degraded) and testA_clean (the clean original of every testA image under the same file name), each
// holding round(n * covid_fraction) COVID-19 images named covid_0001.png... and the rest named
// normal_0001.png...; plus manifest.csv (folder, file, finding, degradation applied). An existing non-empty
// trainA/trainB/testA/testA_clean is an error, so two datasets are never mixed.
SyntheticDatasetCounts make_synthetic_dataset(const std::string& out_dir, int n_train_a, int n_train_b,
                                              int n_test, int size, double covid_fraction,
                                              std::uint64_t seed);

struct DegradeFolderResult {
    int written = 0;
    int skipped = 0;  // files that could not be decoded (each reported on stderr)
};

// Degrades every image under in_dir (list_images: recursive, sorted) into out_dir at the same relative path
// with the extension replaced by .png, and writes out_dir/degradations.csv (file, degradation). Each file's
// random stream derives from the seed and its relative path, so adding files does not change the others.
DegradeFolderResult degrade_folder(const std::string& in_dir, const std::string& out_dir, std::uint64_t seed);

}  // namespace r2c
