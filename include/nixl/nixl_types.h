/*
 * nixl_types.h: NIXL 1.5's core C++ types (status, memory and operation enums, parameter
 * maps, optional arguments, telemetry, opaque handles), with NIXL's names, values and object
 * layouts: a program compiled against these headers runs on nixl-rs's libnixl.so and, without
 * a rebuild, on NIXL 1.5's own. Written from NIXL's API description and checked against its
 * binaries (cpp/tests/test_layout.cpp states every layout fact as a static_assert).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_NIXL_TYPES_H
#define NIXL_RS_NIXL_TYPES_H

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

// NIXL's wheels are built with libstdc++'s C++11 string ABI ([abi:cxx11] in every symbol that
// takes a std::string); code built with the old ABI cannot link to either library.
#if defined(_GLIBCXX_USE_CXX11_ABI) && !_GLIBCXX_USE_CXX11_ABI
#error "NIXL's C++ API needs _GLIBCXX_USE_CXX11_ABI=1 (libstdc++'s C++11 std::string ABI)"
#endif

// Opaque handles: engines only hold pointers, the agent creates and frees them.
class nixlSerDes;
class nixlDlistH;
class nixlBackendH;
class nixlXferReqH;
class nixlAgentData;

// Memory segment types. FILE_SEG stays last: engines size arrays by FILE_SEG + 1.
enum nixl_mem_t { DRAM_SEG, VRAM_SEG, BLK_SEG, OBJ_SEG, FILE_SEG };

// Transfer direction from the initiator's view: READ pulls remote -> local, WRITE pushes.
enum nixl_xfer_op_t { NIXL_READ, NIXL_WRITE };

// NIXL's statuses; the values are part of the ABI engines log and compare.
enum nixl_status_t {
    NIXL_IN_PROG = 1,
    NIXL_SUCCESS = 0,
    NIXL_ERR_NOT_POSTED = -1,
    NIXL_ERR_INVALID_PARAM = -2,
    NIXL_ERR_BACKEND = -3,
    NIXL_ERR_NOT_FOUND = -4,
    NIXL_ERR_MISMATCH = -5,
    NIXL_ERR_NOT_ALLOWED = -6,
    NIXL_ERR_REPOST_ACTIVE = -7,
    NIXL_ERR_UNKNOWN = -8,
    NIXL_ERR_NOT_SUPPORTED = -9,
    NIXL_ERR_REMOTE_DISCONNECT = -10,
    NIXL_ERR_CANCELED = -11,
    NIXL_ERR_NO_TELEMETRY = -12
};

// Agent-level locking. nixl-rs agents are thread-safe in every mode; the mode is passed on.
enum class nixl_thread_sync_t {
    NIXL_THREAD_SYNC_NONE,
    NIXL_THREAD_SYNC_STRICT,
    NIXL_THREAD_SYNC_RW,
    NIXL_THREAD_SYNC_DEFAULT = NIXL_THREAD_SYNC_NONE,
};

// Names for logging, as NIXL spells them (defined in libnixl.so).
namespace nixlEnumStrings {
std::string memTypeStr(const nixl_mem_t &mem);
std::string xferOpStr(const nixl_xfer_op_t &op);
std::string statusStr(const nixl_status_t &status);
} // namespace nixlEnumStrings

using nixl_backend_t = std::string;
using nixl_telemetry_plugin_t = std::string;
// Binary-safe bytes (metadata blobs, notification messages).
using nixl_blob_t = std::string;
using nixl_mem_list_t = std::vector<nixl_mem_t>;
using nixl_b_params_t = std::unordered_map<std::string, std::string>;
// Received notifications: sender agent -> its messages in arrival order.
using nixl_notifs_t = std::unordered_map<std::string, std::vector<nixl_blob_t>>;

constexpr int default_comm_port = 8888;
// Central-store key suffix of an agent's full metadata (defined in libnixl.so).
extern const std::string default_metadata_label;

enum class nixl_cost_t {
    ANALYTICAL_BACKEND = 0,
};

// One queryMem answer per descriptor: absent (e.g. no such file) or the backend's facts.
using nixl_query_resp_t = std::optional<nixl_b_params_t>;

// The optional arguments ("extra_params") of most agent calls. 208 bytes; member order is ABI.
struct nixlAgentOptionalArgs {
    // Restrict (or hint) which backends a call may use.
    std::vector<nixlBackendH *> backends;
    // A notification to deliver once a transfer lands; set (even to an empty blob) means
    // "send one". Preferred over the legacy pair below.
    std::optional<nixl_blob_t> notif;
    // Legacy notification fields: used when `notif` is not set.
    nixl_blob_t notifMsg;
    bool hasNotif = false;
    // makeXferReq: keep consecutive descriptors apart instead of merging them.
    bool skipDescMerge = false;
    // Partial metadata with descriptors: also include connection info.
    bool includeConnInfo = false;
    // Peer-to-peer metadata calls: the peer's listener.
    std::string ipAddr;
    int port = default_comm_port;
    // Central-store key suffix for partial metadata.
    std::string metadataLabel;
    // Backend-defined bytes (no nixl-rs backend reads them).
    nixl_blob_t customParam;
};
using nixl_opt_args_t = nixlAgentOptionalArgs;

// GPU-initiated memory views (not provided by nixl-rs).
using nixlMemViewH = void *;

using chrono_point_t = std::chrono::steady_clock::time_point;
using chrono_period_us_t = std::chrono::microseconds;

// Telemetry of a request's last post.
struct nixlXferTelemetry {
    chrono_point_t startTime;
    chrono_period_us_t postDuration;
    chrono_period_us_t xferDuration;
    size_t totalBytes;
    size_t descCount;
};
using nixl_xfer_telem_t = nixlXferTelemetry;

// Agent name that prepXferDlist takes for "this agent's own (initiator-side) memory".
#define NIXL_INIT_AGENT ""

// Placeholder agent of remote descriptor lists (defined in libnixl_build.so).
extern const std::string nixl_null_agent;

#endif // NIXL_RS_NIXL_TYPES_H
