// The CUDA math-precision and convolution-algorithm settings (engine/device.h): plain host state, the same
// with or without CUDA.
#include <atomic>

#include "engine/device.h"
#include "engine/error.h"

namespace r2c::cuda {

namespace {
std::atomic<MathPrecision> g_precision{MathPrecision::TF32};
std::atomic<ConvAlgorithm> g_algorithm{ConvAlgorithm::Auto};
std::atomic<std::size_t> g_workspace_limit{std::size_t(128) << 20};
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

bool cudnn_compiled() {
#ifdef R2C_HAVE_CUDNN
    return true;
#else
    return false;
#endif
}

}  // namespace r2c::cuda
