// plugin.cpp: the example plugin's only export, found by dlsym the way TensorRT-LLM finds
// its transfer agents ("createNixlTransferAgent" in a library it dlopens). The factory is
// extern "C" for an unmangled name but speaks C++ (config pointer in, unique_ptr out), so the
// plugin and its loader must share a compiler ABI and transfer_agent.h.
#include "nixl_transfer_agent.h"

extern "C" __attribute__((visibility("default"))) std::unique_ptr<kvx::BaseTransferAgent>
createNixlTransferAgent(const kvx::BaseAgentConfig *config) {
    return std::make_unique<kvx::NixlTransferAgent>(*config);
}
