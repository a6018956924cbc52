/* Two agents in one process through the C API: WRITE with a notification, READ, prepped
 * lists with shuffled indices, gen_notif, invalidation, the POSIX backend, and bad input
 * through every kind of pointer argument. C11, built with -Wall -Werror against both the
 * shared and the static library. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

enum { BLOCKS = 64, BLOCK = 4096 };

static unsigned char src[BLOCKS * BLOCK];
static unsigned char dst[BLOCKS * BLOCK];

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 31u + seed);
}

static nixl_capi_xfer_dlist_t whole(void *buf, size_t len) {
    nixl_capi_xfer_dlist_t l = NULL;
    OK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_DRAM, &l));
    OK(nixl_capi_xfer_dlist_add_desc(l, (uintptr_t)buf, len, 0));
    return l;
}

static void write_with_notif_and_read(nixl_capi_agent_t a, nixl_capi_agent_t b) {
    fill(src, sizeof src, 1);
    memset(dst, 0, sizeof dst);
    nixl_capi_xfer_dlist_t l = whole(src, sizeof src), r = whole(dst, sizeof dst);
    nixl_capi_opt_args_t opt = NULL;
    OK(nixl_capi_create_opt_args(&opt));
    OK(nixl_capi_opt_args_set_notif_msg(opt, "written", 7));
    OK(nixl_capi_opt_args_set_has_notif(opt, true));
    nixl_capi_xfer_req_t req = NULL;
    OK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, l, r, "b", &req, opt));
    nixl_capi_status_t st = nixl_capi_post_xfer_req(a, req, NULL);
    CHECK(st == NIXL_CAPI_SUCCESS || st == NIXL_CAPI_IN_PROG);
    CHECK(wait_xfer(a, req, st) == NIXL_CAPI_SUCCESS);
    wait_notif(b, "a", "written");
    CHECK(memcmp(src, dst, sizeof src) == 0);

    nixl_capi_backend_t used = NULL;
    OK(nixl_capi_query_xfer_backend(a, req, &used));
    OK(nixl_capi_destroy_backend(used));
    CHECK(nixl_capi_destroy_xfer_req(req) == NIXL_CAPI_ERROR_INVALID_STATE);
    OK(nixl_capi_release_xfer_req(a, req));
    OK(nixl_capi_destroy_xfer_req(req));

    /* READ: pull b's buffer (now modified) back into a's. */
    fill(dst, sizeof dst, 9);
    OK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_READ, l, r, "b", &req, NULL));
    st = nixl_capi_post_xfer_req(a, req, NULL);
    CHECK(st == NIXL_CAPI_SUCCESS || st == NIXL_CAPI_IN_PROG);
    /* Extension: a blocking wait instead of the polling loop. */
    CHECK(nixl_capi_wait_xfer_req(a, req, -1) == NIXL_CAPI_SUCCESS);
    CHECK(nixl_capi_wait_xfer_req(a, req, 0) == NIXL_CAPI_SUCCESS);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    OK(nixl_capi_release_xfer_req(a, req));
    OK(nixl_capi_destroy_xfer_req(req));
    OK(nixl_capi_destroy_opt_args(opt));
    OK(nixl_capi_destroy_xfer_dlist(l));
    OK(nixl_capi_destroy_xfer_dlist(r));
}

static void prepped_shuffled(nixl_capi_agent_t a) {
    fill(src, sizeof src, 3);
    memset(dst, 0, sizeof dst);
    nixl_capi_xfer_dlist_t l = NULL, r = NULL;
    OK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_DRAM, &l));
    OK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_DRAM, &r));
    for (int i = 0; i < BLOCKS; i++) {
        OK(nixl_capi_xfer_dlist_add_desc(l, (uintptr_t)(src + i * BLOCK), BLOCK, 0));
        OK(nixl_capi_xfer_dlist_add_desc(r, (uintptr_t)(dst + i * BLOCK), BLOCK, 0));
    }
    nixl_capi_xfer_dlist_handle_t lh = NULL, rh = NULL;
    OK(nixl_capi_prep_xfer_dlist(a, "", l, &lh, NULL));
    OK(nixl_capi_prep_xfer_dlist(a, "b", r, &rh, NULL));
    int li[BLOCKS], ri[BLOCKS];
    srand(7);
    for (int i = 0; i < BLOCKS; i++) li[i] = i;
    for (int i = BLOCKS - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = li[i];
        li[i] = li[j];
        li[j] = t;
    }
    for (int i = 0; i < BLOCKS; i++) ri[i] = BLOCKS - 1 - li[i]; /* block k -> slot N-1-k */
    nixl_capi_xfer_req_t req = NULL;
    OK(nixl_capi_make_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, lh, li, BLOCKS, rh, ri, BLOCKS, &req,
                               NULL));
    nixl_capi_status_t st = nixl_capi_post_xfer_req(a, req, NULL);
    CHECK(wait_xfer(a, req, st) == NIXL_CAPI_SUCCESS);
    for (int k = 0; k < BLOCKS; k++) {
        CHECK(memcmp(src + k * BLOCK, dst + (BLOCKS - 1 - k) * BLOCK, BLOCK) == 0);
    }
    /* Reposting a completed request is allowed. */
    st = nixl_capi_post_xfer_req(a, req, NULL);
    CHECK(wait_xfer(a, req, st) == NIXL_CAPI_SUCCESS);
    OK(nixl_capi_release_xfer_req(a, req));
    OK(nixl_capi_destroy_xfer_req(req));

    /* Bad indices: out of range, negative, unequal counts, NULL with a count. */
    int bad[2] = {0, BLOCKS};
    int neg[2] = {-1, 0};
    CHECK(nixl_capi_make_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, lh, bad, 2, rh, li, 2, &req, NULL) ==
          NIXL_CAPI_ERROR_INVALID_PARAM);
    CHECK(nixl_capi_make_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, lh, neg, 2, rh, li, 2, &req, NULL) ==
          NIXL_CAPI_ERROR_INVALID_PARAM);
    CHECK(nixl_capi_make_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, lh, li, 2, rh, li, 3, &req, NULL) ==
          NIXL_CAPI_ERROR_INVALID_PARAM);
    CHECK(nixl_capi_make_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, lh, NULL, 2, rh, li, 2, &req, NULL) ==
          NIXL_CAPI_ERROR_INVALID_PARAM);
    CHECK(nixl_capi_make_xfer_req(a, (nixl_capi_xfer_op_t)7, lh, li, 2, rh, li, 2, &req, NULL) ==
          NIXL_CAPI_ERROR_INVALID_PARAM);
    /* Local handle where a remote one is expected. */
    CHECK(nixl_capi_make_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, lh, li, 2, lh, li, 2, &req, NULL) !=
          NIXL_CAPI_SUCCESS);
    OK(nixl_capi_release_xfer_dlist_handle(a, lh));
    OK(nixl_capi_release_xfer_dlist_handle(a, rh));
    OK(nixl_capi_destroy_xfer_dlist(l));
    OK(nixl_capi_destroy_xfer_dlist(r));
}

/* Takes whatever notifications are queued. */
static void wait_notif_drain(nixl_capi_agent_t agent) {
    nixl_capi_notif_map_t map = NULL;
    OK(nixl_capi_create_notif_map(&map));
    OK(nixl_capi_get_notifs(agent, map, NULL));
    OK(nixl_capi_destroy_notif_map(map));
}

static void gen_notif_and_invalidate(nixl_capi_agent_t a, nixl_capi_agent_t b) {
    /* Extension: waiting for a notification times out, then returns once one arrives. */
    wait_notif_drain(b);
    CHECK(nixl_capi_wait_notifs(b, 1000) == NIXL_CAPI_IN_PROG);
    OK(nixl_capi_gen_notif(a, "b", "hello", 5, NULL));
    CHECK(nixl_capi_wait_notifs(b, 10 * 1000 * 1000) == NIXL_CAPI_SUCCESS);
    wait_notif(b, "a", "hello");
    CHECK(nixl_capi_gen_notif(a, "nobody", "x", 1, NULL) == NIXL_CAPI_ERROR_NOT_FOUND);

    nixl_capi_xfer_dlist_t l = whole(src, BLOCK), r = whole(dst, BLOCK);
    nixl_capi_xfer_req_t req = NULL;
    OK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, l, r, "b", &req, NULL));
    OK(nixl_capi_check_remote_md(a, "b", r));
    OK(nixl_capi_invalidate_remote_md(a, "b"));
    CHECK(nixl_capi_check_remote_md(a, "b", NULL) == NIXL_CAPI_ERROR_NOT_FOUND);
    CHECK(nixl_capi_invalidate_remote_md(a, "b") == NIXL_CAPI_ERROR_NOT_FOUND);
    /* A request made before the invalidation is refused. */
    CHECK(nixl_capi_post_xfer_req(a, req, NULL) == NIXL_CAPI_ERROR_NOT_FOUND);
    CHECK(nixl_capi_ext_last_status() == NIXL_CAPI_EXT_ERR_NOT_FOUND);
    OK(nixl_capi_release_xfer_req(a, req));
    OK(nixl_capi_destroy_xfer_req(req));
    /* create_xfer_req folds every error into BACKEND, as upstream; the extension is precise. */
    CHECK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, l, r, "b", &req, NULL) ==
          NIXL_CAPI_ERROR_BACKEND);
    CHECK(nixl_capi_ext_last_status() == NIXL_CAPI_EXT_ERR_NOT_FOUND);
    CHECK(strlen(nixl_capi_ext_last_error_message()) > 0);
    free(exchange_md(b, a));
    OK(nixl_capi_check_remote_md(a, "b", r));
    OK(nixl_capi_destroy_xfer_dlist(l));
    OK(nixl_capi_destroy_xfer_dlist(r));
}

static void outside_registration_and_garbage(nixl_capi_agent_t a) {
    /* A descriptor that runs past the registered buffer. */
    nixl_capi_xfer_dlist_t l = whole(src, sizeof src + 1), r = whole(dst, sizeof dst + 1);
    nixl_capi_xfer_req_t req = NULL;
    CHECK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, l, r, "b", &req, NULL) ==
          NIXL_CAPI_ERROR_BACKEND);
    nixl_capi_xfer_dlist_handle_t h = NULL;
    CHECK(nixl_capi_prep_xfer_dlist(a, "b", r, &h, NULL) == NIXL_CAPI_ERROR_NOT_FOUND);
    OK(nixl_capi_destroy_xfer_dlist(l));
    OK(nixl_capi_destroy_xfer_dlist(r));

    /* Garbage and truncated metadata. */
    unsigned char junk[256];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 77 + 5);
    char *name = NULL;
    CHECK(nixl_capi_load_remote_md(a, junk, sizeof junk, &name) != NIXL_CAPI_SUCCESS);
    CHECK(name == NULL);
    void *md = NULL;
    size_t len = 0;
    OK(nixl_capi_get_local_md(a, &md, &len));
    for (size_t cut = 0; cut < len; cut += 1 + len / 16) {
        CHECK(nixl_capi_load_remote_md(a, md, cut, &name) != NIXL_CAPI_SUCCESS);
    }
    /* Its own metadata is refused. */
    CHECK(nixl_capi_load_remote_md(a, md, len, &name) == NIXL_CAPI_ERROR_INVALID_PARAM);
    free(md);
}

static void null_everywhere(nixl_capi_agent_t a) {
    const nixl_capi_status_t E = NIXL_CAPI_ERROR_INVALID_PARAM;
    nixl_capi_agent_t ag = NULL;
    nixl_capi_agent_config_t cfg = {0};
    nixl_capi_reg_dlist_t reg = NULL;
    nixl_capi_xfer_dlist_t xl = NULL;
    nixl_capi_opt_args_t opt = NULL;
    nixl_capi_params_t params = NULL;
    nixl_capi_mem_list_t mems = NULL;
    nixl_capi_string_list_t strs = NULL;
    nixl_capi_notif_map_t map = NULL;
    nixl_capi_query_resp_list_t resp = NULL;
    nixl_capi_param_iter_t it = NULL;
    nixl_capi_backend_t be = NULL;
    nixl_capi_remote_dlist_t rl = NULL;
    nixl_capi_mem_view_t mv = NULL;
    void *data = NULL;
    size_t n = 0;
    bool flag = false;
    const char *s = NULL;
    char *name = NULL;

    CHECK(nixl_capi_create_agent(NULL, &ag) == E);
    CHECK(nixl_capi_create_agent("x", NULL) == E);
    CHECK(nixl_capi_create_agent("", &ag) != NIXL_CAPI_SUCCESS);
    CHECK(nixl_capi_create_configured_agent("x", NULL, &ag) == E);
    CHECK(nixl_capi_create_configured_agent("x", &cfg, NULL) == E);
    CHECK(nixl_capi_destroy_agent(NULL) == E);
    CHECK(nixl_capi_get_local_md(NULL, &data, &n) == E);
    CHECK(nixl_capi_get_local_md(a, NULL, &n) == E);
    CHECK(nixl_capi_get_local_md(a, &data, NULL) == E);
    CHECK(nixl_capi_get_local_partial_md(a, NULL, &data, &n, NULL) == E);
    CHECK(nixl_capi_load_remote_md(a, NULL, 10, &name) == E);
    CHECK(nixl_capi_load_remote_md(a, "x", 0, &name) == E);
    CHECK(nixl_capi_load_remote_md(a, "x", 1, NULL) == E);
    CHECK(nixl_capi_invalidate_remote_md(a, NULL) == E);
    CHECK(nixl_capi_invalidate_local_md(NULL, NULL) == E);
    CHECK(nixl_capi_check_remote_md(a, NULL, NULL) == E);
    CHECK(nixl_capi_send_local_md(NULL, NULL) == E);
    CHECK(nixl_capi_send_local_partial_md(a, NULL, NULL) == E);
    CHECK(nixl_capi_fetch_remote_md(a, NULL, NULL) == E);
    CHECK(nixl_capi_get_available_plugins(a, NULL) == E);
    CHECK(nixl_capi_destroy_string_list(NULL) == E);
    CHECK(nixl_capi_string_list_size(NULL, &n) == E);
    CHECK(nixl_capi_string_list_get(NULL, 0, &s) == E);
    CHECK(nixl_capi_get_plugin_params(a, NULL, &mems, &params) == E);
    CHECK(nixl_capi_get_plugin_params(a, "UCX", NULL, &params) == E);
    CHECK(nixl_capi_get_plugin_params(a, "NO_SUCH_PLUGIN", &mems, &params) ==
          NIXL_CAPI_ERROR_BACKEND);
    CHECK(nixl_capi_ext_last_status() == NIXL_CAPI_EXT_ERR_NOT_FOUND);
    CHECK(nixl_capi_destroy_mem_list(NULL) == E);
    CHECK(nixl_capi_destroy_params(NULL) == E);
    CHECK(nixl_capi_create_backend(a, "UCX", NULL, &be) == E);
    CHECK(nixl_capi_destroy_backend(NULL) == E);
    CHECK(nixl_capi_get_backend_params(a, NULL, &mems, &params) == E);
    CHECK(nixl_capi_create_opt_args(NULL) == E);
    CHECK(nixl_capi_destroy_opt_args(NULL) == E);
    CHECK(nixl_capi_opt_args_add_backend(NULL, NULL) == E);
    CHECK(nixl_capi_opt_args_set_notif_msg(NULL, "x", 1) == E);
    CHECK(nixl_capi_opt_args_get_notif_msg(NULL, &data, &n) == E);
    CHECK(nixl_capi_opt_args_set_custom_param(NULL, "x", 1) == E);
    CHECK(nixl_capi_opt_args_get_custom_param(NULL, &data, &n) == E);
    CHECK(nixl_capi_opt_args_set_has_notif(NULL, true) == E);
    CHECK(nixl_capi_opt_args_get_has_notif(NULL, &flag) == E);
    CHECK(nixl_capi_opt_args_set_skip_desc_merge(NULL, true) == E);
    CHECK(nixl_capi_opt_args_get_skip_desc_merge(NULL, &flag) == E);
    CHECK(nixl_capi_opt_args_set_ip_addr(NULL, "1.2.3.4") == E);
    CHECK(nixl_capi_opt_args_set_port(NULL, 1) == E);
    CHECK(nixl_capi_create_params(NULL) == E);
    CHECK(nixl_capi_params_add(NULL, "k", "v") == E);
    CHECK(nixl_capi_params_is_empty(NULL, &flag) == E);
    CHECK(nixl_capi_params_create_iterator(NULL, &it) == E);
    CHECK(nixl_capi_params_iterator_next(NULL, &s, &s, &flag) == E);
    CHECK(nixl_capi_params_destroy_iterator(NULL) == E);
    CHECK(nixl_capi_mem_list_is_empty(NULL, &flag) == E);
    CHECK(nixl_capi_mem_list_size(NULL, &n) == E);
    CHECK(nixl_capi_mem_list_get(NULL, 0, NULL) == E);
    CHECK(nixl_capi_mem_type_to_string(NIXL_CAPI_MEM_DRAM, NULL) == E);
    CHECK(nixl_capi_mem_type_to_string((nixl_capi_mem_type_t)99, &s) == E);
    CHECK(nixl_capi_register_mem(a, NULL, NULL) == E);
    CHECK(nixl_capi_deregister_mem(a, NULL, NULL) == E);
    CHECK(nixl_capi_agent_make_connection(a, NULL, NULL) == E);
    CHECK(nixl_capi_prep_xfer_dlist(a, NULL, NULL, NULL, NULL) == E);
    CHECK(nixl_capi_release_xfer_dlist_handle(a, NULL) == E);
    CHECK(nixl_capi_get_notifs(a, NULL, NULL) == E);
    CHECK(nixl_capi_create_notif_map(NULL) == E);
    CHECK(nixl_capi_destroy_notif_map(NULL) == E);
    CHECK(nixl_capi_gen_notif(a, NULL, "x", 1, NULL) == E);
    CHECK(nixl_capi_gen_notif(a, "b", NULL, 1, NULL) == E);
    CHECK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, NULL, NULL, "b", NULL, NULL) == E);
    CHECK(nixl_capi_estimate_xfer_cost(a, NULL, NULL, NULL, NULL, NULL) == E);
    CHECK(nixl_capi_post_xfer_req(a, NULL, NULL) == E);
    CHECK(nixl_capi_get_xfer_status(a, NULL) == E);
    CHECK(nixl_capi_wait_xfer_req(a, NULL, 0) == E);
    CHECK(nixl_capi_wait_xfer_req(NULL, NULL, 0) == E);
    CHECK(nixl_capi_wait_notifs(NULL, 0) == E);
    CHECK(nixl_capi_query_xfer_backend(a, NULL, &be) == E);
    CHECK(nixl_capi_release_xfer_req(a, NULL) == E);
    CHECK(nixl_capi_destroy_xfer_req(NULL) == E);
    CHECK(nixl_capi_get_xfer_telemetry(a, NULL, NULL) == E);
    CHECK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_DRAM, NULL) == E);
    CHECK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_UNKNOWN, &xl) == E);
    CHECK(nixl_capi_destroy_xfer_dlist(NULL) == E);
    CHECK(nixl_capi_xfer_dlist_get_type(NULL, NULL) == E);
    CHECK(nixl_capi_xfer_dlist_add_desc(NULL, 0, 0, 0) == E);
    CHECK(nixl_capi_xfer_dlist_desc_count(NULL, &n) == E);
    CHECK(nixl_capi_xfer_dlist_len(NULL, &n) == E);
    CHECK(nixl_capi_xfer_dlist_is_empty(NULL, &flag) == E);
    CHECK(nixl_capi_xfer_dlist_trim(NULL) == E);
    CHECK(nixl_capi_xfer_dlist_rem_desc(NULL, 0) == E);
    CHECK(nixl_capi_xfer_dlist_clear(NULL) == E);
    CHECK(nixl_capi_xfer_dlist_resize(NULL, 1) == E);
    CHECK(nixl_capi_xfer_dlist_print(NULL) == E);
    CHECK(nixl_capi_create_reg_dlist(NIXL_CAPI_MEM_DRAM, NULL) == E);
    CHECK(nixl_capi_destroy_reg_dlist(NULL) == E);
    CHECK(nixl_capi_reg_dlist_get_type(NULL, NULL) == E);
    CHECK(nixl_capi_reg_dlist_add_desc(NULL, 0, 0, 0, NULL, 0) == E);
    CHECK(nixl_capi_reg_dlist_desc_count(NULL, &n) == E);
    CHECK(nixl_capi_reg_dlist_is_empty(NULL, &flag) == E);
    CHECK(nixl_capi_reg_dlist_trim(NULL) == E);
    CHECK(nixl_capi_reg_dlist_rem_desc(NULL, 0) == E);
    CHECK(nixl_capi_reg_dlist_clear(NULL) == E);
    CHECK(nixl_capi_reg_dlist_resize(NULL, 1) == E);
    CHECK(nixl_capi_reg_dlist_print(NULL) == E);
    CHECK(nixl_capi_notif_map_size(NULL, &n) == E);
    CHECK(nixl_capi_notif_map_get_agent_at(NULL, 0, &s) == E);
    CHECK(nixl_capi_notif_map_get_notifs_size(NULL, "a", &n) == E);
    CHECK(nixl_capi_notif_map_get_notif(NULL, "a", 0, (const void **)&data, &n) == E);
    CHECK(nixl_capi_notif_map_clear(NULL) == E);
    CHECK(nixl_capi_create_query_resp_list(NULL) == E);
    CHECK(nixl_capi_destroy_query_resp_list(NULL) == E);
    CHECK(nixl_capi_query_resp_list_size(NULL, &n) == E);
    CHECK(nixl_capi_query_resp_list_has_value(NULL, 0, &flag) == E);
    CHECK(nixl_capi_query_resp_list_get_params(NULL, 0, &params) == E);
    CHECK(nixl_capi_query_mem(a, NULL, NULL, NULL) == E);
    CHECK(nixl_capi_prep_mem_view_local(a, NULL, &mv, NULL) == E);
    CHECK(nixl_capi_prep_mem_view_remote(a, NULL, &mv, NULL) == E);
    CHECK(nixl_capi_create_remote_dlist(NIXL_CAPI_MEM_DRAM, NULL) == E);
    CHECK(nixl_capi_destroy_remote_dlist(NULL) == E);
    CHECK(nixl_capi_remote_dlist_add_desc(NULL, 0, 0, 0, "b") == E);
    CHECK(nixl_capi_release_mem_view(a, NULL) == E);

    /* With live handles: NULL outputs and out-of-range indices. */
    OK(nixl_capi_create_reg_dlist(NIXL_CAPI_MEM_DRAM, &reg));
    CHECK(nixl_capi_reg_dlist_add_desc(reg, 0, 1, 0, NULL, 4) == E);
    CHECK(nixl_capi_reg_dlist_rem_desc(reg, 3) == NIXL_CAPI_ERROR_BACKEND);
    CHECK(nixl_capi_register_mem(a, reg, NULL) == E); /* empty list */
    OK(nixl_capi_reg_dlist_add_desc(reg, (uintptr_t)src, 16, 0, NULL, 0));
    CHECK(nixl_capi_deregister_mem(a, reg, NULL) == NIXL_CAPI_ERROR_NOT_FOUND);
    OK(nixl_capi_destroy_reg_dlist(reg));
    OK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_DRAM, &xl));
    CHECK(nixl_capi_xfer_dlist_desc_count(xl, NULL) == E);
    OK(nixl_capi_destroy_xfer_dlist(xl));
    OK(nixl_capi_create_notif_map(&map));
    CHECK(nixl_capi_notif_map_get_agent_at(map, 0, &s) == E);
    CHECK(nixl_capi_notif_map_get_notifs_size(map, "nobody", &n) == E);
    OK(nixl_capi_destroy_notif_map(map));
    OK(nixl_capi_create_query_resp_list(&resp));
    CHECK(nixl_capi_query_resp_list_has_value(resp, 0, &flag) == E);
    CHECK(nixl_capi_query_mem(a, NULL, resp, NULL) == E);
    OK(nixl_capi_destroy_query_resp_list(resp));
    OK(nixl_capi_create_remote_dlist(NIXL_CAPI_MEM_DRAM, &rl));
    OK(nixl_capi_remote_dlist_add_desc(rl, 0, 1, 0, NULL));
    CHECK(nixl_capi_prep_mem_view_remote(a, rl, &mv, NULL) == NIXL_CAPI_ERROR_BACKEND);
    CHECK(nixl_capi_ext_last_status() == NIXL_CAPI_EXT_ERR_NOT_SUPPORTED);
    OK(nixl_capi_destroy_remote_dlist(rl));
    OK(nixl_capi_get_available_plugins(a, &strs));
    CHECK(nixl_capi_string_list_get(strs, 100, &s) == E);
    OK(nixl_capi_destroy_string_list(strs));
    OK(nixl_capi_create_opt_args(&opt));
    OK(nixl_capi_opt_args_get_notif_msg(opt, &data, &n));
    CHECK(data == NULL && n == 0);
    OK(nixl_capi_opt_args_set_custom_param(opt, "cp", 2));
    OK(nixl_capi_opt_args_get_custom_param(opt, &data, &n));
    CHECK(n == 2 && memcmp(data, "cp", 2) == 0);
    free(data);
    OK(nixl_capi_destroy_opt_args(opt));
    CHECK(!nixl_capi_is_stub());
}

static void posix_files(void) {
    nixl_capi_agent_t a = NULL;
    nixl_capi_mem_list_t mems = NULL;
    nixl_capi_params_t params = NULL;
    nixl_capi_backend_t posix = NULL;
    OK(nixl_capi_create_agent("files", &a));
    OK(nixl_capi_get_plugin_params(a, "POSIX", &mems, &params));
    OK(nixl_capi_create_backend(a, "POSIX", params, &posix));
    OK(nixl_capi_destroy_mem_list(mems));
    OK(nixl_capi_destroy_params(params));

    char path[] = "/tmp/nixl-ffi-c-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    fill(src, sizeof src, 5);
    memset(dst, 0, sizeof dst);
    register_dram(a, src, sizeof src);
    register_dram(a, dst, sizeof dst);
    nixl_capi_reg_dlist_t freg = NULL;
    OK(nixl_capi_create_reg_dlist(NIXL_CAPI_MEM_FILE, &freg));
    OK(nixl_capi_reg_dlist_add_desc(freg, 0, 0, (uint64_t)fd, path, strlen(path)));
    OK(nixl_capi_register_mem(a, freg, NULL));

    nixl_capi_xfer_dlist_t file = NULL;
    OK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_FILE, &file));
    OK(nixl_capi_xfer_dlist_add_desc(file, 0, sizeof src, (uint64_t)fd));
    nixl_capi_xfer_dlist_t l = whole(src, sizeof src), r = whole(dst, sizeof dst);
    nixl_capi_xfer_req_t req = NULL;
    OK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_WRITE, l, file, "files", &req, NULL));
    nixl_capi_status_t st = nixl_capi_post_xfer_req(a, req, NULL);
    CHECK(wait_xfer(a, req, st) == NIXL_CAPI_SUCCESS);
    OK(nixl_capi_release_xfer_req(a, req));
    OK(nixl_capi_destroy_xfer_req(req));
    OK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_READ, r, file, "files", &req, NULL));
    st = nixl_capi_post_xfer_req(a, req, NULL);
    CHECK(wait_xfer(a, req, st) == NIXL_CAPI_SUCCESS);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    OK(nixl_capi_release_xfer_req(a, req));
    OK(nixl_capi_destroy_xfer_req(req));

    /* Reading past the end of the file fails the request: no silent truncation. */
    OK(nixl_capi_xfer_dlist_clear(file));
    OK(nixl_capi_xfer_dlist_add_desc(file, sizeof src / 2, sizeof src, (uint64_t)fd));
    OK(nixl_capi_create_xfer_req(a, NIXL_CAPI_XFER_OP_READ, r, file, "files", &req, NULL));
    st = nixl_capi_post_xfer_req(a, req, NULL);
    CHECK(wait_xfer(a, req, st) == NIXL_CAPI_ERROR_BACKEND);
    CHECK(strstr(nixl_capi_ext_last_error_message(), "short read") != NULL);
    OK(nixl_capi_release_xfer_req(a, req));
    OK(nixl_capi_destroy_xfer_req(req));

    /* query_mem: the file exists with its size; a missing path has no value. */
    nixl_capi_reg_dlist_t q = NULL;
    OK(nixl_capi_create_reg_dlist(NIXL_CAPI_MEM_FILE, &q));
    OK(nixl_capi_reg_dlist_add_desc(q, 0, 0, 0, path, strlen(path)));
    OK(nixl_capi_reg_dlist_add_desc(q, 0, 0, 0, "/nonexistent/x", 14));
    nixl_capi_opt_args_t opt = NULL;
    OK(nixl_capi_create_opt_args(&opt));
    OK(nixl_capi_opt_args_add_backend(opt, posix));
    nixl_capi_query_resp_list_t resp = NULL;
    OK(nixl_capi_create_query_resp_list(&resp));
    OK(nixl_capi_query_mem(a, q, resp, opt));
    size_t n = 0;
    bool has = false;
    OK(nixl_capi_query_resp_list_size(resp, &n));
    CHECK(n == 2);
    OK(nixl_capi_query_resp_list_has_value(resp, 1, &has));
    CHECK(!has);
    nixl_capi_params_t info = NULL;
    OK(nixl_capi_query_resp_list_get_params(resp, 0, &info));
    nixl_capi_param_iter_t it = NULL;
    OK(nixl_capi_params_create_iterator(info, &it));
    bool more = true, saw_size = false;
    while (more) {
        const char *k = NULL, *v = NULL;
        OK(nixl_capi_params_iterator_next(it, &k, &v, &more));
        if (k && strcmp(k, "size") == 0) {
            saw_size = true;
            CHECK(strtoull(v, NULL, 10) == sizeof src);
        }
    }
    CHECK(saw_size);
    OK(nixl_capi_params_destroy_iterator(it));
    OK(nixl_capi_destroy_params(info));
    OK(nixl_capi_destroy_query_resp_list(resp));
    OK(nixl_capi_destroy_opt_args(opt));
    OK(nixl_capi_destroy_reg_dlist(q));
    OK(nixl_capi_deregister_mem(a, freg, NULL));
    OK(nixl_capi_destroy_reg_dlist(freg));
    OK(nixl_capi_destroy_xfer_dlist(file));
    OK(nixl_capi_destroy_xfer_dlist(l));
    OK(nixl_capi_destroy_xfer_dlist(r));
    OK(nixl_capi_destroy_backend(posix));
    OK(nixl_capi_destroy_agent(a));
    close(fd);
    unlink(path);
}

int main(void) {
    nixl_capi_backend_t ba = NULL, bb = NULL;
    nixl_capi_agent_t a = make_agent("a", &ba);
    nixl_capi_agent_t b = make_agent("b", &bb);
    register_dram(a, src, sizeof src);
    register_dram(b, dst, sizeof dst);
    char *name = exchange_md(b, a);
    CHECK(strcmp(name, "b") == 0);
    free(name);
    free(exchange_md(a, b));
    OK(nixl_capi_agent_make_connection(a, "b", NULL));

    write_with_notif_and_read(a, b);
    prepped_shuffled(a);
    gen_notif_and_invalidate(a, b);
    outside_registration_and_garbage(a);
    null_everywhere(a);
    posix_files();

    OK(nixl_capi_destroy_backend(ba));
    OK(nixl_capi_destroy_backend(bb));
    OK(nixl_capi_destroy_agent(a));
    OK(nixl_capi_destroy_agent(b));
    printf("test_agents: ok\n");
    return 0;
}
