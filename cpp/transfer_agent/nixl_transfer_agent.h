// nixl_transfer_agent.h: kvx::BaseTransferAgent over NIXL's C++ API (nixl.h), the way
// TensorRT-LLM's NIXL transfer agent uses it: one backend, passed to every call; metadata by
// blob or fetched from a peer's listener; ad-hoc createXferReq + postXferReq per submit;
// notifications as sync messages. Built into the example plugin.
#ifndef KVX_NIXL_TRANSFER_AGENT_H
#define KVX_NIXL_TRANSFER_AGENT_H

#include <memory>
#include <set>
#include <shared_mutex>
#include <string>

#include <nixl.h>

#include "transfer_agent.h"

namespace kvx {

class NixlTransferAgent final : public BaseTransferAgent {
  public:
    explicit NixlTransferAgent(const BaseAgentConfig &config);
    ~NixlTransferAgent() override;

    void registerMemory(const RegisterDescs &descs) override;
    void deregisterMemory(const RegisterDescs &descs) override;
    void loadRemoteAgent(const std::string &name, const AgentDesc &desc) override;
    void loadRemoteAgent(const std::string &name, const ConnectionInfoType &connectionInfo) override;
    void invalidateRemoteAgent(const std::string &name) override;
    AgentDesc getLocalAgentDesc() override;
    ConnectionInfoType getLocalConnectionInfo() override;
    std::unique_ptr<TransferStatus> submitTransferRequests(const TransferRequest &request) override;
    void notifySyncMessage(const std::string &name, const SyncMessage &message) override;
    std::unordered_map<std::string, std::vector<SyncMessage>> getNotifiedSyncMessages() override;
    bool checkRemoteDescs(const std::string &name, const MemoryDescs &descs) override;

  private:
    // Submits and notifications share the agent; registration and metadata changes take it
    // alone (the agent is thread-safe, the lock orders engine-visible state changes).
    mutable std::shared_mutex mu_;
    std::string name_;
    // Shared so a status that outlives this agent can tell (it holds a weak_ptr).
    std::shared_ptr<nixlAgent> agent_;
    nixlBackendH *backend_ = nullptr;
    nixl_opt_args_t base_args_;
    std::string connection_info_;
    std::set<std::string> remotes_;
};

} // namespace kvx

#endif // KVX_NIXL_TRANSFER_AGENT_H
