/*
 * nixl.hpp: RAII wrappers over the C API of libnixl_capi (nixl_capi.h), C++17.
 *
 * Every failing call throws nixl::Error, which carries the C status, the precise NIXL status
 * (nixl_capi_ext_last_status) and its message. Handles free themselves; objects are movable,
 * not copyable. Header-only: link with -lnixl_capi (pkg-config --cflags --libs nixl_capi).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_HPP
#define NIXL_HPP

#include <cstdint>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nixl_capi.h"

namespace nixl {

/** A failed call: the C status, the precise NIXL status and message. */
class Error : public std::runtime_error {
  public:
    Error(const char *what, nixl_capi_status_t capi, int32_t status, std::string message)
        : std::runtime_error(std::string(what) + ": " + nixl_capi_ext_status_name(status) + ": " +
                             message),
          capi_(capi), status_(status), message_(std::move(message)) {}
    /** The upstream C status (NIXL_CAPI_ERROR_*). */
    nixl_capi_status_t capi_status() const noexcept { return capi_; }
    /** The precise NIXL status (NIXL_CAPI_EXT_ERR_*, NIXL's nixl_status_t values). */
    int32_t status() const noexcept { return status_; }
    /** What went wrong. */
    const std::string &message() const noexcept { return message_; }

  private:
    nixl_capi_status_t capi_;
    int32_t status_;
    std::string message_;
};

/** Throws nixl::Error unless `s` is SUCCESS (or IN_PROG); returns `s`. */
inline nixl_capi_status_t check(nixl_capi_status_t s, const char *what) {
    if (s == NIXL_CAPI_SUCCESS || s == NIXL_CAPI_IN_PROG) return s;
    throw Error(what, s, nixl_capi_ext_last_status(), nixl_capi_ext_last_error_message());
}

namespace detail {
/** Owns a C handle and frees it with `Free` (a function returning a status). */
template <typename T, nixl_capi_status_t (*Free)(T)> class Handle {
  public:
    Handle() = default;
    explicit Handle(T h) : h_(h) {}
    Handle(Handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Handle &operator=(Handle &&o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    ~Handle() { reset(); }
    T get() const noexcept { return h_; }
    T *out() noexcept {
        reset();
        return &h_;
    }
    void reset() noexcept {
        if (h_) Free(h_);
        h_ = nullptr;
    }

  private:
    T h_ = nullptr;
};
} // namespace detail

using Bytes = std::vector<uint8_t>;

/** Optional arguments. */
class OptArgs {
  public:
    OptArgs() { check(nixl_capi_create_opt_args(h_.out()), "create_opt_args"); }
    OptArgs &notif(const std::string &msg) {
        check(nixl_capi_opt_args_set_notif_msg(h_.get(), msg.data(), msg.size()), "set_notif_msg");
        check(nixl_capi_opt_args_set_has_notif(h_.get(), true), "set_has_notif");
        return *this;
    }
    OptArgs &backend(nixl_capi_backend_t b) {
        check(nixl_capi_opt_args_add_backend(h_.get(), b), "opt_args_add_backend");
        return *this;
    }
    nixl_capi_opt_args_t get() const noexcept { return h_.get(); }

  private:
    detail::Handle<nixl_capi_opt_args_t, nixl_capi_destroy_opt_args> h_;
};

/** A transfer descriptor list. */
class XferDescList {
  public:
    explicit XferDescList(nixl_capi_mem_type_t mem) {
        check(nixl_capi_create_xfer_dlist(mem, h_.out()), "create_xfer_dlist");
    }
    XferDescList &add(uintptr_t addr, size_t len, uint64_t dev_id = 0) {
        check(nixl_capi_xfer_dlist_add_desc(h_.get(), addr, len, dev_id), "xfer_dlist_add_desc");
        return *this;
    }
    size_t size() const {
        size_t n = 0;
        check(nixl_capi_xfer_dlist_desc_count(h_.get(), &n), "xfer_dlist_desc_count");
        return n;
    }
    nixl_capi_xfer_dlist_t get() const noexcept { return h_.get(); }

  private:
    detail::Handle<nixl_capi_xfer_dlist_t, nixl_capi_destroy_xfer_dlist> h_;
};

/** A registration descriptor list. */
class RegDescList {
  public:
    explicit RegDescList(nixl_capi_mem_type_t mem) {
        check(nixl_capi_create_reg_dlist(mem, h_.out()), "create_reg_dlist");
    }
    RegDescList &add(uintptr_t addr, size_t len, uint64_t dev_id = 0, const std::string &meta = {}) {
        check(nixl_capi_reg_dlist_add_desc(h_.get(), addr, len, dev_id, meta.data(), meta.size()),
              "reg_dlist_add_desc");
        return *this;
    }
    nixl_capi_reg_dlist_t get() const noexcept { return h_.get(); }

  private:
    detail::Handle<nixl_capi_reg_dlist_t, nixl_capi_destroy_reg_dlist> h_;
};

/** Notifications by sender (a copy of the C map's contents). */
using NotifMap = std::map<std::string, std::vector<std::string>>;

class Agent;

/** A transfer request; released (in-flight post canceled and waited for) on destruction. */
class XferRequest {
  public:
    XferRequest(nixl_capi_agent_t agent, nixl_capi_xfer_req_t req) : agent_(agent), req_(req) {}
    XferRequest(XferRequest &&o) noexcept
        : agent_(o.agent_), req_(std::exchange(o.req_, nullptr)) {}
    XferRequest(const XferRequest &) = delete;
    XferRequest &operator=(const XferRequest &) = delete;
    XferRequest &operator=(XferRequest &&) = delete;
    ~XferRequest() {
        if (req_) {
            nixl_capi_release_xfer_req(agent_, req_);
            nixl_capi_destroy_xfer_req(req_);
        }
    }
    /** Posts; true if still in progress. */
    bool post(const OptArgs *opt = nullptr) {
        return check(nixl_capi_post_xfer_req(agent_, req_, opt ? opt->get() : nullptr),
                     "post_xfer_req") == NIXL_CAPI_IN_PROG;
    }
    /** True once complete; throws if the transfer failed. */
    bool done() { return check(nixl_capi_get_xfer_status(agent_, req_), "get_xfer_status") ==
                         NIXL_CAPI_SUCCESS; }
    /** Posts and polls until complete. */
    void run(const OptArgs *opt = nullptr) {
        if (!post(opt)) return;
        while (!done()) {
        }
    }
    nixl_capi_xfer_req_t get() const noexcept { return req_; }

  private:
    nixl_capi_agent_t agent_;
    nixl_capi_xfer_req_t req_;
};

/** An agent; destroyed with everything it owns. Requests must not outlive it. */
class Agent {
  public:
    explicit Agent(const std::string &name) {
        check(nixl_capi_create_agent(name.c_str(), h_.out()), "create_agent");
    }
    /** Creates a backend of `plugin` with its default parameters. */
    nixl_capi_backend_t create_backend(const std::string &plugin) {
        detail::Handle<nixl_capi_mem_list_t, nixl_capi_destroy_mem_list> mems;
        detail::Handle<nixl_capi_params_t, nixl_capi_destroy_params> params;
        check(nixl_capi_get_plugin_params(h_.get(), plugin.c_str(), mems.out(), params.out()),
              "get_plugin_params");
        nixl_capi_backend_t b = nullptr;
        check(nixl_capi_create_backend(h_.get(), plugin.c_str(), params.get(), &b),
              "create_backend");
        backends_.emplace_back(b);
        return b;
    }
    /** Registers memory; the caller keeps it valid until deregistered or the agent dies. */
    void register_mem(const RegDescList &l, const OptArgs *opt = nullptr) {
        check(nixl_capi_register_mem(h_.get(), l.get(), opt ? opt->get() : nullptr), "register_mem");
    }
    void deregister_mem(const RegDescList &l) {
        check(nixl_capi_deregister_mem(h_.get(), l.get(), nullptr), "deregister_mem");
    }
    Bytes local_md() const {
        void *data = nullptr;
        size_t len = 0;
        check(nixl_capi_get_local_md(h_.get(), &data, &len), "get_local_md");
        Bytes out(static_cast<uint8_t *>(data), static_cast<uint8_t *>(data) + len);
        std::free(data);
        return out;
    }
    std::string load_remote_md(const Bytes &md) {
        char *name = nullptr;
        check(nixl_capi_load_remote_md(h_.get(), md.data(), md.size(), &name), "load_remote_md");
        std::string out(name);
        std::free(name);
        return out;
    }
    void invalidate_remote_md(const std::string &remote) {
        check(nixl_capi_invalidate_remote_md(h_.get(), remote.c_str()), "invalidate_remote_md");
    }
    XferRequest create_xfer_req(nixl_capi_xfer_op_t op, const XferDescList &local,
                                const XferDescList &remote, const std::string &remote_agent,
                                const OptArgs *opt = nullptr) {
        nixl_capi_xfer_req_t r = nullptr;
        check(nixl_capi_create_xfer_req(h_.get(), op, local.get(), remote.get(),
                                        remote_agent.c_str(), &r, opt ? opt->get() : nullptr),
              "create_xfer_req");
        return XferRequest(h_.get(), r);
    }
    void gen_notif(const std::string &remote, const std::string &msg) {
        check(nixl_capi_gen_notif(h_.get(), remote.c_str(), msg.data(), msg.size(), nullptr),
              "gen_notif");
    }
    /** Drains received notifications into `into` (appending). */
    void get_notifs(NotifMap &into) {
        detail::Handle<nixl_capi_notif_map_t, nixl_capi_destroy_notif_map> map;
        check(nixl_capi_create_notif_map(map.out()), "create_notif_map");
        check(nixl_capi_get_notifs(h_.get(), map.get(), nullptr), "get_notifs");
        size_t agents = 0;
        check(nixl_capi_notif_map_size(map.get(), &agents), "notif_map_size");
        for (size_t i = 0; i < agents; i++) {
            const char *name = nullptr;
            check(nixl_capi_notif_map_get_agent_at(map.get(), i, &name), "notif_map_get_agent_at");
            size_t n = 0;
            check(nixl_capi_notif_map_get_notifs_size(map.get(), name, &n), "get_notifs_size");
            for (size_t j = 0; j < n; j++) {
                const void *data = nullptr;
                size_t len = 0;
                check(nixl_capi_notif_map_get_notif(map.get(), name, j, &data, &len), "get_notif");
                into[name].emplace_back(static_cast<const char *>(data), len);
            }
        }
    }
    nixl_capi_agent_t get() const noexcept { return h_.get(); }

  private:
    detail::Handle<nixl_capi_agent_t, nixl_capi_destroy_agent> h_;
    std::vector<detail::Handle<nixl_capi_backend_t, nixl_capi_destroy_backend>> backends_;
};

} // namespace nixl

#endif
