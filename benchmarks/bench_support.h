// What the benchmarks with a PyTorch peer share: finding and running the peer script for its output.
// (Timing: models/step_timing.h.)
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace r2c::bench {

// Runs a shell command; returns its standard output and stores its pclose status (-1: could not start).
inline std::string command_output(const std::string& cmd, int& status) {
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
        status = -1;
        return "";
    }
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
        out.append(buf, n);
    status = pclose(pipe);
    return out;
}

// The Python that runs the PyTorch peers: R2C_TORCH_PYTHON; else the python3 on PATH when it imports torch
// (a virtual environment's, or the PyTorch install of a GPU machine); else Debian's /usr/bin/python3, the
// one with python3-torch. Decided once per process.
inline std::string torch_python() {
    static const std::string python = [] {
        const char* env = std::getenv("R2C_TORCH_PYTHON");
        if (env != nullptr && *env != '\0') return std::string(env);
        if (std::system("python3 -c 'import torch' > /dev/null 2>&1") == 0) return std::string("python3");
        return std::string("/usr/bin/python3");
    }();
    return python;
}

// A file of the source tree, for the peer scripts: under R2C_SOURCE_DIR when that variable is set (a
// benchmark copied to another machine, beside a checkout in another place), else under the tree it was
// built from (`source_dir`, the compile-time R2C_SOURCE_DIR).
inline std::string source_file(const char* source_dir, const std::string& relative) {
    const char* env = std::getenv("R2C_SOURCE_DIR");
    return std::string(env != nullptr && *env != '\0' ? env : source_dir) + "/" + relative;
}

}  // namespace r2c::bench
