// Command-line options of the form --name value or --name=value, checked against the options a command
// declares: an unknown option, a missing value or a value of the wrong type is an error before any work.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"

namespace r2c::cli {

// A bad command line (unknown option, missing or out-of-range value): exit code 2, before any work.
class UsageError : public Error {
  public:
    using Error::Error;
};

struct OptionSpec {
    std::string name;  // without the leading dashes
    std::string help;
    std::string fallback;   // default value as text
    bool is_flag = false;   // takes no value; present means "true"
    bool required = false;  // must be given
};

// --precision and --conv_algorithm, which every command that runs the networks takes (read with
// Args::precision and Args::conv_algorithm).
OptionSpec precision_option();
OptionSpec conv_algorithm_option();

class Args {
  public:
    // Parses argv[first..argc); throws r2c::Error naming the offending option.
    Args(const std::string& command, const std::vector<OptionSpec>& specs, int argc, char** argv, int first);

    std::string str(const std::string& name) const;
    std::int64_t integer(const std::string& name, std::int64_t lo, std::int64_t hi) const;
    double real(const std::string& name, double lo, double hi) const;
    bool flag(const std::string& name) const;
    bool given(const std::string& name) const;     // on the command line, not left to its default
    Device device(const std::string& name) const;  // "cpu" or "cuda"
    cuda::MathPrecision precision(const std::string& name) const;       // "fp32", "tf32" or "bf16"
    cuda::ConvAlgorithm conv_algorithm(const std::string& name) const;  // "auto", "fused" or "cudnn"
    bool on_off(const std::string& name) const;                         // "on" or "off"

    static std::string usage(const std::string& command, const std::vector<OptionSpec>& specs);

  private:
    const OptionSpec& spec(const std::string& name) const;
    std::string command_;
    std::vector<OptionSpec> specs_;
    std::map<std::string, std::string> values_;
};

}  // namespace r2c::cli
