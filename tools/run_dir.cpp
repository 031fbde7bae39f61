#include "tools/run_dir.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/atomic_file.h"

namespace fs = std::filesystem;

namespace r2c::cli {

namespace {

constexpr const char* kPrefix = "ckpt-";
constexpr const char* kSuffix = ".safetensors";

// The iteration in a checkpoint's file name, or -1 when the name is not one of ours.
std::int64_t iteration_of(const std::string& filename) {
    const std::string p = kPrefix, s = kSuffix;
    if (filename.size() <= p.size() + s.size() || filename.compare(0, p.size(), p) != 0 ||
        filename.compare(filename.size() - s.size(), s.size(), s) != 0)
        return -1;
    const std::string digits = filename.substr(p.size(), filename.size() - p.size() - s.size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
    return std::stoll(digits);
}

}  // namespace

RunDir::RunDir(std::string root) : root_(std::move(root)) {
    std::error_code ec;
    for (const char* sub : {"", "/checkpoints", "/samples"}) {
        fs::create_directories(root_ + sub, ec);
        R2C_CHECK(!ec && fs::is_directory(root_ + sub), "cannot create output folder ", root_ + sub, ": ",
                  ec ? ec.message() : "not a folder");
    }
}

std::string RunDir::checkpoint_path(std::int64_t iteration) const {
    char name[64];
    std::snprintf(name, sizeof name, "%s%010lld%s", kPrefix, static_cast<long long>(iteration), kSuffix);
    return root_ + "/checkpoints/" + name;
}

std::vector<std::string> RunDir::checkpoints() const {
    std::vector<std::pair<std::int64_t, std::string>> found;
    for (const auto& e : fs::directory_iterator(root_ + "/checkpoints")) {
        const std::int64_t it = iteration_of(e.path().filename().string());
        if (it >= 0 && e.is_regular_file()) found.emplace_back(it, e.path().string());
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> paths;
    for (auto& f : found)
        paths.push_back(std::move(f.second));
    return paths;
}

void RunDir::save_checkpoint(const Trainer& trainer, int keep) const {
    const std::vector<std::string> before = checkpoints();
    try {
        trainer.save_checkpoint(checkpoint_path(trainer.iteration()));
    } catch (const Error& e) {
        throw Error(detail::concat(e.what(), "; ",
                                   before.empty() ? "there is no earlier checkpoint"
                                                  : "started again, the run resumes from " + before.back()));
    }
    const std::vector<std::string> all = checkpoints();
    for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < all.size(); ++i) {
        std::error_code ec;
        fs::remove(all[i], ec);
    }
}

bool RunDir::resume(Trainer& trainer) const {
    const int stale = remove_stale_temporaries(root_ + "/checkpoints");
    if (stale > 0)
        std::cerr << "r2c train: removed " << stale
                  << " partly written checkpoint(s) of an interrupted run\n";
    const std::vector<std::string> all = checkpoints();
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        try {
            trainer.load_checkpoint(*it);
            return true;
        } catch (const Error& e) {
            std::cerr << "r2c train: skipping checkpoint " << *it << ": " << e.what() << "\n";
        }
    }
    R2C_CHECK(all.empty(), "no checkpoint in ", root_, "/checkpoints could be loaded");
    return false;
}

void RunDir::start_log(const StepLog& columns_from, std::int64_t iteration) const {
    std::ostringstream kept;
    kept << "iteration,epoch,lr";
    for (const auto& [name, v] : columns_from)
        kept << "," << name;
    kept << "\n";
    std::ifstream in(log_path());
    std::string line;
    if (in && std::getline(in, line)) {  // keep the rows up to the checkpoint we resume from
        const auto fields = [](const std::string& l) { return std::count(l.begin(), l.end(), ',') + 1; };
        const auto columns = fields(line);
        // A row cut short (a full disk, a kill mid-write) has too few fields or no line end: dropped.
        while (std::getline(in, line)) {
            if (in.eof() || fields(line) != columns) continue;
            const std::int64_t row = std::strtoll(line.c_str(), nullptr, 10);
            if (row >= 1 && row <= iteration) kept << line << "\n";
        }
    }
    write_file_atomic(log_path(), kept.str());
}

void RunDir::append_log(std::int64_t iteration, std::int64_t epoch, double lr, const StepLog& log) const {
    std::ofstream out(log_path(), std::ios::app);
    out.precision(9);
    out << iteration << "," << epoch << "," << lr;
    for (const auto& [name, v] : log)
        out << "," << v;
    out << "\n";
    R2C_CHECK(out.good(), "cannot append to ", log_path());
}

}  // namespace r2c::cli
