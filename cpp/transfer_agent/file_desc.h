// file_desc.h: kvx::FileDesc, a file the loopback agent moves memory to or from. It owns its
// descriptor (opened here, closed on destruction), as an engine keeps files open across
// offloads. Inline: both the plugin and its loader construct these.
#ifndef KVX_FILE_DESC_H
#define KVX_FILE_DESC_H

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace kvx {

class FileDesc {
  public:
    FileDesc(const std::string &path, int flags, unsigned mode, size_t len)
        : fd_(::open(path.c_str(), flags, mode)), len_(len), path_(path) {
        if (fd_ < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
    }
    ~FileDesc() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDesc(FileDesc &&other) noexcept : fd_(other.fd_), len_(other.len_), path_(std::move(other.path_)) {
        other.fd_ = -1;
    }
    FileDesc(const FileDesc &) = delete;
    FileDesc &operator=(const FileDesc &) = delete;
    FileDesc &operator=(FileDesc &&) = delete;

    int fd() const { return fd_; }
    size_t len() const { return len_; }
    const std::string &path() const { return path_; }

  private:
    int fd_;
    size_t len_;
    std::string path_;
};

} // namespace kvx

#endif // KVX_FILE_DESC_H
