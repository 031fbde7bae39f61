// r2c make-data: a synthetic chest X-ray dataset in the authors' layout; r2c degrade: degraded copies of a
// folder of images (the "poor quality" domain made from clean images).
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

}  // namespace

const std::vector<OptionSpec>& make_data_options() {
    static const std::vector<OptionSpec> specs = {
        {"out", "output folder (gets trainA, trainB, testA, testA_clean, manifest.csv)", "", false, true},
        {"train_a", "degraded training images (domain A)", "400", false},
        {"train_b", "clean training images (domain B)", "400", false},
        {"test", "degraded test images (clean originals in testA_clean)", "200", false},
        {"size", "image side in pixels", "256", false},
        {"covid_fraction", "share of COVID-19 images in every folder", "0.5", false},
        {"seed", "random seed; the same seed gives the same dataset", "0", false},
    };
    return specs;
}

int cmd_make_data(const Args& args) {
    const std::string out = args.str("out");
    const auto start = std::chrono::steady_clock::now();
    const DatasetCounts c = make_synthetic_dataset(
        out, static_cast<int>(args.integer("train_a", 1, 1000000)),
        static_cast<int>(args.integer("train_b", 1, 1000000)),
        static_cast<int>(args.integer("test", 1, 1000000)), static_cast<int>(args.integer("size", 16, 8192)),
        args.real("covid_fraction", 0, 1), static_cast<std::uint64_t>(args.integer("seed", 0, kMaxSeed)));
    std::cout << "wrote " << out << " in " << seconds_since(start) << " s\n"
              << "  trainA       " << c.train_a_covid << " covid + " << c.train_a_control
              << " normal (degraded)\n"
              << "  trainB       " << c.train_b_covid << " covid + " << c.train_b_control
              << " normal (clean)\n"
              << "  testA        " << c.test_covid << " covid + " << c.test_control << " normal (degraded)\n"
              << "  testA_clean  the clean original of every testA image\n"
              << "  manifest.csv finding and degradation of every image\n";
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
