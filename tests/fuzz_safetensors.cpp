// libFuzzer target: any bytes given to the safetensors reader either parse or raise r2c::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/error.h"
#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        r2c::parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), "fuzz input");
    } catch (const r2c::Error&) {
    }
    return 0;
}
