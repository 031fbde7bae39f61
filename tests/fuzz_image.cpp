// libFuzzer target: any bytes given to the image decoder either decode to a 3-channel image within the
// pixel limit or raise r2c::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "data/image_io.h"
#include "engine/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const r2c::Image im =
            r2c::decode_image(std::string(reinterpret_cast<const char*>(data), size), "fuzz input", 4 << 20);
        if (im.channels != 3 || im.width <= 0 || im.height <= 0 ||
            im.pixels.size() != static_cast<std::size_t>(im.width) * im.height * 3)
            std::abort();
    } catch (const r2c::Error&) {
    }
    return 0;
}
