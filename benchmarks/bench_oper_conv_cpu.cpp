// CPU benchmark of the operational convolution against PyTorch.
//
// The R2C-GAN residual-block layer: 128 -> 128 channels, 3x3, stride 1, same, 64x64, batch 1, float32,
// for Q = 1, 3, 5; one step is the forward pass and the backward pass with gradients for x, w and b.
// Each Q is timed as the median of several repetitions after warm-up; then the PyTorch peer
// (benchmarks/oper_conv_torch.py, run with bench_support.h's torch_python()) times the same layer with
// the same number of threads, and a table of both is printed. Besides wall-clock time both report process CPU
// time, which stays comparable when other work shares the machine (with one thread it is the compute time).
//
//   bench_oper_conv_cpu [--threads N] [--reps R] [--warmup W] [--json PATH] [--no-torch]
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "benchmarks/bench_support.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "models/step_timing.h"

using namespace r2c;

namespace {

constexpr std::int64_t kChannels = 128, kSize = 64, kKernel = 3;
const int kQs[] = {1, 3, 5};

struct Options {
    int threads = 0;  // 0: OpenMP's default
    int reps = 7, warmup = 2;
    std::string json_path;
    bool torch = true;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--threads")
            o.threads = std::stoi(value());
        else if (a == "--reps")
            o.reps = std::stoi(value());
        else if (a == "--warmup")
            o.warmup = std::stoi(value());
        else if (a == "--json")
            o.json_path = value();
        else if (a == "--no-torch")
            o.torch = false;
        else
            throw std::runtime_error("unknown option " + a +
                                     "; usage: bench_oper_conv_cpu [--threads N] [--reps R] [--warmup W] "
                                     "[--json PATH] [--no-torch]");
    }
    if (o.threads <= 0) o.threads = omp_get_max_threads();
    if (o.reps < 1 || o.warmup < 0) throw std::runtime_error("--reps must be >= 1 and --warmup >= 0");
    return o;
}

// Forward + backward of one Q.
Timing time_ours(int q, const Options& o) {
    Rng rng(static_cast<std::uint64_t>(q));
    const double limit = std::sqrt(6.0 / (2 * kChannels * kKernel * kKernel));  // Glorot-uniform
    Tensor x = Tensor::uniform({1, kChannels, kSize, kSize}, -1, 1, rng);
    Tensor w = Tensor::uniform({q, kChannels, kChannels, kKernel, kKernel}, -limit, limit, rng);
    Tensor b = Tensor::zeros({q, kChannels});
    for (Tensor* t : {&x, &w, &b})
        t->set_requires_grad(true);
    return time_calls(
        [&] {
            for (Tensor* t : {&x, &w, &b})
                t->zero_grad();
            sum(oper_conv2d(x, w, b, 1, Padding::same())).backward();
        },
        o.warmup, o.reps);
}

// The peer's JSON, or null (with the reason on stderr) when PyTorch cannot be run.
nlohmann::json time_torch(const Options& o) {
    const std::string cmd = "OMP_NUM_THREADS=" + std::to_string(o.threads) + " " + bench::torch_python() +
                            " " + bench::source_file(R2C_SOURCE_DIR, "benchmarks/oper_conv_torch.py") +
                            " --threads " + std::to_string(o.threads) + " --reps " + std::to_string(o.reps) +
                            " --warmup " + std::to_string(o.warmup) + " 2>&1";
    int status = 0;
    const std::string out = bench::command_output(cmd, status);
    if (status == 0) {
        try {
            return nlohmann::json::parse(out);
        } catch (const nlohmann::json::exception&) {
        }
    }
    std::cerr << "note: the PyTorch peer (" << bench::torch_python()
              << " with torch) is unavailable, reporting ours only:\n"
              << out << "\n";
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        omp_set_num_threads(o.threads);
        Eigen::setNbThreads(o.threads);

        nlohmann::json report = {{"layer", "oper_conv2d 128->128 k3 s1 same 64x64 N=1 float32 fwd+bwd"},
                                 {"threads", o.threads},
                                 {"reps", o.reps},
                                 {"warmup", o.warmup},
                                 {"results", nlohmann::json::array()}};
        std::vector<Timing> ours;
        for (int q : kQs)
            ours.push_back(time_ours(q, o));
        const nlohmann::json peer = o.torch ? time_torch(o) : nlohmann::json(nullptr);
        if (!peer.is_null()) report["torch"] = peer["torch"];

        std::printf("%s, %d thread(s), median of %d after %d warm-up\n",
                    report["layer"].get<std::string>().c_str(), o.threads, o.reps, o.warmup);
        std::printf("%3s %9s %9s %12s %13s %13s %16s\n", "Q", "ours ms", "torch ms", "torch/ours",
                    "ours cpu ms", "torch cpu ms", "cpu torch/ours");
        for (std::size_t i = 0; i < ours.size(); ++i) {
            nlohmann::json row = {
                {"q", kQs[i]}, {"ours_ms", ours[i].wall_ms}, {"ours_cpu_ms", ours[i].cpu_ms}};
            if (peer.is_null()) {
                std::printf("%3d %9.1f %9s %12s %13.1f %13s %16s\n", kQs[i], ours[i].wall_ms, "-", "-",
                            ours[i].cpu_ms, "-", "-");
            } else {
                const double wall = peer["results"][i]["ms"].get<double>();
                const double cpu = peer["results"][i]["cpu_ms"].get<double>();
                row["torch_ms"] = wall;
                row["torch_cpu_ms"] = cpu;
                row["ratio_torch_over_ours"] = wall / ours[i].wall_ms;
                row["cpu_ratio_torch_over_ours"] = cpu / ours[i].cpu_ms;
                std::printf("%3d %9.1f %9.1f %12.2f %13.1f %13.1f %16.2f\n", kQs[i], ours[i].wall_ms, wall,
                            wall / ours[i].wall_ms, ours[i].cpu_ms, cpu, cpu / ours[i].cpu_ms);
            }
            report["results"].push_back(row);
        }
        if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_oper_conv_cpu: " << e.what() << "\n";
        return 1;
    }
}
