// util.h: helpers shared by the C++ tests: agents with the network backend, registration,
// polling with deadlines, and a free TCP port for listeners.
#ifndef NIXL_RS_CPP_TESTS_UTIL_H
#define NIXL_RS_CPP_TESTS_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "check.h"

namespace test {

// The network backend the tests move data with: "UCX" (our net backend), or the plugin named
// by NIXL_RS_TEST_BACKEND (e.g. LIBFABRIC, with FI_PROVIDER choosing its provider).
inline std::string net_backend() {
    const char *b = std::getenv("NIXL_RS_TEST_BACKEND");
    return b && *b ? b : "UCX";
}

// An agent with the network backend, as engines create it: plugin defaults, then createBackend.
inline std::unique_ptr<nixlAgent> make_agent(const std::string &name, nixlBackendH **backend = nullptr,
                                             nixlAgentConfig cfg = nixlAgentConfig(true)) {
    auto agent = std::make_unique<nixlAgent>(name, cfg);
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    OK(agent->getPluginParams(net_backend(), mems, params));
    nixlBackendH *b = nullptr;
    OK(agent->createBackend(net_backend(), params, b));
    CHECK(b != nullptr);
    if (backend) *backend = b;
    return agent;
}

inline nixl_reg_dlist_t dram_reg(const void *buf, size_t len) {
    nixl_reg_dlist_t reg(DRAM_SEG);
    reg.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(buf), len, 0));
    return reg;
}

inline nixl_xfer_dlist_t dram_xfer(const void *buf, size_t len) {
    nixl_xfer_dlist_t x(DRAM_SEG);
    x.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(buf), len, 0));
    return x;
}

// Polls `done` until it holds or `seconds` pass; returns whether it held.
inline bool eventually(const std::function<bool()> &done, double seconds = 10) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
}

// Posts a request and waits for its terminal status.
inline nixl_status_t post_and_wait(nixlAgent &agent, nixlXferReqH *req,
                                   const nixl_opt_args_t *extra = nullptr) {
    nixl_status_t st = agent.postXferReq(req, extra);
    if (st < 0) return st;
    eventually([&] { return (st = agent.getXferStatus(req)) != NIXL_IN_PROG; });
    return st;
}

// Waits for `count` notifications from `sender` and returns them all.
inline std::vector<nixl_blob_t> wait_notifs(nixlAgent &agent, const std::string &sender, size_t count) {
    nixl_notifs_t all;
    eventually([&] {
        OK(agent.getNotifs(all));
        return all[sender].size() >= count;
    });
    return all[sender];
}

// A TCP port nobody listens on right now (the kernel's pick, released for the listener).
inline int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

} // namespace test

#endif // NIXL_RS_CPP_TESTS_UTIL_H
