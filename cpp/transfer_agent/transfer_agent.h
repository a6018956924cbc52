// transfer_agent.h: an engine-side transfer-agent interface in the style of TensorRT-LLM's
// BaseTransferAgent (written by us from its description, namespace kvx): what a KV-cache
// transceiver needs from a transfer library, loaded from a plugin through an extern "C"
// factory. The NIXL implementation (nixl_transfer_agent.h) is the example plugin.
#ifndef KVX_TRANSFER_AGENT_H
#define KVX_TRANSFER_AGENT_H

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "file_desc.h"

namespace kvx {

// Same order as NIXL's nixl_mem_t, so a cast converts.
enum class MemoryType : uint8_t { kDRAM, kVRAM, kBLK, kOBJ, kFILE };
enum class TransferOp : uint8_t { kREAD, kWRITE };
enum class TransferState : uint8_t { kIN_PROGRESS, kSUCCESS, kFAILURE };

struct MemoryDesc {
    uintptr_t addr = 0;
    size_t len = 0;
    uint32_t deviceId = 0;
};

struct MemoryDescs {
    MemoryType type = MemoryType::kDRAM;
    std::vector<MemoryDesc> descs;
};
using TransferDescs = MemoryDescs;
using RegisterDescs = MemoryDescs;

using SyncMessage = std::string;
// "ip:port" of a peer's metadata listener.
using ConnectionInfoType = std::string;

// What a peer needs to reach this agent: the library's metadata blob.
struct AgentDesc {
    std::string backendAgentDesc;
};

struct TransferRequest {
    TransferOp op = TransferOp::kWRITE;
    TransferDescs srcDescs; // local
    TransferDescs dstDescs; // remote
    std::string remoteName;
    // Delivered to the remote agent once the data has landed.
    std::optional<SyncMessage> syncMessage;
};

class TransferStatus {
  public:
    virtual ~TransferStatus() = default;
    virtual bool isCompleted() const = 0;
    // Waits up to timeout_ms (-1: forever); kIN_PROGRESS means the time ran out.
    virtual TransferState wait(int64_t timeout_ms = -1) const = 0;
    // Frees the request early (the destructor does it otherwise); false if that failed.
    virtual bool release() = 0;
    // The library's name for the last status seen (for logs and tests).
    virtual std::string getLastStatusStr() const = 0;
};

struct BaseAgentConfig {
    std::string mName;
    bool useProgThread = true;
    bool multiThread = false;
    bool useListenThread = false;
    bool enableTelemetry = false;
    // Forwarded to the backend on top of its defaults.
    std::unordered_map<std::string, std::string> backendParams;
};

class BaseTransferAgent {
  public:
    virtual ~BaseTransferAgent() = default;
    virtual void registerMemory(const RegisterDescs &descs) = 0;
    virtual void deregisterMemory(const RegisterDescs &descs) = 0;
    virtual void loadRemoteAgent(const std::string &name, const AgentDesc &desc) = 0;
    virtual void loadRemoteAgent(const std::string &name, const ConnectionInfoType &connectionInfo) = 0;
    virtual void invalidateRemoteAgent(const std::string &name) = 0;
    virtual AgentDesc getLocalAgentDesc() = 0;
    virtual ConnectionInfoType getLocalConnectionInfo() = 0;
    virtual std::unique_ptr<TransferStatus> submitTransferRequests(const TransferRequest &request) = 0;
    virtual void notifySyncMessage(const std::string &name, const SyncMessage &message) = 0;
    virtual std::unordered_map<std::string, std::vector<SyncMessage>> getNotifiedSyncMessages() = 0;
    virtual bool checkRemoteDescs(const std::string &name, const MemoryDescs &descs) = 0;
};

using FileDescs = std::vector<FileDesc>;

// Moves memory to files (offload) and back (load) within one process: the agent is its own
// remote. memory.descs[i] pairs with files[i].
class BaseLoopbackAgent {
  public:
    virtual ~BaseLoopbackAgent() = default;
    virtual void executeLoopbackRequest(const MemoryDescs &memory, const FileDescs &files, bool isOffload) = 0;
};

// The plugin's entry points, looked up with dlsym("createNixlTransferAgent") and
// dlsym("createNixlLoopbackAgent").
using CreateTransferAgentFn = std::unique_ptr<BaseTransferAgent> (*)(const BaseAgentConfig *);
using CreateLoopbackAgentFn = std::unique_ptr<BaseLoopbackAgent> (*)(const BaseAgentConfig *);

} // namespace kvx

#endif // KVX_TRANSFER_AGENT_H
