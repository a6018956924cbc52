// plugin.cpp: the example plugin's only exports, found by dlsym the way TensorRT-LLM finds
// its transfer agents ("createNixlTransferAgent" and "createNixlLoopbackAgent" in a library it
// dlopens). The factories are extern "C" for unmangled names but speak C++ (config pointer in,
// unique_ptr out), so the plugin and its loader must share a compiler ABI and transfer_agent.h.
#include "nixl_loopback_agent.h"
#include "nixl_transfer_agent.h"

extern "C" __attribute__((visibility("default"))) std::unique_ptr<kvx::BaseTransferAgent>
createNixlTransferAgent(const kvx::BaseAgentConfig *config) {
    return std::make_unique<kvx::NixlTransferAgent>(*config);
}

extern "C" __attribute__((visibility("default"))) std::unique_ptr<kvx::BaseLoopbackAgent>
createNixlLoopbackAgent(const kvx::BaseAgentConfig *config) {
    return std::make_unique<kvx::NixlLoopbackAgent>(*config);
}
