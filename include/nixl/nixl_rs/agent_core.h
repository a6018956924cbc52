/*
 * nixl_rs/agent_core.h: nixlAgent's lifetime, plugins and backends, over the C ABI.
 * Included by nixl.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_AGENT_CORE_H
#define NIXL_RS_AGENT_CORE_H

#include <stdexcept>

inline nixlAgent::nixlAgent(const std::string &name, const nixlAgentConfig &cfg) : name_(name) {
    if (name.empty()) throw std::invalid_argument("nixlAgent: the agent name is empty");
    nixl_capi_agent_config_t c{};
    c.enable_prog_thread = cfg.useProgThread;
    c.enable_listen_thread = cfg.useListenThread;
    c.listen_port = cfg.listenPort;
    c.thread_sync = static_cast<nixl_capi_thread_sync_t>(cfg.syncMode);
    c.num_workers = 1;
    c.pthr_delay_us = static_cast<uint64_t>(cfg.pthrDelay.count());
    c.lthr_delay_us = static_cast<uint64_t>(cfg.lthrDelay.count());
    c.capture_telemetry = cfg.captureTelemetry;
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_create_configured_agent(name.c_str(), &c, &agent_));
    if (st != NIXL_SUCCESS)
        throw std::runtime_error("nixlAgent '" + name + "': " + nixlEnumStrings::statusStr(st) + ": " +
                                 nixl_capi_ext_last_error_message());
}

inline nixlAgent::~nixlAgent() {
    for (nixlXferReqH *r : reqs_) {
        nixl_capi_release_xfer_req(agent_, r->h_);
        nixl_capi_destroy_xfer_req(r->h_);
        delete r;
    }
    for (nixlDlistH *d : dlists_) {
        nixl_capi_release_xfer_dlist_handle(agent_, d->h_);
        delete d;
    }
    backends_.clear();
    nixl_capi_destroy_agent(agent_);
}

inline nixlXferReqH *nixlAgent::adopt(nixl_capi_xfer_req_t h) const {
    auto *req = new nixlXferReqH(h);
    std::lock_guard<std::mutex> lock(handles_mu_);
    reqs_.insert(req);
    return req;
}

inline nixlDlistH *nixlAgent::adopt(nixl_capi_xfer_dlist_handle_t h) const {
    auto *dlist = new nixlDlistH(h);
    std::lock_guard<std::mutex> lock(handles_mu_);
    dlists_.insert(dlist);
    return dlist;
}

inline bool nixlAgent::owns(const nixlXferReqH *req) const {
    std::lock_guard<std::mutex> lock(handles_mu_);
    return reqs_.count(const_cast<nixlXferReqH *>(req)) != 0;
}

inline bool nixlAgent::owns(const nixlDlistH *dlist) const {
    std::lock_guard<std::mutex> lock(handles_mu_);
    return dlists_.count(const_cast<nixlDlistH *>(dlist)) != 0;
}

inline nixl_status_t nixlAgent::getAvailPlugins(std::vector<nixl_backend_t> &plugins) {
    nixl_rs::StringList list;
    NIXL_RS_TRY(nixl_capi_get_available_plugins(agent_, list.out()));
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

inline nixl_status_t nixlAgent::getPluginParams(const nixl_backend_t &type, nixl_mem_list_t &mems,
                                                nixl_b_params_t &params) const {
    nixl_rs::MemList m;
    nixl_rs::Params p;
    NIXL_RS_TRY(nixl_capi_get_plugin_params(agent_, type.c_str(), m.out(), p.out()));
    mems.clear();
    params.clear();
    NIXL_RS_TRY(nixl_rs::from_capi(m.get(), mems));
    return nixl_rs::from_capi(p.get(), params);
}

inline nixl_status_t nixlAgent::getBackendParams(const nixlBackendH *backend, nixl_mem_list_t &mems,
                                                 nixl_b_params_t &params) const {
    if (!backend) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::MemList m;
    nixl_rs::Params p;
    NIXL_RS_TRY(nixl_capi_get_backend_params(agent_, backend->capiHandle(), m.out(), p.out()));
    mems.clear();
    params.clear();
    NIXL_RS_TRY(nixl_rs::from_capi(m.get(), mems));
    return nixl_rs::from_capi(p.get(), params);
}

inline nixl_status_t nixlAgent::createBackend(const nixl_backend_t &type, const nixl_b_params_t &params,
                                              nixlBackendH *&backend) {
    nixl_rs::Params p;
    NIXL_RS_TRY(nixl_rs::to_capi(params, p));
    nixl_capi_backend_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_create_backend(agent_, type.c_str(), p.get(), &h));
    std::lock_guard<std::mutex> lock(backends_mu_);
    backends_.emplace_back(new nixlBackendH(type, h));
    backend = backends_.back().get();
    return NIXL_SUCCESS;
}

#endif // NIXL_RS_AGENT_CORE_H
