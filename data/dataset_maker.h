// Writing whole datasets in the authors' layout: a synthetic one from the procedural radiograph generator,
// one from a labelled folder of real images, and degraded copies of existing images. Work is spread over
// OpenMP threads; every image has its own random streams derived from the seed, so the output is the same
// whatever the thread count.
#pragma once

#include <cstdint>
#include <string>

namespace r2c {

// Images per folder and class (testA_clean mirrors testA).
struct DatasetCounts {
    int train_a_covid = 0, train_a_control = 0;
    int train_b_covid = 0, train_b_control = 0;
    int test_covid = 0, test_control = 0;
};

// Writes <out_dir>/trainA (degraded radiographs), trainB (clean ones, other anatomy draws), testA
// (degraded) and testA_clean (the clean original of every testA image under the same file name), each
// holding round(n * covid_fraction) COVID-19 images named covid_0001.png... and the rest named
// normal_0001.png...; plus manifest.csv (folder, file, finding, degradation applied). An existing non-empty
// trainA/trainB/testA/testA_clean is an error, so two datasets are never mixed.
DatasetCounts make_synthetic_dataset(const std::string& out_dir, int n_train_a, int n_train_b, int n_test,
                                     int size, double covid_fraction, std::uint64_t seed);

struct FolderDatasetOptions {
    std::string folder;          // the images
    std::string labels_csv;      // their labels (data/labels_csv.h)
    std::string out_dir;         // gets trainA, trainB, testA, testA_clean, manifest.json
    double test_fraction = 0.2;  // share of each class held out for testing, in (0, 1)
    int size = 256;              // images become size x size (resize_antialiased); 0 keeps their sizes
    std::uint64_t seed = 0;
};

struct FolderDatasetResult {
    DatasetCounts counts;
    int skipped = 0;  // listed files that could not be decoded (each reported on stderr)
    int unknown = 0;  // rows labelled "unknown", left out
};

// The authors' layout from a labelled folder of real images (read_labelled_folder checks the whole CSV
// first). Files that do not decode are reported, counted, listed in the manifest and left out before the
// split. Each class, in file order, is shuffled by a permutation fixed by the seed and the class, then cut
// into round(n * test_fraction) test images and two halves of the rest (trainA gets the larger when the
// count is odd); so the folders hold disjoint sets of sources, each source at most once, in the class
// proportions of the input. trainA gets the blind degradation model's output, trainB the clean images,
// testA degraded images and testA_clean their clean originals under the same names. Images are resized
// (unless size is 0) before degradation, and each one's degradation draws on a stream derived from the
// seed and its file name. Files are named covid_0001.png... and control_0001.png... per folder (in file
// order), so the class rule of data/dataset.h gives back each image's class whatever its source path.
// manifest.json records the options, the counts, every written image (folder, file, source, CSV line,
// label, class, degradation) and every skipped file with the reason. An existing non-empty trainA, trainB,
// testA or testA_clean is an error, as is a split that leaves one of the folders empty.
FolderDatasetResult make_dataset_from_folder(const FolderDatasetOptions& options);

struct DegradeFolderResult {
    int written = 0;
    int skipped = 0;  // files that could not be decoded (each reported on stderr)
};

// Degrades every image under in_dir (list_images: recursive, sorted) into out_dir at the same relative path
// with the extension replaced by .png, and writes out_dir/degradations.csv (file, degradation). Each file's
// random stream derives from the seed and its relative path, so adding files does not change the others.
DegradeFolderResult degrade_folder(const std::string& in_dir, const std::string& out_dir, std::uint64_t seed);

}  // namespace r2c
