/*
 * capi_bridge.h: the bridge from NIXL's C++ types to nixl-rs's C ABI inside libnixl.so: exact
 * statuses, owning wrappers for C handles, and conversions of descriptor lists, parameter
 * maps and optional arguments. Private to cpp/lib/.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_CAPI_BRIDGE_H
#define NIXL_RS_CAPI_BRIDGE_H

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "handles.h"
#include "nixl.hpp"
#include "nixl_capi.h"
#include "nixl_descriptors.h"
#include "nixl_types.h"

namespace nixl_rs {

// The exact nixl_status_t of a C call. The C codes fold most errors into ERROR_BACKEND (as
// NIXL's own C API does), so for a failure we ask the library's per-thread last-error record,
// which every failing call sets before it returns. The lossy mapping is only a fallback.
inline nixl_status_t status_of(nixl_capi_status_t rc) {
    if (rc == NIXL_CAPI_SUCCESS) return NIXL_SUCCESS;
    if (rc == NIXL_CAPI_IN_PROG) return NIXL_IN_PROG;
    const int32_t precise = nixl_capi_ext_last_status();
    if (precise < 0 && precise >= NIXL_ERR_NO_TELEMETRY) return static_cast<nixl_status_t>(precise);
    switch (rc) {
    case NIXL_CAPI_ERROR_INVALID_PARAM: return NIXL_ERR_INVALID_PARAM;
    case NIXL_CAPI_ERROR_NOT_FOUND: return NIXL_ERR_NOT_FOUND;
    case NIXL_CAPI_ERROR_NO_TELEMETRY: return NIXL_ERR_NO_TELEMETRY;
    case NIXL_CAPI_ERROR_INVALID_STATE: return NIXL_ERR_NOT_ALLOWED;
    case NIXL_CAPI_ERROR_EXCEPTION: return NIXL_ERR_UNKNOWN;
    default: return NIXL_ERR_BACKEND;
    }
}

// Our own helpers already speak nixl_status_t; lets NIXL_RS_TRY take either kind of call.
inline nixl_status_t status_of(nixl_status_t st) { return st; }

// Shorthand for "run a C call, return its exact status if it failed".
#define NIXL_RS_TRY(call)                                                                    \
    do {                                                                                     \
        const nixl_status_t nixl_rs_st_ = ::nixl_rs::status_of(call);                        \
        if (nixl_rs_st_ < 0) return nixl_rs_st_;                                             \
    } while (0)

// Owning wrappers: every C handle created while serving one C++ call is freed on every path.
// The one RAII handle type over the C ABI is the public header's (include/nixl.hpp); this
// library uses it rather than keeping a second one.
template <class H, nixl_capi_status_t (*Destroy)(H)> using Owned = nixl::detail::Handle<H, Destroy>;

using XferDlist = Owned<nixl_capi_xfer_dlist_t, nixl_capi_destroy_xfer_dlist>;
using RegDlist = Owned<nixl_capi_reg_dlist_t, nixl_capi_destroy_reg_dlist>;
using Params = Owned<nixl_capi_params_t, nixl_capi_destroy_params>;
using ParamIter = Owned<nixl_capi_param_iter_t, nixl_capi_params_destroy_iterator>;
using MemList = Owned<nixl_capi_mem_list_t, nixl_capi_destroy_mem_list>;
using StringList = Owned<nixl_capi_string_list_t, nixl_capi_destroy_string_list>;
using NotifMap = Owned<nixl_capi_notif_map_t, nixl_capi_destroy_notif_map>;
using QueryResp = Owned<nixl_capi_query_resp_list_t, nixl_capi_destroy_query_resp_list>;
using BackendRef = Owned<nixl_capi_backend_t, nixl_capi_destroy_backend>;

// Memory types have the same values in both APIs (DRAM..FILE = 0..4).
inline nixl_capi_mem_type_t mem_to_capi(nixl_mem_t m) { return static_cast<nixl_capi_mem_type_t>(m); }
inline nixl_capi_xfer_op_t op_to_capi(nixl_xfer_op_t op) {
    return op == NIXL_READ ? NIXL_CAPI_XFER_OP_READ : NIXL_CAPI_XFER_OP_WRITE;
}

// One bulk call rather than one per descriptor: requests of thousands of descriptors spent
// half of createXferReq in per-descriptor calls.
inline nixl_status_t to_capi(const nixl_xfer_dlist_t &descs, XferDlist &out) {
    NIXL_RS_TRY(nixl_capi_create_xfer_dlist(mem_to_capi(descs.getType()), out.out()));
    const size_t n = static_cast<size_t>(descs.descCount());
    if (n == 0) return NIXL_SUCCESS;
    std::vector<uintptr_t> addrs(n);
    std::vector<size_t> lens(n);
    std::vector<uint64_t> devs(n);
    size_t i = 0;
    for (const nixlBasicDesc &d : descs) {
        addrs[i] = d.addr;
        lens[i] = d.len;
        devs[i] = d.devId;
        ++i;
    }
    return status_of(nixl_capi_ext_xfer_dlist_add_descs(out.get(), addrs.data(), lens.data(), devs.data(), n));
}

inline nixl_status_t to_capi(const nixl_reg_dlist_t &descs, RegDlist &out) {
    NIXL_RS_TRY(nixl_capi_create_reg_dlist(mem_to_capi(descs.getType()), out.out()));
    for (const nixlBlobDesc &d : descs)
        NIXL_RS_TRY(nixl_capi_reg_dlist_add_desc(out.get(), d.addr, d.len, d.devId,
                                                 d.metaInfo.data(), d.metaInfo.size()));
    return NIXL_SUCCESS;
}

inline nixl_status_t to_capi(const nixl_b_params_t &params, Params &out) {
    NIXL_RS_TRY(nixl_capi_create_params(out.out()));
    for (const auto &kv : params)
        NIXL_RS_TRY(nixl_capi_params_add(out.get(), kv.first.c_str(), kv.second.c_str()));
    return NIXL_SUCCESS;
}

inline nixl_status_t from_capi(nixl_capi_params_t params, nixl_b_params_t &out) {
    ParamIter it;
    NIXL_RS_TRY(nixl_capi_params_create_iterator(params, it.out()));
    for (bool more = true; more;) {
        const char *key = nullptr;
        const char *value = nullptr;
        NIXL_RS_TRY(nixl_capi_params_iterator_next(it.get(), &key, &value, &more));
        // At the end the call leaves key/value untouched and says "no more".
        if (key && value) out[key] = value;
    }
    return NIXL_SUCCESS;
}

inline nixl_status_t from_capi(nixl_capi_mem_list_t mems, nixl_mem_list_t &out) {
    size_t n = 0;
    NIXL_RS_TRY(nixl_capi_mem_list_size(mems, &n));
    for (size_t i = 0; i < n; ++i) {
        nixl_capi_mem_type_t m;
        NIXL_RS_TRY(nixl_capi_mem_list_get(mems, i, &m));
        if (m <= NIXL_CAPI_MEM_FILE) out.push_back(static_cast<nixl_mem_t>(m));
    }
    return NIXL_SUCCESS;
}

// Takes ownership of a malloc'ed buffer handed out by the C ABI and copies it into a blob.
inline nixl_blob_t take_malloced(void *data, size_t len) {
    nixl_blob_t out(static_cast<const char *>(data), data ? len : 0);
    std::free(data);
    return out;
}

// nixl_opt_args_t as a C optional-arguments handle. A null `extra` stays NULL: for
// postXferReq "no extra params" (keep the creation-time notification) differs from "extra
// params without a notification" (clear it), so an empty struct must still become a handle.
class OptArgs {
  public:
    nixl_status_t build(const nixl_opt_args_t *extra) {
        if (!extra) return NIXL_SUCCESS;
        if (!plausible(*extra)) return NIXL_ERR_INVALID_PARAM;
        NIXL_RS_TRY(nixl_capi_create_opt_args(h_.out()));
        for (nixlBackendH *b : extra->backends) {
            if (!b) return NIXL_ERR_INVALID_PARAM;
            NIXL_RS_TRY(nixl_capi_opt_args_add_backend(h_.get(), b->h_));
        }
        const nixl_blob_t *msg = extra->notif ? &*extra->notif : extra->hasNotif ? &extra->notifMsg : nullptr;
        if (msg) {
            NIXL_RS_TRY(nixl_capi_opt_args_set_notif_msg(h_.get(), msg->data(), msg->size()));
            NIXL_RS_TRY(nixl_capi_opt_args_set_has_notif(h_.get(), true));
        }
        if (extra->skipDescMerge) NIXL_RS_TRY(nixl_capi_opt_args_set_skip_desc_merge(h_.get(), true));
        if (extra->includeConnInfo)
            NIXL_RS_TRY(nixl_capi_ext_opt_args_set_include_conn_info(h_.get(), true));
        if (!extra->ipAddr.empty()) {
            if (extra->port <= 0 || extra->port > 65535) return NIXL_ERR_INVALID_PARAM;
            NIXL_RS_TRY(nixl_capi_opt_args_set_ip_addr(h_.get(), extra->ipAddr.c_str()));
            NIXL_RS_TRY(nixl_capi_opt_args_set_port(h_.get(), static_cast<uint16_t>(extra->port)));
        }
        if (!extra->metadataLabel.empty())
            NIXL_RS_TRY(nixl_capi_ext_opt_args_set_metadata_label(h_.get(), extra->metadataLabel.c_str()));
        if (!extra->customParam.empty())
            NIXL_RS_TRY(nixl_capi_opt_args_set_custom_param(h_.get(), extra->customParam.data(),
                                                            extra->customParam.size()));
        return NIXL_SUCCESS;
    }
    nixl_capi_opt_args_t get() const { return h_.get(); }

  private:
    // A struct from a consumer built against another NIXL version's nixl_types.h puts other
    // bytes where the flags are: refuse it instead of reading strings that are not there.
    // (A bool whose byte is neither 0 nor 1 cannot come from this layout.)
    static bool plausible(const nixl_opt_args_t &a) {
        const auto byte_ok = [&a](const void *field) {
            unsigned char b;
            std::memcpy(&b, field, 1);
            return b <= 1;
        };
        const void *engaged = reinterpret_cast<const char *>(&a.notif) + sizeof(nixl_blob_t);
        return byte_ok(&a.hasNotif) && byte_ok(&a.skipDescMerge) && byte_ok(&a.includeConnInfo) &&
               byte_ok(engaged) && a.port >= 0 && a.port <= 65535;
    }

    Owned<nixl_capi_opt_args_t, nixl_capi_destroy_opt_args> h_;
};

} // namespace nixl_rs

#endif // NIXL_RS_CAPI_BRIDGE_H
