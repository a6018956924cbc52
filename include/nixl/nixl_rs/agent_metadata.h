/*
 * nixl_rs/agent_metadata.h: nixlAgent's metadata calls: blobs the engine moves itself, and
 * exchanges the library does (peer listener when ipAddr is set, else the central store).
 * Included by nixl.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_AGENT_METADATA_H
#define NIXL_RS_AGENT_METADATA_H

inline nixl_status_t nixlAgent::getLocalMD(nixl_blob_t &str) const {
    void *data = nullptr;
    size_t len = 0;
    NIXL_RS_TRY(nixl_capi_get_local_md(agent_, &data, &len));
    str = nixl_rs::take_malloced(data, len);
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::getLocalPartialMD(const nixl_reg_dlist_t &descs, nixl_blob_t &str,
                                                  const nixl_opt_args_t *extra_params) const {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    void *data = nullptr;
    size_t len = 0;
    NIXL_RS_TRY(nixl_capi_get_local_partial_md(agent_, d.get(), &data, &len, o.get()));
    str = nixl_rs::take_malloced(data, len);
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::loadRemoteMD(const nixl_blob_t &remote_metadata, std::string &agent_name) {
    char *name = nullptr;
    NIXL_RS_TRY(nixl_capi_load_remote_md(agent_, remote_metadata.data(), remote_metadata.size(), &name));
    agent_name = name ? name : "";
    std::free(name);
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::invalidateRemoteMD(const std::string &remote_agent) {
    return nixl_rs::status_of(nixl_capi_invalidate_remote_md(agent_, remote_agent.c_str()));
}

inline nixl_status_t nixlAgent::sendLocalMD(const nixl_opt_args_t *extra_params) const {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_send_local_md(agent_, o.get()));
}

inline nixl_status_t nixlAgent::sendLocalPartialMD(const nixl_reg_dlist_t &descs,
                                                   const nixl_opt_args_t *extra_params) const {
    nixl_rs::RegDlist d;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_send_local_partial_md(agent_, d.get(), o.get()));
}

inline nixl_status_t nixlAgent::fetchRemoteMD(const std::string remote_name,
                                              const nixl_opt_args_t *extra_params) {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_fetch_remote_md(agent_, remote_name.c_str(), o.get()));
}

inline nixl_status_t nixlAgent::invalidateLocalMD(const nixl_opt_args_t *extra_params) const {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(nixl_capi_invalidate_local_md(agent_, o.get()));
}

inline nixl_status_t nixlAgent::checkRemoteMD(const std::string remote_name,
                                              const nixl_xfer_dlist_t &descs) const {
    // An empty list asks only "is the metadata loaded"; the C call takes NULL for that.
    nixl_rs::XferDlist d;
    if (!descs.isEmpty()) NIXL_RS_TRY(nixl_rs::to_capi(descs, d));
    return nixl_rs::status_of(nixl_capi_check_remote_md(agent_, remote_name.c_str(), d.get()));
}

#endif // NIXL_RS_AGENT_METADATA_H
