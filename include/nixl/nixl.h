/*
 * nixl.h: NIXL 1.5's agent (nixlAgent), the C++ API that C++ engines (TensorRT-LLM's NIXL
 * transfer agent among them) are written against. Declarations only: nixl-rs's libnixl.so
 * (cpp/lib/, over the C ABI in libnixl_capi) defines every method with NIXL's mangled names,
 * so a binary built against these headers, or against NIXL's own, runs on either library.
 * Link with -lnixl -lnixl_build. Calls without a meaning in nixl-rs return
 * NIXL_ERR_NOT_SUPPORTED.
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
#include <string>
#include <vector>
#if __cplusplus >= 202002L
#include <span>
#endif

#include "nixl_descriptors.h"
#include "nixl_params.h"
#include "nixl_types.h"

// One pointer: everything an agent holds lives behind `data` (nixl-rs's nixlAgentData is
// private to libnixl.so), so the object engines allocate is 8 bytes in both libraries.
class nixlAgent {
  private:
    std::unique_ptr<nixlAgentData> data;

  public:
    // Throws std::invalid_argument for an empty name or a configuration whose fields are out
    // of range (a consumer built against another NIXL version's nixl_params.h), and
    // std::runtime_error if the agent cannot start (e.g. the listener port is taken). The
    // destructor releases the requests and prepped lists the engine did not release.
    nixlAgent(const std::string &name, const nixlAgentConfig &cfg);
    ~nixlAgent();
    nixlAgent(nixlAgent &&) noexcept = delete;
    nixlAgent &operator=(nixlAgent &&) noexcept = delete;

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
                           const nixl_opt_args_t *extra_params) const;
    nixl_status_t makeConnection(const std::string &remote_agent,
                                 const nixl_opt_args_t *extra_params = nullptr);

    /* Transfers. agent_name: NIXL_INIT_AGENT for this agent's initiator side, a peer's name
     * for its side, this agent's own name for loopback. */
    nixl_status_t prepXferDlist(const std::string &agent_name, const nixl_xfer_dlist_t &descs,
                                nixlDlistH *&dlist_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t prepXferDlist(const nixl_xfer_dlist_t &descs, nixlDlistH *&dlist_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    // Strided lists: nixl-rs expands each run into its blocks (count entries of len bytes,
    // stride apart), so indices in makeXferReq count blocks.
    nixl_status_t prepXferDlist(const std::string &agent_name, const nixl_stride_dlist_t &descs,
                                nixlDlistH *&dlist_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t prepXferDlist(const nixl_stride_dlist_t &descs, nixlDlistH *&dlist_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t makeXferReq(const nixl_xfer_op_t &operation, const nixlDlistH *local_side,
                              const std::vector<int> &local_indices, const nixlDlistH *remote_side,
                              const std::vector<int> &remote_indices, nixlXferReqH *&req_hndl,
                              const nixl_opt_args_t *extra_params = nullptr) const;
#if __cplusplus >= 202002L
    nixl_status_t makeXferReq(nixl_xfer_op_t operation, const nixlDlistH &local_side,
                              std::span<const int> local_indices, const nixlDlistH &remote_side,
                              std::span<const int> remote_indices, nixlXferReqH *&req_hndl,
                              const nixl_opt_args_t *extra_params = nullptr) const;
#endif
    nixl_status_t createXferReq(const nixl_xfer_op_t &operation, const nixl_xfer_dlist_t &local_descs,
                                const nixl_xfer_dlist_t &remote_descs, const std::string &remote_agent,
                                nixlXferReqH *&req_hndl,
                                const nixl_opt_args_t *extra_params = nullptr) const;
    // No nixl-rs backend estimates costs: NIXL_ERR_NOT_SUPPORTED.
    nixl_status_t estimateXferCost(const nixlXferReqH *req_hndl, std::chrono::microseconds &duration,
                                   std::chrono::microseconds &err_margin, nixl_cost_t &method,
                                   const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t postXferReq(nixlXferReqH *req_hndl,
                              const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t getXferStatus(nixlXferReqH *req_hndl) const;
    nixl_status_t getXferTelemetry(const nixlXferReqH *req_hndl, nixl_xfer_telem_t &telemetry) const;
    nixl_status_t queryXferBackend(const nixlXferReqH *req_hndl, nixlBackendH *&backend) const;
    nixl_status_t releaseXferReq(nixlXferReqH *req_hndl) const;

    /* GPU-initiated memory views: not provided by nixl-rs (NIXL_ERR_NOT_SUPPORTED). */
    nixl_status_t prepMemView(const nixl_remote_dlist_t &dlist, nixlMemViewH &mvh,
                              const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t prepMemView(const nixl_local_dlist_t &dlist, nixlMemViewH &mvh,
                              const nixl_opt_args_t *extra_params = nullptr) const;
    void releaseMemView(nixlMemViewH mvh) const;

    nixl_status_t releasedDlistH(nixlDlistH *dlist_hndl) const;

    /* Notifications */
    nixl_status_t getNotifs(nixl_notifs_t &notif_map, const nixl_opt_args_t *extra_params = nullptr);
    nixl_status_t genNotif(const std::string &remote_agent, const nixl_blob_t &msg,
                           const nixl_opt_args_t *extra_params = nullptr) const;

    /* Metadata: blobs the engine moves itself */
    nixl_status_t getLocalMD(nixl_blob_t &str) const;
    nixl_status_t getLocalPartialMD(const nixl_reg_dlist_t &descs, nixl_blob_t &str,
                                    const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t loadRemoteMD(const nixl_blob_t &remote_metadata, std::string &agent_name);
    nixl_status_t invalidateRemoteMD(const std::string &remote_agent);

    /* Metadata exchanged by the library (peer listener with ipAddr/port, else central store).
     * Asynchronous; checkRemoteMD tells when a fetch has landed. */
    nixl_status_t sendLocalMD(const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t sendLocalPartialMD(const nixl_reg_dlist_t &descs,
                                     const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t fetchRemoteMD(const std::string remote_name,
                                const nixl_opt_args_t *extra_params = nullptr);
    nixl_status_t invalidateLocalMD(const nixl_opt_args_t *extra_params = nullptr) const;
    nixl_status_t checkRemoteMD(const std::string remote_name, const nixl_xfer_dlist_t &descs) const;
};

#endif // NIXL_RS_NIXL_H
