// r2c make-data: a chest X-ray dataset in the authors' layout, synthetic or from a labelled folder of real
// images; r2c degrade: degraded copies of a folder of images (the "poor quality" domain made from clean
// images).
#include <chrono>
#include <cstdint>
#include <iostream>
#include <limits>

#include "data/dataset_maker.h"
#include "tools/commands.h"

namespace r2c::cli {

namespace {

constexpr std::int64_t kMaxSeed = std::numeric_limits<std::int64_t>::max();

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void print_counts(const std::string& out, double seconds, const DatasetCounts& c, const char* control) {
    std::cout << "wrote " << out << " in " << seconds << " s\n"
              << "  trainA       " << c.train_a_covid << " covid + " << c.train_a_control << " " << control
              << " (degraded)\n"
              << "  trainB       " << c.train_b_covid << " covid + " << c.train_b_control << " " << control
              << " (clean)\n"
              << "  testA        " << c.test_covid << " covid + " << c.test_control << " " << control
              << " (degraded)\n"
              << "  testA_clean  the clean original of every testA image\n";
}

int make_data_from_folder(const Args& args, std::uint64_t seed) {
    for (const char* name : {"train_a", "train_b", "test", "covid_fraction"})
        if (args.given(name))
            throw UsageError(std::string("--") + name +
                             " is for synthetic datasets; with --from every labelled image is used and "
                             "--test_fraction sets the split");
    FolderDatasetOptions o;
    o.folder = args.str("from");
    o.labels_csv = args.given("labels") ? args.str("labels") : o.folder + "/labels.csv";
    o.out_dir = args.str("out");
    o.test_fraction = args.real("test_fraction", 0, 1);
    if (o.test_fraction <= 0 || o.test_fraction >= 1)
        throw UsageError("--test_fraction must be above 0 and below 1, got " + args.str("test_fraction"));
    o.size = static_cast<int>(args.integer("size", 0, 8192));
    if (o.size > 0 && o.size < 16)
        throw UsageError("--size must be 0 (keep each image's size) or in [16, 8192], got " +
                         args.str("size"));
    o.seed = seed;
    const auto start = std::chrono::steady_clock::now();
    const FolderDatasetResult r = make_dataset_from_folder(o);
    print_counts(o.out_dir, seconds_since(start), r.counts, "control");
    std::cout << "  manifest.json source, CSV line, label and degradation of every image\n";
    if (r.unknown > 0) std::cout << "  " << r.unknown << " row(s) labelled unknown left out\n";
    if (r.skipped > 0)
        std::cout << "  " << r.skipped
                  << " file(s) could not be decoded and were left out (see the warnings above and "
                     "manifest.json)\n";
    return 0;
}

}  // namespace

const std::vector<OptionSpec>& make_data_options() {
    static const std::vector<OptionSpec> specs = {
        {"out", "output folder (gets trainA, trainB, testA, testA_clean and a manifest)", "", false, true},
        {"from", "build from this folder of real images (see --labels) instead of synthetic ones", "", false},
        {"labels",
         "with --from: CSV with columns file and label (covid, normal, noncovid, control, unknown); "
         "default FROM/labels.csv",
         "", false},
        {"test_fraction",
         "with --from: share of each class held out for testA (the rest halved into trainA "
         "and trainB)",
         "0.2", false},
        {"train_a", "synthetic: degraded training images (domain A)", "400", false},
        {"train_b", "synthetic: clean training images (domain B)", "400", false},
        {"test", "synthetic: degraded test images (clean originals in testA_clean)", "200", false},
        {"size", "image side in pixels; with --from, 0 keeps each image's size", "256", false},
        {"covid_fraction", "synthetic: share of COVID-19 images in every folder", "0.5", false},
        {"seed", "random seed; the same seed gives the same dataset", "0", false},
    };
    return specs;
}

int cmd_make_data(const Args& args) {
    const std::uint64_t seed = static_cast<std::uint64_t>(args.integer("seed", 0, kMaxSeed));
    if (args.given("from")) return make_data_from_folder(args, seed);
    for (const char* name : {"labels", "test_fraction"})
        if (args.given(name)) throw UsageError(std::string("--") + name + " applies only with --from");
    const std::string out = args.str("out");
    const int train_a = static_cast<int>(args.integer("train_a", 1, 1000000));
    const int train_b = static_cast<int>(args.integer("train_b", 1, 1000000));
    const int test = static_cast<int>(args.integer("test", 1, 1000000));
    const int size = static_cast<int>(args.integer("size", 16, 8192));
    const double covid_fraction = args.real("covid_fraction", 0, 1);
    const auto start = std::chrono::steady_clock::now();
    const DatasetCounts c = make_synthetic_dataset(out, train_a, train_b, test, size, covid_fraction, seed);
    print_counts(out, seconds_since(start), c, "normal");
    std::cout << "  manifest.csv finding and degradation of every image\n";
    return 0;
}

const std::vector<OptionSpec>& degrade_options() {
    static const std::vector<OptionSpec> specs = {
        {"in", "folder of PNG/JPEG images (searched recursively)", "", false, true},
        {"out", "output folder: the same relative paths as PNG, plus degradations.csv", "", false, true},
        {"seed", "random seed", "0", false},
    };
    return specs;
}

int cmd_degrade(const Args& args) {
    const auto start = std::chrono::steady_clock::now();
    const DegradeFolderResult r = degrade_folder(
        args.str("in"), args.str("out"), static_cast<std::uint64_t>(args.integer("seed", 0, kMaxSeed)));
    std::cout << "degraded " << r.written << " images into " << args.str("out") << " in "
              << seconds_since(start) << " s";
    if (r.skipped > 0) std::cout << "; " << r.skipped << " could not be decoded (see the warnings above)";
    std::cout << "\n";
    return r.skipped > 0 ? 1 : 0;
}

}  // namespace r2c::cli
