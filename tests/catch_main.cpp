// Catch2's runner, then the device allocator's cache handed back to the driver, so that the leak check of
// compute-sanitizer (tools/gpu_check.sh) reports only the device memory a test still holds at exit.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "engine/device.h"

int main(int argc, char* argv[]) {
    const int rc = Catch::Session().run(argc, argv);
    if (r2c::cuda::available()) r2c::cuda::allocator().empty_cache();
    return rc;
}
