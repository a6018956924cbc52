/*
 * handles.h: what NIXL's opaque handles hold inside nixl-rs's libnixl.so: each wraps one C ABI
 * handle. Engines only see pointers (nixl_types.h declares the classes); the agent creates
 * and frees them. Private to cpp/lib/.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_LIB_HANDLES_H
#define NIXL_RS_LIB_HANDLES_H

#include <utility>

#include "nixl_capi.h"
#include "nixl_types.h"

// A backend instance; lives as long as its agent (NIXL has no call to destroy one).
class nixlBackendH {
  public:
    nixlBackendH(nixl_backend_t type, nixl_capi_backend_t h) : type_(std::move(type)), h_(h) {}
    ~nixlBackendH() { nixl_capi_destroy_backend(h_); }
    nixlBackendH(const nixlBackendH &) = delete;
    nixlBackendH &operator=(const nixlBackendH &) = delete;

    nixl_backend_t type_;
    nixl_capi_backend_t h_;
};

// A prepped descriptor list (prepXferDlist); freed by nixlAgent::releasedDlistH.
class nixlDlistH {
  public:
    explicit nixlDlistH(nixl_capi_xfer_dlist_handle_t h) : h_(h) {}
    nixl_capi_xfer_dlist_handle_t h_;
};

// A transfer request (makeXferReq/createXferReq); freed by nixlAgent::releaseXferReq.
class nixlXferReqH {
  public:
    explicit nixlXferReqH(nixl_capi_xfer_req_t h) : h_(h) {}
    nixl_capi_xfer_req_t h_;
};

#endif // NIXL_RS_LIB_HANDLES_H
