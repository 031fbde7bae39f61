// The one translation unit holding the stb_image / stb_image_write implementations. Compiled here rather
// than linking Debian's libstb.so so that only the PNG and JPEG decoders exist in the binary (a smaller
// attack surface for untrusted files than Debian's build with every format), the header and the
// implementation always match, and there is no run-time library to install.
//
// STBI_NO_STDIO / STBI_WRITE_NO_STDIO: all file access goes through engine/atomic_file.h (whole-file reads,
// atomic writes); stb only sees memory. stbi_failure_reason() keeps stb's short, specific reasons ("bad png
// sig", "0-pixel image"); this version of stb keeps it per thread, so the loader's background thread does
// not race with other callers.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
