/* Two processes on one host through the C API (fork): WRITE, READ and gen_notif across
 * processes, then a peer that dies (SIGKILL) while loaded: transfers to it must fail with an
 * error (REMOTE_DISCONNECT in the extension), not hang or crash. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

enum { LEN = 1 << 20 };

static void write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        CHECK(w > 0);
        c += w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, void *p, size_t n) {
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        CHECK(r > 0);
        c += r;
        n -= (size_t)r;
    }
}

/* Child side: an agent with one registered buffer; sends (addr, md) on `out`. */
static nixl_capi_agent_t child_publish(const char *name, unsigned char *buf, int out) {
    nixl_capi_backend_t be = NULL;
    nixl_capi_agent_t c = make_agent(name, &be);
    register_dram(c, buf, LEN);
    void *md = NULL;
    size_t len = 0;
    OK(nixl_capi_get_local_md(c, &md, &len));
    uintptr_t addr = (uintptr_t)buf;
    write_all(out, &addr, sizeof addr);
    write_all(out, &len, sizeof len);
    write_all(out, md, len);
    free(md);
    OK(nixl_capi_destroy_backend(be));
    return c;
}

/* Parent side: loads the child's metadata; returns the child's buffer address. */
static uintptr_t parent_load(nixl_capi_agent_t p, int in, const char *expect) {
    uintptr_t addr = 0;
    size_t len = 0;
    read_all(in, &addr, sizeof addr);
    read_all(in, &len, sizeof len);
    void *md = malloc(len);
    read_all(in, md, len);
    char *name = NULL;
    OK(nixl_capi_load_remote_md(p, md, len, &name));
    CHECK(strcmp(name, expect) == 0);
    free(name);
    free(md);
    return addr;
}

static nixl_capi_status_t transfer(nixl_capi_agent_t p, nixl_capi_xfer_op_t op, void *local,
                                   uintptr_t remote, const char *peer) {
    nixl_capi_xfer_dlist_t l = NULL, r = NULL;
    OK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_DRAM, &l));
    OK(nixl_capi_create_xfer_dlist(NIXL_CAPI_MEM_DRAM, &r));
    OK(nixl_capi_xfer_dlist_add_desc(l, (uintptr_t)local, LEN, 0));
    OK(nixl_capi_xfer_dlist_add_desc(r, remote, LEN, 0));
    nixl_capi_xfer_req_t req = NULL;
    nixl_capi_status_t st = nixl_capi_create_xfer_req(p, op, l, r, peer, &req, NULL);
    if (st == NIXL_CAPI_SUCCESS) {
        st = wait_xfer(p, req, nixl_capi_post_xfer_req(p, req, NULL));
        OK(nixl_capi_release_xfer_req(p, req));
        OK(nixl_capi_destroy_xfer_req(req));
    }
    OK(nixl_capi_destroy_xfer_dlist(l));
    OK(nixl_capi_destroy_xfer_dlist(r));
    return st;
}

static unsigned char mine[LEN], back[LEN];

typedef struct {
    pid_t pid;
    int from_child;
} child_t;

/* Forks a child that publishes an agent named `name`; `dies` makes it wait to be killed,
 * otherwise it waits for a "done" notification from "parent" and checks its buffer. */
static child_t spawn(const char *name, bool dies) {
    int to_parent[2];
    CHECK(pipe(to_parent) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* If the parent fails a CHECK and exits, do not linger (and keep the test harness's
         * output pipe open) forever. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(to_parent[0]);
        static unsigned char buf[LEN];
        nixl_capi_agent_t c = child_publish(name, buf, to_parent[1]);
        if (dies) {
            for (;;) pause(); /* until killed */
        }
        wait_notif(c, "parent", "done");
        for (size_t i = 0; i < LEN; i++) CHECK(buf[i] == (unsigned char)(i * 13 + 1));
        OK(nixl_capi_destroy_agent(c));
        _exit(0);
    }
    close(to_parent[1]);
    return (child_t){pid, to_parent[0]};
}

static void two_processes(child_t child) {
    pid_t pid = child.pid;
    int to_parent[1] = {child.from_child};
    nixl_capi_backend_t be = NULL;
    nixl_capi_agent_t p = make_agent("parent", &be);
    for (size_t i = 0; i < LEN; i++) mine[i] = (unsigned char)(i * 13 + 1);
    register_dram(p, mine, LEN);
    register_dram(p, back, LEN);
    uintptr_t remote = parent_load(p, to_parent[0], "child");
    CHECK(transfer(p, NIXL_CAPI_XFER_OP_WRITE, mine, remote, "child") == NIXL_CAPI_SUCCESS);
    CHECK(transfer(p, NIXL_CAPI_XFER_OP_READ, back, remote, "child") == NIXL_CAPI_SUCCESS);
    CHECK(memcmp(mine, back, LEN) == 0);
    OK(nixl_capi_gen_notif(p, "child", "done", 4, NULL));
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    OK(nixl_capi_destroy_backend(be));
    OK(nixl_capi_destroy_agent(p));
    close(to_parent[0]);
}

static void dead_peer(child_t child) {
    pid_t pid = child.pid;
    int to_parent[1] = {child.from_child};
    nixl_capi_backend_t be = NULL;
    nixl_capi_agent_t p = make_agent("survivor", &be);
    register_dram(p, mine, LEN);
    uintptr_t remote = parent_load(p, to_parent[0], "doomed");
    CHECK(kill(pid, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    double start = now_s();
    nixl_capi_status_t st = transfer(p, NIXL_CAPI_XFER_OP_WRITE, mine, remote, "doomed");
    printf("dead peer: status %d, %s: %s (%.2fs)\n", (int)st,
           nixl_capi_ext_status_name(nixl_capi_ext_last_status()),
           nixl_capi_ext_last_error_message(), now_s() - start);
    CHECK(st != NIXL_CAPI_SUCCESS && st != NIXL_CAPI_IN_PROG);
    CHECK(now_s() - start < 10);
    /* A notification to the dead peer fails too, and the agent keeps working. */
    CHECK(nixl_capi_gen_notif(p, "doomed", "x", 1, NULL) != NIXL_CAPI_SUCCESS);
    void *md = NULL;
    size_t len = 0;
    OK(nixl_capi_get_local_md(p, &md, &len));
    free(md);
    OK(nixl_capi_destroy_backend(be));
    OK(nixl_capi_destroy_agent(p));
    close(to_parent[0]);
}

int main(void) {
    /* The second child is forked after this process has had an agent: it must get a process
     * identity of its own, not its parent's cached one. (Its parent's agent is destroyed first,
     * so no library thread is running at the fork.) */
    child_t child = spawn("child", false);
    two_processes(child);
    child_t doomed = spawn("doomed", true);
    dead_peer(doomed);
    printf("test_procs: ok\n");
    return 0;
}
