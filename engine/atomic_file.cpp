#include "engine/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace r2c {

namespace {

// A temporary file is named <path>.tmp.<pid>.<counter>.
constexpr const char* kTempMarker = ".tmp.";

// Single write() calls are capped because Linux transfers at most about 2 GiB per call anyway.
constexpr std::size_t kMaxWriteChunk = std::size_t{1} << 30;

[[noreturn]] void throw_os_error(const std::string& what, const std::string& path, int err) {
    throw Error(detail::concat(what, " '", path, "': ", std::strerror(err)));
}

std::string parent_directory(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// Closes a file descriptor on scope exit.
class FdCloser {
  public:
    explicit FdCloser(int fd) : fd_(fd) {}
    ~FdCloser() { ::close(fd_); }
    FdCloser(const FdCloser&) = delete;
    FdCloser& operator=(const FdCloser&) = delete;

  private:
    int fd_;
};

// Makes the directory entry of a just-renamed file durable.
void sync_directory(const std::string& path) {
    const int fd = ::open(parent_directory(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        throw_os_error("write_file_atomic: cannot open the directory to sync after writing", path, errno);
    FdCloser closer(fd);
    // EINVAL: the file system does not support syncing directories; there is nothing more to do.
    if (::fsync(fd) != 0 && errno != EINVAL)
        throw_os_error("write_file_atomic: cannot sync the directory after writing", path, errno);
}

// The temporary file behind one atomic write. Until commit() succeeds, destruction closes and removes
// it, so every error path (including exceptions thrown by callers between writes) cleans up.
class PendingFile {
  public:
    explicit PendingFile(const std::string& path) : path_(path) {
        // Unique per process and call; O_EXCL makes a leftover from a crashed process with a recycled
        // pid a retry instead of a clobber.
        static std::atomic<unsigned long> counter{0};
        for (int attempt = 0; fd_ < 0; ++attempt) {
            temp_ = detail::concat(path, kTempMarker, ::getpid(), ".", counter++);
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ < 0 && (errno != EEXIST || attempt >= 100))
                throw_os_error("write_file_atomic: cannot create a temporary file to write", path, errno);
        }
    }

    ~PendingFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(temp_.c_str());
    }

    PendingFile(const PendingFile&) = delete;
    PendingFile& operator=(const PendingFile&) = delete;

    void write(const void* data, std::size_t size) {
        const char* p = static_cast<const char*>(data);
        while (size > 0) {
            const ssize_t n = ::write(fd_, p, std::min(size, kMaxWriteChunk));
            if (n < 0 && errno == EINTR) continue;
            // A regular file reports a full disk as an error or, in rare cases, as a zero-byte write.
            if (n <= 0) throw_os_error("write_file_atomic: cannot write", path_, n < 0 ? errno : ENOSPC);
            p += n;
            size -= static_cast<std::size_t>(n);
        }
    }

    void commit() {
        // Data must be on disk before the rename publishes it, or a crash could leave an empty file.
        if (::fsync(fd_) != 0) throw_os_error("write_file_atomic: cannot sync", path_, errno);
        const int rc = ::close(fd_);
        fd_ = -1;
        if (rc != 0) throw_os_error("write_file_atomic: cannot close", path_, errno);
        if (::rename(temp_.c_str(), path_.c_str()) != 0)
            throw_os_error("write_file_atomic: cannot rename the temporary file over", path_, errno);
        committed_ = true;
        sync_directory(path_);
    }

  private:
    std::string path_;
    std::string temp_;
    int fd_ = -1;
    bool committed_ = false;
};

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& parts) {
    PendingFile file(path);
    for (const ByteSpan& part : parts)
        file.write(part.data, part.size);
    file.commit();
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    write_file_atomic(path, {ByteSpan{bytes.data(), bytes.size()}});
}

int remove_stale_temporaries(const std::string& folder) {
    std::error_code ec;
    int removed = 0;
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
        const std::string name = entry.path().filename().string();
        const auto marker = name.rfind(kTempMarker);
        if (marker == std::string::npos) continue;
        const char* pid_text = name.c_str() + marker + std::strlen(kTempMarker);
        char* end = nullptr;
        const long pid = std::strtol(pid_text, &end, 10);
        if (end == pid_text || *end != '.' || pid <= 0) continue;
        // kill(pid, 0) fails with ESRCH when no process has that pid any more.
        const bool stale = ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
        if (stale && std::filesystem::remove(entry.path(), ec)) ++removed;
    }
    return removed;
}

std::string read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_os_error("read_file: cannot open", path, errno);
    FdCloser closer(fd);
    struct stat st {};
    std::string out;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) return out;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_os_error("read_file: cannot read", path, errno);
        out.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace r2c
