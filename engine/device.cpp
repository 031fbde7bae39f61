// The CUDA math-precision setting (engine/device.h): plain host state, the same with or without CUDA.
#include <atomic>

#include "engine/device.h"
#include "engine/error.h"

namespace r2c::cuda {

namespace {
std::atomic<MathPrecision> g_precision{MathPrecision::TF32};
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

}  // namespace r2c::cuda
