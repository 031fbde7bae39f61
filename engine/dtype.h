// Element types and devices a tensor can have.
#pragma once

#include <cstddef>
#include <string>

namespace r2c {

enum class DType { F32, F64 };
enum class Device { CPU, CUDA };

inline std::size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : "float64"; }
inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
    static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
    static constexpr DType value = DType::F64;
};

}  // namespace r2c
