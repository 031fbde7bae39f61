// The r2c subcommands: each declares its options and runs with them parsed.
#pragma once

#include <vector>

#include "tools/args.h"

namespace r2c::cli {

const std::vector<OptionSpec>& info_options();
int cmd_info(const Args& args);

}  // namespace r2c::cli
