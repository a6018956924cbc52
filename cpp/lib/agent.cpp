// libnixl.so: NIXL 1.5's nixlAgent, nixlEnumStrings and default_metadata_label with NIXL's
// mangled names, implemented over nixl-rs's C ABI (libnixl_capi). Why through the C ABI and
// not nixl-core directly: see cpp/README.md ("How libnixl.so is built").
//
// SPDX-License-Identifier: Apache-2.0
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

#include "capi_bridge.h"
#include "handles.h"
#include "nixl.h"

const std::string default_metadata_label = "metadata";

// Everything an agent holds; nixlAgent itself is one pointer to this (NIXL's layout).
class nixlAgentData {
  public:
    std::string name;
    nixl_capi_agent_t agent = nullptr;
    // Backends created through this agent; NIXL hands out raw pointers that stay valid
    // until the agent is destroyed.
    std::mutex backends_mu;
    std::vector<std::unique_ptr<nixlBackendH>> backends;
    // Requests and prepped lists handed out and not yet released: the destructor frees what
    // the engine left (the C ABI needs the agent to release them), and a handle this agent
    // does not know is refused instead of freed twice.
    std::mutex handles_mu;
    std::unordered_set<nixlXferReqH *> reqs;
    std::unordered_set<nixlDlistH *> dlists;

    nixlXferReqH *adopt(nixl_capi_xfer_req_t h) {
        auto *req = new nixlXferReqH(h);
        std::lock_guard<std::mutex> lock(handles_mu);
        reqs.insert(req);
        return req;
    }
    nixlDlistH *adopt(nixl_capi_xfer_dlist_handle_t h) {
        auto *dlist = new nixlDlistH(h);
        std::lock_guard<std::mutex> lock(handles_mu);
        dlists.insert(dlist);
        return dlist;
    }
    bool owns(const nixlXferReqH *req) {
        std::lock_guard<std::mutex> lock(handles_mu);
        return reqs.count(const_cast<nixlXferReqH *>(req)) != 0;
    }
    bool owns(const nixlDlistH *dlist) {
        std::lock_guard<std::mutex> lock(handles_mu);
        return dlists.count(const_cast<nixlDlistH *>(dlist)) != 0;
    }
};

namespace {

// The raw byte of a bool field: a config from a consumer built against another NIXL
// version's nixl_params.h puts other bytes there (reading such a bool as bool is undefined).
unsigned char raw_byte(const bool &field) {
    unsigned char b;
    std::memcpy(&b, &field, 1);
    return b;
}

// Refuses a nixlAgentConfig that cannot have come from NIXL 1.5's layout, so that a consumer
// compiled against other headers fails at construction instead of running on garbage.
void check_config(const nixlAgentConfig &cfg) {
    const int sync = static_cast<int>(cfg.syncMode);
    const bool ok = raw_byte(cfg.useProgThread) <= 1 && raw_byte(cfg.useListenThread) <= 1 &&
                    raw_byte(cfg.captureTelemetry) <= 1 && sync >= 0 && sync <= 2 &&
                    cfg.etcdWatchTimeout.count() >= 0 && (!cfg.useListenThread || cfg.listenPort != 0);
    if (!ok)
        throw std::invalid_argument(
            "nixlAgent: nixlAgentConfig has out-of-range fields; nixl-rs's libnixl.so implements "
            "NIXL 1.5's layout: was this program built against another NIXL version's nixl_params.h?");
}

// Expands each strided run into its blocks (the C ABI takes plain descriptors).
nixl_status_t expand(const nixl_stride_dlist_t &in, nixl_xfer_dlist_t &out) {
    for (const nixlStrideDesc &d : in) {
        if (d.count == 0) return NIXL_ERR_INVALID_PARAM;
        for (size_t i = 0; i < d.count; ++i) out.addDesc(nixlBasicDesc(d.addr + i * d.stride, d.len, d.devId));
    }
    return NIXL_SUCCESS;
}

} // namespace

/* Names for logging */

std::string nixlEnumStrings::memTypeStr(const nixl_mem_t &mem) {
    switch (mem) {
    case DRAM_SEG: return "DRAM_SEG";
    case VRAM_SEG: return "VRAM_SEG";
    case BLK_SEG: return "BLK_SEG";
    case OBJ_SEG: return "OBJ_SEG";
    case FILE_SEG: return "FILE_SEG";
    }
    return "BAD_SEG";
}

std::string nixlEnumStrings::xferOpStr(const nixl_xfer_op_t &op) {
    switch (op) {
    case NIXL_READ: return "READ";
    case NIXL_WRITE: return "WRITE";
    }
    return "BAD_OP";
}

std::string nixlEnumStrings::statusStr(const nixl_status_t &status) {
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

/* Lifetime, plugins and backends */

nixlAgent::nixlAgent(const std::string &name, const nixlAgentConfig &cfg) {
    if (name.empty()) throw std::invalid_argument("nixlAgent: the agent name is empty");
    check_config(cfg);
    auto d = std::make_unique<nixlAgentData>();
    d->name = name;
    nixl_capi_agent_config_t c{};
    c.enable_prog_thread = cfg.useProgThread;
    c.enable_listen_thread = cfg.useListenThread;
    c.listen_port = cfg.listenPort;
    c.thread_sync = static_cast<nixl_capi_thread_sync_t>(cfg.syncMode);
    c.num_workers = 1;
    c.pthr_delay_us = cfg.pthrDelay;
    c.lthr_delay_us = cfg.lthrDelay;
    c.capture_telemetry = cfg.captureTelemetry;
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_create_configured_agent(name.c_str(), &c, &d->agent));
    if (st != NIXL_SUCCESS)
        throw std::runtime_error("nixlAgent '" + name + "': " + nixlEnumStrings::statusStr(st) + ": " +
                                 nixl_capi_ext_last_error_message());
    data = std::move(d);
}

nixlAgent::~nixlAgent() {
    if (!data) return;
    for (nixlXferReqH *r : data->reqs) {
        nixl_capi_release_xfer_req(data->agent, r->h_);
        nixl_capi_destroy_xfer_req(r->h_);
        delete r;
    }
    for (nixlDlistH *d : data->dlists) {
        nixl_capi_release_xfer_dlist_handle(data->agent, d->h_);
        delete d;
    }
    data->backends.clear();
    nixl_capi_destroy_agent(data->agent);
}

nixl_status_t nixlAgent::getAvailPlugins(std::vector<nixl_backend_t> &plugins) {
    nixl_rs::StringList list;
    NIXL_RS_TRY(nixl_capi_get_available_plugins(data->agent, list.out()));
    size_t n = 0;
    NIXL_RS_TRY(nixl_capi_string_list_size(list.get(), &n));
    plugins.clear();
    for (size_t i = 0; i < n; ++i) {
        const char *s = nullptr;
        NIXL_RS_TRY(nixl_capi_string_list_get(list.get(), i, &s));
        plugins.emplace_back(s);
    }
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::getPluginParams(const nixl_backend_t &type, nixl_mem_list_t &mems,
                                         nixl_b_params_t &params) const {
    nixl_rs::MemList m;
    nixl_rs::Params p;
    NIXL_RS_TRY(nixl_capi_get_plugin_params(data->agent, type.c_str(), m.out(), p.out()));
    mems.clear();
    params.clear();
    NIXL_RS_TRY(nixl_rs::from_capi(m.get(), mems));
    return nixl_rs::from_capi(p.get(), params);
}

nixl_status_t nixlAgent::getBackendParams(const nixlBackendH *backend, nixl_mem_list_t &mems,
                                          nixl_b_params_t &params) const {
    if (!backend) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::MemList m;
    nixl_rs::Params p;
    NIXL_RS_TRY(nixl_capi_get_backend_params(data->agent, backend->h_, m.out(), p.out()));
    mems.clear();
    params.clear();
    NIXL_RS_TRY(nixl_rs::from_capi(m.get(), mems));
    return nixl_rs::from_capi(p.get(), params);
}

nixl_status_t nixlAgent::createBackend(const nixl_backend_t &type, const nixl_b_params_t &params,
                                       nixlBackendH *&backend) {
    nixl_rs::Params p;
    NIXL_RS_TRY(nixl_rs::to_capi(params, p));
    nixl_capi_backend_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_create_backend(data->agent, type.c_str(), p.get(), &h));
    std::lock_guard<std::mutex> lock(data->backends_mu);
    data->backends.push_back(std::make_unique<nixlBackendH>(type, h));
    backend = data->backends.back().get();
    return NIXL_SUCCESS;
}

/* Memory */

nixl_status_t nixlAgent::registerMem(const nixl_reg_dlist_t &descs, const nixl_opt_args_t *extra_params) {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_register_mem(data->agent, d.get(), o.get()));
}

nixl_status_t nixlAgent::deregisterMem(const nixl_reg_dlist_t &descs, const nixl_opt_args_t *extra_params) {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_deregister_mem(data->agent, d.get(), o.get()));
}

nixl_status_t nixlAgent::queryMem(const nixl_reg_dlist_t &descs, std::vector<nixl_query_resp_t> &resp,
                                  const nixl_opt_args_t *extra_params) const {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    nixl_rs::QueryResp r;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    NIXL_RS_TRY(nixl_capi_create_query_resp_list(r.out()));
    NIXL_RS_TRY(nixl_capi_query_mem(data->agent, d.get(), r.get(), o.get()));
    size_t n = 0;
    NIXL_RS_TRY(nixl_capi_query_resp_list_size(r.get(), &n));
    resp.clear();
    for (size_t i = 0; i < n; ++i) {
        bool has = false;
        NIXL_RS_TRY(nixl_capi_query_resp_list_has_value(r.get(), i, &has));
        if (!has) {
            resp.emplace_back(std::nullopt);
            continue;
        }
        nixl_rs::Params p;
        NIXL_RS_TRY(nixl_capi_query_resp_list_get_params(r.get(), i, p.out()));
        nixl_b_params_t facts;
        NIXL_RS_TRY(nixl_rs::from_capi(p.get(), facts));
        resp.emplace_back(std::move(facts));
    }
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::makeConnection(const std::string &remote_agent, const nixl_opt_args_t *extra_params) {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_agent_make_connection(data->agent, remote_agent.c_str(), o.get()));
}

/* Transfers */

nixl_status_t nixlAgent::prepXferDlist(const std::string &agent_name, const nixl_xfer_dlist_t &descs,
                                       nixlDlistH *&dlist_hndl, const nixl_opt_args_t *extra_params) const {
    nixl_rs::XferDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    nixl_capi_xfer_dlist_handle_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_prep_xfer_dlist(data->agent, agent_name.c_str(), d.get(), &h, o.get()));
    dlist_hndl = data->adopt(h);
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::prepXferDlist(const nixl_xfer_dlist_t &descs, nixlDlistH *&dlist_hndl,
                                       const nixl_opt_args_t *extra_params) const {
    return prepXferDlist(NIXL_INIT_AGENT, descs, dlist_hndl, extra_params);
}

nixl_status_t nixlAgent::prepXferDlist(const std::string &agent_name, const nixl_stride_dlist_t &descs,
                                       nixlDlistH *&dlist_hndl, const nixl_opt_args_t *extra_params) const {
    nixl_xfer_dlist_t blocks(descs.getType());
    NIXL_RS_TRY(expand(descs, blocks));
    return prepXferDlist(agent_name, blocks, dlist_hndl, extra_params);
}

nixl_status_t nixlAgent::prepXferDlist(const nixl_stride_dlist_t &descs, nixlDlistH *&dlist_hndl,
                                       const nixl_opt_args_t *extra_params) const {
    return prepXferDlist(NIXL_INIT_AGENT, descs, dlist_hndl, extra_params);
}

nixl_status_t nixlAgent::makeXferReq(const nixl_xfer_op_t &operation, const nixlDlistH *local_side,
                                     const std::vector<int> &local_indices, const nixlDlistH *remote_side,
                                     const std::vector<int> &remote_indices, nixlXferReqH *&req_hndl,
                                     const nixl_opt_args_t *extra_params) const {
    if (!local_side || !remote_side) return NIXL_ERR_INVALID_PARAM;
    return makeXferReq(operation, *local_side, std::span<const int>(local_indices), *remote_side,
                       std::span<const int>(remote_indices), req_hndl, extra_params);
}

nixl_status_t nixlAgent::makeXferReq(nixl_xfer_op_t operation, const nixlDlistH &local_side,
                                     std::span<const int> local_indices, const nixlDlistH &remote_side,
                                     std::span<const int> remote_indices, nixlXferReqH *&req_hndl,
                                     const nixl_opt_args_t *extra_params) const {
    if (!data->owns(&local_side) || !data->owns(&remote_side)) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    nixl_capi_xfer_req_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_make_xfer_req(data->agent, nixl_rs::op_to_capi(operation), local_side.h_,
                                        local_indices.data(), local_indices.size(), remote_side.h_,
                                        remote_indices.data(), remote_indices.size(), &h, o.get()));
    req_hndl = data->adopt(h);
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::createXferReq(const nixl_xfer_op_t &operation, const nixl_xfer_dlist_t &local_descs,
                                       const nixl_xfer_dlist_t &remote_descs, const std::string &remote_agent,
                                       nixlXferReqH *&req_hndl, const nixl_opt_args_t *extra_params) const {
    nixl_rs::XferDlist l;
    nixl_rs::XferDlist r;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(local_descs, l));
    NIXL_RS_TRY(nixl_rs::to_capi(remote_descs, r));
    NIXL_RS_TRY(o.build(extra_params));
    nixl_capi_xfer_req_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_create_xfer_req(data->agent, nixl_rs::op_to_capi(operation), l.get(), r.get(),
                                          remote_agent.c_str(), &h, o.get()));
    req_hndl = data->adopt(h);
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::estimateXferCost(const nixlXferReqH *req_hndl, std::chrono::microseconds &duration,
                                          std::chrono::microseconds &err_margin, nixl_cost_t &method,
                                          const nixl_opt_args_t *extra_params) const {
    if (!req_hndl || !data->owns(req_hndl)) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    int64_t d = 0;
    int64_t e = 0;
    nixl_capi_cost_t m = NIXL_CAPI_COST_ANALYTICAL_BACKEND;
    NIXL_RS_TRY(nixl_capi_estimate_xfer_cost(data->agent, req_hndl->h_, o.get(), &d, &e, &m));
    duration = std::chrono::microseconds(d);
    err_margin = std::chrono::microseconds(e);
    method = static_cast<nixl_cost_t>(m);
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::postXferReq(nixlXferReqH *req_hndl, const nixl_opt_args_t *extra_params) const {
    if (!req_hndl || !data->owns(req_hndl)) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_post_xfer_req(data->agent, req_hndl->h_, o.get()));
}

nixl_status_t nixlAgent::getXferStatus(nixlXferReqH *req_hndl) const {
    if (!req_hndl || !data->owns(req_hndl)) return NIXL_ERR_INVALID_PARAM;
    return nixl_rs::status_of(nixl_capi_get_xfer_status(data->agent, req_hndl->h_));
}

nixl_status_t nixlAgent::getXferTelemetry(const nixlXferReqH *req_hndl, nixl_xfer_telem_t &telemetry) const {
    if (!req_hndl || !data->owns(req_hndl)) return NIXL_ERR_INVALID_PARAM;
    nixl_capi_xfer_telemetry_s t{};
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_get_xfer_telemetry(data->agent, req_hndl->h_, &t));
    if (st != NIXL_SUCCESS) return st;
    // The C ABI reports the start in wall-clock time; NIXL's field is a steady_clock point.
    using namespace std::chrono;
    const auto since_start = system_clock::now() - (system_clock::time_point() + microseconds(t.start_time_us));
    telemetry.startTime = steady_clock::now() - duration_cast<steady_clock::duration>(since_start);
    telemetry.postDuration = microseconds(t.post_duration_us);
    telemetry.xferDuration = microseconds(t.xfer_duration_us);
    telemetry.totalBytes = t.total_bytes;
    telemetry.descCount = t.desc_count;
    return NIXL_SUCCESS;
}

// The C ABI hands out a fresh handle for the request's backend and does not name its type;
// the agent's own handle is found by comparing what each backend reports (memory types and
// parameters), which tells apart every pair of nixl-rs backends.
nixl_status_t nixlAgent::queryXferBackend(const nixlXferReqH *req_hndl, nixlBackendH *&backend) const {
    if (!req_hndl || !data->owns(req_hndl)) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::BackendRef h;
    NIXL_RS_TRY(nixl_capi_query_xfer_backend(data->agent, req_hndl->h_, h.out()));
    std::lock_guard<std::mutex> lock(data->backends_mu);
    if (data->backends.size() == 1) {
        backend = data->backends.front().get();
        return NIXL_SUCCESS;
    }
    nixl_rs::MemList qm;
    nixl_rs::Params qp;
    NIXL_RS_TRY(nixl_capi_get_backend_params(data->agent, h.get(), qm.out(), qp.out()));
    nixl_mem_list_t want_mems;
    nixl_b_params_t want_params;
    NIXL_RS_TRY(nixl_rs::from_capi(qm.get(), want_mems));
    NIXL_RS_TRY(nixl_rs::from_capi(qp.get(), want_params));
    for (const auto &b : data->backends) {
        nixl_rs::MemList m;
        nixl_rs::Params p;
        NIXL_RS_TRY(nixl_capi_get_backend_params(data->agent, b->h_, m.out(), p.out()));
        nixl_mem_list_t mems;
        nixl_b_params_t params;
        NIXL_RS_TRY(nixl_rs::from_capi(m.get(), mems));
        NIXL_RS_TRY(nixl_rs::from_capi(p.get(), params));
        if (mems == want_mems && params == want_params) {
            backend = b.get();
            return NIXL_SUCCESS;
        }
    }
    return NIXL_ERR_NOT_FOUND;
}

// Cancels an in-flight request and frees it. If the release fails the handle stays valid
// (NIXL keeps it too), so the engine may retry. A handle this agent does not hold (released
// already, or another agent's) is INVALID_PARAM rather than a double free.
nixl_status_t nixlAgent::releaseXferReq(nixlXferReqH *req_hndl) const {
    {
        // Claim the handle first, so two threads releasing it cannot both free it.
        std::lock_guard<std::mutex> lock(data->handles_mu);
        if (data->reqs.erase(req_hndl) == 0) return NIXL_ERR_INVALID_PARAM;
    }
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_release_xfer_req(data->agent, req_hndl->h_));
    if (st != NIXL_SUCCESS) {
        std::lock_guard<std::mutex> lock(data->handles_mu);
        data->reqs.insert(req_hndl);
        return st;
    }
    nixl_capi_destroy_xfer_req(req_hndl->h_);
    delete req_hndl;
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::releasedDlistH(nixlDlistH *dlist_hndl) const {
    {
        std::lock_guard<std::mutex> lock(data->handles_mu);
        if (data->dlists.erase(dlist_hndl) == 0) return NIXL_ERR_INVALID_PARAM;
    }
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_release_xfer_dlist_handle(data->agent, dlist_hndl->h_));
    delete dlist_hndl;
    return st;
}

nixl_status_t nixlAgent::prepMemView(const nixl_remote_dlist_t &, nixlMemViewH &, const nixl_opt_args_t *) const {
    return NIXL_ERR_NOT_SUPPORTED;
}

nixl_status_t nixlAgent::prepMemView(const nixl_local_dlist_t &, nixlMemViewH &, const nixl_opt_args_t *) const {
    return NIXL_ERR_NOT_SUPPORTED;
}

void nixlAgent::releaseMemView(nixlMemViewH) const {}

/* Notifications */

// Drains the agent's notifications and appends them to `notif_map` (as NIXL: the caller's
// existing entries stay).
nixl_status_t nixlAgent::getNotifs(nixl_notifs_t &notif_map, const nixl_opt_args_t *extra_params) {
    nixl_rs::NotifMap m;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    NIXL_RS_TRY(nixl_capi_create_notif_map(m.out()));
    NIXL_RS_TRY(nixl_capi_get_notifs(data->agent, m.get(), o.get()));
    size_t senders = 0;
    NIXL_RS_TRY(nixl_capi_notif_map_size(m.get(), &senders));
    for (size_t i = 0; i < senders; ++i) {
        const char *agent = nullptr;
        NIXL_RS_TRY(nixl_capi_notif_map_get_agent_at(m.get(), i, &agent));
        size_t count = 0;
        NIXL_RS_TRY(nixl_capi_notif_map_get_notifs_size(m.get(), agent, &count));
        std::vector<nixl_blob_t> &msgs = notif_map[agent];
        for (size_t j = 0; j < count; ++j) {
            const void *msg = nullptr;
            size_t len = 0;
            NIXL_RS_TRY(nixl_capi_notif_map_get_notif(m.get(), agent, j, &msg, &len));
            msgs.emplace_back(static_cast<const char *>(msg), msg ? len : 0);
        }
    }
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::genNotif(const std::string &remote_agent, const nixl_blob_t &msg,
                                  const nixl_opt_args_t *extra_params) const {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_gen_notif(data->agent, remote_agent.c_str(), msg.data(), msg.size(), o.get()));
}

/* Metadata */

nixl_status_t nixlAgent::getLocalMD(nixl_blob_t &str) const {
    void *md = nullptr;
    size_t len = 0;
    NIXL_RS_TRY(nixl_capi_get_local_md(data->agent, &md, &len));
    str = nixl_rs::take_malloced(md, len);
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::getLocalPartialMD(const nixl_reg_dlist_t &descs, nixl_blob_t &str,
                                           const nixl_opt_args_t *extra_params) const {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    void *md = nullptr;
    size_t len = 0;
    NIXL_RS_TRY(nixl_capi_get_local_partial_md(data->agent, d.get(), &md, &len, o.get()));
    str = nixl_rs::take_malloced(md, len);
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::loadRemoteMD(const nixl_blob_t &remote_metadata, std::string &agent_name) {
    char *name = nullptr;
    NIXL_RS_TRY(nixl_capi_load_remote_md(data->agent, remote_metadata.data(), remote_metadata.size(), &name));
    agent_name = name ? name : "";
    std::free(name);
    return NIXL_SUCCESS;
}

nixl_status_t nixlAgent::invalidateRemoteMD(const std::string &remote_agent) {
    return nixl_rs::status_of(nixl_capi_invalidate_remote_md(data->agent, remote_agent.c_str()));
}

nixl_status_t nixlAgent::sendLocalMD(const nixl_opt_args_t *extra_params) const {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_send_local_md(data->agent, o.get()));
}

nixl_status_t nixlAgent::sendLocalPartialMD(const nixl_reg_dlist_t &descs, const nixl_opt_args_t *extra_params) const {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_send_local_partial_md(data->agent, d.get(), o.get()));
}

nixl_status_t nixlAgent::fetchRemoteMD(const std::string remote_name, const nixl_opt_args_t *extra_params) {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_fetch_remote_md(data->agent, remote_name.c_str(), o.get()));
}

nixl_status_t nixlAgent::invalidateLocalMD(const nixl_opt_args_t *extra_params) const {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_invalidate_local_md(data->agent, o.get()));
}

nixl_status_t nixlAgent::checkRemoteMD(const std::string remote_name, const nixl_xfer_dlist_t &descs) const {
    // An empty list asks only "is the metadata loaded"; the C call takes NULL for that.
    nixl_rs::XferDlist d;
    if (!descs.isEmpty()) NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    return nixl_rs::status_of(nixl_capi_check_remote_md(data->agent, remote_name.c_str(), d.get()));
}
