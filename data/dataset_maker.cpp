#include "data/dataset_maker.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "data/cxr_synth.h"
#include "data/dataset.h"
#include "data/degrade.h"
#include "data/image_io.h"
#include "data/labels_csv.h"
#include "data/seed.h"
#include "data/transform.h"
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

// The four folders of the authors' layout (testA_clean beside testA), created empty.
void make_layout_folders(const fs::path& root) {
    for (const char* name : {"trainA", "trainB", "testA", "testA_clean"}) {
        const fs::path dir = root / name;
        std::error_code ec;
        if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
            throw Error(
                "make-data: '" + dir.string() +
                "' already holds files; remove it or choose another --out, so that datasets are not mixed");
        fs::create_directories(dir, ec);
        R2C_CHECK(!ec, "make-data: cannot create '", dir.string(), "': ", ec.message());
    }
}

// The decoded image, or nothing with the reason reported on stderr and stored in `reason`.
bool read_or_report(const std::string& path, Image& image, std::string& reason) {
    try {
        image = read_image(path);
        return true;
    } catch (const Error& e) {
        reason = e.what();
        std::cerr << ("warning: skipped: " + reason + "\n") << std::flush;
        return false;
    }
}

// Random-stream purposes, per image or per class.
enum Stream : std::uint64_t {
    kAnatomy = 1,
    kDegradation = 2,
    kFolderDegradation = 3,
    kSourceSplit = 4,
    kSourceDegradation = 5
};
enum Split : std::uint64_t { kTrainA = 0, kTrainB = 1, kTest = 2 };
const char* const kSplitFolder[] = {"trainA", "trainB", "testA"};

int& count_of(DatasetCounts& c, Split split, bool covid) {
    if (split == kTrainA) return covid ? c.train_a_covid : c.train_a_control;
    if (split == kTrainB) return covid ? c.train_b_covid : c.train_b_control;
    return covid ? c.test_covid : c.test_control;
}

struct Job {
    Split split;
    bool covid;
    int index;  // within its split and class, from 1
    std::string file;
    std::string finding;
    std::string recipe;
};

std::string numbered(const char* prefix, int index) {
    char name[32];
    std::snprintf(name, sizeof name, "%s_%04d.png", prefix, index);
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

DatasetCounts make_synthetic_dataset(const std::string& out_dir, int n_train_a, int n_train_b, int n_test,
                                     int size, double covid_fraction, std::uint64_t seed) {
    R2C_CHECK(!out_dir.empty(), "make_synthetic_dataset: no output folder given");
    R2C_CHECK(n_train_a >= 1 && n_train_b >= 1 && n_test >= 1,
              "make_synthetic_dataset: every folder needs at least one "
              "image, got trainA ",
              n_train_a, ", trainB ", n_train_b, ", testA ", n_test);
    R2C_CHECK(size >= 16 && size <= 8192, "make_synthetic_dataset: size must be in [16, 8192], got ", size);
    R2C_CHECK(covid_fraction >= 0 && covid_fraction <= 1,
              "make_synthetic_dataset: covid_fraction must be in [0, 1], got ", covid_fraction);
    const fs::path root(out_dir);
    make_layout_folders(root);

    DatasetCounts counts;
    counts.train_a_covid = covid_count(n_train_a, covid_fraction);
    counts.train_a_control = n_train_a - counts.train_a_covid;
    counts.train_b_covid = covid_count(n_train_b, covid_fraction);
    counts.train_b_control = n_train_b - counts.train_b_covid;
    counts.test_covid = covid_count(n_test, covid_fraction);
    counts.test_control = n_test - counts.test_covid;

    std::vector<Job> jobs;
    auto add = [&](Split split, int n_covid, int n_normal) {
        for (int i = 1; i <= n_covid; ++i)
            jobs.push_back({split, true, i, numbered("covid", i), "", ""});
        for (int i = 1; i <= n_normal; ++i)
            jobs.push_back({split, false, i, numbered("normal", i), "", ""});
    };
    add(kTrainA, counts.train_a_covid, counts.train_a_control);
    add(kTrainB, counts.train_b_covid, counts.train_b_control);
    add(kTest, counts.test_covid, counts.test_control);

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
        manifest << kSplitFolder[job.split] << "," << job.file << "," << job.finding << ","
                 << csv_quote(job.recipe) << "\n";
    }
    write_file_atomic((root / "manifest.csv").string(), manifest.str());
    return counts;
}

namespace {

// One image of a dataset made from a labelled folder.
struct SourceJob {
    const LabelledImage* source;
    Split split;
    std::string file;  // the name written in the split's folder
    std::string recipe;
};

// Splits the decodable images class by class (see make_dataset_from_folder) and names them.
std::vector<SourceJob> split_sources(const std::vector<const LabelledImage*>& usable, double test_fraction,
                                     std::uint64_t seed) {
    std::vector<SourceJob> jobs;
    for (const int cls : {1, 0}) {
        std::vector<const LabelledImage*> members;
        for (const LabelledImage* image : usable)
            if (image->label_class == cls) members.push_back(image);
        const auto by_file = [](const LabelledImage* a, const LabelledImage* b) { return a->file < b->file; };
        std::sort(members.begin(), members.end(), by_file);
        Rng rng(derive_seed(seed, {kSourceSplit, static_cast<std::uint64_t>(cls)}));
        for (std::size_t k = members.size(); k > 1; --k)
            std::swap(members[k - 1], members[rng.below(k)]);
        const std::size_t n_test = static_cast<std::size_t>(std::lround(members.size() * test_fraction));
        const std::size_t n_a = n_test + (members.size() - n_test + 1) / 2;
        const auto first = members.begin();
        const std::vector<std::vector<const LabelledImage*>> parts = {
            {first + static_cast<std::ptrdiff_t>(n_test), first + static_cast<std::ptrdiff_t>(n_a)},
            {first + static_cast<std::ptrdiff_t>(n_a), members.end()},
            {first, first + static_cast<std::ptrdiff_t>(n_test)}};
        for (const Split split : {kTrainA, kTrainB, kTest}) {
            std::vector<const LabelledImage*> part = parts[split];
            std::sort(part.begin(), part.end(), by_file);
            for (std::size_t i = 0; i < part.size(); ++i)
                jobs.push_back(
                    {part[i], split, numbered(cls ? "covid" : "control", static_cast<int>(i + 1)), ""});
        }
    }
    std::sort(jobs.begin(), jobs.end(), [](const SourceJob& a, const SourceJob& b) {
        return a.split != b.split ? a.split < b.split : a.file < b.file;
    });
    return jobs;
}

}  // namespace

FolderDatasetResult make_dataset_from_folder(const FolderDatasetOptions& o) {
    R2C_CHECK(!o.out_dir.empty(), "make-data: no output folder given");
    R2C_CHECK(o.test_fraction > 0 && o.test_fraction < 1, "make-data: test_fraction must be in (0, 1), got ",
              o.test_fraction);
    R2C_CHECK(o.size == 0 || (o.size >= 16 && o.size <= 8192),
              "make-data: size must be 0 (keep each image's size) or in [16, 8192], got ", o.size);
    const LabelledFolder listed = read_labelled_folder(o.folder, o.labels_csv);
    const std::vector<LabelledImage>& images = listed.images;

    std::vector<std::string> failures(images.size());
    parallel_for(static_cast<int>(images.size()), [&](int i) {
        Image image;
        read_or_report(images[static_cast<std::size_t>(i)].path, image,
                       failures[static_cast<std::size_t>(i)]);
    });
    FolderDatasetResult result;
    result.unknown = listed.unknown;
    std::vector<const LabelledImage*> usable;
    nlohmann::json skipped = nlohmann::json::array();
    for (std::size_t i = 0; i < images.size(); ++i) {
        if (failures[i].empty()) {
            usable.push_back(&images[i]);
            continue;
        }
        ++result.skipped;
        skipped.push_back({{"source", images[i].file}, {"line", images[i].line}, {"reason", failures[i]}});
    }

    std::vector<SourceJob> jobs = split_sources(usable, o.test_fraction, o.seed);
    for (const SourceJob& job : jobs)
        ++count_of(result.counts, job.split, job.source->label_class == 1);
    const DatasetCounts& c = result.counts;
    R2C_CHECK(c.train_a_covid + c.train_a_control > 0 && c.train_b_covid + c.train_b_control > 0 &&
                  c.test_covid + c.test_control > 0,
              "make-data: ", usable.size(), " decodable labelled image(s) in ", o.labels_csv,
              " cannot fill trainA, trainB and testA (test_fraction ", o.test_fraction, ")");

    const fs::path root(o.out_dir);
    make_layout_folders(root);
    parallel_for(static_cast<int>(jobs.size()), [&](int i) {
        SourceJob& job = jobs[static_cast<std::size_t>(i)];
        ImageF resized = to_float(read_image(job.source->path));
        if (o.size > 0) resized = resize_antialiased(resized, o.size, o.size);
        const Image clean = to_uint8(resized);
        if (job.split == kTrainB) {
            write_png((root / "trainB" / job.file).string(), clean);
            return;
        }
        Rng rng(derive_seed(o.seed, {kSourceDegradation, fnv1a(job.source->file)}));
        Degraded d = degrade(to_float(clean), rng);
        job.recipe = d.recipe;
        write_png((root / kSplitFolder[job.split] / job.file).string(), to_uint8(d.image));
        if (job.split == kTest) write_png((root / "testA_clean" / job.file).string(), clean);
    });

    nlohmann::json written = nlohmann::json::array();
    for (const SourceJob& job : jobs)
        written.push_back({{"folder", kSplitFolder[job.split]},
                           {"file", job.file},
                           {"source", job.source->file},
                           {"line", job.source->line},
                           {"label", job.source->label},
                           {"class", job.source->label_class == 1 ? "covid" : "control"},
                           {"degradation", job.recipe}});
    const auto by_class = [](int covid, int control) {
        return nlohmann::json{{"covid", covid}, {"control", control}};
    };
    const nlohmann::json manifest = {{"folder", o.folder},
                                     {"labels", o.labels_csv},
                                     {"seed", o.seed},
                                     {"test_fraction", o.test_fraction},
                                     {"size", o.size},
                                     {"counts",
                                      {{"trainA", by_class(c.train_a_covid, c.train_a_control)},
                                       {"trainB", by_class(c.train_b_covid, c.train_b_control)},
                                       {"testA", by_class(c.test_covid, c.test_control)}}},
                                     {"unknown_label_rows", result.unknown},
                                     {"skipped", skipped},
                                     {"images", written}};
    write_file_atomic((root / "manifest.json").string(), manifest.dump(2) + "\n");
    return result;
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
        std::string reason;
        if (!read_or_report(s.path, image, reason)) return;
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
