// AddressSanitizer detection for GCC (__SANITIZE_ADDRESS__) and Clang (__has_feature): defines
// R2C_ASAN and brings in the manual poisoning interface when the build is instrumented.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define R2C_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define R2C_ASAN 1
#endif
#endif

#ifdef R2C_ASAN
#include <sanitizer/asan_interface.h>
#endif
