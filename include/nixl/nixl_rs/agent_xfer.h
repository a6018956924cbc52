/*
 * nixl_rs/agent_xfer.h: nixlAgent's transfers: prepped lists, requests, posting, status,
 * telemetry and release. Included by nixl.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_AGENT_XFER_H
#define NIXL_RS_AGENT_XFER_H

inline nixl_status_t nixlAgent::prepXferDlist(const std::string &agent_name, const nixl_xfer_dlist_t &descs,
                                              nixlDlistH *&dlist_hndl,
                                              const nixl_opt_args_t *extra_params) const {
    nixl_rs::XferDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    nixl_capi_xfer_dlist_handle_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_prep_xfer_dlist(agent_, agent_name.c_str(), d.get(), &h, o.get()));
    dlist_hndl = adopt(h);
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::prepXferDlist(const nixl_xfer_dlist_t &descs, nixlDlistH *&dlist_hndl,
                                              const nixl_opt_args_t *extra_params) const {
    return prepXferDlist(NIXL_INIT_AGENT, descs, dlist_hndl, extra_params);
}

inline nixl_status_t nixlAgent::makeXferReq(const nixl_xfer_op_t &operation, const nixlDlistH *local_side,
                                            const std::vector<int> &local_indices,
                                            const nixlDlistH *remote_side,
                                            const std::vector<int> &remote_indices,
                                            nixlXferReqH *&req_hndl,
                                            const nixl_opt_args_t *extra_params) const {
    if (!owns(local_side) || !owns(remote_side)) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    nixl_capi_xfer_req_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_make_xfer_req(agent_, nixl_rs::op_to_capi(operation), local_side->h_,
                                        local_indices.data(), local_indices.size(), remote_side->h_,
                                        remote_indices.data(), remote_indices.size(), &h, o.get()));
    req_hndl = adopt(h);
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::createXferReq(const nixl_xfer_op_t &operation,
                                              const nixl_xfer_dlist_t &local_descs,
                                              const nixl_xfer_dlist_t &remote_descs,
                                              const std::string &remote_agent, nixlXferReqH *&req_hndl,
                                              const nixl_opt_args_t *extra_params) const {
    nixl_rs::XferDlist l;
    nixl_rs::XferDlist r;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(local_descs, l));
    NIXL_RS_TRY(nixl_rs::to_capi(remote_descs, r));
    NIXL_RS_TRY(o.build(extra_params));
    nixl_capi_xfer_req_t h = nullptr;
    NIXL_RS_TRY(nixl_capi_create_xfer_req(agent_, nixl_rs::op_to_capi(operation), l.get(), r.get(),
                                          remote_agent.c_str(), &h, o.get()));
    req_hndl = adopt(h);
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::estimateXferCost(const nixlXferReqH *req_hndl,
                                                 std::chrono::microseconds &duration,
                                                 std::chrono::microseconds &err_margin,
                                                 nixl_cost_t &method,
                                                 const nixl_opt_args_t *extra_params) const {
    if (!req_hndl) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    int64_t d = 0;
    int64_t e = 0;
    nixl_capi_cost_t m = NIXL_CAPI_COST_ANALYTICAL_BACKEND;
    // No nixl-rs backend estimates costs: this is NIXL_ERR_NOT_SUPPORTED today.
    NIXL_RS_TRY(nixl_capi_estimate_xfer_cost(agent_, req_hndl->h_, o.get(), &d, &e, &m));
    duration = std::chrono::microseconds(d);
    err_margin = std::chrono::microseconds(e);
    method = static_cast<nixl_cost_t>(m);
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::postXferReq(nixlXferReqH *req_hndl, const nixl_opt_args_t *extra_params) const {
    if (!req_hndl) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_post_xfer_req(agent_, req_hndl->h_, o.get()));
}

inline nixl_status_t nixlAgent::getXferStatus(nixlXferReqH *req_hndl) const {
    if (!req_hndl) return NIXL_ERR_INVALID_PARAM;
    return nixl_rs::status_of(nixl_capi_get_xfer_status(agent_, req_hndl->h_));
}

// The C ABI hands out a fresh handle for the request's backend and does not name its type;
// the agent's own handle is found by comparing what each backend reports (memory types and
// parameters), which tells apart every pair of nixl-rs backends.
inline nixl_status_t nixlAgent::queryXferBackend(const nixlXferReqH *req_hndl, nixlBackendH *&backend) const {
    if (!req_hndl) return NIXL_ERR_INVALID_PARAM;
    nixl_rs::BackendRef h;
    NIXL_RS_TRY(nixl_capi_query_xfer_backend(agent_, req_hndl->h_, h.out()));
    std::lock_guard<std::mutex> lock(backends_mu_);
    if (backends_.size() == 1) {
        backend = backends_.front().get();
        return NIXL_SUCCESS;
    }
    nixl_rs::MemList qm;
    nixl_rs::Params qp;
    NIXL_RS_TRY(nixl_capi_get_backend_params(agent_, h.get(), qm.out(), qp.out()));
    nixl_mem_list_t want_mems;
    nixl_b_params_t want_params;
    NIXL_RS_TRY(nixl_rs::from_capi(qm.get(), want_mems));
    NIXL_RS_TRY(nixl_rs::from_capi(qp.get(), want_params));
    for (const auto &b : backends_) {
        nixl_rs::MemList m;
        nixl_rs::Params p;
        NIXL_RS_TRY(nixl_capi_get_backend_params(agent_, b->capiHandle(), m.out(), p.out()));
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

inline nixl_status_t nixlAgent::getXferTelemetry(const nixlXferReqH *req_hndl, nixl_xfer_telem_t &telemetry) const {
    if (!req_hndl) return NIXL_ERR_INVALID_PARAM;
    nixl_capi_xfer_telemetry_s t{};
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_get_xfer_telemetry(agent_, req_hndl->h_, &t));
    if (st != NIXL_SUCCESS) return st;
    telemetry.startTime = std::chrono::microseconds(t.start_time_us);
    telemetry.postDuration = std::chrono::microseconds(t.post_duration_us);
    telemetry.xferDuration = std::chrono::microseconds(t.xfer_duration_us);
    telemetry.totalBytes = t.total_bytes;
    telemetry.descCount = t.desc_count;
    return NIXL_SUCCESS;
}

// Cancels an in-flight request and frees it. If the release fails the handle stays valid
// (NIXL keeps it too), so the engine may retry. A handle this agent does not hold (released
// already, or another agent's) is INVALID_PARAM rather than a double free.
inline nixl_status_t nixlAgent::releaseXferReq(nixlXferReqH *req_hndl) const {
    // Claim the handle first, so two threads releasing it cannot both free it.
    {
        std::lock_guard<std::mutex> lock(handles_mu_);
        if (reqs_.erase(req_hndl) == 0) return NIXL_ERR_INVALID_PARAM;
    }
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_release_xfer_req(agent_, req_hndl->h_));
    if (st != NIXL_SUCCESS) {
        std::lock_guard<std::mutex> lock(handles_mu_);
        reqs_.insert(req_hndl); // still the engine's, as in NIXL
        return st;
    }
    nixl_capi_destroy_xfer_req(req_hndl->h_);
    delete req_hndl;
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::releasedDlistH(nixlDlistH *dlist_hndl) const {
    {
        std::lock_guard<std::mutex> lock(handles_mu_);
        if (dlists_.erase(dlist_hndl) == 0) return NIXL_ERR_INVALID_PARAM;
    }
    const nixl_status_t st = nixl_rs::status_of(nixl_capi_release_xfer_dlist_handle(agent_, dlist_hndl->h_));
    delete dlist_hndl;
    return st;
}

inline nixl_status_t nixlAgent::prepMemView(const nixl_remote_dlist_t &, nixlMemViewH &,
                                            const nixl_opt_args_t *) const {
    return NIXL_ERR_NOT_SUPPORTED;
}

inline nixl_status_t nixlAgent::prepMemView(const nixl_local_dlist_t &, nixlMemViewH &,
                                            const nixl_opt_args_t *) const {
    return NIXL_ERR_NOT_SUPPORTED;
}

inline void nixlAgent::releaseMemView(nixlMemViewH) const {}

#endif // NIXL_RS_AGENT_XFER_H
