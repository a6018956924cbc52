"""Every `nixl_agent` method and input form, in one process (two agents)."""

import os
import pickle
import tempfile

import numpy as np
import pytest

import nixl
import nixl._bindings as nb
from conftest import torch_or_skip
from nixl._api import (
    nixl_agent,
    nixl_agent_config,
    nixl_prepped_dlist_handle,
    nixl_xfer_handle,
)

KIB = 1024


def test_module_surface():
    for name in [
        "nixl_agent", "nixl_agent_config", "nixl_xfer_handle", "nixl_prepped_dlist_handle",
        "DRAM_SEG", "VRAM_SEG", "FILE_SEG", "BLK_SEG", "OBJ_SEG", "NIXL_READ", "NIXL_WRITE",
        "NIXL_INIT_AGENT", "DEFAULT_COMM_PORT", "nixlXferDList", "nixlRegDList", "nixlRemoteDList",
        "nixlAgent", "nixlAgentConfig", "nixlXferTelemetry", "nixl_mem_t", "nixl_status_t",
        "nixl_thread_sync_t", "nixl_xfer_op_t", "nixl_cost_t", "nixlBind", "get_logger",
        "malloc_passthru", "free_passthru", "ba_buf", "verify_transfer",
    ]:
        assert hasattr(nixl, name), name
    for exc in [
        "nixlNotPostedError", "nixlInvalidParamError", "nixlBackendError", "nixlNotFoundError",
        "nixlMismatchError", "nixlNotAllowedError", "nixlRepostActiveError", "nixlUnknownError",
        "nixlNotSupportedError", "nixlRemoteDisconnectError", "nixlCancelledError",
        "nixlNoTelemetryError",
    ]:
        assert issubclass(getattr(nb, exc), Exception)
        assert getattr(nixl, exc) is getattr(nb, exc)
    assert nb.DEFAULT_COMM_PORT == 8888
    assert int(nb.DRAM_SEG) == 0 and int(nb.FILE_SEG) == 4
    assert int(nb.NIXL_WRITE) == 1 and int(nb.NIXL_ERR_NOT_FOUND) == -4
    assert nb.nixl_thread_sync_t.NIXL_THREAD_SYNC_DEFAULT == nb.NIXL_THREAD_SYNC_NONE
    assert nixl._api.nixlBind is nb


def test_importing_nixl_does_not_import_torch():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import nixl, sys; print('torch' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "False"


def test_config_and_agent_attributes(make_agent):
    with pytest.raises(TypeError):
        nixl_agent_config(sync_mode="strict")
    a = make_agent("attrs", capture_telemetry=True, num_threads=2)
    assert a.name == "attrs"
    assert isinstance(a.agent, nb.nixlAgent)
    assert set(a.backends) == {"UCX"}
    assert a.nixl_mems["cpu"] == nb.DRAM_SEG and a.nixl_mems["cuda"] == nb.VRAM_SEG
    assert "UCX" in a.get_plugin_list() and "POSIX" in a.plugin_list
    assert "DRAM_SEG" in a.get_plugin_mem_types("UCX")
    assert isinstance(a.get_plugin_params("UCX"), dict)
    assert "DRAM_SEG" in a.get_backend_mem_types("UCX")
    assert isinstance(a.get_backend_params("UCX"), dict)
    assert a.get_backend_mem_types("nope") == []
    with pytest.raises(nb.nixlInvalidParamError):
        nixl_agent("")


def test_descriptor_lists_every_form(make_agent):
    a = make_agent("descs")
    buf = np.zeros(64 * KIB, dtype=np.uint8)
    p = buf.ctypes.data
    rows = [(p + i * KIB, KIB, 0) for i in range(64)]
    x1 = a.get_xfer_descs(rows, "DRAM")
    x2 = a.get_xfer_descs(np.array(rows, dtype=np.uint64), "DRAM")
    x3 = a.get_xfer_descs(np.array(rows, dtype=np.int64), "cpu")
    x4 = a.get_xfer_descs(np.asfortranarray(np.array(rows, dtype=np.uint64)), "DRAM")
    assert x1 == x2 == x3 == x4 and x1.descCount() == 64 and len(x1) == 64
    assert x1[3] == (p + 3 * KIB, KIB, 0) and x1[-1] == rows[-1]
    assert a.get_xfer_descs(x1) is x1
    # A non-contiguous view is converted, not misread.
    big = np.array([[r[0], r[1], r[2], 99] for r in rows], dtype=np.uint64)
    assert a.get_xfer_descs(big[:, :3], "DRAM") == x1
    # An unaligned view is read correctly (through the generic path).
    raw = np.zeros(6 * 8 + 1, dtype=np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.uint64, count=6, offset=1).reshape(2, 3)
    unaligned[:] = [[1, 2, 3], [4, 5, 6]]
    assert a.get_xfer_descs(unaligned, "DRAM")[1] == (4, 5, 6)
    assert a.get_xfer_descs(rows, "cuda").getType() == nb.VRAM_SEG
    assert a.get_xfer_descs([], "DRAM").isEmpty()
    r = a.get_reg_descs([(p, 64 * KIB, 0, "meta")], "DRAM")
    assert r[0] == (p, 64 * KIB, 0, b"meta") and r.getType() == nb.DRAM_SEG
    assert r.trim()[0] == (p, 64 * KIB, 0)
    assert a.get_reg_descs(np.array([[p, KIB, 0]]), "DRAM")[0] == (p, KIB, 0, b"")
    assert a.get_reg_descs([(p, KIB, 0, "")]) is None  # NIXL: no mem type, no tensors
    rem = a.get_remote_descs([(p, KIB, 0, "peer")], "DRAM")
    assert rem[0] == (p, KIB, 0, "peer")

    # Mutation and lookup.
    d = nb.nixlXferDList(nb.DRAM_SEG)
    d.addDesc((1, 2, 3))
    d.append((4, 5, 6))
    d[0] = (7, 8, 9)
    assert d.index((4, 5, 6)) == 1 and d.descCount() == 2
    d.remDesc(0)
    assert d[0] == (4, 5, 6)
    d.clear()
    assert d.isEmpty()
    assert nb.nixlXferDList(nb.DRAM_SEG, 3).descCount() == 3
    with pytest.raises(IndexError):
        x1[64]


def test_pickled_lists_round_trip(make_agent):
    a = make_agent("pickle")
    x = a.get_xfer_descs([(0x1000 + i, 10, i) for i in range(100)], "VRAM")
    r = a.get_reg_descs([(0x1000, 10, 0, "/tmp/f"), (0x2000, 5, 1, b"\x00\xff")], "FILE")
    rem = a.get_remote_descs([(1, 2, 3, "b")], "DRAM")
    for lst in (x, r, rem):
        back = pickle.loads(pickle.dumps(lst))
        assert back == lst and type(back) is type(lst) and back.getType() == lst.getType()
    assert a.deserialize_descs(a.get_serialized_descs(x)) == x
    assert a.deserialize_descs(a.get_serialized_descs([x, r])) == [x, r]
    bad = nb.nixlXferDList(nb.DRAM_SEG)
    with pytest.raises(nb.nixlInvalidParamError):
        bad.__setstate__(b"\x01garbage")


def transfer_pair(make_agent, **conf):
    a = make_agent("initiator", **conf)
    b = make_agent("target", **conf)
    src = (np.arange(256 * KIB) % 251).astype(np.uint8)
    dst = np.zeros(256 * KIB, dtype=np.uint8)
    a.register_memory([(src.ctypes.data, src.nbytes, 0, "")], "DRAM")
    b.register_memory(np.array([[dst.ctypes.data, dst.nbytes, 0]]), "DRAM")
    assert a.add_remote_agent(b.get_agent_metadata()) == b"target"
    return a, b, src, dst


def test_initialize_xfer_write_read_notifs_telemetry(make_agent):
    a, b, src, dst = transfer_pair(make_agent, capture_telemetry=True)
    local = a.get_xfer_descs([(src.ctypes.data, src.nbytes, 0)], "DRAM")
    remote = a.get_xfer_descs([(dst.ctypes.data, dst.nbytes, 0)], "DRAM")
    h = a.initialize_xfer("WRITE", local, remote, "target", b"written")
    assert isinstance(h, nixl_xfer_handle)
    assert a.transfer(h) in ("DONE", "PROC")
    assert a.wait(h, timeout=10) == "DONE"
    assert a.check_xfer_state(h) == "DONE"
    assert (dst == src).all()
    t = a.get_xfer_telemetry(h)
    assert t.totalBytes == src.nbytes and t.descCount == 1 and t.startTime > 0
    assert t.xferDuration >= 0 and t.postDuration >= 0
    assert a.query_xfer_backend(h) == "UCX"
    assert a.estimate_xfer_cost(h)[:2] == (0, 0)
    assert b.wait_notifs(10) == {"initiator": [b"written"]}
    # Repost with a new notification; update_notifs accumulates, check_remote_xfer_done consumes.
    assert a.transfer(h, b"again-1") in ("DONE", "PROC")
    a.wait(h)
    a.send_notif("target", b"standalone")
    deadline = __import__("time").monotonic() + 10
    while len(b.update_notifs().get("initiator", [])) < 2:
        assert __import__("time").monotonic() < deadline
        b.wait_notifs(0.1)
    assert b.check_remote_xfer_done("initiator", b"again")
    assert b.check_remote_xfer_done("initiator", b"alone", tag_is_prefix=False)
    assert not b.check_remote_xfer_done("initiator", b"again")
    a.release_xfer_handle(h)
    a.release_xfer_handle(h)  # twice is harmless
    with pytest.raises(nb.nixlNotFoundError):
        a.agent.getXferStatus(int(h))


def test_prepped_lists_with_list_and_numpy_indices(make_agent):
    a, b, src, dst = transfer_pair(make_agent)
    n = 256
    blocks = np.array([[src.ctypes.data + i * KIB, KIB, 0] for i in range(n)], dtype=np.uint64)
    rblocks = np.array([[dst.ctypes.data + i * KIB, KIB, 0] for i in range(n)], dtype=np.uint64)
    local = a.prep_xfer_dlist("NIXL_INIT_AGENT", blocks, "DRAM")
    local2 = a.prep_xfer_dlist("", blocks, "cpu")
    remote = a.prep_xfer_dlist("target", rblocks, "DRAM")
    # add_remote_agent returns bytes (as NIXL); vLLM passes that name back.
    assert isinstance(a.prep_xfer_dlist(b"target", rblocks[:1], "DRAM"), nixl_prepped_dlist_handle)
    assert isinstance(local, nixl_prepped_dlist_handle)
    rng = np.random.default_rng(1)
    idx = rng.permutation(n)
    for li, ri in [
        (list(range(0, n, 2)), list(range(0, n, 2))),
        (idx.astype(np.int64), idx.astype(np.int64)),
        (idx.astype(np.int32), idx.astype(np.uint32)),
        # Byte-swapped and strided arrays take the generic path, with the same result.
        (idx.astype(">i8"), np.repeat(idx, 2)[::2]),
    ]:
        dst[:] = 0
        h = a.make_prepped_xfer("WRITE", local, li, remote, ri, b"p")
        a.transfer(h)
        assert a.wait([h], 10) == ["DONE"]
        sel = np.asarray(li)
        for i in sel[:16]:
            assert (dst[i * KIB:(i + 1) * KIB] == src[i * KIB:(i + 1) * KIB]).all()
        h.release()
    # READ back through the second local list; skip_desc_merge keeps the pair count.
    h = a.make_prepped_xfer("READ", local2, [0, 1, 2], remote, [0, 1, 2], skip_desc_merge=True)
    a.transfer(h)
    assert a.wait(h) == "DONE"
    a.release_dlist_handle(local)
    local.release()
    remote.release()


def test_loopback_and_file_registrations_with_posix(make_agent):
    a = make_agent("storage", backends=["UCX", "POSIX"])
    assert "POSIX" in a.backends
    data = (np.arange(64 * KIB) % 199).astype(np.uint8)
    back = np.zeros_like(data)
    a.register_memory([(data.ctypes.data, data.nbytes, 0, ""), (back.ctypes.data, back.nbytes, 0, "")], "DRAM")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "kv.bin")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, data.nbytes)
            files = a.register_memory([(0, data.nbytes, fd, path)], "FILE")
            q = a.query_memory([(0, 0, fd, path)], "POSIX", "FILE")
            assert len(q) == 1 and q[0] is not None
            missing = a.query_memory([(0, 0, 0, os.path.join(d, "nope"))], "POSIX", "FILE")
            assert missing == [None]
            # DRAM -> FILE (WRITE) then FILE -> DRAM (READ): SGLang HiCache's loopback path.
            dram = a.get_xfer_descs([(data.ctypes.data, data.nbytes, 0)], "DRAM")
            file = a.get_xfer_descs([(0, data.nbytes, fd)], "FILE")
            h = a.initialize_xfer("WRITE", dram, file, "storage")
            a.transfer(h)
            assert a.wait(h, 10) == "DONE"
            h.release()
            h = a.initialize_xfer("READ", a.get_xfer_descs([(back.ctypes.data, back.nbytes, 0)], "DRAM"), file, "storage")
            a.transfer(h)
            assert a.wait(h, 10) == "DONE"
            assert (back == data).all()
            h.release()
            a.deregister_memory(files, ["POSIX"])
        finally:
            os.close(fd)


def test_metadata_partial_remove_check(make_agent):
    a, b, src, dst = transfer_pair(make_agent)
    assert a.check_remote_metadata("target")
    xd = a.get_xfer_descs([(dst.ctypes.data, dst.nbytes, 0)], "DRAM")
    assert a.check_remote_metadata("target", xd)
    assert not a.check_remote_metadata("nobody")
    a.remove_remote_agent("target")
    assert not a.check_remote_metadata("target")
    a.remove_remote_agent("target")  # unknown: logged, not raised (as NIXL)
    # Partial metadata: connection info first, then just one registration.
    regs = b.get_reg_descs([(dst.ctypes.data, dst.nbytes, 0, "")], "DRAM")
    conn = b.get_partial_agent_metadata(nb.nixlRegDList(nb.DRAM_SEG), True)
    assert a.add_remote_agent(conn) == b"target"
    assert not a.check_remote_metadata("target", xd)
    a.add_remote_agent(b.get_partial_agent_metadata(regs, False))
    assert a.check_remote_metadata("target", xd)
    a.make_connection("target")
    b.deregister_memory(regs)


def test_prep_mem_view_is_not_supported(make_agent):
    a = make_agent("mv")
    with pytest.raises(nb.nixlNotSupportedError):
        a.prep_mem_view(nb.nixlXferDList(nb.VRAM_SEG))


def test_telemetry_off_raises_no_telemetry(make_agent, monkeypatch):
    monkeypatch.delenv("NIXL_TELEMETRY_ENABLE", raising=False)
    a, b, src, dst = transfer_pair(make_agent)
    h = a.initialize_xfer(
        "READ",
        a.get_xfer_descs([(src.ctypes.data, KIB, 0)], "DRAM"),
        a.get_xfer_descs([(dst.ctypes.data, KIB, 0)], "DRAM"),
        "target",
    )
    a.transfer(h)
    a.wait(h)
    with pytest.raises(nb.nixlNoTelemetryError):
        a.get_xfer_telemetry(h)


def test_torch_cpu_tensors(make_agent):
    torch = torch_or_skip()
    a, b, _, _ = transfer_pair(make_agent)
    t = torch.arange(4096, dtype=torch.float32)
    u = torch.zeros(4096, dtype=torch.float32)
    regs = a.register_memory(t)
    assert regs.getType() == nb.DRAM_SEG and regs[0][1] == t.numel() * 4
    b.register_memory([u])
    a.add_remote_agent(b.get_agent_metadata())
    h = a.initialize_xfer("WRITE", a.get_xfer_descs(t), a.get_xfer_descs([u]), "target")
    a.transfer(h)
    assert a.wait(h) == "DONE"
    assert torch.equal(t, u)


def test_utils():
    from nixl import _utils

    p, q = _utils.malloc_passthru(4096), _utils.malloc_passthru(4096)
    _utils.ba_buf(p, 4096)
    _utils.ba_buf(q, 4096)
    _utils.verify_transfer(p, q, 4096)
    _utils.ba_buf(q, 10)
    __import__("ctypes").memset(q, 7, 1)
    with pytest.raises(AssertionError):
        _utils.verify_transfer(p, q, 4096)
    _utils.free_passthru(p)
    _utils.free_passthru(q)
    assert nixl.get_logger("x").name == "nixl.x"
