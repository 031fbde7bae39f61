#include "models/step_timing.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"

namespace r2c {

double median(std::vector<double> values) {
    R2C_CHECK(!values.empty(), "median: no values");
    std::sort(values.begin(), values.end());
    const std::size_t m = values.size() / 2;
    return values.size() % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
}

double process_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

Timing time_calls(const std::function<void()>& fn, int warmup, int reps) {
    R2C_CHECK(warmup >= 0 && reps >= 1, "time_calls: need warmup >= 0 and reps >= 1, got ", warmup, " and ",
              reps);
    std::vector<double> wall, cpu;
    for (int rep = 0; rep < warmup + reps; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        const double start_cpu = process_cpu_ms();
        fn();
        const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
        if (rep >= warmup) {
            wall.push_back(elapsed.count());
            cpu.push_back(process_cpu_ms() - start_cpu);
        }
    }
    return {median(wall), *std::min_element(wall.begin(), wall.end()), median(cpu)};
}

TrainingTiming time_training(const TrainConfig& config, const Tensor& A, const Tensor& B, const Tensor& cA,
                             const Tensor& cB, int warmup, int reps) {
    Trainer trainer(config);
    const bool on_cuda = config.device == Device::CUDA;
    const AllocatorStats at_start = on_cuda ? cuda::allocator().stats() : AllocatorStats();
    // The ops count their work as they run on the host, which a replayed step skips: the first step, never
    // replayed, gives the count of every step.
    std::uint64_t first_step_macs = 0;
    bool first = true;
    const auto step = [&] {
        const std::uint64_t before = conv_multiply_adds();
        trainer.step(A, B, cA, cB);
        if (first) first_step_macs = conv_multiply_adds() - before;
        first = false;
    };
    for (int i = 0; i < warmup; ++i)
        step();
    // The device's counts cover the timed steps alone (with graphs, the replays).
    if (on_cuda) cuda::allocator().reset_peak();
    const std::uint64_t waits = cuda::host_waits(), launches = cuda::kernel_launches(),
                        memory_operations = cuda::memory_operations();
    TrainingTiming out;
    out.time = time_calls(step, 0, reps);
    out.conv_gflop = 2e-9 * static_cast<double>(first_step_macs);
    if (on_cuda) {
        out.peak_bytes = cuda::allocator().stats().peak_in_use;
        out.host_waits = static_cast<double>(cuda::host_waits() - waits) / reps;
        out.kernel_launches = static_cast<double>(cuda::kernel_launches() - launches) / reps;
        out.memory_operations = static_cast<double>(cuda::memory_operations() - memory_operations) / reps;
        const AllocatorStats after = cuda::allocator().stats();
        out.plan_records = after.plan_records - at_start.plan_records;
        out.planned = after.planned - at_start.planned;
    }
    return out;
}

OpProfile profile_training(TrainConfig config, const Tensor& A, const Tensor& B, const Tensor& cA,
                           const Tensor& cB) {
    config.cuda_graphs = false;
    Trainer trainer(config);
    trainer.step(A, B, cA, cB);
    OpProfiler profiler(config.device);
    trainer.step(A, B, cA, cB);
    return profiler.results();
}

InferenceTiming time_inference(const Generator& g, const Tensor& x, int warmup, int reps) {
    const std::uint64_t macs = conv_multiply_adds();
    InferenceTiming out;
    out.time = time_calls(
        [&] {
            NoGradGuard no_grad;
            const GeneratorOutput result = g.forward(x);
            result.probs.to(Device::CPU);
        },
        warmup, reps);
    out.conv_gflop = 2e-9 * static_cast<double>(conv_multiply_adds() - macs) / (warmup + reps);
    return out;
}

std::pair<Tensor, Tensor> random_batch(int n, int size, Device device, Rng& rng) {
    std::vector<double> onehot;
    for (int i = 0; i < n; ++i) {
        const bool covid = rng.uniform() < 0.5;
        onehot.push_back(covid ? 0.0 : 1.0);
        onehot.push_back(covid ? 1.0 : 0.0);
    }
    return {Tensor::uniform({n, 3, size, size}, -1, 1, rng).to(device),
            Tensor::from_vector(onehot, {n, 2}).to(device)};
}

nlohmann::json conv_choices_json(std::size_t first) {
    const std::vector<cuda::ConvChoice> all = cuda::conv_choices();
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = first; i < all.size(); ++i)
        out.push_back({{"pass", all[i].pass},
                       {"shape", all[i].shape},
                       {"choice", all[i].cudnn ? "cudnn" : "fused"},
                       {"fused_ms", all[i].fused_ms},
                       {"cudnn_ms", all[i].cudnn_ms},
                       {"note", all[i].note}});
    return out;
}

nlohmann::json cudnn_searches_json(std::size_t first) {
    const std::vector<cuda::CudnnSearch> all = cuda::cudnn_searches();
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = first; i < all.size(); ++i) {
        nlohmann::json candidates = nlohmann::json::array();
        for (const cuda::CudnnCandidate& c : all[i].candidates)
            candidates.push_back({{"algo", c.algo},
                                  {"math", c.math},
                                  {"status", c.status},
                                  {"ms", c.ms},
                                  {"workspace_bytes", c.workspace}});
        out.push_back({{"pass", all[i].pass},
                       {"problem", all[i].problem},
                       {"limit_bytes", all[i].limit},
                       {"heuristic", all[i].heuristic},
                       {"chosen", all[i].chosen},
                       {"candidates", candidates}});
    }
    return out;
}

}  // namespace r2c
