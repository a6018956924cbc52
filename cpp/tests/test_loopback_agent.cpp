// The plugin's loopback agent (dlopen + dlsym("createNixlLoopbackAgent")): offload two buffers
// to two files (WRITE memory -> FILE through the POSIX backend, the agent its own remote), wipe
// the buffers, load them back (READ), and check the bytes on disk and in memory. A file
// shorter than its buffer must fail the load, not silently return part of it.
// Usage: test_loopback_agent <path to the plugin .so>
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "../transfer_agent/transfer_agent.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            std::exit(1);                                                              \
        }                                                                              \
    } while (0)

int main(int argc, char **argv) {
    CHECK(argc == 2);
    void *plugin = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
    CHECK(plugin != nullptr);
    auto create = reinterpret_cast<kvx::CreateLoopbackAgentFn>(dlsym(plugin, "createNixlLoopbackAgent"));
    CHECK(create != nullptr);
    kvx::BaseAgentConfig cfg;
    cfg.mName = "loopback";
    auto agent = create(&cfg);

    constexpr size_t kLen = 1 << 18;
    std::vector<unsigned char> a(kLen), b(kLen);
    for (size_t i = 0; i < kLen; ++i) {
        a[i] = static_cast<unsigned char>(i * 5 + 1);
        b[i] = static_cast<unsigned char>(i * 11 + 2);
    }
    char dir[] = "/tmp/kvx-loopback-XXXXXX";
    CHECK(mkdtemp(dir) != nullptr);
    const std::string pa = std::string(dir) + "/a", pb = std::string(dir) + "/b";
    kvx::FileDescs files;
    files.emplace_back(pa, O_RDWR | O_CREAT | O_TRUNC, 0600, kLen);
    files.emplace_back(pb, O_RDWR | O_CREAT | O_TRUNC, 0600, kLen);
    kvx::MemoryDescs mem{kvx::MemoryType::kDRAM,
                         {{reinterpret_cast<uintptr_t>(a.data()), kLen, 0}, {reinterpret_cast<uintptr_t>(b.data()), kLen, 0}}};

    agent->executeLoopbackRequest(mem, files, /*isOffload=*/true);
    std::vector<unsigned char> disk(kLen);
    CHECK(pread(files[1].fd(), disk.data(), kLen, 0) == ssize_t(kLen));
    CHECK(disk == b);
    const auto want_a = a, want_b = b;
    std::fill(a.begin(), a.end(), 0);
    std::fill(b.begin(), b.end(), 0);
    agent->executeLoopbackRequest(mem, files, /*isOffload=*/false);
    CHECK(a == want_a && b == want_b);

    // Truncate one file: loading it must fail.
    CHECK(ftruncate(files[0].fd(), kLen / 2) == 0);
    bool failed = false;
    try {
        agent->executeLoopbackRequest(mem, files, false);
    } catch (const std::runtime_error &e) {
        failed = true;
        std::printf("short file: %s\n", e.what());
    }
    CHECK(failed);
    unlink(pa.c_str());
    unlink(pb.c_str());
    rmdir(dir);
    std::printf("test_loopback_agent: ok\n");
    return 0;
}
