// nixlAgent in one process: plugins and backends, registration, metadata blobs, ad-hoc and
// prepped transfers with notifications, telemetry, the peer listener, and NIXL's exact
// statuses for the failures engines branch on.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "util.h"

using test::dram_reg;
using test::dram_xfer;

namespace {

constexpr size_t kLen = 1 << 16;

void construction_and_backends() {
    bool threw = false;
    try {
        nixlAgent bad("", nixlAgentConfig(true));
    } catch (const std::invalid_argument &) {
        threw = true;
    }
    CHECK(threw);

    // Engines keep the agent in a shared_ptr (statuses hold weak_ptrs) and pass C strings.
    nixlAgentConfig cfg{true};
    auto shared = std::make_shared<nixlAgent>("plugins", std::move(cfg));
    nixlAgent &a = *shared;
    std::vector<nixl_backend_t> plugins;
    OK(a.getAvailPlugins(plugins));
    CHECK(std::find(plugins.begin(), plugins.end(), "UCX") != plugins.end());
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    CHECK_ST(a.getPluginParams("NO_SUCH_PLUGIN", mems, params), NIXL_ERR_NOT_FOUND);
    const std::string backend = "UCX";
    OK(a.getPluginParams(backend.c_str(), mems, params));
    CHECK(std::find(mems.begin(), mems.end(), DRAM_SEG) != mems.end());
    nixlBackendH *ucx = nullptr;
    OK(a.createBackend("UCX", params, ucx));
    nixlBackendH *again = nullptr;
    CHECK_ST(a.createBackend("UCX", params, again), NIXL_ERR_INVALID_PARAM); // one per type
    nixl_mem_list_t bmems;
    nixl_b_params_t bparams;
    OK(a.getBackendParams(ucx, bmems, bparams));
    CHECK(bmems == mems);
}

// Two agents in one process: "A" initiates, "B" is the target.
struct Pair {
    std::unique_ptr<nixlAgent> a, b;
    nixlBackendH *a_ucx = nullptr;
    std::vector<unsigned char> a_buf = std::vector<unsigned char>(kLen), b_buf = std::vector<unsigned char>(kLen);

    explicit Pair(const nixlAgentConfig &cfg = nixlAgentConfig(true)) {
        a = test::make_agent("A", &a_ucx, cfg);
        b = test::make_agent("B");
        OK(a->registerMem(dram_reg(a_buf.data(), kLen)));
        OK(b->registerMem(dram_reg(b_buf.data(), kLen)));
        CHECK_ST(a->checkRemoteMD("B", nixl_xfer_dlist_t(DRAM_SEG)), NIXL_ERR_NOT_FOUND);
        nixl_blob_t md;
        OK(b->getLocalMD(md));
        std::string name;
        OK(a->loadRemoteMD(md, name));
        CHECK(name == "B");
        OK(a->checkRemoteMD("B", dram_xfer(b_buf.data(), kLen)));
        // A range beyond B's registration is not covered.
        CHECK_ST(a->checkRemoteMD("B", dram_xfer(b_buf.data() + 1, kLen)), NIXL_ERR_NOT_FOUND);
        nixl_blob_t own;
        OK(a->getLocalMD(own));
        CHECK_ST(a->loadRemoteMD(own, name), NIXL_ERR_INVALID_PARAM); // its own metadata
    }
};

void adhoc_write_with_notif() {
    Pair p;
    for (size_t i = 0; i < kLen; ++i) p.a_buf[i] = static_cast<unsigned char>(i * 7 + 3);
    nixl_opt_args_t extra;
    extra.backends.push_back(p.a_ucx);
    extra.notif = std::string("w\0rite", 6); // binary-safe
    nixlXferReqH *req = nullptr;
    OK(p.a->createXferReq(NIXL_WRITE, dram_xfer(p.a_buf.data(), kLen), dram_xfer(p.b_buf.data(), kLen), "B",
                          req, &extra));
    nixlBackendH *used = nullptr;
    OK(p.a->queryXferBackend(req, used));
    CHECK(used == p.a_ucx);
    CHECK_ST(p.a->getXferStatus(req), NIXL_ERR_NOT_POSTED);
    OK(test::post_and_wait(*p.a, req, &extra));
    CHECK(p.a_buf == p.b_buf);
    // getNotifs appends: what the caller already holds stays.
    nixl_notifs_t notifs;
    notifs["earlier"].push_back("kept");
    CHECK(test::eventually([&] {
        OK(p.b->getNotifs(notifs));
        return !notifs["A"].empty();
    }));
    CHECK(notifs["A"] == std::vector<nixl_blob_t>{std::string("w\0rite", 6)});
    CHECK(notifs["earlier"] == std::vector<nixl_blob_t>{"kept"});
    // Telemetry is off unless asked for.
    nixl_xfer_telem_t t;
    CHECK_ST(p.a->getXferTelemetry(req, t), NIXL_ERR_NO_TELEMETRY);
    std::chrono::microseconds d, e;
    nixl_cost_t m;
    CHECK_ST(p.a->estimateXferCost(req, d, e, m), NIXL_ERR_NOT_SUPPORTED);
    OK(p.a->releaseXferReq(req));
}

void prepped_read_reordered() {
    Pair p;
    constexpr size_t kBlocks = 8, kBlock = kLen / kBlocks;
    for (size_t i = 0; i < kLen; ++i) p.b_buf[i] = static_cast<unsigned char>(i / kBlock + 1);
    nixl_xfer_dlist_t local(DRAM_SEG), remote(DRAM_SEG);
    for (size_t i = 0; i < kBlocks; ++i) {
        local.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(p.a_buf.data() + i * kBlock), kBlock, 0));
        remote.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(p.b_buf.data() + i * kBlock), kBlock, 0));
    }
    nixlDlistH *lh = nullptr, *rh = nullptr;
    OK(p.a->prepXferDlist(NIXL_INIT_AGENT, local, lh));
    OK(p.a->prepXferDlist("B", remote, rh));
    nixlXferReqH *req = nullptr;
    CHECK_ST(p.a->makeXferReq(NIXL_READ, lh, {0, 1}, rh, {0, int(kBlocks)}, req), NIXL_ERR_INVALID_PARAM);
    // Local block i receives remote block kBlocks-1-i.
    std::vector<int> li, ri;
    for (int i = 0; i < int(kBlocks); ++i) {
        li.push_back(i);
        ri.push_back(int(kBlocks) - 1 - i);
    }
    nixl_opt_args_t extra;
    extra.notif = "read-done";
    OK(p.a->makeXferReq(NIXL_READ, lh, li, rh, ri, req, &extra));
    OK(test::post_and_wait(*p.a, req, &extra));
    for (size_t i = 0; i < kLen; ++i) CHECK(p.a_buf[i] == kBlocks - i / kBlock);
    // A READ's notification goes to the target, after the data has been read.
    CHECK(test::wait_notifs(*p.b, "A", 1) == std::vector<nixl_blob_t>{"read-done"});
    OK(p.a->releaseXferReq(req));
    CHECK_ST(p.a->releaseXferReq(req), NIXL_ERR_INVALID_PARAM); // already released
    CHECK_ST(p.b->releasedDlistH(lh), NIXL_ERR_INVALID_PARAM);  // another agent's
    OK(p.a->releasedDlistH(lh));
    // rh is left to the agent: its destructor releases what the engine did not.
}

void exact_failures() {
    Pair p;
    nixlXferReqH *req = nullptr;
    // Unknown remote agent; a range B never registered.
    CHECK_ST(p.a->createXferReq(NIXL_WRITE, dram_xfer(p.a_buf.data(), 64), dram_xfer(p.b_buf.data(), 64),
                                "nobody", req),
             NIXL_ERR_NOT_FOUND);
    CHECK_ST(p.a->createXferReq(NIXL_WRITE, dram_xfer(p.a_buf.data(), 64), dram_xfer(p.b_buf.data() + kLen, 64), "B", req),
             NIXL_ERR_NOT_FOUND);
    CHECK_ST(p.a->genNotif("nobody", "x"), NIXL_ERR_NOT_FOUND);
    // Deregistration needs an exact match.
    CHECK_ST(p.a->deregisterMem(dram_reg(p.a_buf.data(), kLen - 1)), NIXL_ERR_NOT_FOUND);
    // Views for GPU-initiated transfers are not provided.
    nixlMemViewH mv = nullptr;
    CHECK_ST(p.a->prepMemView(dram_xfer(p.a_buf.data(), 64), mv), NIXL_ERR_NOT_SUPPORTED);
    // A request made before its remote was invalidated is refused when posted.
    OK(p.a->createXferReq(NIXL_WRITE, dram_xfer(p.a_buf.data(), 64), dram_xfer(p.b_buf.data(), 64), "B", req));
    OK(p.a->invalidateRemoteMD("B"));
    CHECK_ST(p.a->invalidateRemoteMD("B"), NIXL_ERR_NOT_FOUND);
    CHECK_ST(p.a->postXferReq(req), NIXL_ERR_NOT_FOUND);
    OK(p.a->releaseXferReq(req));
    OK(p.a->deregisterMem(dram_reg(p.a_buf.data(), kLen)));
    // Another agent under a loaded agent's name: its different connection info is refused.
    nixl_blob_t real, fake;
    std::string name;
    OK(p.b->getLocalMD(real));
    OK(p.a->loadRemoteMD(real, name));
    auto impostor = test::make_agent("B");
    OK(impostor->getLocalMD(fake));
    CHECK_ST(p.a->loadRemoteMD(fake, name), NIXL_ERR_NOT_ALLOWED);
}

// The legacy notification fields (hasNotif + notifMsg) still attach a notification.
void legacy_notif_fields() {
    Pair p;
    nixl_opt_args_t extra;
    extra.hasNotif = true;
    extra.notifMsg = "legacy";
    nixlXferReqH *req = nullptr;
    OK(p.a->createXferReq(NIXL_WRITE, dram_xfer(p.a_buf.data(), 128), dram_xfer(p.b_buf.data(), 128), "B", req,
                          &extra));
    OK(test::post_and_wait(*p.a, req, &extra));
    CHECK(test::wait_notifs(*p.b, "A", 1) == std::vector<nixl_blob_t>{"legacy"});
    OK(p.a->releaseXferReq(req));
}

void telemetry_when_asked() {
    Pair p(nixlAgentConfig(true, false, default_comm_port, nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT, 1,
                           0, 100000, true));
    nixl_xfer_dlist_t l(DRAM_SEG), r(DRAM_SEG);
    for (size_t i = 0; i < 4; ++i) {
        l.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(p.a_buf.data() + i * 1024), 1000, 0));
        r.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(p.b_buf.data() + i * 2048), 1000, 0));
    }
    nixlXferReqH *req = nullptr;
    OK(p.a->createXferReq(NIXL_WRITE, l, r, "B", req));
    OK(test::post_and_wait(*p.a, req));
    nixl_xfer_telem_t t;
    OK(p.a->getXferTelemetry(req, t));
    CHECK(t.totalBytes == 4000 && t.descCount == 4);
    OK(p.a->releaseXferReq(req));
}

// Partial metadata: just the named registration plus connection info is enough for a peer.
void partial_metadata() {
    Pair p;
    auto c = test::make_agent("C");
    nixl_opt_args_t extra;
    extra.includeConnInfo = true;
    nixl_blob_t md;
    OK(p.b->getLocalPartialMD(dram_reg(p.b_buf.data(), kLen), md, &extra));
    std::string name;
    OK(c->loadRemoteMD(md, name));
    CHECK(name == "B");
    OK(c->checkRemoteMD("B", dram_xfer(p.b_buf.data(), kLen)));
    CHECK_ST(p.b->getLocalPartialMD(dram_reg(p.b_buf.data(), 1), md, &extra), NIXL_ERR_NOT_FOUND);
    // No descriptors: connection info only, so a peer knows B but none of its memory.
    auto d = test::make_agent("D");
    OK(p.b->getLocalPartialMD(nixl_reg_dlist_t(DRAM_SEG), md, nullptr));
    OK(d->loadRemoteMD(md, name));
    OK(d->checkRemoteMD("B", nixl_xfer_dlist_t(DRAM_SEG)));
    CHECK_ST(d->checkRemoteMD("B", dram_xfer(p.b_buf.data(), kLen)), NIXL_ERR_NOT_FOUND);
}

// The peer listener: fetch a listening agent's metadata by ip:port, push ours to it, and
// withdraw it again. All asynchronous; checkRemoteMD observes completion.
void listener_exchange() {
    const int port = test::free_port();
    auto l = test::make_agent("L", nullptr,
                              nixlAgentConfig(true, true, port, nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT));
    std::vector<unsigned char> l_buf(kLen);
    OK(l->registerMem(dram_reg(l_buf.data(), kLen)));
    auto c = test::make_agent("C");
    nixl_opt_args_t peer;
    peer.ipAddr = "127.0.0.1";
    peer.port = port;
    OK(c->fetchRemoteMD("L", &peer));
    CHECK(test::eventually([&] { return c->checkRemoteMD("L", dram_xfer(l_buf.data(), kLen)) == NIXL_SUCCESS; }));
    OK(c->sendLocalMD(&peer));
    CHECK(test::eventually([&] { return l->checkRemoteMD("C", nixl_xfer_dlist_t(DRAM_SEG)) == NIXL_SUCCESS; }));
    OK(c->invalidateLocalMD(&peer));
    CHECK(test::eventually([&] { return l->checkRemoteMD("C", nixl_xfer_dlist_t(DRAM_SEG)) == NIXL_ERR_NOT_FOUND; }));
    nixl_opt_args_t bad_port = peer;
    bad_port.port = 70000;
    CHECK_ST(c->fetchRemoteMD("L", &bad_port), NIXL_ERR_INVALID_PARAM);
}

// queryMem asks the one backend named in the extra params about files by path.
void query_files() {
    nixlAgent a("files", nixlAgentConfig(true));
    nixl_mem_list_t mems;
    nixl_b_params_t params;
    OK(a.getPluginParams("POSIX", mems, params));
    CHECK(std::find(mems.begin(), mems.end(), FILE_SEG) != mems.end());
    nixlBackendH *posix = nullptr;
    OK(a.createBackend("POSIX", params, posix));
    char path[] = "/tmp/nixl-rs-cpp-XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "12345", 5) == 5);
    close(fd);
    nixl_reg_dlist_t q(FILE_SEG);
    q.addDesc(nixlBlobDesc(0, 0, 0, path));
    q.addDesc(nixlBlobDesc(0, 0, 0, "/nonexistent/nixl-rs"));
    nixl_opt_args_t extra;
    extra.backends.push_back(posix);
    std::vector<nixl_query_resp_t> resp;
    OK(a.queryMem(q, resp, &extra));
    unlink(path);
    CHECK(resp.size() == 2 && resp[0].has_value() && !resp[1].has_value());
    CHECK(resp[0]->count("size") && resp[0]->at("size") == "5");
}

} // namespace

int main() {
    construction_and_backends();
    adhoc_write_with_notif();
    prepped_read_reordered();
    exact_failures();
    legacy_notif_fields();
    telemetry_when_asked();
    partial_metadata();
    listener_exchange();
    query_files();
    std::printf("test_agent_api: ok\n");
    return 0;
}
