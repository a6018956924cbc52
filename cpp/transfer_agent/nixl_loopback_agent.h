// nixl_loopback_agent.h: kvx::BaseLoopbackAgent over nixl.h: memory <-> file through a
// storage backend (POSIX by default; TensorRT-LLM uses GDS), the agent being its own remote.
#ifndef KVX_NIXL_LOOPBACK_AGENT_H
#define KVX_NIXL_LOOPBACK_AGENT_H

#include <memory>
#include <mutex>
#include <string>

#include <nixl.h>

#include "transfer_agent.h"

namespace kvx {

class NixlLoopbackAgent final : public BaseLoopbackAgent {
  public:
    explicit NixlLoopbackAgent(const BaseAgentConfig &config);
    void executeLoopbackRequest(const MemoryDescs &memory, const FileDescs &files, bool isOffload) override;

  private:
    // One request at a time: each registers its buffers and files for its own duration.
    std::mutex mu_;
    std::string name_;
    std::unique_ptr<nixlAgent> agent_;
    nixl_opt_args_t args_;
};

} // namespace kvx

#endif // KVX_NIXL_LOOPBACK_AGENT_H
