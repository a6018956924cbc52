// The C++ RAII header (include/nixl.hpp) over libnixl_capi: two agents, WRITE with a
// notification, and exceptions that carry the precise NIXL status. C++17.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "nixl.hpp"

#define REQUIRE(cond)                                                                        \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            std::fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                                        \
        }                                                                                    \
    } while (0)

int main() {
    std::vector<uint8_t> src(1 << 16), dst(1 << 16, 0);
    for (size_t i = 0; i < src.size(); i++) src[i] = static_cast<uint8_t>(i * 3);
    {
        nixl::Agent a("cxx-a"), b("cxx-b");
        a.create_backend("UCX");
        b.create_backend("UCX");
        a.register_mem(nixl::RegDescList(NIXL_CAPI_MEM_DRAM).add((uintptr_t)src.data(), src.size()));
        b.register_mem(nixl::RegDescList(NIXL_CAPI_MEM_DRAM).add((uintptr_t)dst.data(), dst.size()));
        REQUIRE(a.load_remote_md(b.local_md()) == "cxx-b");

        nixl::XferDescList l(NIXL_CAPI_MEM_DRAM), r(NIXL_CAPI_MEM_DRAM);
        l.add((uintptr_t)src.data(), src.size());
        r.add((uintptr_t)dst.data(), dst.size());
        REQUIRE(l.size() == 1);
        nixl::OptArgs opt;
        opt.notif("cxx-done");
        {
            nixl::XferRequest req = a.create_xfer_req(NIXL_CAPI_XFER_OP_WRITE, l, r, "cxx-b", &opt);
            req.run();
        }
        nixl::NotifMap notifs;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (notifs["cxx-a"].empty() && std::chrono::steady_clock::now() < deadline) {
            b.get_notifs(notifs);
        }
        REQUIRE(notifs["cxx-a"] == std::vector<std::string>{"cxx-done"});
        REQUIRE(std::memcmp(src.data(), dst.data(), src.size()) == 0);

        // Errors carry the precise status: an unknown remote is NOT_FOUND.
        bool threw = false;
        try {
            a.gen_notif("nobody", "x");
        } catch (const nixl::Error &e) {
            threw = true;
            REQUIRE(e.capi_status() == NIXL_CAPI_ERROR_NOT_FOUND);
            REQUIRE(e.status() == NIXL_CAPI_EXT_ERR_NOT_FOUND);
            REQUIRE(!e.message().empty());
        }
        REQUIRE(threw);
        // After invalidation, create_xfer_req reports BACKEND (as upstream) but the
        // exception knows it was NOT_FOUND.
        a.invalidate_remote_md("cxx-b");
        threw = false;
        try {
            a.create_xfer_req(NIXL_CAPI_XFER_OP_WRITE, l, r, "cxx-b");
        } catch (const nixl::Error &e) {
            threw = true;
            REQUIRE(e.capi_status() == NIXL_CAPI_ERROR_BACKEND);
            REQUIRE(e.status() == NIXL_CAPI_EXT_ERR_NOT_FOUND);
        }
        REQUIRE(threw);
        // Garbage metadata is an exception, not a crash.
        threw = false;
        try {
            a.load_remote_md(nixl::Bytes(100, 0xAB));
        } catch (const nixl::Error &) {
            threw = true;
        }
        REQUIRE(threw);
    }
    std::printf("test_raii: ok\n");
    return 0;
}
