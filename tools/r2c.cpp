// r2c: the command-line tool. Exit codes: 0 success, 1 failure while working, 2 bad command line.
#include <iostream>
#include <memory>
#include <string>

#include "engine/error.h"
#include "tools/commands.h"

namespace {

struct Command {
    const char* name;
    const char* help;
    const std::vector<r2c::cli::OptionSpec>& (*options)();
    int (*run)(const r2c::cli::Args&);
};

const Command kCommands[] = {
    {"info", "build configuration, devices, networks and parameter counts", r2c::cli::info_options,
     r2c::cli::cmd_info},
};

void print_usage(std::ostream& os) {
    os << "usage: r2c <command> [options]   (r2c <command> --help for its options)\ncommands:\n";
    for (const Command& c : kCommands)
        os << "  " << c.name << "\t" << c.help << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        print_usage(std::cerr);
        return 2;
    }
    const std::string name = argv[1];
    if (name == "help" || name == "--help" || name == "-h") {
        print_usage(std::cout);
        return 0;
    }
    for (const Command& c : kCommands) {
        if (name != c.name) continue;
        if (argc > 2 && std::string(argv[2]) == "--help") {
            std::cout << r2c::cli::Args::usage(c.name, c.options());
            return 0;
        }
        std::unique_ptr<r2c::cli::Args> args;
        try {
            args = std::make_unique<r2c::cli::Args>(c.name, c.options(), argc, argv, 2);
        } catch (const r2c::Error& e) {
            std::cerr << e.what() << "\n";
            return 2;
        }
        try {
            return c.run(*args);
        } catch (const std::exception& e) {
            std::cerr << "r2c " << name << ": " << e.what() << "\n";
            return 1;
        }
    }
    std::cerr << "r2c: unknown command '" << name << "'\n";
    print_usage(std::cerr);
    return 2;
}
