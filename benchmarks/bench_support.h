// What the CPU benchmarks share: medians, process CPU time, and running a peer script for its output.
#pragma once

#include <algorithm>
#include <cstdio>
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

}  // namespace r2c::bench
