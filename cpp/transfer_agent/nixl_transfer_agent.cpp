// nixl_transfer_agent.cpp: kvx::NixlTransferAgent over nixl.h.
#include "nixl_transfer_agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "nixl_transfer_status.h"

namespace kvx {
namespace {

void check(nixl_status_t st, const char *what) {
    if (st != NIXL_SUCCESS) throw std::runtime_error(std::string(what) + ": " + nixlEnumStrings::statusStr(st));
}

// A port for the listener, picked by the kernel (TensorRT-LLM picks one under a file lock).
int pick_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    const bool ok = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0;
    close(fd);
    if (!ok) throw std::runtime_error("no free port for the listener");
    return ntohs(a.sin_port);
}

nixl_xfer_dlist_t to_xfer(const MemoryDescs &descs) {
    nixl_xfer_dlist_t out(static_cast<nixl_mem_t>(descs.type));
    for (const MemoryDesc &d : descs.descs) out.addDesc(nixlBasicDesc(d.addr, d.len, d.deviceId));
    return out;
}

nixl_reg_dlist_t to_reg(const MemoryDescs &descs) {
    nixl_reg_dlist_t out(static_cast<nixl_mem_t>(descs.type));
    for (const MemoryDesc &d : descs.descs) out.addDesc(nixlBlobDesc(d.addr, d.len, d.deviceId));
    return out;
}

} // namespace

NixlTransferAgent::NixlTransferAgent(const BaseAgentConfig &config) : name_(config.mName) {
    const int port = config.useListenThread ? pick_port() : 0;
    const nixlAgentConfig cfg{config.useProgThread, config.useListenThread, port,
                              nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT, 1, 0, 10000, config.enableTelemetry};
    agent_ = std::make_shared<nixlAgent>(name_, cfg);
    if (config.useListenThread) connection_info_ = "127.0.0.1:" + std::to_string(port);
    const char *env = std::getenv("KVX_NIXL_BACKEND");
    const std::string backend = env && *env ? env : "UCX";
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    check(agent_->getPluginParams(backend, mems, params), "getPluginParams");
    for (const auto &kv : config.backendParams) params[kv.first] = kv.second;
    check(agent_->createBackend(backend, params, backend_), "createBackend");
    base_args_.backends.push_back(backend_);
}

NixlTransferAgent::~NixlTransferAgent() {
    std::unique_lock<std::shared_mutex> lock(mu_);
    for (const std::string &r : remotes_) agent_->invalidateRemoteMD(r);
}

void NixlTransferAgent::registerMemory(const RegisterDescs &descs) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    check(agent_->registerMem(to_reg(descs), &base_args_), "registerMem");
}

void NixlTransferAgent::deregisterMemory(const RegisterDescs &descs) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    check(agent_->deregisterMem(to_reg(descs), &base_args_), "deregisterMem");
}

void NixlTransferAgent::loadRemoteAgent(const std::string &name, const AgentDesc &desc) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    std::string loaded;
    check(agent_->loadRemoteMD(desc.backendAgentDesc, loaded), "loadRemoteMD");
    if (loaded != name) throw std::runtime_error("metadata of '" + loaded + "' loaded as '" + name + "'");
    remotes_.insert(name);
}

void NixlTransferAgent::loadRemoteAgent(const std::string &name, const ConnectionInfoType &connectionInfo) {
    const auto colon = connectionInfo.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("connection info is not ip:port: " + connectionInfo);
    nixl_opt_args_t peer = base_args_;
    peer.ipAddr = connectionInfo.substr(0, colon);
    peer.port = std::stoi(connectionInfo.substr(colon + 1));
    std::unique_lock<std::shared_mutex> lock(mu_);
    check(agent_->fetchRemoteMD(name, &peer), "fetchRemoteMD");
    // The fetch is asynchronous: its arrival shows as checkRemoteMD turning from NOT_FOUND.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    nixl_status_t st;
    while ((st = agent_->checkRemoteMD(name, nixl_xfer_dlist_t(DRAM_SEG))) == NIXL_ERR_NOT_FOUND) {
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("metadata of '" + name + "' did not arrive from " + connectionInfo);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    check(st, "checkRemoteMD");
    remotes_.insert(name);
}

void NixlTransferAgent::invalidateRemoteAgent(const std::string &name) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    check(agent_->invalidateRemoteMD(name), "invalidateRemoteMD");
    remotes_.erase(name);
}

AgentDesc NixlTransferAgent::getLocalAgentDesc() {
    std::shared_lock<std::shared_mutex> lock(mu_);
    AgentDesc desc;
    check(agent_->getLocalMD(desc.backendAgentDesc), "getLocalMD");
    return desc;
}

ConnectionInfoType NixlTransferAgent::getLocalConnectionInfo() { return connection_info_; }

std::unique_ptr<TransferStatus> NixlTransferAgent::submitTransferRequests(const TransferRequest &request) {
    std::shared_lock<std::shared_mutex> lock(mu_);
    // A copy per request: the notification differs from one request to the next.
    nixl_opt_args_t args = base_args_;
    if (request.syncMessage) args.notif = *request.syncMessage;
    nixlXferReqH *req = nullptr;
    const nixl_xfer_op_t op = request.op == TransferOp::kREAD ? NIXL_READ : NIXL_WRITE;
    check(agent_->createXferReq(op, to_xfer(request.srcDescs), to_xfer(request.dstDescs), request.remoteName, req,
                                &args),
          "createXferReq");
    const nixl_status_t posted = agent_->postXferReq(req, &args);
    return std::make_unique<NixlTransferStatus>(agent_, req, posted);
}

void NixlTransferAgent::notifySyncMessage(const std::string &name, const SyncMessage &message) {
    std::shared_lock<std::shared_mutex> lock(mu_);
    check(agent_->genNotif(name, message, &base_args_), "genNotif");
}

std::unordered_map<std::string, std::vector<SyncMessage>> NixlTransferAgent::getNotifiedSyncMessages() {
    std::shared_lock<std::shared_mutex> lock(mu_);
    nixl_notifs_t notifs;
    check(agent_->getNotifs(notifs, &base_args_), "getNotifs");
    return notifs;
}

bool NixlTransferAgent::checkRemoteDescs(const std::string &name, const MemoryDescs &descs) {
    std::shared_lock<std::shared_mutex> lock(mu_);
    const nixl_status_t st = agent_->checkRemoteMD(name, to_xfer(descs));
    if (st == NIXL_SUCCESS) return true;
    if (st == NIXL_ERR_NOT_FOUND) return false;
    check(st, "checkRemoteMD");
    return false;
}

} // namespace kvx
