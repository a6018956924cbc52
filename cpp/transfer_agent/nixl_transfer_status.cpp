// nixl_transfer_status.cpp: polling, waiting and releasing one NIXL request.
#include "nixl_transfer_status.h"

#include <chrono>
#include <thread>

namespace kvx {

nixl_status_t NixlTransferStatus::poll() const {
    // Terminal states are sticky; only a request still in flight is asked again.
    if (last_ != NIXL_IN_PROG) return last_;
    auto agent = agent_.lock();
    if (!agent || !req_) return last_ = NIXL_ERR_NOT_FOUND;
    return last_ = agent->getXferStatus(req_);
}

TransferState NixlTransferStatus::wait(int64_t timeout_ms) const {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        const nixl_status_t st = poll();
        if (st == NIXL_SUCCESS) return TransferState::kSUCCESS;
        if (st != NIXL_IN_PROG) return TransferState::kFAILURE;
        if (timeout_ms >= 0 && std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(timeout_ms))
            return TransferState::kIN_PROGRESS;
        // Yield rather than sleep: KV transfers complete in microseconds to milliseconds.
        std::this_thread::yield();
    }
}

bool NixlTransferStatus::release() {
    if (!req_) return true;
    auto agent = agent_.lock();
    if (!agent) { // the agent is gone and took its requests with it
        req_ = nullptr;
        return true;
    }
    const nixl_status_t st = agent->releaseXferReq(req_);
    if (st != NIXL_SUCCESS) return false;
    req_ = nullptr;
    return true;
}

} // namespace kvx
