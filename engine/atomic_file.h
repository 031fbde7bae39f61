// Whole-file reads and crash-safe whole-file writes, for checkpoints and other outputs that must never be
// left half-written: a reader sees either the previous file or the complete new one, also after a crash
// or a power loss in the middle of a write.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace r2c {

// A run of bytes to write; the memory must stay valid for the duration of the call.
struct ByteSpan {
    const void* data;
    std::size_t size;
};

// Replaces `path` with the concatenation of `parts`. The bytes go to a temporary file in the same
// directory, which is synced to disk and then renamed over `path`; the directory is synced last so the
// rename itself survives a crash. On failure (missing or unwritable directory, disk full, ...) the
// temporary file is removed, a previous file at `path` is left untouched, and r2c::Error names the path
// and the OS reason.
void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& parts);
void write_file_atomic(const std::string& path, const std::string& bytes);

// Removes from `folder` the temporary files of atomic writes whose process no longer runs (killed
// mid-write); returns how many. Temporaries of running processes are left alone.
int remove_stale_temporaries(const std::string& folder);

// The whole contents of `path`; r2c::Error names the path and the OS reason when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace r2c
