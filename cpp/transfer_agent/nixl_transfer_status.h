// nixl_transfer_status.h: kvx::TransferStatus over one NIXL request handle.
#ifndef KVX_NIXL_TRANSFER_STATUS_H
#define KVX_NIXL_TRANSFER_STATUS_H

#include <memory>
#include <string>

#include <nixl.h>

#include "transfer_agent.h"

namespace kvx {

class NixlTransferStatus final : public TransferStatus {
  public:
    // `posted` is what postXferReq returned: an error there is the request's final state.
    NixlTransferStatus(std::weak_ptr<nixlAgent> agent, nixlXferReqH *req, nixl_status_t posted)
        : agent_(std::move(agent)), req_(req), last_(posted) {}
    ~NixlTransferStatus() override { release(); }

    bool isCompleted() const override { return poll() == NIXL_SUCCESS; }
    TransferState wait(int64_t timeout_ms) const override;
    bool release() override;
    std::string getLastStatusStr() const override { return nixlEnumStrings::statusStr(last_); }

  private:
    nixl_status_t poll() const;

    std::weak_ptr<nixlAgent> agent_;
    nixlXferReqH *req_;
    mutable nixl_status_t last_;
};

} // namespace kvx

#endif // KVX_NIXL_TRANSFER_STATUS_H
