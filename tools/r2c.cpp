// r2c: the command-line tool. Exit codes: 0 success, 1 failure while working, 2 bad command line.
#include <iostream>
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
    {"train", "train an R2C-GAN (Algorithm 1); resumes the run in --output_dir", r2c::cli::train_options,
     r2c::cli::cmd_train},
    {"test", "classification metrics (and restoration scores) of a trained G on testA",
     r2c::cli::test_options, r2c::cli::cmd_test},
    {"restore", "restore images with a trained G and report their COVID-19 probability",
     r2c::cli::restore_options, r2c::cli::cmd_restore},
    {"make-data", "write a dataset (trainA, trainB, testA, testA_clean): synthetic, or --from real images",
     r2c::cli::make_data_options, r2c::cli::cmd_make_data},
    {"degrade", "write degraded copies of a folder of images (blind degradation model)",
     r2c::cli::degrade_options, r2c::cli::cmd_degrade},
    {"bench", "time a training iteration and inference of one configuration on this machine",
     r2c::cli::bench_options, r2c::cli::cmd_bench},
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
        try {
            const r2c::cli::Args args(c.name, c.options(), argc, argv, 2);
            return c.run(args);
        } catch (const r2c::cli::UsageError& e) {
            std::cerr << "r2c " << name << ": " << e.what() << "\n";
            return 2;
        } catch (const std::exception& e) {
            std::cerr << "r2c " << name << ": " << e.what() << "\n";
            return 1;
        }
    }
    std::cerr << "r2c: unknown command '" << name << "'\n";
    print_usage(std::cerr);
    return 2;
}
