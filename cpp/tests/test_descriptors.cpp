// The value types of nixl_types.h / nixl_descriptors.h / nixl_params.h: what engines rely on
// without calling the library (ordering, coverage, serialization, list editing, names).
#include <stdexcept>

#include "check.h"

static void basic_desc() {
    const nixlBasicDesc a(0x1000, 0x100, 0), inner(0x1010, 0x10, 0), other_dev(0x1010, 0x10, 1);
    CHECK(a.covers(inner) && !inner.covers(a) && !a.covers(other_dev));
    CHECK(a.overlaps(inner) && !a.overlaps(other_dev));
    CHECK(!a.overlaps(nixlBasicDesc(0x1100, 1, 0))); // adjacent is not overlapping
    // Ordered by (devId, addr, len): a device-1 range sorts after every device-0 range.
    CHECK(nixlBasicDesc(0xffff, 1, 0) < nixlBasicDesc(0x0, 1, 1));
    CHECK(a < nixlBasicDesc(0x1000, 0x101, 0));
    const nixl_blob_t bytes = a.serialize();
    CHECK(bytes.size() == sizeof(uintptr_t) + sizeof(size_t) + sizeof(uint64_t));
    CHECK(nixlBasicDesc(bytes) == a);
    CHECK(nixlBasicDesc(bytes.substr(1)) == nixlBasicDesc(0, 0, 0));
}

static void blob_desc_and_lists() {
    nixl_reg_dlist_t reg(FILE_SEG, 2);
    CHECK(reg.getType() == FILE_SEG && reg.descCount() == 2 && !reg.isEmpty());
    reg[1] = nixlBlobDesc(0, 4096, 7, std::string("rw:/tmp/x\0y", 11));
    CHECK(reg[1].metaInfo.size() == 11); // binary-safe
    CHECK(reg.getIndex(nixlBasicDesc(0, 4096, 7)) == 1);
    CHECK(reg.getIndex(nixlBasicDesc(0, 4096, 8)) == NIXL_ERR_NOT_FOUND);
    reg.remDesc(0);
    CHECK(reg.descCount() == 1 && reg[0].devId == 7);
    bool threw = false;
    try {
        reg.remDesc(5);
    } catch (const std::out_of_range &) {
        threw = true;
    }
    CHECK(threw);
    // Brace forms engines use: a list from its type, descriptors from (uintptr_t, size_t, uint32_t).
    const uint32_t device = 3;
    nixl_reg_dlist_t vram{VRAM_SEG};
    vram.addDesc(nixlBlobDesc{uintptr_t{0x10}, size_t{8}, device});
    CHECK(vram.getType() == VRAM_SEG && vram[0].devId == 3 && vram[0].metaInfo.empty());
    nixl_xfer_dlist_t x(DRAM_SEG);
    for (int i = 0; i < 3; ++i) x.emplace(uintptr_t(i * 10), size_t(10), uint64_t(0));
    nixl_xfer_dlist_t y = x;
    CHECK(x == y);
    y[2].len = 11;
    CHECK(!(x == y));
    size_t total = 0;
    for (const auto &d : x) total += d.len;
    CHECK(total == 30);
    x.clear();
    CHECK(x.isEmpty());
}

static void names_and_config() {
    CHECK(nixlEnumStrings::statusStr(NIXL_ERR_REMOTE_DISCONNECT) == "NIXL_ERR_REMOTE_DISCONNECT");
    CHECK(nixlEnumStrings::memTypeStr(VRAM_SEG) == "VRAM_SEG");
    CHECK(nixlEnumStrings::xferOpStr(NIXL_WRITE) == "WRITE");
    // The library's own status names agree with the header's for every code.
    for (int s = NIXL_ERR_NO_TELEMETRY; s <= NIXL_IN_PROG; ++s)
        CHECK(nixlEnumStrings::statusStr(static_cast<nixl_status_t>(s)) == nixl_capi_ext_status_name(s));
    // TensorRT-LLM's brace initialization: 8 values, thread sync by its DEFAULT name.
    const nixlAgentConfig cfg{true, true, 5555, nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT, 4, 0, 10000, true};
    CHECK(cfg.useListenThread && cfg.listenPort == 5555 && cfg.captureTelemetry);
    CHECK(cfg.lthrDelay == 10000 && cfg.syncMode == nixl_thread_sync_t::NIXL_THREAD_SYNC_NONE);
    // The same with the argument types engines hold: a uint16_t port, a uint32_t worker count.
    const uint16_t port = 5556;
    const uint32_t workers = 2;
    const nixlAgentConfig typed{false, true, port, nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT, workers, 0, 10000, false};
    CHECK(typed.listenPort == 5556 && !typed.useProgThread);
    const nixlAgentConfig one_arg{true};
    CHECK(one_arg.useProgThread && !one_arg.useListenThread);
    const nixlAgentConfig defaults(false);
    CHECK(!defaults.useListenThread && defaults.listenPort == default_comm_port);
}

int main() {
    basic_desc();
    blob_desc_and_lists();
    names_and_config();
    std::printf("test_descriptors: ok\n");
    return 0;
}
