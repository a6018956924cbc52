/*
 * nixl_types.h: NIXL's core C++ types (status, memory and operation enums, parameter maps,
 * optional arguments, telemetry, opaque handles), with NIXL's names and values, for C++
 * engines built against nixl-rs. Written from NIXL's API description; the calls behind them
 * go through nixl-rs's C ABI (libnixl_capi).
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
    NIXL_ERR_NO_TELEMETRY = -12,
};

// Agent-level locking. nixl-rs agents are thread-safe in every mode; the mode is passed on.
enum class nixl_thread_sync_t {
    NIXL_THREAD_SYNC_NONE,
    NIXL_THREAD_SYNC_STRICT,
    NIXL_THREAD_SYNC_RW,
    NIXL_THREAD_SYNC_DEFAULT = NIXL_THREAD_SYNC_NONE,
};

enum class nixl_cost_t { ANALYTICAL_BACKEND = 0 };

using nixl_backend_t = std::string;
// Binary-safe bytes (metadata blobs, notification messages).
using nixl_blob_t = std::string;
using nixl_b_params_t = std::unordered_map<std::string, std::string>;
using nixl_mem_list_t = std::vector<nixl_mem_t>;
// Received notifications: sender agent -> its messages in arrival order.
using nixl_notifs_t = std::unordered_map<std::string, std::vector<nixl_blob_t>>;
// One queryMem answer per descriptor: absent (e.g. no such file) or the backend's facts.
using nixl_query_resp_t = std::optional<nixl_b_params_t>;

inline constexpr int default_comm_port = 8888;
inline const std::string default_metadata_label = "metadata";
// Agent name that prepXferDlist takes for "this agent's own (initiator-side) memory".
inline const std::string NIXL_INIT_AGENT = "";
// Placeholder agent of remote descriptor lists, keeping indices aligned.
inline const std::string nixl_null_agent = "NULL_AGENT";

// Opaque handles. Engines only hold pointers to them; the agent creates and frees them, so
// their insides are nixl-rs's business (see nixl_rs/handles.h).
class nixlBackendH;
class nixlDlistH;
class nixlXferReqH;
using nixlMemViewH = void *;

// The optional arguments ("extra_params") of most agent calls.
struct nixlAgentOptionalArgs {
    // Restrict (or hint) which backends a call may use.
    std::vector<nixlBackendH *> backends;
    // A notification to deliver to the remote agent once a transfer lands; set (even to an
    // empty blob) means "send one". Preferred over the legacy pair below.
    std::optional<nixl_blob_t> notif;
    // Legacy notification fields: used when `notif` is not set.
    nixl_blob_t notifMsg;
    bool hasNotif = false;
    // makeXferReq: keep consecutive descriptors apart instead of merging them.
    bool skipDescMerge = false;
    // getLocalPartialMD/sendLocalPartialMD with descriptors: also include connection info.
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

// Telemetry of a request's last post.
struct nixlXferTelemetry {
    std::chrono::microseconds startTime{0};
    std::chrono::microseconds postDuration{0};
    std::chrono::microseconds xferDuration{0};
    size_t totalBytes = 0;
    size_t descCount = 0;
};
using nixl_xfer_telem_t = nixlXferTelemetry;

// Names for logging, as NIXL spells them.
class nixlEnumStrings {
  public:
    static std::string memTypeStr(const nixl_mem_t &mem) {
        switch (mem) {
        case DRAM_SEG: return "DRAM_SEG";
        case VRAM_SEG: return "VRAM_SEG";
        case BLK_SEG: return "BLK_SEG";
        case OBJ_SEG: return "OBJ_SEG";
        case FILE_SEG: return "FILE_SEG";
        }
        return "BAD_SEG";
    }

    static std::string xferOpStr(const nixl_xfer_op_t &op) {
        switch (op) {
        case NIXL_READ: return "READ";
        case NIXL_WRITE: return "WRITE";
        }
        return "BAD_OP";
    }

    static std::string statusStr(const nixl_status_t &status) {
        switch (status) {
        case NIXL_IN_PROG: return "NIXL_IN_PROG";
        case NIXL_SUCCESS: return "NIXL_SUCCESS";
        case NIXL_ERR_NOT_POSTED: return "NIXL_ERR_NOT_POSTED";
        case NIXL_ERR_INVALID_PARAM: return "NIXL_ERR_INVALID_PARAM";
        case NIXL_ERR_BACKEND: return "NIXL_ERR_BACKEND";
        case NIXL_ERR_NOT_FOUND: return "NIXL_ERR_NOT_FOUND";
        case NIXL_ERR_MISMATCH: return "NIXL_ERR_MISMATCH";
        case NIXL_ERR_NOT_ALLOWED: return "NIXL_ERR_NOT_ALLOWED";
        case NIXL_ERR_REPOST_ACTIVE: return "NIXL_ERR_REPOST_ACTIVE";
        case NIXL_ERR_UNKNOWN: return "NIXL_ERR_UNKNOWN";
        case NIXL_ERR_NOT_SUPPORTED: return "NIXL_ERR_NOT_SUPPORTED";
        case NIXL_ERR_REMOTE_DISCONNECT: return "NIXL_ERR_REMOTE_DISCONNECT";
        case NIXL_ERR_CANCELED: return "NIXL_ERR_CANCELED";
        case NIXL_ERR_NO_TELEMETRY: return "NIXL_ERR_NO_TELEMETRY";
        }
        return "BAD_STATUS";
    }
};

#endif // NIXL_RS_NIXL_TYPES_H
