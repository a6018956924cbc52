/*
 * nixl.h: NIXL's agent (nixlAgent), the C++ API that C++ engines (TensorRT-LLM's NIXL transfer
 * agent among them) are written against. nixl-rs implements every call inline over its C ABI
 * (libnixl_capi): link with -lnixl_capi. Statuses are NIXL's exact ones. Calls without a
 * meaning in nixl-rs return NIXL_ERR_NOT_SUPPORTED.
 *
 * Engines `#include <nixl.h>` with -I<prefix>/include/nixl (the CMake package NIXL and
 * pkg-config's nixl.pc add it).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_NIXL_H
#define NIXL_RS_NIXL_H

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "nixl_descriptors.h"
#include "nixl_params.h"
#include "nixl_types.h"
#include "nixl_rs/capi.h"
#include "nixl_rs/handles.h"

class nixlAgent {
  public:
    // Throws std::invalid_argument for an empty name and std::runtime_error if the agent
    // cannot start (e.g. the listener port is taken): a constructor has no status to return.
    // The destructor releases the requests and prepped lists the engine did not release.
    nixlAgent(const std::string &name, const nixlAgentConfig &cfg);
    ~nixlAgent();
    nixlAgent(const nixlAgent &) = delete;
    nixlAgent &operator=(const nixlAgent &) = delete;

    /* Plugins and backends */
    nixl_status_t getAvailPlugins(std::vector<nixl_backend_t> &plugins);
    nixl_status_t getPluginParams(const nixl_backend_t &type, nixl_mem_list_t &mems,
                                  nixl_b_params_t &params) const;
    nixl_status_t getBackendParams(const nixlBackendH *backend, nixl_mem_list_t &mems,
                                   nixl_b_params_t &params) const;
    nixl_status_t createBackend(const nixl_backend_t &type, const nixl_b_params_t &params,
                                nixlBackendH *&backend);

    /* Memory */
    nixl_status_t registerMem(const nixl_reg_dlist_t &descs,
                              const nixl_opt_args_t *extra_params = nullptr);
    nixl_status_t deregisterMem(const nixl_reg_dlist_t &descs,
                                const nixl_opt_args_t *extra_params = nullptr);
    nixl_status_t queryMem(const nixl_reg_dlist_t &descs, std::vector<nixl_query_resp_t> &resp,
                           const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t makeConnection(const std::string &remote_agent,
                                 const nixl_opt_args_t *extra_params = nullptr);

    /* Transfers */
    nixl_status_t prepXferDlist(const std::string &agent_name, const nixl_xfer_dlist_t &descs,
                                nixlDlistH *&dlist_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    // This agent's own (initiator-side) descriptors: prepXferDlist(NIXL_INIT_AGENT, ...).
    nixl_status_t prepXferDlist(const nixl_xfer_dlist_t &descs, nixlDlistH *&dlist_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t makeXferReq(const nixl_xfer_op_t &operation, const nixlDlistH *local_side,
                              const std::vector<int> &local_indices, const nixlDlistH *remote_side,
                              const std::vector<int> &remote_indices, nixlXferReqH *&req_hndl,
                              const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t createXferReq(const nixl_xfer_op_t &operation, const nixl_xfer_dlist_t &local_descs,
                                const nixl_xfer_dlist_t &remote_descs, const std::string &remote_agent,
                                nixlXferReqH *&req_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t estimateXferCost(const nixlXferReqH *req_hndl, std::chrono::microseconds &duration,
                                   std::chrono::microseconds &err_margin, nixl_cost_t &method,
                                   const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t postXferReq(nixlXferReqH *req_hndl,
                              const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t getXferStatus(nixlXferReqH *req_hndl) const;
    nixl_status_t queryXferBackend(const nixlXferReqH *req_hndl, nixlBackendH *&backend) const;
    nixl_status_t getXferTelemetry(const nixlXferReqH *req_hndl, nixl_xfer_telem_t &telemetry) const;
    nixl_status_t releaseXferReq(nixlXferReqH *req_hndl) const;
    nixl_status_t releasedDlistH(nixlDlistH *dlist_hndl) const;

    /* GPU-initiated memory views: not provided by nixl-rs (NIXL_ERR_NOT_SUPPORTED). */
    nixl_status_t prepMemView(const nixl_remote_dlist_t &dlist, nixlMemViewH &mvh,
                              const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t prepMemView(const nixl_local_dlist_t &dlist, nixlMemViewH &mvh,
                              const nixl_opt_args_t *extra_params = nullptr) const;
    void releaseMemView(nixlMemViewH mvh) const;

    /* Notifications */
    nixl_status_t getNotifs(nixl_notifs_t &notif_map, const nixl_opt_args_t *extra_params = nullptr);
    nixl_status_t genNotif(const std::string &remote_agent, const nixl_blob_t &msg,
                           const nixl_opt_args_t *extra_params = nullptr) const;

    /* Metadata: blobs */
    nixl_status_t getLocalMD(nixl_blob_t &str) const;
    nixl_status_t getLocalPartialMD(const nixl_reg_dlist_t &descs, nixl_blob_t &str,
                                    const nixl_opt_args_t *extra_params) const;
    nixl_status_t loadRemoteMD(const nixl_blob_t &remote_metadata, std::string &agent_name);
    nixl_status_t invalidateRemoteMD(const std::string &remote_agent);

    /* Metadata: exchanged by the library (peer listener with ipAddr/port, else central store).
     * Asynchronous; checkRemoteMD tells when a fetch has landed. */
    nixl_status_t sendLocalMD(const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t sendLocalPartialMD(const nixl_reg_dlist_t &descs,
                                     const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t fetchRemoteMD(const std::string remote_name,
                                const nixl_opt_args_t *extra_params = nullptr);
    nixl_status_t invalidateLocalMD(const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t checkRemoteMD(const std::string remote_name, const nixl_xfer_dlist_t &descs) const;

    // nixl-rs: the C ABI agent handle, for code mixing the C++ and C APIs.
    nixl_capi_agent_t capiHandle() const { return agent_; }

  private:
    std::string name_;
    nixl_capi_agent_t agent_ = nullptr;
    // Backends created through this agent; NIXL hands out raw pointers that stay valid
    // until the agent is destroyed.
    mutable std::mutex backends_mu_;
    std::vector<std::unique_ptr<nixlBackendH, nixlBackendH::Deleter>> backends_;
    // Requests and prepped lists handed out and not yet released: the destructor frees what
    // the engine left (the C ABI needs the agent to release them), and a handle this agent
    // does not know is refused instead of freed twice.
    mutable std::mutex handles_mu_;
    mutable std::unordered_set<nixlXferReqH *> reqs_;
    mutable std::unordered_set<nixlDlistH *> dlists_;

    nixlXferReqH *adopt(nixl_capi_xfer_req_t h) const;
    nixlDlistH *adopt(nixl_capi_xfer_dlist_handle_t h) const;
    bool owns(const nixlXferReqH *req) const;
    bool owns(const nixlDlistH *dlist) const;
};

#include "nixl_rs/agent_core.h"
#include "nixl_rs/agent_memory.h"
#include "nixl_rs/agent_metadata.h"
#include "nixl_rs/agent_notif.h"
#include "nixl_rs/agent_xfer.h"

#endif // NIXL_RS_NIXL_H
