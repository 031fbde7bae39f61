// Errors raised by the engine: one exception type whose message names the operation and what was wrong.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace r2c {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
    std::ostringstream s;
    (s << ... << args);
    return s.str();
}
}  // namespace detail

}  // namespace r2c

// R2C_CHECK(cond, "op_name: ", details...) throws r2c::Error with the concatenated message when cond fails.
#define R2C_CHECK(cond, ...)                                           \
    do {                                                               \
        if (!(cond)) throw ::r2c::Error(::r2c::detail::concat(__VA_ARGS__)); \
    } while (0)
