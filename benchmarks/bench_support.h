// What the CPU benchmarks share: medians, process CPU time, and running a peer script for its output.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace r2c::bench {

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// CPU time of the process, summed over its threads, in milliseconds.
inline double cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

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

// The Python that runs the PyTorch peers: R2C_TORCH_PYTHON, else Debian's /usr/bin/python3.
inline std::string torch_python() {
    const char* env = std::getenv("R2C_TORCH_PYTHON");
    return env != nullptr && *env != '\0' ? env : "/usr/bin/python3";
}

// A file of the source tree, for the peer scripts: under R2C_SOURCE_DIR when that variable is set (a
// benchmark copied to another machine, beside a checkout in another place), else under the tree it was
// built from (`source_dir`, the compile-time R2C_SOURCE_DIR).
inline std::string source_file(const char* source_dir, const std::string& relative) {
    const char* env = std::getenv("R2C_SOURCE_DIR");
    return std::string(env != nullptr && *env != '\0' ? env : source_dir) + "/" + relative;
}

}  // namespace r2c::bench
