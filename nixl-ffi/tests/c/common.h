/* Helpers shared by the C tests of libnixl_capi. */
#ifndef NIXL_FFI_TEST_COMMON_H
#define NIXL_FFI_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nixl_capi.h"

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last: %s %s)\n", __FILE__, __LINE__,  \
                    #cond, nixl_capi_ext_status_name(nixl_capi_ext_last_status()),           \
                    nixl_capi_ext_last_error_message());                                     \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

#define OK(call) CHECK((call) == NIXL_CAPI_SUCCESS)

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An agent with the "UCX" (network) backend; returns the backend handle in *backend. */
static inline nixl_capi_agent_t make_agent(const char *name, nixl_capi_backend_t *backend) {
    nixl_capi_agent_t agent = NULL;
    nixl_capi_mem_list_t mems = NULL;
    nixl_capi_params_t params = NULL;
    OK(nixl_capi_create_agent(name, &agent));
    OK(nixl_capi_get_plugin_params(agent, "UCX", &mems, &params));
    OK(nixl_capi_create_backend(agent, "UCX", params, backend));
    OK(nixl_capi_destroy_mem_list(mems));
    OK(nixl_capi_destroy_params(params));
    return agent;
}

static inline void register_dram(nixl_capi_agent_t agent, void *buf, size_t len) {
    nixl_capi_reg_dlist_t reg = NULL;
    OK(nixl_capi_create_reg_dlist(NIXL_CAPI_MEM_DRAM, &reg));
    OK(nixl_capi_reg_dlist_add_desc(reg, (uintptr_t)buf, len, 0, NULL, 0));
    OK(nixl_capi_register_mem(agent, reg, NULL));
    OK(nixl_capi_destroy_reg_dlist(reg));
}

/* Loads `from`'s metadata into `into`; returns the loaded name (malloc'ed). */
static inline char *exchange_md(nixl_capi_agent_t from, nixl_capi_agent_t into) {
    void *md = NULL;
    size_t len = 0;
    char *name = NULL;
    OK(nixl_capi_get_local_md(from, &md, &len));
    CHECK(md != NULL && len > 0);
    OK(nixl_capi_load_remote_md(into, md, len, &name));
    free(md);
    return name;
}

/* Polls a posted request to a terminal status (or fails after 10 s). */
static inline nixl_capi_status_t wait_xfer(nixl_capi_agent_t agent, nixl_capi_xfer_req_t req,
                                           nixl_capi_status_t posted) {
    double deadline = now_s() + 10;
    nixl_capi_status_t st = posted;
    while (st == NIXL_CAPI_IN_PROG && now_s() < deadline) {
        st = nixl_capi_get_xfer_status(agent, req);
    }
    return st;
}

/* Waits until `agent` has received a notification from `sender` equal to `msg`. */
static inline void wait_notif(nixl_capi_agent_t agent, const char *sender, const char *msg) {
    nixl_capi_notif_map_t map = NULL;
    OK(nixl_capi_create_notif_map(&map));
    double deadline = now_s() + 10;
    for (;;) {
        OK(nixl_capi_get_notifs(agent, map, NULL));
        size_t n = 0;
        if (nixl_capi_notif_map_get_notifs_size(map, sender, &n) == NIXL_CAPI_SUCCESS && n > 0) {
            const void *data = NULL;
            size_t len = 0;
            OK(nixl_capi_notif_map_get_notif(map, sender, n - 1, &data, &len));
            CHECK(len == strlen(msg) && memcmp(data, msg, len) == 0);
            break;
        }
        CHECK(now_s() < deadline);
    }
    OK(nixl_capi_destroy_notif_map(map));
}

#endif
