/*
 * rma_bw: libfabric's own RMA bandwidth between two processes on one provider — the limit the
 * LIBFABRIC backend is compared against (fabtests' fi_rma_bw is not packaged by Debian).
 *
 *   rma_bw [-p PROVIDER] [-o write|read] [-s 4K,64K,1M,16M] [-t TOTAL] [-b BUF] [-w WINDOW]
 *          [-D] [-W] [-R REQUEST] [-T] [-i PIECES] [-I]
 *
 * The process forks: the child is the target (registers BUF bytes, progresses its completion
 * queue until told to stop), the parent the initiator (keeps up to WINDOW RMAs of one size in
 * flight over a BUF-byte buffer until TOTAL bytes moved, after one warm-up window).
 * -D posts writes with FI_DELIVERY_COMPLETE (what the backend uses); -W reads completions with
 * fi_cq_sread (a sleeping waiter, as the backend's progress thread) instead of polling.
 * Endpoint and registration hints are the backend's (RDM, FI_MSG|FI_RMA, FI_MR_LOCAL,
 * FI_MR_VIRT_ADDR, FI_MR_ALLOCATED, FI_MR_PROV_KEY).
 * The pattern nixlbench gives the backend, for "the limit of the same pattern":
 * -R REQUEST posts RMAs in requests of REQUEST bytes and waits for all of a request's RMAs
 * before posting the next one (default: a continuous stream); -T reads completions in a second
 * thread (a progress thread: sleeping in fi_cq_sread with -W) while the posting thread sleeps on
 * a condition variable until it may post again, as the backend's caller waits; -i PIECES puts
 * PIECES blocks of SIZE (separate iovec entries) in each RMA, as the backend's max_iov does;
 * -I: with -W, the initiator polls its completion queue while the target still sleeps in
 * fi_cq_sread (what a backend can do: only the initiator knows that transfers are in flight).
 * One line per size:
 *   provider=tcp;ofi_rxm op=write size=1048576 bytes=... secs=... gbps=...
 * (gbps: 10^9 bytes per second.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                                     \
    do {                                                                                \
        int rc_ = (int)(call);                                                          \
        if (rc_) {                                                                      \
            fprintf(stderr, "rma_bw: %s: %s\n", #call, fi_strerror(-rc_));             \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

struct stack {
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_cq *cq;
    struct fid_av *av;
    struct fid_ep *ep;
    struct fid_mr *mr;
    char *buf;
    size_t buf_len;
    char name[256];
    size_t name_len;
    int waiting;
};

/* What the target tells the initiator. */
struct hello {
    uint64_t key;
    uint64_t base;
    uint64_t name_len;
    char name[256];
};

static size_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'K': case 'k': v *= 1024; break;
    case 'M': case 'm': v *= 1024 * 1024; break;
    case 'G': case 'g': v *= 1024.0 * 1024 * 1024; break;
    default: break;
    }
    return (size_t)v;
}

static void open_stack(struct stack *s, const char *provider, size_t buf_len, int waiting) {
    struct fi_info *hints = fi_allocinfo();
    hints->caps = FI_MSG | FI_RMA;
    hints->mode = FI_CONTEXT | FI_CONTEXT2;
    hints->ep_attr->type = FI_EP_RDM;
    hints->domain_attr->threading = FI_THREAD_SAFE;
    hints->domain_attr->av_type = FI_AV_TABLE;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
    if (provider)
        hints->fabric_attr->prov_name = strdup(provider);
    CHECK(fi_getinfo(FI_VERSION(1, 17), NULL, NULL, 0, hints, &s->info));
    fi_freeinfo(hints);
    CHECK(fi_fabric(s->info->fabric_attr, &s->fabric, NULL));
    CHECK(fi_domain(s->fabric, s->info, &s->domain, NULL));
    struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_DATA,
                                 .wait_obj = waiting ? FI_WAIT_UNSPEC : FI_WAIT_NONE};
    CHECK(fi_cq_open(s->domain, &cq_attr, &s->cq, NULL));
    s->waiting = waiting;
    struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
    CHECK(fi_av_open(s->domain, &av_attr, &s->av, NULL));
    CHECK(fi_endpoint(s->domain, s->info, &s->ep, NULL));
    CHECK(fi_ep_bind(s->ep, &s->av->fid, 0));
    CHECK(fi_ep_bind(s->ep, &s->cq->fid, FI_TRANSMIT | FI_RECV));
    CHECK(fi_enable(s->ep));
    s->name_len = sizeof s->name;
    CHECK(fi_getname(&s->ep->fid, s->name, &s->name_len));
    s->buf_len = buf_len;
    s->buf = mmap(NULL, buf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->buf == MAP_FAILED) {
        perror("rma_bw: mmap");
        exit(1);
    }
    memset(s->buf, 0x5a, buf_len);
    CHECK(fi_mr_reg(s->domain, s->buf, buf_len,
                    FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE, 0, 0, 0, &s->mr, NULL));
}

static void close_stack(struct stack *s) {
    fi_close(&s->mr->fid);
    fi_close(&s->ep->fid);
    fi_close(&s->av->fid);
    fi_close(&s->cq->fid);
    fi_close(&s->domain->fid);
    fi_close(&s->fabric->fid);
    fi_freeinfo(s->info);
    munmap(s->buf, s->buf_len);
}

static void full_write(int fd, const void *p, size_t n) {
    if (write(fd, p, n) != (ssize_t)n) {
        perror("rma_bw: write");
        exit(1);
    }
}

static void full_read(int fd, void *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0) {
            fprintf(stderr, "rma_bw: the other process went away\n");
            exit(1);
        }
        got += (size_t)r;
    }
}

/* Reads completions: returns how many came (0..max), exits on an error completion. Their
 * contexts go back on `free_ctx` (completions may come out of order) when it is given. */
static int reap(struct stack *s, int max, void **free_ctx, int *free_n) {
    struct fi_cq_data_entry e[64];
    if (max > 64)
        max = 64;
    if (max < 1)
        max = 1;
    ssize_t n = s->waiting ? fi_cq_sread(s->cq, e, (size_t)max, NULL, 100)
                           : fi_cq_read(s->cq, e, (size_t)max);
    if (n > 0) {
        for (ssize_t i = 0; free_ctx && i < n; i++)
            free_ctx[(*free_n)++] = e[i].op_context;
        return (int)n;
    }
    if (n == -FI_EAVAIL) {
        struct fi_cq_err_entry err = {0};
        fi_cq_readerr(s->cq, &err, 0);
        fprintf(stderr, "rma_bw: completion error: %s\n", fi_strerror(err.err));
        exit(1);
    }
    return 0;
}

/* -T: a second thread reads the completions and hands the contexts back to the poster. */
struct prog {
    struct stack *s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void **free_ctx;
    int free_n;
    size_t done;
    int stop;
};

static void *progress_main(void *arg) {
    struct prog *p = arg;
    void *got[64];
    for (;;) {
        int n_got = 0;
        int n = reap(p->s, 64, got, &n_got);
        pthread_mutex_lock(&p->lock);
        for (int i = 0; i < n; i++)
            p->free_ctx[p->free_n++] = got[i];
        p->done += (size_t)n;
        int stop = p->stop;
        if (n)
            pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
    }
}

static void target(int sock, const char *provider, size_t buf_len, int waiting) {
    struct stack s = {0};
    open_stack(&s, provider, buf_len, waiting);
    struct hello h = {.key = fi_mr_key(s.mr), .base = (uint64_t)(uintptr_t)s.buf,
                      .name_len = s.name_len};
    memcpy(h.name, s.name, s.name_len);
    full_write(sock, &h, sizeof h);
    char peer[256];
    uint64_t peer_len;
    full_read(sock, &peer_len, sizeof peer_len);
    full_read(sock, peer, peer_len);
    fi_addr_t addr;
    if (fi_av_insert(s.av, peer, 1, &addr, 0, NULL) != 1) {
        fprintf(stderr, "rma_bw: target: fi_av_insert failed\n");
        exit(1);
    }
    /* Progress until the initiator says it is done (or goes away). */
    struct pollfd p = {.fd = sock, .events = POLLIN};
    for (;;) {
        reap(&s, 64, NULL, NULL);
        if (poll(&p, 1, 0) > 0)
            break;
    }
    close_stack(&s);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Posts one RMA of `pieces` blocks of `size` starting at block `first`; returns the code. */
static ssize_t post_one(struct stack *s, int write_op, int delivery, fi_addr_t peer,
                        uint64_t remote_base, uint64_t key, void *desc, size_t first,
                        size_t slots, size_t size, int pieces, void *ctx) {
    struct iovec iov[4];
    struct fi_rma_iov rma[4];
    void *d[4];
    for (int j = 0; j < pieces; j++) {
        size_t slot = (first + (size_t)j) % slots;
        iov[j] = (struct iovec){.iov_base = s->buf + slot * size, .iov_len = size};
        rma[j] = (struct fi_rma_iov){.addr = remote_base + slot * size, .len = size, .key = key};
        d[j] = desc;
    }
    struct fi_msg_rma msg = {.msg_iov = iov, .desc = d, .iov_count = (size_t)pieces,
                             .addr = peer, .rma_iov = rma, .rma_iov_count = (size_t)pieces,
                             .context = ctx};
    return write_op ? fi_writemsg(s->ep, &msg,
                                  FI_COMPLETION | (delivery ? FI_DELIVERY_COMPLETE : 0))
                    : fi_readmsg(s->ep, &msg, FI_COMPLETION);
}

static void initiator(int sock, const char *provider, const char *op, const char *sizes,
                      size_t total, size_t buf_len, int window_max, int delivery, int waiting,
                      size_t request, int threaded, int pieces) {
    struct stack s = {0};
    open_stack(&s, provider, buf_len, waiting);
    struct hello h;
    full_read(sock, &h, sizeof h);
    uint64_t len = s.name_len;
    full_write(sock, &len, sizeof len);
    full_write(sock, s.name, s.name_len);
    fi_addr_t peer;
    if (fi_av_insert(s.av, h.name, 1, &peer, 0, NULL) != 1) {
        fprintf(stderr, "rma_bw: initiator: fi_av_insert failed\n");
        exit(1);
    }
    int write_op = strcmp(op, "write") == 0;
    uint64_t remote_base = (s.info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) ? h.base : 0;
    void *desc = fi_mr_desc(s.mr);
    struct fi_context2 *ctx = calloc((size_t)window_max, sizeof *ctx);
    void **free_ctx = calloc((size_t)window_max, sizeof *free_ctx);
    char *list = strdup(sizes);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        size_t size = parse_size(tok);
        if (size == 0 || size > buf_len) {
            fprintf(stderr, "rma_bw: size %s must be in 1..%zu\n", tok, buf_len);
            exit(2);
        }
        size_t slots = buf_len / size;
        size_t op_bytes = size * (size_t)pieces;
        int window = slots / (size_t)pieces < (size_t)window_max ? (int)(slots / (size_t)pieces)
                                                                 : window_max;
        if (window < 1) {
            fprintf(stderr, "rma_bw: %d pieces of %s do not fit the buffer\n", pieces, tok);
            exit(2);
        }
        size_t ops = total / op_bytes;
        if (ops < (size_t)window)
            ops = (size_t)window;
        /* RMAs per request (-R): the poster waits for all of them before the next request. */
        size_t per_req = request ? request / op_bytes : 0;
        if (request && per_req == 0)
            per_req = 1;
        /* A warm-up window (connection set-up, page faults), then the timed run. */
        for (int pass = 0; pass < 2; pass++) {
            size_t n = pass == 0 ? (size_t)window : ops;
            size_t posted = 0, done = 0;
            int free_n = window;
            for (int i = 0; i < window; i++)
                free_ctx[i] = &ctx[i];
            struct prog p = {.s = &s, .free_ctx = free_ctx, .free_n = window};
            pthread_t thread;
            if (threaded) {
                pthread_mutex_init(&p.lock, NULL);
                pthread_cond_init(&p.cond, NULL);
                if (pthread_create(&thread, NULL, progress_main, &p)) {
                    fprintf(stderr, "rma_bw: pthread_create failed\n");
                    exit(1);
                }
            }
            double t0 = now();
            if (threaded) {
                while (posted < n) {
                    pthread_mutex_lock(&p.lock);
                    while (p.free_n == 0 ||
                           (per_req && posted % per_req == 0 && p.done < posted))
                        pthread_cond_wait(&p.cond, &p.lock);
                    void *c = p.free_ctx[--p.free_n];
                    pthread_mutex_unlock(&p.lock);
                    ssize_t rc;
                    while ((rc = post_one(&s, write_op, delivery, peer, remote_base, h.key,
                                          desc, posted * (size_t)pieces, slots, size, pieces,
                                          c)) == -FI_EAGAIN)
                        sched_yield();
                    if (rc) {
                        fprintf(stderr, "rma_bw: post: %s\n", fi_strerror((int)-rc));
                        exit(1);
                    }
                    posted++;
                }
                pthread_mutex_lock(&p.lock);
                while (p.done < n)
                    pthread_cond_wait(&p.cond, &p.lock);
                p.stop = 1;
                pthread_mutex_unlock(&p.lock);
            } else {
                while (done < n) {
                    while (posted < n && free_n > 0 &&
                           !(per_req && posted % per_req == 0 && done < posted)) {
                        ssize_t rc = post_one(&s, write_op, delivery, peer, remote_base, h.key,
                                              desc, posted * (size_t)pieces, slots, size,
                                              pieces, free_ctx[free_n - 1]);
                        if (rc == -FI_EAGAIN)
                            break;
                        if (rc) {
                            fprintf(stderr, "rma_bw: post: %s\n", fi_strerror((int)-rc));
                            exit(1);
                        }
                        free_n--;
                        posted++;
                    }
                    done += (size_t)reap(&s, (int)(posted - done), free_ctx, &free_n);
                }
            }
            double secs = now() - t0;
            if (threaded) {
                pthread_join(thread, NULL);
                pthread_mutex_destroy(&p.lock);
                pthread_cond_destroy(&p.cond);
            }
            if (pass == 1)
                printf("provider=%s op=%s%s size=%zu window=%d bytes=%zu secs=%.6f gbps=%.4f "
                       "cq=%s request=%zu thread=%d pieces=%d\n",
                       s.info->fabric_attr->prov_name, op,
                       write_op && delivery ? "-dc" : "", size, window, n * op_bytes, secs,
                       (double)(n * op_bytes) / secs / 1e9, waiting ? "sread" : "poll",
                       per_req * op_bytes, threaded, pieces);
        }
        fflush(stdout);
    }
    free(list);
    free(free_ctx);
    free(ctx);
    char bye = 0;
    full_write(sock, &bye, 1);
    close_stack(&s);
}

int main(int argc, char **argv) {
    const char *provider = getenv("FI_PROVIDER"), *op = "write", *sizes = "4K,64K,1M,16M";
    size_t total = 512u << 20, buf_len = 64u << 20;
    int window = 64, delivery = 0, waiting = 0, threaded = 0, pieces = 1, init_polls = 0, c;
    size_t request = 0;
    while ((c = getopt(argc, argv, "p:o:s:t:b:w:DWR:Ti:I")) != -1) {
        switch (c) {
        case 'p': provider = optarg; break;
        case 'o': op = optarg; break;
        case 's': sizes = optarg; break;
        case 't': total = parse_size(optarg); break;
        case 'b': buf_len = parse_size(optarg); break;
        case 'w': window = atoi(optarg); break;
        case 'D': delivery = 1; break;
        case 'W': waiting = 1; break;
        case 'R': request = parse_size(optarg); break;
        case 'T': threaded = 1; break;
        case 'i': pieces = atoi(optarg); break;
        case 'I': init_polls = 1; break;
        default:
            fprintf(stderr, "usage: rma_bw [-p provider] [-o write|read] [-s sizes] [-t total] "
                            "[-b buffer] [-w window] [-D] [-W] [-R request] [-T] [-i pieces] [-I]\n");
            return 2;
        }
    }
    if (strcmp(op, "write") && strcmp(op, "read")) {
        fprintf(stderr, "rma_bw: -o write or read\n");
        return 2;
    }
    if (pieces < 1 || pieces > 4) {
        fprintf(stderr, "rma_bw: -i 1..4\n");
        return 2;
    }
    if (window < 1 || window > 4096) {
        fprintf(stderr, "rma_bw: -w 1..4096\n");
        return 2;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        perror("rma_bw: socketpair");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("rma_bw: fork");
        return 1;
    }
    if (child == 0) {
        close(sv[0]);
        target(sv[1], provider, buf_len, waiting);
        _exit(0);
    }
    close(sv[1]);
    initiator(sv[0], provider, op, sizes, total, buf_len, window, delivery,
              waiting && !init_polls, request,
              threaded, pieces);
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
