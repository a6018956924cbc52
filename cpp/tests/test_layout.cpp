// NIXL 1.5's object layouts, one static_assert per fact: what a binary built against NIXL's
// headers and one built against include/nixl/ must agree on to share objects with either
// library. The numbers were read from NIXL 1.5.1's own binaries (the wheel's libnixl_capi.so
// allocates nixl_opt_args_t with operator new(0xd0) and fills a nixlAgentConfig field by field
// before calling nixlAgent's constructor; libnixl_build.so's nixlDescList constructor stores
// the vtable at 0, the type at 8 and the vector at 16; its vtable lists the destructors,
// resize, addDesc and getIndex), and cpp/abi-tests.sh runs one consumer binary on both
// libraries. Also checks the failure mode: fields that cannot come from this layout (a
// consumer built against another NIXL version's headers) are refused, not used.
#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.h"

// offsetof on classes with bases is "conditionally supported"; GCC and Clang compute it.
#pragma GCC diagnostic ignored "-Winvalid-offsetof"

// libstdc++'s C++11 ABI, as NIXL's wheels: the std:: members below have these sizes.
static_assert(sizeof(std::string) == 32);
static_assert(sizeof(std::optional<std::string>) == 40);
static_assert(sizeof(std::vector<int>) == 24);

// Enums: int-sized, NIXL's values.
static_assert(sizeof(nixl_mem_t) == 4 && DRAM_SEG == 0 && VRAM_SEG == 1 && BLK_SEG == 2 && OBJ_SEG == 3 &&
              FILE_SEG == 4);
static_assert(sizeof(nixl_xfer_op_t) == 4 && NIXL_READ == 0 && NIXL_WRITE == 1);
static_assert(sizeof(nixl_status_t) == 4 && NIXL_IN_PROG == 1 && NIXL_SUCCESS == 0 &&
              NIXL_ERR_NOT_POSTED == -1 && NIXL_ERR_INVALID_PARAM == -2 && NIXL_ERR_BACKEND == -3 &&
              NIXL_ERR_NOT_FOUND == -4 && NIXL_ERR_MISMATCH == -5 && NIXL_ERR_NOT_ALLOWED == -6 &&
              NIXL_ERR_REPOST_ACTIVE == -7 && NIXL_ERR_UNKNOWN == -8 && NIXL_ERR_NOT_SUPPORTED == -9 &&
              NIXL_ERR_REMOTE_DISCONNECT == -10 && NIXL_ERR_CANCELED == -11 && NIXL_ERR_NO_TELEMETRY == -12);
static_assert(std::is_same_v<std::underlying_type_t<nixl_thread_sync_t>, int>);
static_assert(static_cast<int>(nixl_thread_sync_t::NIXL_THREAD_SYNC_STRICT) == 1 &&
              static_cast<int>(nixl_thread_sync_t::NIXL_THREAD_SYNC_RW) == 2 &&
              nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT == nixl_thread_sync_t::NIXL_THREAD_SYNC_NONE);
static_assert(static_cast<int>(nixl_cost_t::ANALYTICAL_BACKEND) == 0);
static_assert(default_comm_port == 8888);

// nixlAgent: one std::unique_ptr<nixlAgentData>.
static_assert(sizeof(nixlAgent) == 8 && alignof(nixlAgent) == 8);
static_assert(!std::is_polymorphic_v<nixlAgent>);

// nixlAgentConfig: 40 bytes.
static_assert(sizeof(nixlAgentConfig) == 40);
static_assert(offsetof(nixlAgentConfig, useProgThread) == 0);
static_assert(offsetof(nixlAgentConfig, useListenThread) == 1);
static_assert(offsetof(nixlAgentConfig, listenPort) == 2 && sizeof(nixlAgentConfig::listenPort) == 2);
static_assert(offsetof(nixlAgentConfig, syncMode) == 4);
static_assert(offsetof(nixlAgentConfig, captureTelemetry) == 8);
static_assert(offsetof(nixlAgentConfig, pthrDelay) == 16 && sizeof(nixlAgentConfig::pthrDelay) == 8);
static_assert(offsetof(nixlAgentConfig, lthrDelay) == 24 && sizeof(nixlAgentConfig::lthrDelay) == 8);
static_assert(offsetof(nixlAgentConfig, etcdWatchTimeout) == 32);
static_assert(std::is_same_v<decltype(nixlAgentConfig::etcdWatchTimeout), std::chrono::microseconds>);

// nixlAgentOptionalArgs (nixl_opt_args_t): 208 bytes.
static_assert(sizeof(nixl_opt_args_t) == 208);
static_assert(offsetof(nixl_opt_args_t, backends) == 0);
static_assert(offsetof(nixl_opt_args_t, notif) == 24);
static_assert(offsetof(nixl_opt_args_t, notifMsg) == 64);
static_assert(offsetof(nixl_opt_args_t, hasNotif) == 96);
static_assert(offsetof(nixl_opt_args_t, skipDescMerge) == 97);
static_assert(offsetof(nixl_opt_args_t, includeConnInfo) == 98);
static_assert(offsetof(nixl_opt_args_t, ipAddr) == 104);
static_assert(offsetof(nixl_opt_args_t, port) == 136 && sizeof(nixl_opt_args_t::port) == 4);
static_assert(offsetof(nixl_opt_args_t, metadataLabel) == 144);
static_assert(offsetof(nixl_opt_args_t, customParam) == 176);
static_assert(std::is_same_v<decltype(nixl_opt_args_t::notif), std::optional<std::string>>);

// nixlXferTelemetry: 40 bytes; startTime is a steady_clock point.
static_assert(sizeof(nixl_xfer_telem_t) == 40);
static_assert(std::is_same_v<decltype(nixlXferTelemetry::startTime), std::chrono::steady_clock::time_point>);
static_assert(offsetof(nixlXferTelemetry, startTime) == 0);
static_assert(offsetof(nixlXferTelemetry, postDuration) == 8);
static_assert(offsetof(nixlXferTelemetry, xferDuration) == 16);
static_assert(offsetof(nixlXferTelemetry, totalBytes) == 24);
static_assert(offsetof(nixlXferTelemetry, descCount) == 32);

// Descriptors: no vtables; the derived ones append one member after the base's 24 bytes.
static_assert(!std::is_polymorphic_v<nixlBasicDesc> && sizeof(nixlBasicDesc) == 24);
static_assert(offsetof(nixlBasicDesc, addr) == 0 && offsetof(nixlBasicDesc, len) == 8 &&
              offsetof(nixlBasicDesc, devId) == 16);
static_assert(std::is_trivially_copyable_v<nixlBasicDesc>);
static_assert(sizeof(nixlStrideDesc) == 40 && offsetof(nixlStrideDesc, stride) == 24 &&
              offsetof(nixlStrideDesc, count) == 32);
static_assert(sizeof(nixlBlobDesc) == 56 && offsetof(nixlBlobDesc, metaInfo) == 24);
static_assert(sizeof(nixlRemoteDesc) == 56 && offsetof(nixlRemoteDesc, remoteAgent) == 24);

// nixlDescList<T>: vtable pointer, type, std::vector<T>.
template <class T> struct ListProbe : nixlDescList<T> {
    static constexpr size_t type_at = offsetof(ListProbe, type);
    static constexpr size_t descs_at = offsetof(ListProbe, descs);
};
template <class T> constexpr bool list_layout() {
    return std::is_polymorphic_v<nixlDescList<T>> && sizeof(nixlDescList<T>) == 40 &&
           ListProbe<T>::type_at == 8 && ListProbe<T>::descs_at == 16;
}
static_assert(list_layout<nixlBasicDesc>() && list_layout<nixlStrideDesc>() && list_layout<nixlBlobDesc>() &&
              list_layout<nixlRemoteDesc>());

namespace {

// Writes `byte` over one byte of `obj` at `offset`: what a struct laid out by other headers
// looks like to this library.
template <class T> void poke(T &obj, size_t offset, unsigned char byte) {
    std::memcpy(reinterpret_cast<unsigned char *>(&obj) + offset, &byte, 1);
}

void config_from_other_layout_is_refused() {
    nixlAgentConfig bad_sync(true);
    poke(bad_sync, offsetof(nixlAgentConfig, syncMode), 9);
    nixlAgentConfig bad_bool(true);
    poke(bad_bool, offsetof(nixlAgentConfig, captureTelemetry), 0x5a);
    for (const nixlAgentConfig *cfg : {&bad_sync, &bad_bool}) {
        bool threw = false;
        try {
            nixlAgent agent("layout", *cfg);
        } catch (const std::invalid_argument &e) {
            threw = std::string(e.what()).find("NIXL 1.5") != std::string::npos;
        }
        CHECK(threw);
    }
    nixlAgent fine("layout", nixlAgentConfig(true));
}

void opt_args_from_other_layout_are_refused() {
    nixlAgent agent("layout", nixlAgentConfig(true));
    nixl_opt_args_t extra;
    poke(extra, offsetof(nixl_opt_args_t, hasNotif), 0x77);
    CHECK_ST(agent.genNotif("nobody", "x", &extra), NIXL_ERR_INVALID_PARAM);
    nixl_opt_args_t engaged_garbage;
    poke(engaged_garbage, offsetof(nixl_opt_args_t, notif) + sizeof(std::string), 3);
    CHECK_ST(agent.makeConnection("nobody", &engaged_garbage), NIXL_ERR_INVALID_PARAM);
    // Disengaged again, so that its destructor does not free a string that was never built.
    poke(engaged_garbage, offsetof(nixl_opt_args_t, notif) + sizeof(std::string), 0);
    nixl_opt_args_t fine;
    CHECK_ST(agent.makeConnection("nobody", &fine), NIXL_ERR_NOT_FOUND);
}

} // namespace

int main() {
    config_from_other_layout_is_refused();
    opt_args_from_other_layout_are_refused();
    std::puts("test_layout: ok");
    return 0;
}
