// An engine's first steps with NIXL, through `#include <nixl.h>` from an installed prefix:
// an agent, a backend with its plugin defaults, a registration and a loopback WRITE.
#include <nixl.h>

#include <cstdio>
#include <cstring>
#include <vector>

#define REQUIRE(call)                                                                        \
    do {                                                                                     \
        const nixl_status_t st_ = (call);                                                    \
        if (st_ != NIXL_SUCCESS && st_ != NIXL_IN_PROG) {                                    \
            std::fprintf(stderr, "%s: %s\n", #call, nixlEnumStrings::statusStr(st_).c_str()); \
            return 1;                                                                        \
        }                                                                                    \
    } while (0)

int main() {
    nixlAgent agent("consumer", nixlAgentConfig(true));
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    REQUIRE(agent.getPluginParams("UCX", mems, params));
    nixlBackendH *ucx = nullptr;
    REQUIRE(agent.createBackend("UCX", params, ucx));
    std::vector<char> src(4096, 'x'), dst(4096, 0);
    nixl_reg_dlist_t reg(DRAM_SEG);
    reg.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(src.data()), src.size(), 0));
    reg.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(dst.data()), dst.size(), 0));
    REQUIRE(agent.registerMem(reg));
    // Loopback: the agent is its own remote, named by its own name.
    nixl_blob_t md;
    REQUIRE(agent.getLocalMD(md));
    nixl_xfer_dlist_t from(DRAM_SEG), to(DRAM_SEG);
    from.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(src.data()), src.size(), 0));
    to.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(dst.data()), dst.size(), 0));
    nixlXferReqH *req = nullptr;
    REQUIRE(agent.createXferReq(NIXL_WRITE, from, to, "consumer", req));
    nixl_status_t st = agent.postXferReq(req);
    while (st == NIXL_IN_PROG) st = agent.getXferStatus(req);
    REQUIRE(st);
    REQUIRE(agent.releaseXferReq(req));
    if (std::memcmp(src.data(), dst.data(), src.size()) != 0) {
        std::fprintf(stderr, "loopback WRITE did not copy the data\n");
        return 1;
    }
    std::printf("consumer: ok (%zu bytes of metadata)\n", md.size());
    return 0;
}
