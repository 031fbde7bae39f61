// Timing a whole training iteration (Trainer::step) and inference (G once without gradients, the class
// probabilities copied to the host, as `r2c restore` runs it), with what the engine counts meanwhile: what
// `r2c bench` reports and benchmarks/bench_train_step sets beside PyTorch. Every timed call ends with a
// device-to-host copy, which waits for the device, so the clock stops when the GPU has finished.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "engine/profile.h"
#include "models/networks.h"
#include "models/trainer.h"

namespace r2c {

double median(std::vector<double> values);
double process_cpu_ms();  // CPU time of the process, all threads

// Wall-clock and process CPU milliseconds of fn over `reps` calls after `warmup` untimed ones.
struct Timing {
    double wall_ms = 0;      // median
    double min_wall_ms = 0;  // fastest
    double cpu_ms = 0;       // median
};
Timing time_calls(const std::function<void()>& fn, int warmup, int reps);

struct TrainingTiming {
    Timing time;
    double conv_gflop = 0;         // the operational convolutions of one iteration, x 2 (ops.h)
    std::size_t peak_bytes = 0;    // CUDA, over the timed calls: the allocator's peak in use
    double host_waits = 0;         // CUDA, per timed call
    double kernel_launches = 0;    // CUDA, per timed call
    double memory_operations = 0;  // CUDA, per timed call: copies and fills (cuda::memory_operations)
    // CUDA graphs, over all calls: the allocations the plan of the graphs' memory laid out from the
    // rehearsal, and those of the capture served at their planned places (engine/allocator.h).
    std::size_t plan_records = 0, planned = 0;
};
// A Trainer built from `config` stepping on one batch (A, B, cA, cB on config.device). With CUDA graphs the
// first two calls run unreplayed (the second rehearses) and the third captures: warmup >= 3 times replays
// alone.
TrainingTiming time_training(const TrainConfig& config, const Tensor& A, const Tensor& B, const Tensor& cA,
                             const Tensor& cB, int warmup, int reps);

// Where one training iteration's time goes, op by op (engine/profile.h): a Trainer built from `config`
// without CUDA graphs (a replay runs no op code) takes one untimed step, then one profiled step.
OpProfile profile_training(TrainConfig config, const Tensor& A, const Tensor& B, const Tensor& cA,
                           const Tensor& cB);

struct InferenceTiming {
    Timing time;            // per call (the whole batch)
    double conv_gflop = 0;  // per call
};
InferenceTiming time_inference(const Generator& g, const Tensor& x, int warmup, int reps);

// Auto's choices of convolution path (cuda::conv_choices()) from the first-th on, as the benchmarks' JSON
// holds them: pass, shape, choice ("cudnn" or "fused"), fused_ms, cudnn_ms, note.
nlohmann::json conv_choices_json(std::size_t first = 0);
// cuDNN's algorithm searches (cuda::cudnn_searches()) from the first-th on: pass, problem, limit_bytes,
// heuristic, chosen (an index into candidates, -1 for none) and candidates (algo, math, status, ms,
// workspace_bytes).
nlohmann::json cudnn_searches_json(std::size_t first = 0);

// n images of size x size in [-1,1] and one-hot labels of random classes, on `device`.
std::pair<Tensor, Tensor> random_batch(int n, int size, Device device, Rng& rng);

}  // namespace r2c
