#include "data/dataset_maker.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <vector>

#include "data/cxr_synth.h"
#include "data/dataset.h"
#include "data/degrade.h"
#include "data/seed.h"
#include "engine/atomic_file.h"
#include "engine/error.h"

namespace r2c {

namespace fs = std::filesystem;

namespace {

// Runs body(0..n-1) on the OpenMP threads; the first exception is rethrown once all have stopped.
void parallel_for(int n, const std::function<void(int)>& body) {
    std::exception_ptr error;
    std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; ++i) {
        if (failed.load()) continue;
        try {
            body(i);
        } catch (...) {
#pragma omp critical(r2c_dataset_maker_error)
            {
                if (!error) error = std::current_exception();
            }
            failed = true;
        }
    }
    if (error) std::rethrow_exception(error);
}

std::string csv_quote(const std::string& s) {
    std::string out = "\"";
    for (const char c : s)
        out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

void make_empty_folder(const fs::path& dir) {
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
        throw Error(
            "make_synthetic_dataset: '" + dir.string() +
            "' already holds files; remove it or choose another --out, so that datasets are not mixed");
    fs::create_directories(dir, ec);
    R2C_CHECK(!ec, "make_synthetic_dataset: cannot create '", dir.string(), "': ", ec.message());
}

// Random-stream purposes, per image.
enum Stream : std::uint64_t { kAnatomy = 1, kDegradation = 2, kFolderDegradation = 3 };
enum Split : std::uint64_t { kTrainA = 0, kTrainB = 1, kTest = 2 };

struct Job {
    Split split;
    bool covid;
    int index;  // within its split and class, from 1
    std::string file;
    std::string finding;
    std::string recipe;
};

std::string numbered(bool covid, int index) {
    char name[32];
    std::snprintf(name, sizeof name, "%s_%04d.png", covid ? "covid" : "normal", index);
    return name;
}

int covid_count(int n, double fraction) {
    return static_cast<int>(std::lround(n * fraction));
}

std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char c : s)
        h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

}  // namespace

SyntheticDatasetCounts make_synthetic_dataset(const std::string& out_dir, int n_train_a, int n_train_b,
                                              int n_test, int size, double covid_fraction,
                                              std::uint64_t seed) {
    R2C_CHECK(!out_dir.empty(), "make_synthetic_dataset: no output folder given");
    R2C_CHECK(n_train_a >= 1 && n_train_b >= 1 && n_test >= 1,
              "make_synthetic_dataset: every folder needs at least one "
              "image, got trainA ",
              n_train_a, ", trainB ", n_train_b, ", testA ", n_test);
    R2C_CHECK(size >= 16 && size <= 8192, "make_synthetic_dataset: size must be in [16, 8192], got ", size);
    R2C_CHECK(covid_fraction >= 0 && covid_fraction <= 1,
              "make_synthetic_dataset: covid_fraction must be in [0, 1], got ", covid_fraction);
    const fs::path root(out_dir);
    static const char* const kFolders[] = {"trainA", "trainB", "testA", "testA_clean"};
    for (const char* f : kFolders)
        make_empty_folder(root / f);

    SyntheticDatasetCounts counts;
    counts.train_a_covid = covid_count(n_train_a, covid_fraction);
    counts.train_a_normal = n_train_a - counts.train_a_covid;
    counts.train_b_covid = covid_count(n_train_b, covid_fraction);
    counts.train_b_normal = n_train_b - counts.train_b_covid;
    counts.test_covid = covid_count(n_test, covid_fraction);
    counts.test_normal = n_test - counts.test_covid;

    std::vector<Job> jobs;
    auto add = [&](Split split, int n_covid, int n_normal) {
        for (int i = 1; i <= n_covid; ++i)
            jobs.push_back({split, true, i, numbered(true, i), "", ""});
        for (int i = 1; i <= n_normal; ++i)
            jobs.push_back({split, false, i, numbered(false, i), "", ""});
    };
    add(kTrainA, counts.train_a_covid, counts.train_a_normal);
    add(kTrainB, counts.train_b_covid, counts.train_b_normal);
    add(kTest, counts.test_covid, counts.test_normal);

    parallel_for(static_cast<int>(jobs.size()), [&](int i) {
        Job& job = jobs[static_cast<std::size_t>(i)];
        const std::uint64_t cls = job.covid ? 1 : 0, index = static_cast<std::uint64_t>(job.index);
        Rng anatomy(derive_seed(seed, {kAnatomy, job.split, cls, index}));
        const CxrCase c = draw_cxr_case(anatomy, job.covid);
        job.finding = finding_name(c.finding);
        const Image clean = render_cxr(c, size);
        if (job.split == kTrainB) {
            write_png((root / "trainB" / job.file).string(), clean);
            return;
        }
        Rng rng(derive_seed(seed, {kDegradation, job.split, cls, index}));
        Degraded d = degrade(to_float(clean), rng);
        job.recipe = d.recipe;
        const char* folder = job.split == kTrainA ? "trainA" : "testA";
        write_png((root / folder / job.file).string(), to_uint8(d.image));
        if (job.split == kTest) write_png((root / "testA_clean" / job.file).string(), clean);
    });

    std::ostringstream manifest;
    manifest << "folder,file,finding,degradation\n";
    for (const Job& job : jobs) {
        static const char* const kSplitFolder[] = {"trainA", "trainB", "testA"};
        manifest << kSplitFolder[job.split] << "," << job.file << "," << job.finding << ","
                 << csv_quote(job.recipe) << "\n";
    }
    write_file_atomic((root / "manifest.csv").string(), manifest.str());
    return counts;
}

DegradeFolderResult degrade_folder(const std::string& in_dir, const std::string& out_dir,
                                   std::uint64_t seed) {
    R2C_CHECK(!in_dir.empty() && !out_dir.empty(), "degrade: input and output folders must be given");
    std::error_code ec;
    R2C_CHECK(!fs::exists(out_dir, ec) || !fs::equivalent(in_dir, out_dir, ec), "degrade: --out '", out_dir,
              "' is the input folder; its images would be overwritten");
    const std::vector<Sample> files = list_images(in_dir);
    std::vector<std::string> targets;
    std::map<std::string, std::string> claimed;  // output name -> the input that produces it
    for (const Sample& s : files) {
        const std::string target = fs::path(s.name).replace_extension(".png").generic_string();
        const auto [it, fresh] = claimed.emplace(target, s.name);
        R2C_CHECK(fresh, "degrade: '", it->second, "' and '", s.name, "' would both be written as '", target,
                  "'");
        targets.push_back(target);
    }
    const fs::path out(out_dir);
    std::vector<std::string> recipes(files.size());
    std::vector<char> ok(files.size(), 0);
    parallel_for(static_cast<int>(files.size()), [&](int i) {
        const Sample& s = files[static_cast<std::size_t>(i)];
        Image image;
        try {
            image = read_image(s.path);
        } catch (const Error& e) {
            std::cerr << ("warning: skipped: " + std::string(e.what()) + "\n") << std::flush;
            return;
        }
        Rng rng(derive_seed(seed, {kFolderDegradation, fnv1a(s.name)}));
        Degraded d = degrade(to_float(image), rng);
        const fs::path target = out / targets[static_cast<std::size_t>(i)];
        std::error_code dir_ec;
        fs::create_directories(target.parent_path(), dir_ec);
        R2C_CHECK(!dir_ec, "degrade: cannot create '", target.parent_path().string(),
                  "': ", dir_ec.message());
        write_png(target.string(), to_uint8(d.image));
        recipes[static_cast<std::size_t>(i)] = d.recipe;
        ok[static_cast<std::size_t>(i)] = 1;
    });

    DegradeFolderResult result;
    std::ostringstream manifest;
    manifest << "file,degradation\n";
    for (std::size_t i = 0; i < files.size(); ++i) {
        if (!ok[i]) {
            ++result.skipped;
            continue;
        }
        ++result.written;
        manifest << csv_quote(targets[i]) << "," << csv_quote(recipes[i]) << "\n";
    }
    if (result.written > 0) write_file_atomic((out / "degradations.csv").string(), manifest.str());
    return result;
}

}  // namespace r2c
