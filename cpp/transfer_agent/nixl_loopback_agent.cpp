// nixl_loopback_agent.cpp: kvx::NixlLoopbackAgent over nixl.h.
#include "nixl_loopback_agent.h"

#include <cstdlib>
#include <stdexcept>

namespace kvx {
namespace {

void check(nixl_status_t st, const char *what) {
    if (st != NIXL_SUCCESS) throw std::runtime_error(std::string(what) + ": " + nixlEnumStrings::statusStr(st));
}

} // namespace

NixlLoopbackAgent::NixlLoopbackAgent(const BaseAgentConfig &config) : name_(config.mName) {
    agent_ = std::make_unique<nixlAgent>(name_, nixlAgentConfig(config.useProgThread));
    const char *env = std::getenv("KVX_NIXL_FILE_BACKEND");
    const std::string backend = env && *env ? env : "POSIX";
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    check(agent_->getPluginParams(backend, mems, params), "getPluginParams");
    for (const auto &kv : config.backendParams) params[kv.first] = kv.second;
    nixlBackendH *h = nullptr;
    check(agent_->createBackend(backend, params, h), "createBackend");
    args_.backends.push_back(h);
}

void NixlLoopbackAgent::executeLoopbackRequest(const MemoryDescs &memory, const FileDescs &files, bool isOffload) {
    if (memory.descs.size() != files.size()) throw std::invalid_argument("one file per memory descriptor");
    std::lock_guard<std::mutex> lock(mu_);
    const auto mem_type = static_cast<nixl_mem_t>(memory.type);
    nixl_reg_dlist_t mem_reg(mem_type), file_reg(FILE_SEG);
    nixl_xfer_dlist_t mem_xfer(mem_type), file_xfer(FILE_SEG);
    for (size_t i = 0; i < files.size(); ++i) {
        const MemoryDesc &m = memory.descs[i];
        if (m.len != files[i].len()) throw std::invalid_argument("memory and file lengths differ");
        mem_reg.addDesc(nixlBlobDesc(m.addr, m.len, m.deviceId));
        mem_xfer.addDesc(nixlBasicDesc(m.addr, m.len, m.deviceId));
        // FILE descriptors: addr = offset in the file, devId = the open fd, metaInfo = path.
        const auto fd = static_cast<uint64_t>(files[i].fd());
        file_reg.addDesc(nixlBlobDesc(0, files[i].len(), fd, files[i].path()));
        file_xfer.addDesc(nixlBasicDesc(0, files[i].len(), fd));
    }
    check(agent_->registerMem(mem_reg, &args_), "registerMem (memory)");
    nixl_status_t st = agent_->registerMem(file_reg, &args_);
    if (st == NIXL_SUCCESS) {
        // Offload = WRITE memory -> file; load = READ file -> memory; the remote is ourselves.
        nixlXferReqH *req = nullptr;
        st = agent_->createXferReq(isOffload ? NIXL_WRITE : NIXL_READ, mem_xfer, file_xfer, name_, req, &args_);
        if (st == NIXL_SUCCESS) {
            st = agent_->postXferReq(req, &args_);
            while (st == NIXL_IN_PROG) st = agent_->getXferStatus(req);
            agent_->releaseXferReq(req);
        }
        agent_->deregisterMem(file_reg, &args_);
    }
    agent_->deregisterMem(mem_reg, &args_);
    check(st, isOffload ? "offload" : "load");
}

} // namespace kvx
