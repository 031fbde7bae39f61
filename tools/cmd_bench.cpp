// r2c bench: how fast one configuration trains and infers on this machine, before a long run. One training
// iteration of Algorithm 1 (Trainer::step on a random batch) and inference (G once), timed after warm-up,
// with the convolutions' FLOP rate, the device memory and launches of a step on CUDA, and what the whole
// training schedule would take at that rate; with --profile, where one iteration's time goes, op by op.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"
#include "engine/device.h"
#include "models/step_timing.h"
#include "tools/commands.h"

namespace r2c::cli {

const std::vector<OptionSpec>& bench_options() {
    static const std::vector<OptionSpec> specs = {
        {"method", "operational, convolutional or convolutional-light", "operational", false},
        {"q", "order of the operational layers", "3", false},
        {"device", "cpu or cuda", "cpu", false},
        precision_option(),
        conv_algorithm_option(),
        {"conv_workspace_mb",
         "the most device memory one cuDNN pass may take as workspace, MiB (0: twice the pass's tensors, "
         "128 MiB to an eighth of the device)",
         "0", false},
        {"cuda_graphs", "on CUDA, replay the training step as CUDA graphs (as r2c train does): on or off",
         "on", false},
        {"size", "image size (a multiple of 8)", "256", false},
        {"batch_size", "images per domain per training iteration", "1", false},
        {"inference_batch", "images per inference call", "1", false},
        {"warmup", "untimed iterations first (with CUDA graphs the third captures)", "3", false},
        {"iterations", "timed iterations (their median is reported)", "10", false},
        {"epochs", "of the schedule to estimate", "2000", false},
        {"images_per_epoch", "of the schedule to estimate: the larger training domain (the paper's: 2460)",
         "2460", false},
        {"profile",
         "then print the N ops that took longest in one more training iteration, run without CUDA graphs "
         "(0: none)",
         "0", false},
        {"json", "also write the results to this file", "", false},
    };
    return specs;
}

int cmd_bench(const Args& args) {
    TrainConfig c;
    c.method = parse_method(args.str("method"));
    c.q = static_cast<int>(args.integer("q", 1, 16));
    c.device = args.device("device");
    const cuda::MathPrecision precision = args.precision("precision");
    const cuda::ConvAlgorithm algorithm = args.conv_algorithm("conv_algorithm");
    const std::int64_t workspace_mb = args.integer("conv_workspace_mb", 0, 1 << 20);
    c.cuda_graphs = args.on_off("cuda_graphs");
    const int size = static_cast<int>(args.integer("size", 8, 8192));
    if (size % 8 != 0)
        throw UsageError("--size must be a multiple of 8 (the discriminators downsample by 8), got " +
                         std::to_string(size));
    const int batch = static_cast<int>(args.integer("batch_size", 1, 4096));
    const int inference_batch = static_cast<int>(args.integer("inference_batch", 1, 4096));
    const int warmup = static_cast<int>(args.integer("warmup", 0, 1000));
    const int reps = static_cast<int>(args.integer("iterations", 1, 100000));
    const std::int64_t epochs = args.integer("epochs", 1, 1'000'000);
    // As r2c train counts them: an epoch has max(|A|,|B|) // batch iterations.
    const std::int64_t per_epoch =
        std::max<std::int64_t>(1, args.integer("images_per_epoch", 1, 1'000'000'000) / batch);
    const int profile_rows = static_cast<int>(args.integer("profile", 0, 100000));
    const std::string json_path = args.str("json");
    if (c.device == Device::CUDA) R2C_CHECK(cuda::available(), "--device cuda: ", cuda::describe());
    cuda::set_math_precision(precision);
    cuda::set_conv_algorithm(algorithm);
    cuda::set_conv_workspace_limit(static_cast<std::size_t>(workspace_mb) << 20);

    const std::string device_name = c.device == Device::CUDA ? cuda::describe() : "cpu";
    std::cout << "method " << method_name(c.method);
    if (c.method == Method::Operational) std::cout << ", Q = " << c.q;
    std::cout << "; " << device_name;
    if (c.device == Device::CUDA)
        std::cout << ", " << cuda::math_precision_name(precision) << ", convolutions "
                  << cuda::conv_algorithm_name(algorithm) << ", CUDA graphs "
                  << (c.cuda_graphs ? "on" : "off");
    std::cout << "; " << size << "x" << size << ", batch " << batch << "\n" << std::flush;

    Rng rng(1);
    const auto [A, cA] = random_batch(batch, size, c.device, rng);
    const auto [B, cB] = random_batch(batch, size, c.device, rng);
    const TrainingTiming train = time_training(c, A, B, cA, cB, warmup, reps);
    const double ms = train.time.wall_ms;
    std::printf("training iteration: %.3f ms median (fastest %.3f) over %d after %d warm-up; %.2f images/s\n",
                ms, train.time.min_wall_ms, reps, warmup, batch * 1e3 / ms);
    std::printf("  convolutions: %.1f GFLOP per iteration, %.2f TFLOP/s\n", train.conv_gflop,
                train.conv_gflop / ms);
    if (c.device == Device::CUDA)
        std::printf(
            "  device memory of a step: %.1f MiB at most; per iteration %.0f kernel launches, %.0f copies "
            "and fills, %.0f host waits\n",
            static_cast<double>(train.peak_bytes) / 1048576.0, train.kernel_launches, train.memory_operations,
            train.host_waits);
    if (train.plan_records > 0)
        std::printf(
            "  memory of the graphs planned from a rehearsal of %zu allocations: %zu served in place\n",
            train.plan_records, train.planned);
    const double schedule_hours = static_cast<double>(epochs) * static_cast<double>(per_epoch) * ms / 3.6e6;
    std::printf("  %lld epochs x %lld iterations at this rate: %.1f hours\n", static_cast<long long>(epochs),
                static_cast<long long>(per_epoch), schedule_hours);

    const std::vector<cuda::ConvChoice> choices = cuda::conv_choices();
    const nlohmann::json choices_json = conv_choices_json();  // the training iteration's, as printed
    if (!choices.empty()) {
        std::printf("  auto's choices (mean ms of 3 runs, fused / cudnn), %zu passes and shapes:\n",
                    choices.size());
        for (const cuda::ConvChoice& k : choices)
            std::printf("    %-6s %8.3f %8.3f  %s %s%s%s\n", k.cudnn ? "cudnn" : "fused", k.fused_ms,
                        k.cudnn_ms, k.pass.c_str(), k.shape.c_str(), k.note.empty() ? "" : ": ",
                        k.note.c_str());
    }
    const std::vector<cuda::CudnnSearch> searches = cuda::cudnn_searches();
    const nlohmann::json searches_json = cudnn_searches_json();  // the training iteration's, as printed
    if (!searches.empty()) {
        std::printf(
            "  cuDNN's algorithms (ms as cuDNN timed them, workspace MiB of limit MiB), %zu problems:\n",
            searches.size());
        for (const cuda::CudnnSearch& s : searches) {
            std::printf("    %-15s %s: ", s.pass.c_str(), s.problem.c_str());
            if (s.chosen < 0) {
                std::printf("none within %.0f MiB\n", static_cast<double>(s.limit) / 1048576.0);
                continue;
            }
            const cuda::CudnnCandidate& taken = s.candidates[static_cast<std::size_t>(s.chosen)];
            std::printf("%s %s, %.3f ms, %.1f of %.0f MiB%s\n", taken.algo.c_str(), taken.math.c_str(),
                        taken.ms, static_cast<double>(taken.workspace) / 1048576.0,
                        static_cast<double>(s.limit) / 1048576.0,
                        s.heuristic ? " (heuristic, in a capture)" : "");
        }
    }

    Rng init(0);
    const auto g = make_generator(c.method, c.q, init);
    g->to(c.device);
    const InferenceTiming infer =
        time_inference(*g, random_batch(inference_batch, size, c.device, rng).first, warmup, reps);
    std::printf("inference (restore + classify, batch %d): %.3f ms per sample, %.2f TFLOP/s\n",
                inference_batch, infer.time.wall_ms / inference_batch, infer.conv_gflop / infer.time.wall_ms);

    nlohmann::json profile_json;
    if (profile_rows > 0) {
        const OpProfile profile = profile_training(c, A, B, cA, cB);
        std::printf(
            "op profile of one training iteration without CUDA graphs: %.3f ms, %.3f ms in %zu ops "
            "(their passes forward and backward, by shape), the rest outside them (optimiser, guards, "
            "copies)\n",
            profile.total_ms, profile.ops_ms(), profile.ops.size());
        std::printf("  %10s %6s %6s  %s\n", "ms", "share", "calls", "op");
        const std::size_t shown =
            std::min<std::size_t>(profile.ops.size(), static_cast<std::size_t>(profile_rows));
        for (std::size_t i = 0; i < shown; ++i) {
            const OpTime& t = profile.ops[i];
            std::printf("  %10.3f %5.1f%% %6lld  %s\n", t.ms, 100 * t.ms / profile.total_ms,
                        static_cast<long long>(t.calls), t.op.c_str());
        }
        nlohmann::json ops = nlohmann::json::array();
        for (const OpTime& t : profile.ops)
            ops.push_back({{"op", t.op}, {"calls", t.calls}, {"ms", t.ms}});
        profile_json = {{"total_ms", profile.total_ms}, {"ops_ms", profile.ops_ms()}, {"ops", ops}};
    }

    if (!json_path.empty()) {
        nlohmann::json j = {
            {"method", method_name(c.method)},
            {"q", c.q},
            {"device", device_name},
            {"cudnn_version", cuda::cudnn_version()},
            {"precision", c.device == Device::CUDA ? cuda::math_precision_name(precision) : "fp32"},
            {"conv_algorithm", c.device == Device::CUDA ? cuda::conv_algorithm_name(algorithm) : "cpu"},
            {"conv_workspace_mb", workspace_mb},
            {"cuda_graphs", c.device == Device::CUDA && c.cuda_graphs},
            {"size", size},
            {"warmup", warmup},
            {"iterations", reps},
            {"train",
             {{"batch", batch},
              {"ms", ms},
              {"fastest_ms", train.time.min_wall_ms},
              {"cpu_ms", train.time.cpu_ms},
              {"images_per_s", batch * 1e3 / ms},
              {"conv_gflop", train.conv_gflop},
              {"conv_tflop_per_s", train.conv_gflop / ms},
              {"peak_bytes", train.peak_bytes},
              {"kernel_launches", train.kernel_launches},
              {"memory_operations", train.memory_operations},
              {"plan_records", train.plan_records},
              {"planned", train.planned},
              {"host_waits", train.host_waits},
              {"schedule",
               {{"epochs", epochs}, {"iterations_per_epoch", per_epoch}, {"hours", schedule_hours}}}}},
            {"inference",
             {{"batch", inference_batch},
              {"ms_per_sample", infer.time.wall_ms / inference_batch},
              {"conv_tflop_per_s", infer.conv_gflop / infer.time.wall_ms}}},
        };
        j["conv_choices"] = choices_json;
        j["cudnn_searches"] = searches_json;
        if (profile_rows > 0) j["profile"] = profile_json;
        write_file_atomic(json_path, j.dump(2) + "\n");
        std::cout << "wrote " << json_path << "\n";
    }
    return 0;
}

}  // namespace r2c::cli
