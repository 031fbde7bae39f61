// The r2c subcommands: each declares its options and runs with them parsed.
#pragma once

#include <vector>

#include "tools/args.h"

namespace r2c::cli {

const std::vector<OptionSpec>& info_options();
int cmd_info(const Args& args);

const std::vector<OptionSpec>& train_options();
int cmd_train(const Args& args);

const std::vector<OptionSpec>& test_options();
int cmd_test(const Args& args);

const std::vector<OptionSpec>& restore_options();
int cmd_restore(const Args& args);

const std::vector<OptionSpec>& make_data_options();
int cmd_make_data(const Args& args);

const std::vector<OptionSpec>& degrade_options();
int cmd_degrade(const Args& args);

const std::vector<OptionSpec>& bench_options();
int cmd_bench(const Args& args);

}  // namespace r2c::cli
