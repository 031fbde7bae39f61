// Named tensors on disk in the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   JSON object: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//             optional "__metadata__": {"<key>": "<string>", ...}}
//   rest      the data section: each tensor's raw little-endian elements at [begin, end), offsets counted
//             from the start of the data section; the ranges tile it without gaps or overlaps.
// Only F32 and F64 tensors are supported. Files are treated as untrusted: the reader validates every
// field and rejects anything malformed with an r2c::Error naming the file and the problem.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace r2c {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
    std::string origin;                     // the path (or other source name) used in error messages
    std::map<std::string, Tensor> tensors;  // by name; CPU tensors without autograd state
    std::map<std::string, std::string> metadata;

    // The tensor called `name`; the error names the file when there is none.
    const Tensor& at(const std::string& name) const;
};

// Header lengths above this are rejected (the reference implementation's limit).
constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Writes `tensors` (any device; CUDA tensors are copied to the host) and `metadata` to `path` atomically
// (see write_file_atomic). The bytes depend only on the set of names, shapes, dtypes, values and metadata,
// not on the order given: header keys are sorted, the header is padded with spaces to a multiple of 8
// bytes, and the data section holds float64 tensors before float32 ones, each group by name, so every
// tensor starts at an offset aligned to its element size. Names must be unique, valid UTF-8 and not
// "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates a safetensors file.
SafetensorsFile load_safetensors(const std::string& path);

// Validates and decodes safetensors bytes; `origin` names their source in error messages.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& origin);

// Copies the tensor of `file` with each target's name into that target (any device), as when restoring a
// checkpoint. Every target must be present with the target's shape and dtype; all targets are checked
// before any is written, so a failed load leaves the targets unchanged. Tensors of the file that no
// target names are ignored.
void load_tensors_into(const SafetensorsFile& file, const NamedTensors& targets);

}  // namespace r2c
