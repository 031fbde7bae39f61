// The whole R2C-GAN training iteration and inference, ours against PyTorch in the same run.
//
// Per method (operational Q = 1, 3, 5; CNN; CNN*): one training iteration of Algorithm 1 as
// models/trainer.h's Trainer::step runs it (generator step over G and F, discriminator step over D_A and
// D_B on pooled fakes, the NaN/Inf check, the loss terms and flags fetched to the host), timed as the median
// of --reps iterations after --warmup, per training batch size; inference as `r2c restore` runs G once: the
// restored image and the class probabilities of a batch without gradients, the probabilities copied to the
// host, reported per sample beside the paper's Table V (V100, TensorFlow); the parameter counts; the FLOPs of
// the operational convolutions (engine/ops.h's conv_multiply_adds, read on the first, unreplayed step) and
// the rate they run at over the measured time. On CUDA, the caching allocator's peak bytes in use during the
// timed iterations (with graphs, all that their memory pool holds; without, the live tensors alone), the
// host's waits for the device per iteration (one: the step's losses and flags come back together), the
// kernel launches and the copies and fills queued besides them per iteration, with the sub-steps replayed as
// CUDA graphs (the trainer's default: its first two iterations run unreplayed and the third captures, so the
// default --warmup 3 leaves replays alone timed) and again without graphs. Every timed call ends with a
// device-to-host copy on the default stream, which waits for all work queued before it, so the clock stops
// when the GPU has finished.
//
// Then benchmarks/r2cgan_torch.py (run with bench_support.h's torch_python(); read from the source tree
// the benchmark was built from, or R2C_SOURCE_DIR) times the same iteration and inference in PyTorch eager
// mode and with torch.compile, with the same sizes, thread count and precision; its parameter counts must
// equal ours (the run fails otherwise). Both sides' JSON goes to --json, and a table of both to stdout.
//
//   bench_train_step [--methods q1,q3,q5,cnn,cnn-light] [--size 256] [--batches 1,16]
//                    [--inference-batches 1,32] [--device cpu|cuda] [--precision fp32|tf32|bf16]
//                    [--conv-algorithm auto|fused|cudnn] [--conv-workspace-mb 0] [--threads N] [--reps R]
//                    [--warmup W] [--quick] [--json PATH] [--no-torch]
//                    [--no-compile]
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/bench_support.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "models/step_timing.h"

using namespace r2c;
using nlohmann::json;

namespace {

struct MethodSpec {
    const char* key;
    const char* label;
    Method method;
    int q;
    double paper_ms;  // the paper's Table V: restore + classify, ms per sample (V100, TensorFlow)
};
const MethodSpec kMethods[] = {
    {"q1", "Q=1", Method::Operational, 1, 3.113},
    {"q3", "Q=3", Method::Operational, 3, 3.739},
    {"q5", "Q=5", Method::Operational, 5, 4.928},
    {"cnn", "CNN", Method::Convolutional, 1, 8.142},
    {"cnn-light", "CNN*", Method::ConvolutionalLight, 1, 3.0},
};

const char* kUsage =
    "usage: bench_train_step [--methods q1,q3,q5,cnn,cnn-light] [--size 256] [--batches 1,16] "
    "[--inference-batches 1,32] [--device cpu|cuda] [--precision fp32|tf32|bf16] "
    "[--conv-algorithm auto|fused|cudnn] [--conv-workspace-mb 0] [--threads N] [--reps R] "
    "[--warmup W] [--quick] [--json PATH] [--no-torch] [--no-compile]";

struct Options {
    std::vector<MethodSpec> methods;
    std::string methods_text = "q1,q3,q5,cnn,cnn-light";
    int size = 256;
    std::string batches_text = "1,16", inference_text = "1,32";
    std::vector<int> batches, inference_batches;
    Device device = Device::CPU;
    std::string precision = "tf32";
    std::string conv_algorithm = "auto";
    int conv_workspace_mb = 0;  // scaled to each pass (engine/device.h)
    int threads = 0;            // 0: OpenMP's default
    int reps = 5, warmup = 3;
    std::string json_path;
    bool torch = true, torch_compile = true;
};

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, ',');)
        parts.push_back(part);
    return parts;
}

std::vector<int> positive_ints(const std::string& flag, const std::string& text) {
    std::vector<int> out;
    for (const std::string& part : split(text)) {
        const int v = std::stoi(part);
        R2C_CHECK(v >= 1, flag, " takes positive integers, got ", part);
        out.push_back(v);
    }
    R2C_CHECK(!out.empty(), flag, " is empty");
    return out;
}

Options parse(int argc, char** argv) {
    Options o;
    // --quick, a smoke run, sets small defaults first; flags given with it still override them.
    if (std::find(argv + 1, argv + argc, std::string("--quick")) != argv + argc) {
        o.size = 64;
        o.batches_text = "1";
        o.inference_text = "1,4";
        o.reps = 2;
        o.warmup = 1;
    }
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw Error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--methods")
            o.methods_text = value();
        else if (a == "--size")
            o.size = std::stoi(value());
        else if (a == "--batches")
            o.batches_text = value();
        else if (a == "--inference-batches")
            o.inference_text = value();
        else if (a == "--device") {
            const std::string d = value();
            R2C_CHECK(d == "cpu" || d == "cuda", "--device must be cpu or cuda, got '", d, "'");
            o.device = d == "cpu" ? Device::CPU : Device::CUDA;
        } else if (a == "--precision")
            o.precision = value();
        else if (a == "--conv-algorithm")
            o.conv_algorithm = value();
        else if (a == "--conv-workspace-mb")
            o.conv_workspace_mb = std::stoi(value());
        else if (a == "--threads")
            o.threads = std::stoi(value());
        else if (a == "--reps")
            o.reps = std::stoi(value());
        else if (a == "--warmup")
            o.warmup = std::stoi(value());
        else if (a == "--quick")
            continue;
        else if (a == "--json")
            o.json_path = value();
        else if (a == "--no-torch")
            o.torch = false;
        else if (a == "--no-compile")
            o.torch_compile = false;
        else
            throw Error("unknown option " + a + "\n" + kUsage);
    }
    for (const std::string& key : split(o.methods_text)) {
        const auto it = std::find_if(std::begin(kMethods), std::end(kMethods),
                                     [&](const MethodSpec& m) { return key == m.key; });
        R2C_CHECK(it != std::end(kMethods), "unknown method '", key,
                  "' (expected q1, q3, q5, cnn, cnn-light)");
        o.methods.push_back(*it);
    }
    R2C_CHECK(!o.methods.empty(), "--methods is empty");
    o.batches = positive_ints("--batches", o.batches_text);
    o.inference_batches = positive_ints("--inference-batches", o.inference_text);
    // 8 is the smallest size the networks reduce to a patch map of at least one pixel.
    R2C_CHECK(o.size >= 8 && o.size % 8 == 0, "--size must be a multiple of 8, got ", o.size);
    R2C_CHECK(o.reps >= 1 && o.warmup >= 0, "--reps must be >= 1 and --warmup >= 0");
    if (o.threads <= 0) o.threads = omp_get_max_threads();
    cuda::set_math_precision(cuda::parse_math_precision(o.precision));
    cuda::set_conv_algorithm(cuda::parse_conv_algorithm(o.conv_algorithm));
    R2C_CHECK(o.conv_workspace_mb >= 0, "--conv-workspace-mb must be >= 0");
    cuda::set_conv_workspace_limit(static_cast<std::size_t>(o.conv_workspace_mb) << 20);
    if (o.device == Device::CUDA) R2C_CHECK(cuda::available(), "--device cuda: ", cuda::describe());
    return o;
}

json param_counts(const MethodSpec& m) {
    Rng rng(0);
    const auto g = make_generator(m.method, m.q, rng);
    const auto d = make_discriminator(m.method, m.q, rng);
    return {{"generator", g->num_parameters()},
            {"generator_classify", num_classify_parameters(*g)},
            {"discriminator", d->num_parameters()}};
}

json measure(const MethodSpec& m, const Options& o) {
    json result = {{"method", method_name(m.method)},
                   {"q", m.q},
                   {"label", m.label},
                   {"params", param_counts(m)},
                   {"paper_ms_per_sample", m.paper_ms},
                   {"train", json::array()},
                   {"inference", json::array()}};
    Rng data_rng(1);
    for (int n : o.batches) {
        const std::size_t first_choice = cuda::conv_choices().size();
        const std::size_t first_search = cuda::cudnn_searches().size();
        const auto [A, cA] = random_batch(n, o.size, o.device, data_rng);
        const auto [B, cB] = random_batch(n, o.size, o.device, data_rng);
        const auto train = [&](bool graphs) {
            TrainConfig config;
            config.method = m.method;
            config.q = m.q;
            config.device = o.device;
            config.cuda_graphs = graphs;
            return time_training(config, A, B, cA, cB, o.warmup, o.reps);
        };
        const TrainingTiming t = train(true);
        json row = {{"batch", n},
                    {"ms", t.time.wall_ms},
                    {"cpu_ms", t.time.cpu_ms},
                    {"images_per_s", n * 1e3 / t.time.wall_ms},
                    {"conv_gflop", t.conv_gflop},
                    {"conv_tflop_per_s", t.conv_gflop / t.time.wall_ms}};
        if (o.device == Device::CUDA) {
            const TrainingTiming plain = train(false);
            row["peak_bytes"] = t.peak_bytes;
            row["host_waits_per_step"] = t.host_waits;
            row["kernel_launches_per_step"] = t.kernel_launches;
            row["memory_operations_per_step"] = t.memory_operations;
            row["ms_no_graphs"] = plain.time.wall_ms;
            row["peak_bytes_no_graphs"] = plain.peak_bytes;
            row["kernel_launches_per_step_no_graphs"] = plain.kernel_launches;
            row["memory_operations_per_step_no_graphs"] = plain.memory_operations;
            row["conv_choices"] = conv_choices_json(first_choice);
            row["cudnn_searches"] = cudnn_searches_json(first_search);
        }
        result["train"].push_back(row);
    }
    Rng rng(0);
    const auto g = make_generator(m.method, m.q, rng);
    g->to(o.device);
    for (int n : o.inference_batches) {
        const std::size_t first_choice = cuda::conv_choices().size();
        const std::size_t first_search = cuda::cudnn_searches().size();
        const InferenceTiming t =
            time_inference(*g, random_batch(n, o.size, o.device, data_rng).first, o.warmup, o.reps);
        result["inference"].push_back({{"batch", n},
                                       {"ms_per_sample", t.time.wall_ms / n},
                                       {"cpu_ms_per_sample", t.time.cpu_ms / n},
                                       {"conv_gflop_per_sample", t.conv_gflop / n},
                                       {"conv_tflop_per_s", t.conv_gflop / t.time.wall_ms},
                                       {"conv_choices", conv_choices_json(first_choice)},
                                       {"cudnn_searches", cudnn_searches_json(first_search)}});
    }
    return result;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return "unknown CPU";
}

// The peer's JSON, or null (with the reason on stderr) when PyTorch cannot be run.
json run_torch(const Options& o) {
    const std::string python = bench::torch_python();
    std::string cmd = "OMP_NUM_THREADS=" + std::to_string(o.threads) + " " + python + " " +
                      bench::source_file(R2C_SOURCE_DIR, "benchmarks/r2cgan_torch.py") + " --methods " +
                      o.methods_text + " --size " + std::to_string(o.size) + " --batches " + o.batches_text +
                      " --inference-batches " + o.inference_text + " --device " + device_name(o.device) +
                      " --precision " + o.precision + " --threads " + std::to_string(o.threads) + " --reps " +
                      std::to_string(o.reps) + " --warmup " + std::to_string(o.warmup);
    if (!o.torch_compile) cmd += " --no-compile";
    std::cerr << "running the PyTorch peer: " << cmd << "\n";
    int status = 0;
    const std::string out = bench::command_output(cmd, status);  // its stderr stays ours
    if (status == 0) {
        try {
            return json::parse(out);
        } catch (const json::exception&) {
        }
    }
    std::cerr << "note: the PyTorch peer (" << python << " with torch) is unavailable, reporting ours only\n";
    return nullptr;
}

// The results of one PyTorch mode, or null when it did not run (its reason printed once).
json mode_results(const json& peer, const char* mode) {
    if (peer.is_null()) return nullptr;
    const json& m = peer["modes"][mode];
    if (m.contains("error")) {
        std::printf("torch %s: %s\n", mode, m["error"].get<std::string>().c_str());
        return nullptr;
    }
    return m["results"];
}

std::string cell(const json& results, std::size_t i, const char* section, std::size_t j, const char* key,
                 int digits = 1, double scale = 1.0) {
    if (results.is_null()) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", digits, results[i][section][j][key].get<double>() * scale);
    return buf;
}

std::string ratio(const json& results, std::size_t i, const char* section, std::size_t j, const char* key,
                  double ours) {
    if (results.is_null()) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", results[i][section][j][key].get<double>() / ours);
    return buf;
}

void print_tables(const json& ours, const json& eager, const json& compiled, const Options& o) {
    const json& r = ours["results"];
    std::printf(
        "\ntraining iteration (generator + discriminator step), %dx%d, median ms; ratio = torch / ours "
        "(> 1: ours faster); conv GFLOP = the operational convolutions' multiply-adds x 2, TFLOP/s = ours\n",
        o.size, o.size);
    std::printf("%-5s %5s %10s %10s %10s %10s %8s %8s %10s %8s %9s %9s %8s", "model", "batch", "ours",
                "ours cpu", "eager", "eager cpu", "eager/", "cpu", "compile", "compile/", "ours im/s",
                "conv GFLOP", "TFLOP/s");
    if (o.device == Device::CUDA) std::printf(" %9s %9s %10s", "ours MiB", "eager MiB", "no graphs");
    std::printf("\n");
    for (std::size_t i = 0; i < r.size(); ++i)
        for (std::size_t j = 0; j < r[i]["train"].size(); ++j) {
            const json& row = r[i]["train"][j];
            const double ms = row["ms"].get<double>(), cpu = row["cpu_ms"].get<double>();
            std::printf("%-5s %5d %10.1f %10.1f %10s %10s %8s %8s %10s %8s %9.2f %9.1f %8.2f",
                        r[i]["label"].get<std::string>().c_str(), row["batch"].get<int>(), ms, cpu,
                        cell(eager, i, "train", j, "ms").c_str(),
                        cell(eager, i, "train", j, "cpu_ms").c_str(),
                        ratio(eager, i, "train", j, "ms", ms).c_str(),
                        ratio(eager, i, "train", j, "cpu_ms", cpu).c_str(),
                        cell(compiled, i, "train", j, "ms").c_str(),
                        ratio(compiled, i, "train", j, "ms", ms).c_str(), row["images_per_s"].get<double>(),
                        row["conv_gflop"].get<double>(), row["conv_tflop_per_s"].get<double>());
            if (o.device == Device::CUDA)
                std::printf(" %9.1f %9s %10.1f", row["peak_bytes"].get<double>() / 1048576.0,
                            cell(eager, i, "train", j, "peak_bytes", 1, 1.0 / 1048576.0).c_str(),
                            row["ms_no_graphs"].get<double>());
            std::printf("\n");
        }
    std::printf(
        "\ninference (G once: restored image + class probabilities), ms per sample; paper = Table V "
        "(V100, TensorFlow)\n");
    std::printf("%-5s %5s %10s %10s %10s %10s %8s %8s %10s %8s %8s %8s %8s\n", "model", "batch", "ours",
                "ours cpu", "eager", "eager cpu", "eager/", "cpu", "compile", "compile/", "paper", "paper/",
                "TFLOP/s");
    for (std::size_t i = 0; i < r.size(); ++i)
        for (std::size_t j = 0; j < r[i]["inference"].size(); ++j) {
            const json& row = r[i]["inference"][j];
            const double ms = row["ms_per_sample"].get<double>(),
                         cpu = row["cpu_ms_per_sample"].get<double>();
            const double paper = r[i]["paper_ms_per_sample"].get<double>();
            std::printf("%-5s %5d %10.2f %10.2f %10s %10s %8s %8s %10s %8s %8.3f %8.2f %8.2f\n",
                        r[i]["label"].get<std::string>().c_str(), row["batch"].get<int>(), ms, cpu,
                        cell(eager, i, "inference", j, "ms_per_sample", 2).c_str(),
                        cell(eager, i, "inference", j, "cpu_ms_per_sample", 2).c_str(),
                        ratio(eager, i, "inference", j, "ms_per_sample", ms).c_str(),
                        ratio(eager, i, "inference", j, "cpu_ms_per_sample", cpu).c_str(),
                        cell(compiled, i, "inference", j, "ms_per_sample", 2).c_str(),
                        ratio(compiled, i, "inference", j, "ms_per_sample", ms).c_str(), paper, paper / ms,
                        row["conv_tflop_per_s"].get<double>());
        }
    std::printf("\nparameters (generator, generator up to the class head, discriminator)\n");
    for (const json& m : r)
        std::printf("%-5s %10lld %10lld %10lld\n", m["label"].get<std::string>().c_str(),
                    m["params"]["generator"].get<long long>(),
                    m["params"]["generator_classify"].get<long long>(),
                    m["params"]["discriminator"].get<long long>());
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        omp_set_num_threads(o.threads);
        Eigen::setNbThreads(o.threads);

        json report = {{"implementation", "r2c"},
                       {"device", device_name(o.device)},
                       {"device_name", o.device == Device::CUDA ? cuda::describe() : cpu_model()},
                       {"cudnn_version", cuda::cudnn_version()},
                       {"threads", o.threads},
                       {"precision", o.device == Device::CUDA ? o.precision : "fp32"},
                       {"conv_algorithm", o.device == Device::CUDA ? o.conv_algorithm : "cpu"},
                       {"conv_workspace_mb", o.conv_workspace_mb},
                       {"size", o.size},
                       {"warmup", o.warmup},
                       {"reps", o.reps},
                       {"results", json::array()}};
        for (const MethodSpec& m : o.methods) {
            std::cerr << "measuring " << m.label << "\n";
            report["results"].push_back(measure(m, o));
        }
        const json peer = o.torch ? run_torch(o) : json(nullptr);
        report["torch"] = peer;

        std::printf("%s, %s, %d thread(s), precision %s, convolutions %s, median of %d after %d warm-up\n",
                    report["device"].get<std::string>().c_str(),
                    report["device_name"].get<std::string>().c_str(), o.threads,
                    report["precision"].get<std::string>().c_str(),
                    report["conv_algorithm"].get<std::string>().c_str(), o.reps, o.warmup);
        const json eager = mode_results(peer, "eager"), compiled = mode_results(peer, "compile");
        print_tables(report, eager, compiled, o);
        if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";

        // The peer must build the same networks: equal parameter counts, method by method.
        int mismatches = 0;
        for (const json* mode : {&eager, &compiled}) {
            if (mode->is_null()) continue;
            for (std::size_t i = 0; i < o.methods.size(); ++i)
                if ((*mode)[i]["params"] != report["results"][i]["params"]) {
                    std::fprintf(stderr, "bench_train_step: PyTorch's %s has parameters %s, ours %s\n",
                                 o.methods[i].label, (*mode)[i]["params"].dump().c_str(),
                                 report["results"][i]["params"].dump().c_str());
                    ++mismatches;
                }
        }
        return mismatches == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "bench_train_step: " << e.what() << "\n";
        return 1;
    }
}
