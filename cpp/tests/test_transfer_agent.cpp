// A TensorRT-LLM-style transfer agent, loaded from the example plugin with dlopen/dlsym, used
// between two processes in the pattern of TRT-LLM's legacy NIXL cache transceiver:
//   gen (receiver) loads ctx's metadata through ctx's listener (ip:port), then sends ctx one
//   sync message carrying its own metadata blob and its receive buffer;
//   ctx loads gen by that blob, checks gen's descriptors, and WRITEs the blocks from several
//   threads at once (each request with its own sync message), then says "done";
//   gen verifies every block, READs ctx's buffer back, says "bye", and once ctx is gone a
//   transfer to it must fail with NIXL_ERR_REMOTE_DISCONNECT, not hang; that status outlives
//   the agent and is released safely afterwards.
// Usage: test_transfer_agent <path to the plugin .so>
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../transfer_agent/transfer_agent.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "[%s] %s:%d: CHECK failed: %s\n", g_role, __FILE__, __LINE__, #cond); \
            std::fflush(stderr);                                                                   \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

namespace {

const char *g_role = "main";
constexpr size_t kBlocks = 64, kBlock = 16 << 10, kLen = kBlocks * kBlock;
constexpr int kThreads = 4;

unsigned char pattern(size_t block, size_t byte) { return static_cast<unsigned char>(block * 31 + byte * 7 + 1); }

kvx::MemoryDescs dram(const void *p, size_t len) {
    return {kvx::MemoryType::kDRAM, {{reinterpret_cast<uintptr_t>(p), len, 0}}};
}

// Collects sync messages from `from` until `done` says the collection is complete.
std::vector<std::string> collect(kvx::BaseTransferAgent &agent, const std::string &from,
                                 const std::function<bool(const std::vector<std::string> &)> &done) {
    std::vector<std::string> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done(got)) {
        CHECK(std::chrono::steady_clock::now() < deadline);
        // Keep the map alive while reading from it (a range-for over `temp()[from]` dangles).
        auto all = agent.getNotifiedSyncMessages();
        for (auto &m : all[from]) got.push_back(m);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return got;
}

bool has_prefix(const std::vector<std::string> &msgs, const std::string &prefix) {
    for (const auto &m : msgs)
        if (m.compare(0, prefix.size(), prefix) == 0) return true;
    return false;
}

std::string find_prefix(const std::vector<std::string> &msgs, const std::string &prefix) {
    for (const auto &m : msgs)
        if (m.compare(0, prefix.size(), prefix) == 0) return m.substr(prefix.size());
    return {};
}

std::string pack_u64(uint64_t v) { return std::string(reinterpret_cast<const char *>(&v), sizeof v); }
uint64_t unpack_u64(const std::string &s, size_t at) {
    uint64_t v;
    std::memcpy(&v, s.data() + at, sizeof v);
    return v;
}

int ctx_side(kvx::CreateTransferAgentFn create, int to_gen) {
    g_role = "ctx";
    kvx::BaseAgentConfig cfg;
    cfg.mName = "ctx";
    cfg.useListenThread = true;
    auto agent = create(&cfg);
    std::vector<unsigned char> send(kLen);
    for (size_t b = 0; b < kBlocks; ++b)
        for (size_t j = 0; j < kBlock; ++j) send[b * kBlock + j] = pattern(b, j);
    agent->registerMemory(dram(send.data(), kLen));
    const std::string info = agent->getLocalConnectionInfo() + "\n";
    CHECK(write(to_gen, info.data(), info.size()) == ssize_t(info.size()));
    close(to_gen);

    // gen's request: its receive buffer (addr, len) and its metadata blob.
    const std::string req =
        find_prefix(collect(*agent, "gen", [](const auto &m) { return has_prefix(m, "REQ"); }), "REQ");
    const uintptr_t recv_addr = unpack_u64(req, 0);
    CHECK(unpack_u64(req, 8) == kLen);
    agent->loadRemoteAgent("gen", kvx::AgentDesc{req.substr(16)});
    CHECK(agent->checkRemoteDescs("gen", dram(reinterpret_cast<void *>(recv_addr), kLen)));
    CHECK(!agent->checkRemoteDescs("gen", dram(reinterpret_cast<void *>(recv_addr + kLen), kLen)));

    // Block b lands in gen's block kBlocks-1-b; each thread takes every kThreads-th block.
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (size_t b = t; b < kBlocks; b += kThreads) {
                kvx::TransferRequest r;
                r.op = kvx::TransferOp::kWRITE;
                r.srcDescs = dram(send.data() + b * kBlock, kBlock);
                r.dstDescs = dram(reinterpret_cast<void *>(recv_addr + (kBlocks - 1 - b) * kBlock), kBlock);
                r.remoteName = "gen";
                r.syncMessage = "blk:" + std::to_string(b);
                auto status = agent->submitTransferRequests(r);
                CHECK(status->wait(10000) == kvx::TransferState::kSUCCESS);
                CHECK(status->isCompleted() && status->getLastStatusStr() == "NIXL_SUCCESS");
            }
        });
    for (auto &t : threads) t.join();
    agent->notifySyncMessage("gen", "done" + pack_u64(reinterpret_cast<uintptr_t>(send.data())));
    collect(*agent, "gen", [](const auto &m) { return has_prefix(m, "bye"); });
    return 0;
}

int gen_side(kvx::CreateTransferAgentFn create, int from_ctx, pid_t ctx) {
    g_role = "gen";
    kvx::BaseAgentConfig cfg;
    cfg.mName = "gen";
    auto agent = create(&cfg);
    std::vector<unsigned char> recv(kLen, 0), pulled(kLen, 0);
    agent->registerMemory(dram(recv.data(), kLen));
    agent->registerMemory(dram(pulled.data(), kLen));
    std::string info;
    for (char c; read(from_ctx, &c, 1) == 1 && c != '\n';) info += c;
    CHECK(!info.empty());
    agent->loadRemoteAgent("ctx", info); // through ctx's listener
    // ctx has not loaded gen's metadata yet; the message must arrive anyway.
    agent->notifySyncMessage("ctx", "REQ" + pack_u64(reinterpret_cast<uintptr_t>(recv.data())) + pack_u64(kLen) +
                                        agent->getLocalAgentDesc().backendAgentDesc);

    // Every block's own message, and "done" after them all.
    const auto msgs = collect(*agent, "ctx", [](const auto &m) { return has_prefix(m, "done") && m.size() > kBlocks; });
    std::set<std::string> blocks;
    for (const auto &m : msgs)
        if (m.compare(0, 4, "blk:") == 0) blocks.insert(m);
    CHECK(blocks.size() == kBlocks);
    for (size_t b = 0; b < kBlocks; ++b)
        for (size_t j = 0; j < kBlock; ++j) CHECK(recv[(kBlocks - 1 - b) * kBlock + j] == pattern(b, j));

    // Pull ctx's whole buffer back with a READ.
    const uintptr_t ctx_buf = unpack_u64(find_prefix(msgs, "done"), 0);
    CHECK(agent->checkRemoteDescs("ctx", dram(reinterpret_cast<void *>(ctx_buf), kLen)));
    kvx::TransferRequest r{kvx::TransferOp::kREAD, dram(pulled.data(), kLen),
                           dram(reinterpret_cast<void *>(ctx_buf), kLen), "ctx", std::nullopt};
    CHECK(agent->submitTransferRequests(r)->wait(10000) == kvx::TransferState::kSUCCESS);
    for (size_t b = 0; b < kBlocks; ++b)
        for (size_t j = 0; j < kBlock; ++j) CHECK(pulled[b * kBlock + j] == pattern(b, j));

    agent->notifySyncMessage("ctx", "bye");
    int status = 0;
    CHECK(waitpid(ctx, &status, 0) == ctx);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    // ctx is gone: a transfer to it fails, with NIXL's own status, within the wait.
    const auto start = std::chrono::steady_clock::now();
    auto dead = agent->submitTransferRequests(r);
    CHECK(dead->wait(10000) == kvx::TransferState::kFAILURE);
    std::printf("[gen] transfer to the exited peer: %s after %.0f ms\n", dead->getLastStatusStr().c_str(),
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    CHECK(dead->getLastStatusStr() == "NIXL_ERR_REMOTE_DISCONNECT");
    // A status may outlive its agent (it holds a weak reference): releasing it then is a no-op.
    agent.reset();
    CHECK(dead->release());
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    CHECK(argc == 2);
    void *plugin = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
    if (!plugin) std::fprintf(stderr, "dlopen: %s\n", dlerror());
    CHECK(plugin != nullptr);
    auto create = reinterpret_cast<kvx::CreateTransferAgentFn>(dlsym(plugin, "createNixlTransferAgent"));
    CHECK(create != nullptr);
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    // Fork before either side creates an agent: each process gets its own library state.
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        const int rc = ctx_side(create, pipefd[1]);
        std::fflush(stdout);
        _exit(rc);
    }
    close(pipefd[1]);
    const int rc = gen_side(create, pipefd[0], pid);
    std::printf("test_transfer_agent: ok\n");
    return rc;
}
