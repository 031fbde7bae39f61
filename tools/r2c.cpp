// r2c: the command-line tool.
#include <cstring>
#include <iostream>
#include <string>

#include "engine/device.h"
#include "engine/error.h"

namespace {

const char* kUsage =
    "usage: r2c <command> [options]\n"
    "commands:\n"
    "  info     build configuration and devices\n"
    "  help     this text\n";

int cmd_info() {
    std::cout << "r2c " << R2C_VERSION << "\n";
    std::cout << "CUDA support: " << (r2c::cuda::compiled() ? "compiled in" : "not compiled in") << "\n";
    if (r2c::cuda::compiled()) std::cout << r2c::cuda::describe() << "\n";
#ifdef _OPENMP
    std::cout << "CPU threads (OpenMP): enabled\n";
#else
    std::cout << "CPU threads (OpenMP): disabled\n";
#endif
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << kUsage;
        return 2;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "info") return cmd_info();
        if (cmd == "help" || cmd == "--help" || cmd == "-h") {
            std::cout << kUsage;
            return 0;
        }
        std::cerr << "r2c: unknown command '" << cmd << "'\n" << kUsage;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "r2c " << cmd << ": " << e.what() << "\n";
        return 1;
    }
}
