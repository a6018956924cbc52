/*
 * nixl_rs/agent_memory.h: nixlAgent's memory registration, queries and connections.
 * Included by nixl.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_AGENT_MEMORY_H
#define NIXL_RS_AGENT_MEMORY_H

inline nixl_status_t nixlAgent::registerMem(const nixl_reg_dlist_t &descs,
                                            const nixl_opt_args_t *extra_params) {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_register_mem(agent_, d.get(), o.get()));
}

inline nixl_status_t nixlAgent::deregisterMem(const nixl_reg_dlist_t &descs,
                                              const nixl_opt_args_t *extra_params) {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_deregister_mem(agent_, d.get(), o.get()));
}

inline nixl_status_t nixlAgent::queryMem(const nixl_reg_dlist_t &descs,
                                         std::vector<nixl_query_resp_t> &resp,
                                         const nixl_opt_args_t *extra_params) const {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    nixl_rs::QueryResp r;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    NIXL_RS_TRY(nixl_capi_create_query_resp_list(r.out()));
    NIXL_RS_TRY(nixl_capi_query_mem(agent_, d.get(), r.get(), o.get()));
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

inline nixl_status_t nixlAgent::makeConnection(const std::string &remote_agent,
                                               const nixl_opt_args_t *extra_params) {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_agent_make_connection(agent_, remote_agent.c_str(), o.get()));
}

#endif // NIXL_RS_AGENT_MEMORY_H
