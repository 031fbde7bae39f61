// The CUDA math-precision and convolution-algorithm settings (engine/device.h): plain host state, the same
// with or without CUDA.
#include <algorithm>
#include <atomic>

#include "engine/device.h"
#include "engine/error.h"

namespace r2c::cuda {

namespace {
std::atomic<MathPrecision> g_precision{MathPrecision::TF32};
std::atomic<ConvAlgorithm> g_algorithm{ConvAlgorithm::Auto};
std::atomic<std::size_t> g_workspace_limit{0};
constexpr std::size_t kWorkspaceFloor = std::size_t(128) << 20;
// cuDNN's candidates timed within this factor of the fastest count as equally fast (a search times each
// once); of those, the one with the least workspace is taken.
constexpr double kCudnnTimeTolerance = 1.03;
}  // namespace

void set_math_precision(MathPrecision p) {
    g_precision = p;
}

MathPrecision math_precision() {
    return g_precision;
}

const char* math_precision_name(MathPrecision p) {
    switch (p) {
        case MathPrecision::FP32:
            return "fp32";
        case MathPrecision::TF32:
            return "tf32";
        case MathPrecision::BF16:
            return "bf16";
    }
    return "?";
}

MathPrecision parse_math_precision(const std::string& name) {
    for (MathPrecision p : {MathPrecision::FP32, MathPrecision::TF32, MathPrecision::BF16})
        if (name == math_precision_name(p)) return p;
    throw Error(detail::concat("unknown precision '", name, "': use fp32, tf32 or bf16"));
}

void set_conv_algorithm(ConvAlgorithm a) {
    g_algorithm = a;
}

ConvAlgorithm conv_algorithm() {
    return g_algorithm;
}

const char* conv_algorithm_name(ConvAlgorithm a) {
    switch (a) {
        case ConvAlgorithm::Auto:
            return "auto";
        case ConvAlgorithm::Fused:
            return "fused";
        case ConvAlgorithm::Cudnn:
            return "cudnn";
    }
    return "?";
}

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
    for (ConvAlgorithm a : {ConvAlgorithm::Auto, ConvAlgorithm::Fused, ConvAlgorithm::Cudnn})
        if (name == conv_algorithm_name(a)) return a;
    throw Error(detail::concat("unknown convolution algorithm '", name, "': use auto, fused or cudnn"));
}

void set_conv_workspace_limit(std::size_t bytes) {
    g_workspace_limit = bytes;
}

std::size_t conv_workspace_limit() {
    return g_workspace_limit;
}

std::size_t conv_workspace_for(std::size_t tensor_bytes, std::size_t device_bytes) {
    if (g_workspace_limit > 0) return g_workspace_limit;
    const std::size_t cap = std::max(kWorkspaceFloor, device_bytes / 8);
    return std::clamp(2 * tensor_bytes, kWorkspaceFloor, cap);
}

int usable_cudnn_candidate(const std::vector<CudnnCandidate>& candidates, std::size_t limit, bool fma_only) {
    std::vector<std::size_t> usable;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        const CudnnCandidate& c = candidates[i];
        if (c.ran && c.workspace <= limit && c.math != "tensor_op_allow_conversion" &&
            (!fma_only || c.math == "fma"))
            usable.push_back(i);
    }
    if (usable.empty()) return -1;
    // A heuristic's ranking times nothing: its first usable candidate.
    if (candidates[usable[0]].ms < 0) return static_cast<int>(usable[0]);
    double fastest = candidates[usable[0]].ms;
    for (std::size_t i : usable)
        fastest = std::min(fastest, candidates[i].ms);
    int chosen = -1;
    for (std::size_t i : usable) {
        const CudnnCandidate& c = candidates[i];
        if (c.ms > fastest * kCudnnTimeTolerance) continue;
        if (chosen < 0 || c.workspace < candidates[static_cast<std::size_t>(chosen)].workspace)
            chosen = static_cast<int>(i);
    }
    return chosen;
}

bool cudnn_compiled() {
#ifdef R2C_HAVE_CUDNN
    return true;
#else
    return false;
#endif
}

}  // namespace r2c::cuda
