// The ABI consumer: an engine-style program using NIXL 1.5's C++ API the way TensorRT-LLM's
// NIXL transfer agent does. cpp/abi-tests.sh builds it ONCE against include/nixl/, linked
// -lnixl -lnixl_build, and runs the same binary on nixl-rs's libraries and on NIXL 1.5.1's
// (LD_LIBRARY_PATH). Each run must exit 0 and the two transcripts (stdout) must be identical.
//
// Covered, with ctx and gen in two processes as TensorRT-LLM's context and generation
// servers: UCX and POSIX backends, registration, metadata fetched from a peer's listener,
// a notification that arrives before its sender's metadata is loaded, prepped lists with
// makeXferReq (vector and std::span forms), createXferReq with the `notif` field and with the
// legacy hasNotif/notifMsg pair, four threads submitting at once, getXferStatus polling,
// telemetry, releasing a request while in flight, DRAM <-> file transfers, strided lists
// (prepXferDlist of nixlStrideDesc, loopback), NIXL's statuses
// for failures, and the descriptor library (serialize, lists, trim, getIndex, names).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#if __cplusplus >= 202002L
#include <span>
#endif
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nixl.h>

namespace {

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "consumer.cpp:%d: CHECK failed: %s\n", __LINE__, #cond); \
            std::exit(1);                                                                  \
        }                                                                                  \
    } while (0)
#define OK(call)                                                                                   \
    do {                                                                                           \
        const nixl_status_t st_ = (call);                                                          \
        if (st_ != NIXL_SUCCESS) {                                                                 \
            std::fprintf(stderr, "consumer.cpp:%d: %s -> %s\n", __LINE__, #call,                   \
                         nixlEnumStrings::statusStr(st_).c_str());                                 \
            std::exit(1);                                                                          \
        }                                                                                          \
    } while (0)

using Clock = std::chrono::steady_clock;
constexpr size_t kBlock = 4096;
constexpr size_t kBlocks = 64;
constexpr size_t kLen = kBlock * kBlocks;

void say(const std::string &line) { std::cout << line << std::endl; }

std::string hex(const std::string &bytes) {
    static const char *digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    CHECK(getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
    close(fd);
    return ntohs(addr.sin_port);
}

// Polls `done` until it returns true or ten seconds pass (then the run fails).
template <class F> void wait_for(const char *what, F done) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!done()) {
        if (Clock::now() > deadline) {
            std::fprintf(stderr, "consumer: timed out waiting for %s\n", what);
            std::exit(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

// Posts and polls to completion, as TensorRT-LLM's status wait() does.
void run_to_completion(const nixlAgent &agent, nixlXferReqH *req) {
    nixl_status_t st = agent.postXferReq(req);
    CHECK(st == NIXL_SUCCESS || st == NIXL_IN_PROG);
    wait_for("a transfer", [&] {
        st = agent.getXferStatus(req);
        CHECK(st == NIXL_SUCCESS || st == NIXL_IN_PROG);
        return st == NIXL_SUCCESS;
    });
}

nixl_reg_dlist_t dram_reg(void *p, size_t len) {
    nixl_reg_dlist_t l(DRAM_SEG);
    l.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(p), len, 0));
    return l;
}

nixl_xfer_dlist_t blocks(unsigned char *base, size_t first, size_t count) {
    nixl_xfer_dlist_t l(DRAM_SEG);
    for (size_t i = first; i < first + count; ++i)
        l.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(base + i * kBlock), kBlock, 0));
    return l;
}

void fill(std::vector<unsigned char> &v, unsigned seed) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<unsigned char>(i * 31 + seed);
}

bool same(const unsigned char *a, const unsigned char *b, size_t n) { return std::memcmp(a, b, n) == 0; }

nixlBackendH *ucx_backend(nixlAgent &agent) {
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    OK(agent.getPluginParams("UCX", mems, params));
    nixlBackendH *b = nullptr;
    OK(agent.createBackend("UCX", params, b));
    CHECK(b != nullptr);
    return b;
}

// The value types and names: no agent involved.
void descriptors() {
    const nixlBlobDesc blob(0x1000, 0x20, 3, "meta");
    say("blob serialize: " + hex(blob.serialize()));
    CHECK(nixlBlobDesc(blob.serialize()) == blob);
    const nixlBasicDesc basic(0x2000, 0x10, 1);
    say("basic serialize: " + hex(basic.serialize()));
    CHECK(nixlBasicDesc(basic.serialize()) == basic);
    const nixlRemoteDesc remote(0x3000, 8, 2, "peer");
    say("remote serialize: " + hex(remote.serialize()));
    CHECK(nixlRemoteDesc(remote.serialize()) == remote);
    say(std::string("overlaps: ") + (basic.overlaps(nixlBasicDesc(0x200f, 1, 1)) ? "yes" : "no") + " " +
        (basic.overlaps(nixlBasicDesc(0x2010, 1, 1)) ? "yes" : "no"));

    nixl_reg_dlist_t reg(DRAM_SEG);
    for (int i = 0; i < 4; ++i) reg.addDesc(nixlBlobDesc(0x1000 * (i + 1), 0x100, 0, "m" + std::to_string(i)));
    say("getIndex: " + std::to_string(reg.getIndex(nixlBasicDesc(0x3000, 0x100, 0))) + " " +
        std::to_string(reg.getIndex(nixlBasicDesc(0x3000, 0x101, 0))));
    reg.remDesc(1);
    bool threw = false;
    try {
        reg.remDesc(7);
    } catch (const std::out_of_range &) {
        threw = true;
    }
    const nixl_xfer_dlist_t trimmed = reg.trim();
    say("remDesc/trim: count=" + std::to_string(trimmed.descCount()) + " second=" +
        std::to_string(trimmed[1].addr) + " out_of_range=" + (threw ? "thrown" : "not thrown"));
    nixl_reg_dlist_t copy = reg;
    CHECK(copy == reg);
    copy.resize(1);
    CHECK(!(copy == reg) && copy.descCount() == 1);
    nixl_stride_dlist_t strided(DRAM_SEG);
    strided.addDesc(nixlStrideDesc(0x1000, 16, 0, 64, 4));
    say("stride list: count=" + std::to_string(strided.descCount()) + " stride=" +
        std::to_string(strided[0].stride));
    nixl_xfer_dlist_t presized(VRAM_SEG, 3);
    say("presized: " + std::to_string(presized.descCount()) + " " + nixlEnumStrings::memTypeStr(presized.getType()));

    say("names: " + nixlEnumStrings::statusStr(NIXL_ERR_REMOTE_DISCONNECT) + " " +
        nixlEnumStrings::statusStr(NIXL_IN_PROG) + " " + nixlEnumStrings::memTypeStr(FILE_SEG) + " " +
        nixlEnumStrings::xferOpStr(NIXL_READ));
    say("constants: " + default_metadata_label + " " + nixl_null_agent);
}

// The ctx process (KV-cache owner, transfer target), as TensorRT-LLM's context server: listens
// for metadata requests, reports every notification gen sends on `out`, one line each, and
// checks gen's writes into its buffer. Returns the process exit status.
int ctx_process(int ctx_port, std::vector<unsigned char> &ctx_buf, int out) {
    const auto report = [out](const std::string &line) {
        const std::string l = line + "\n";
        return write(out, l.data(), l.size()) == static_cast<ssize_t>(l.size());
    };
    nixlAgent ctx("ctx", nixlAgentConfig(true, true, ctx_port, nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT, 1, 0,
                                         1000, true));
    ucx_backend(ctx);
    OK(ctx.registerMem(dram_reg(ctx_buf.data(), kLen)));
    CHECK(report("ready"));
    std::vector<unsigned char> expect(kLen);
    fill(expect, 2);
    size_t thread_notifs = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
        nixl_notifs_t notifs;
        OK(ctx.getNotifs(notifs));
        for (const auto &[sender, msgs] : notifs)
            for (const nixl_blob_t &msg : msgs) {
                if (sender != "gen") {
                    CHECK(report("notification from " + sender));
                } else if (msg == "hello from gen") {
                    // It arrives before ctx has gen's metadata (ctx never loads it here).
                    CHECK(report("early notif: " + msg + " (ctx has gen's metadata: " +
                                 nixlEnumStrings::statusStr(ctx.checkRemoteMD("gen", nixl_xfer_dlist_t(DRAM_SEG))) +
                                 ")"));
                } else if (msg.rfind("thread ", 0) == 0) {
                    if (++thread_notifs == 4) CHECK(report("thread notifs: 4"));
                } else if (msg == "verify") {
                    CHECK(report(std::string("ctx sees gen's writes: ") +
                                 (same(ctx_buf.data(), expect.data(), kLen) ? "yes" : "no")));
                } else if (msg == "bye") {
                    OK(ctx.deregisterMem(dram_reg(ctx_buf.data(), kLen)));
                    return 0;
                } else {
                    CHECK(report("notif: " + msg));
                }
            }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::fprintf(stderr, "consumer (ctx): no 'bye' within 60 s\n");
    return 1;
}

// One line from the ctx process (20 s at most).
std::string from_ctx(int in) {
    std::string line;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    char c = 0;
    while (Clock::now() < deadline) {
        pollfd p{in, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        if (read(in, &c, 1) != 1) break;
        if (c == '\n') return line;
        line += c;
    }
    std::fprintf(stderr, "consumer: no line from the ctx process (got '%s')\n", line.c_str());
    std::exit(1);
}

}  // namespace

int main() {
    descriptors();

    // Two processes, as TensorRT-LLM's context and generation servers: ctx owns the KV cache
    // and listens for metadata requests; gen (this process) fetches ctx's metadata from the
    // listener, then reads from and writes to ctx's memory. The buffers exist before the fork,
    // so gen knows ctx's buffer address, and its own copy holds ctx's original bytes.
    const int ctx_port = free_port();
    const int gen_port = free_port();
    std::vector<unsigned char> ctx_buf(kLen), gen_buf(kLen);
    fill(ctx_buf, 1);
    int lines[2];
    CHECK(pipe(lines) == 0);
    std::fflush(stdout);
    const pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(lines[0]);
        _exit(ctx_process(ctx_port, ctx_buf, lines[1]));
    }
    close(lines[1]);
    const int ctx_out = lines[0];
    CHECK(from_ctx(ctx_out) == "ready");

    nixlAgent gen("gen", nixlAgentConfig(true, true, gen_port, nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT, 1, 0,
                                         1000, true));
    nixlBackendH *gen_ucx = ucx_backend(gen);
    std::vector<nixl_backend_t> plugins;
    OK(gen.getAvailPlugins(plugins));
    CHECK(!plugins.empty());
    OK(gen.registerMem(dram_reg(gen_buf.data(), kLen)));

    // Listener metadata fetch: ask, then poll checkRemoteMD until it stops saying NOT_FOUND.
    nixl_opt_args_t peer;
    peer.ipAddr = "127.0.0.1";
    peer.port = ctx_port;
    OK(gen.fetchRemoteMD("ctx", &peer));
    wait_for("ctx's metadata", [&] { return gen.checkRemoteMD("ctx", nixl_xfer_dlist_t(DRAM_SEG)) == NIXL_SUCCESS; });
    OK(gen.checkRemoteMD("ctx", blocks(ctx_buf.data(), 0, kBlocks)));
    say("listener fetch: ok");

    // A notification that arrives before ctx has its sender's metadata (gen's).
    OK(gen.genNotif("ctx", "hello from gen"));
    say(from_ctx(ctx_out));

    // Prepped lists + makeXferReq: read ctx's blocks into gen, with a notification (`notif`).
    nixlDlistH *local = nullptr;
    nixlDlistH *remote = nullptr;
    OK(gen.prepXferDlist(NIXL_INIT_AGENT, blocks(gen_buf.data(), 0, kBlocks), local));
    OK(gen.prepXferDlist("ctx", blocks(ctx_buf.data(), 0, kBlocks), remote));
    std::vector<int> first_half;
    for (int i = 0; i < static_cast<int>(kBlocks / 2); ++i) first_half.push_back(i);
    nixl_opt_args_t with_notif;
    with_notif.notif = "half read";
    nixlXferReqH *req = nullptr;
    OK(gen.makeXferReq(NIXL_READ, local, first_half, remote, first_half, req, &with_notif));
    run_to_completion(gen, req);
    CHECK(same(gen_buf.data(), ctx_buf.data(), kLen / 2));
    nixlBackendH *used = nullptr;
    OK(gen.queryXferBackend(req, used));
    CHECK(used == gen_ucx);
    nixl_xfer_telem_t telem{};
    const nixl_status_t tst = gen.getXferTelemetry(req, telem);
    say("telemetry: " + nixlEnumStrings::statusStr(tst) + " bytes=" + std::to_string(tst == NIXL_SUCCESS ? telem.totalBytes : 0));
    OK(gen.releaseXferReq(req));
    say("makeXferReq read: ok, ctx got " + from_ctx(ctx_out));

    // The second half, reversed indices on both sides; under C++20 through the std::span
    // form (NIXL 1.5), else the vector form.
    std::vector<int> second_half;
    for (int i = static_cast<int>(kBlocks) - 1; i >= static_cast<int>(kBlocks / 2); --i) second_half.push_back(i);
#if __cplusplus >= 202002L
    OK(gen.makeXferReq(NIXL_READ, *local, std::span<const int>(second_half), *remote,
                       std::span<const int>(second_half), req));
#else
    OK(gen.makeXferReq(NIXL_READ, local, second_half, remote, second_half, req));
#endif
    run_to_completion(gen, req);
    CHECK(same(gen_buf.data(), ctx_buf.data(), kLen));
    OK(gen.releaseXferReq(req));
    say("makeXferReq second half: ok");

    // Four threads submitting at once (createXferReq, legacy notification fields), each
    // writing its own quarter of gen's (re-filled) buffer into ctx.
    fill(gen_buf, 2);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            nixl_opt_args_t legacy;
            legacy.hasNotif = true;
            legacy.notifMsg = "thread " + std::to_string(t);
            nixlXferReqH *r = nullptr;
            const size_t q = kBlocks / 4;
            if (gen.createXferReq(NIXL_WRITE, blocks(gen_buf.data(), t * q, q), blocks(ctx_buf.data(), t * q, q),
                                  "ctx", r, &legacy) != NIXL_SUCCESS) {
                ++failures;
                return;
            }
            nixl_status_t st = gen.postXferReq(r);
            while (st == NIXL_IN_PROG) st = gen.getXferStatus(r);
            if (st != NIXL_SUCCESS) ++failures;
            if (gen.releaseXferReq(r) != NIXL_SUCCESS) ++failures;
        });
    for (auto &th : threads) th.join();
    CHECK(failures == 0);
    say("four threads: ok, ctx got " + from_ctx(ctx_out));
    // Each WRITE's notification follows its data, so ctx now holds all of gen's bytes.
    OK(gen.genNotif("ctx", "verify"));
    say(from_ctx(ctx_out));

    // Releasing a request while it may still be in flight: allowed, no crash, no leak; the
    // handle is gone afterwards (using it again is the engine's bug, not exercised here).
    nixlXferReqH *inflight = nullptr;
    OK(gen.makeXferReq(NIXL_WRITE, local, first_half, remote, first_half, inflight));
    const nixl_status_t post = gen.postXferReq(inflight);
    CHECK(post == NIXL_SUCCESS || post == NIXL_IN_PROG);
    const nixl_status_t rel = gen.releaseXferReq(inflight);
    CHECK(rel == NIXL_SUCCESS || rel == NIXL_ERR_REPOST_ACTIVE || rel == NIXL_ERR_BACKEND);
    if (rel != NIXL_SUCCESS) {
        wait_for("the in-flight transfer", [&] { return gen.getXferStatus(inflight) != NIXL_IN_PROG; });
        OK(gen.releaseXferReq(inflight));
    }
    say("release in flight: ok");
    OK(gen.releasedDlistH(local));
    OK(gen.releasedDlistH(remote));

    // Failures engines branch on.
    nixlDlistH *none = nullptr;
    say("unknown peer: " + nixlEnumStrings::statusStr(gen.prepXferDlist("nobody", blocks(ctx_buf.data(), 0, 1), none)));
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    say("unknown plugin: " + nixlEnumStrings::statusStr(gen.getPluginParams("NO_SUCH_PLUGIN", mems, params)));

    // POSIX file transfers: DRAM -> file -> DRAM through the agent itself (loopback).
    char path[] = "/tmp/nixl-abi-consumer.XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, kLen) == 0);
    OK(gen.getPluginParams("POSIX", mems, params));
    nixlBackendH *posix = nullptr;
    OK(gen.createBackend("POSIX", params, posix));
    nixl_reg_dlist_t file_reg(FILE_SEG);
    file_reg.addDesc(nixlBlobDesc(0, kLen, static_cast<uint64_t>(fd), path));
    nixl_opt_args_t on_posix;
    on_posix.backends.push_back(posix);
    OK(gen.registerMem(file_reg, &on_posix));
    std::vector<unsigned char> scratch(kLen);
    OK(gen.registerMem(dram_reg(scratch.data(), kLen), &on_posix));
    nixl_xfer_dlist_t file_side(FILE_SEG);
    file_side.addDesc(nixlBasicDesc(0, kLen, static_cast<uint64_t>(fd)));
    // scratch is registered with POSIX (gen_buf was registered before POSIX existed).
    std::copy(gen_buf.begin(), gen_buf.end(), scratch.begin());
    nixl_xfer_dlist_t mem_side(DRAM_SEG);
    mem_side.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(scratch.data()), kLen, 0));
    OK(gen.createXferReq(NIXL_WRITE, mem_side, file_side, "gen", req, &on_posix));
    run_to_completion(gen, req);
    OK(gen.releaseXferReq(req));
    std::vector<unsigned char> on_disk(kLen);
    CHECK(pread(fd, on_disk.data(), kLen, 0) == static_cast<ssize_t>(kLen));
    CHECK(same(on_disk.data(), gen_buf.data(), kLen));
    std::fill(scratch.begin(), scratch.end(), 0);
    OK(gen.createXferReq(NIXL_READ, mem_side, file_side, "gen", req, &on_posix));
    run_to_completion(gen, req);
    OK(gen.releaseXferReq(req));
    CHECK(same(scratch.data(), gen_buf.data(), kLen));
    OK(gen.deregisterMem(file_reg, &on_posix));
    close(fd);
    unlink(path);
    say("posix file write+read: ok");

    // Strided lists (NIXL 1.5), loopback: a run of 4 blocks of 256 bytes, 1024 apart; the
    // prepped list's indices count blocks.
    std::vector<unsigned char> runs_src(4096), runs_dst(4096, 0);
    fill(runs_src, 3);
    nixl_reg_dlist_t runs_reg(DRAM_SEG);
    runs_reg.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(runs_src.data()), 4096, 0, ""));
    runs_reg.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(runs_dst.data()), 4096, 0, ""));
    // UCX only: gen also has POSIX now, which would claim the DRAM lists and refuse them.
    nixl_opt_args_t on_ucx;
    on_ucx.backends.push_back(gen_ucx);
    OK(gen.registerMem(runs_reg, &on_ucx));
    nixl_stride_dlist_t s_src(DRAM_SEG), s_dst(DRAM_SEG);
    s_src.addDesc(nixlStrideDesc(reinterpret_cast<uintptr_t>(runs_src.data()), 256, 0, 1024, 4));
    s_dst.addDesc(nixlStrideDesc(reinterpret_cast<uintptr_t>(runs_dst.data()), 256, 0, 1024, 4));
    nixlDlistH *s_local = nullptr;
    nixlDlistH *s_remote = nullptr;
    OK(gen.prepXferDlist(s_src, s_local, &on_ucx));
    OK(gen.prepXferDlist("gen", s_dst, s_remote, &on_ucx));
    const std::vector<int> blocks_1_3{1, 3};
    OK(gen.makeXferReq(NIXL_WRITE, s_local, blocks_1_3, s_remote, blocks_1_3, req, &on_ucx));
    run_to_completion(gen, req);
    OK(gen.releaseXferReq(req));
    const std::vector<unsigned char> zeros(256, 0);
    CHECK(same(runs_dst.data() + 1024, runs_src.data() + 1024, 256) &&
          same(runs_dst.data() + 3072, runs_src.data() + 3072, 256) && same(runs_dst.data(), zeros.data(), 256) &&
          same(runs_dst.data() + 2048, zeros.data(), 256));
    say("strided blocks 1 and 3: ok");
    OK(gen.releasedDlistH(s_local));
    OK(gen.releasedDlistH(s_remote));
    OK(gen.deregisterMem(runs_reg, &on_ucx));

    OK(gen.genNotif("ctx", "bye"));
    int wstatus = 0;
    CHECK(waitpid(child, &wstatus, 0) == child);
    say("ctx process: exit " + std::to_string(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1));
    OK(gen.invalidateRemoteMD("ctx"));
    say("after invalidate: " + nixlEnumStrings::statusStr(gen.checkRemoteMD("ctx", nixl_xfer_dlist_t(DRAM_SEG))));
    OK(gen.deregisterMem(dram_reg(scratch.data(), kLen), &on_posix));
    OK(gen.deregisterMem(dram_reg(gen_buf.data(), kLen)));
    say("done");
    return 0;
}
