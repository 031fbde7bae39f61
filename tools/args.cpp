#include "tools/args.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "engine/error.h"

namespace r2c::cli {

namespace {

template <typename... Parts>
void usage_check(bool ok, const Parts&... parts) {
    if (!ok) throw UsageError(detail::concat(parts...));
}

}  // namespace

Args::Args(const std::string& command, const std::vector<OptionSpec>& specs, int argc, char** argv, int first)
    : command_(command), specs_(specs) {
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        usage_check(a.rfind("--", 0) == 0 && a.size() > 2, "unexpected argument '", a,
                    "' (options are --name value)");
        a = a.substr(2);
        std::string value;
        bool has_value = false;
        if (const auto eq = a.find('='); eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
            has_value = true;
        }
        const OptionSpec& s = spec(a);
        if (s.is_flag) {
            usage_check(!has_value, "--", a, " takes no value");
            value = "true";
        } else if (!has_value) {
            usage_check(i + 1 < argc, "--", a, " needs a value");
            value = argv[++i];
        }
        values_[a] = value;
    }
    for (const OptionSpec& s : specs_)
        usage_check(!s.required || values_.count(s.name), "--", s.name, " is required (", s.help, ")");
}

const OptionSpec& Args::spec(const std::string& name) const {
    for (const OptionSpec& s : specs_)
        if (s.name == name) return s;
    throw UsageError("unknown option --" + name + "\n" + usage(command_, specs_));
}

std::string Args::str(const std::string& name) const {
    const OptionSpec& s = spec(name);
    auto it = values_.find(name);
    return it != values_.end() ? it->second : s.fallback;
}

bool Args::flag(const std::string& name) const {
    return given(name);
}

bool Args::given(const std::string& name) const {
    return values_.count(spec(name).name) > 0;
}

Device Args::device(const std::string& name) const {
    const std::string v = str(name);
    usage_check(v == "cpu" || v == "cuda", "--", name, " must be cpu or cuda, got '", v, "'");
    return v == "cpu" ? Device::CPU : Device::CUDA;
}

bool Args::on_off(const std::string& name) const {
    const std::string v = str(name);
    usage_check(v == "on" || v == "off", "--", name, " must be on or off, got '", v, "'");
    return v == "on";
}

cuda::MathPrecision Args::precision(const std::string& name) const {
    const std::string v = str(name);
    usage_check(v == "fp32" || v == "tf32" || v == "bf16", "--", name, " must be fp32, tf32 or bf16, got '",
                v, "'");
    return cuda::parse_math_precision(v);
}

OptionSpec precision_option() {
    return {"precision",
            "the least precise CUDA convolution arithmetic allowed: fp32 (exact), tf32 or bf16 (tensor "
            "cores, FP32 accumulation; cuDNN's passes with bf16 on bfloat16 power stacks)",
            "tf32", false};
}

OptionSpec conv_algorithm_option() {
    return {
        "conv_algorithm",
        "CUDA operational convolutions: fused (our kernels, x^q never in memory), cudnn (on the materialised "
        "power stack) or auto (per pass and shape, the faster of the two as timed when first run, where they "
        "agree)",
        "auto", false};
}

cuda::ConvAlgorithm Args::conv_algorithm(const std::string& name) const {
    const std::string v = str(name);
    usage_check(v == "auto" || v == "fused" || v == "cudnn", "--", name,
                " must be auto, fused or cudnn, got '", v, "'");
    usage_check(v != "cudnn" || cuda::cudnn_compiled(), "--", name,
                " cudnn: this build has no cuDNN (r2c info says what it has); use auto or fused");
    return cuda::parse_conv_algorithm(v);
}

std::int64_t Args::integer(const std::string& name, std::int64_t lo, std::int64_t hi) const {
    const std::string v = str(name);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    usage_check(!v.empty() && *end == '\0' && errno == 0, "--", name, " must be an integer, got '", v, "'");
    usage_check(x >= lo && x <= hi, "--", name, " must be in [", lo, ", ", hi, "], got ", x);
    return x;
}

double Args::real(const std::string& name, double lo, double hi) const {
    const std::string v = str(name);
    char* end = nullptr;
    errno = 0;
    const double x = std::strtod(v.c_str(), &end);
    usage_check(!v.empty() && *end == '\0' && errno == 0, "--", name, " must be a number, got '", v, "'");
    usage_check(x >= lo && x <= hi, "--", name, " must be in [", lo, ", ", hi, "], got ", x);
    return x;
}

std::string Args::usage(const std::string& command, const std::vector<OptionSpec>& specs) {
    std::ostringstream s;
    s << "usage: r2c " << command << " [options]\n";
    for (const OptionSpec& o : specs) {
        s << "  --" << o.name << (o.is_flag ? "" : " VALUE") << "\t" << o.help;
        if (!o.fallback.empty()) s << " (default " << o.fallback << ")";
        s << "\n";
    }
    return s.str();
}

}  // namespace r2c::cli
