/*
 * nixl_rs/handles.h: what NIXL's opaque handles hold in nixl-rs: each wraps one C ABI
 * handle. Engines only see pointers; nixlAgent creates and frees them.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_HANDLES_H
#define NIXL_RS_HANDLES_H

#include <utility>

#include "../../nixl_capi.h"
#include "../nixl_types.h"

class nixlAgent;

// A backend instance; lives as long as its agent (NIXL has no call to destroy one).
class nixlBackendH {
  public:
    nixl_backend_t getType() const { return type_; }
    // nixl-rs: the C ABI handle, for code mixing the C++ and C APIs.
    nixl_capi_backend_t capiHandle() const { return h_; }

    nixlBackendH(const nixlBackendH &) = delete;
    nixlBackendH &operator=(const nixlBackendH &) = delete;

  private:
    friend class nixlAgent;
    nixlBackendH(nixl_backend_t type, nixl_capi_backend_t h) : type_(std::move(type)), h_(h) {}
    ~nixlBackendH() { nixl_capi_destroy_backend(h_); }
    struct Deleter {
        void operator()(nixlBackendH *b) const { delete b; }
    };

    nixl_backend_t type_;
    nixl_capi_backend_t h_;
};

// A prepped descriptor list (prepXferDlist); freed by nixlAgent::releasedDlistH.
class nixlDlistH {
    friend class nixlAgent;
    explicit nixlDlistH(nixl_capi_xfer_dlist_handle_t h) : h_(h) {}
    nixl_capi_xfer_dlist_handle_t h_;
};

// A transfer request (makeXferReq/createXferReq); freed by nixlAgent::releaseXferReq.
class nixlXferReqH {
    friend class nixlAgent;
    explicit nixlXferReqH(nixl_capi_xfer_req_t h) : h_(h) {}
    nixl_capi_xfer_req_t h_;
};

#endif // NIXL_RS_HANDLES_H
