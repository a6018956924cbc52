"""The flows of NIXL's own Python examples (basic_two_peers, partial_md_example,
query_mem_example), written here as tests against this package."""

import os
import tempfile
import time

import numpy as np

from conftest import pattern

KIB = 1024


def wait_md(agent, name, descs=None, timeout=20):
    deadline = time.monotonic() + timeout
    while not agent.check_remote_metadata(name, descs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_basic_two_peers(make_agent, spawn_peer):
    """Target listens; the initiator fetches its metadata, sends its own, then READs and
    WRITEs with notifications, and both sides clean up."""
    size = 256 * KIB
    target = spawn_peer("target", size, seed=1)
    init = make_agent("initiator", enable_listen_thread=True, listen_port=0)
    buf = np.zeros(size, dtype=np.uint8)
    regs = init.register_memory([(buf.ctypes.data, size, 0, "")], "DRAM")
    init.fetch_remote_metadata("target", "127.0.0.1", target.port)
    init.send_local_metadata("127.0.0.1", target.port)
    assert wait_md(init, "target")
    local = regs.trim()
    remote = init.get_xfer_descs([(target.addr, size, 0)], "DRAM")
    h = init.initialize_xfer("READ", local, remote, "target", b"UUID1")
    state = init.transfer(h)
    while state != "DONE":
        state = init.check_xfer_state(h)
    assert (buf == pattern(size, 1)).all()
    target.send("NOTIFS 1 20")
    assert target.expect("NOTIFS ") == "initiator:UUID1"
    buf[:] = pattern(size, 2)
    h2 = init.initialize_xfer("WRITE", local, remote, "target", b"UUID2")
    init.transfer(h2)
    assert init.wait(h2, 20) == "DONE"
    target.send("NOTIFS 1 20")
    assert target.expect("NOTIFS ") == "initiator:UUID2"
    target.send("SUM")
    import hashlib

    assert target.expect("SUM ") == hashlib.sha256(pattern(size, 2).tobytes()).hexdigest()
    init.release_xfer_handle(h)
    init.release_xfer_handle(h2)
    init.invalidate_local_metadata("127.0.0.1", target.port)
    init.remove_remote_agent("target")
    init.deregister_memory(regs)


def test_partial_metadata(make_agent, spawn_peer):
    """Connection info first, then the registrations: descriptors are usable only after."""
    size = 64 * KIB
    target = spawn_peer("target", size, seed=6)
    init = make_agent("initiator", enable_listen_thread=True, listen_port=0)
    remote = init.get_xfer_descs([(target.addr, size, 0)], "DRAM")
    target.send(f"SEND_PARTIAL {init.listen_port} 0")
    assert target.expect("") == "OK"
    assert wait_md(init, "target")
    assert not init.check_remote_metadata("target", remote)
    target.send(f"SEND_PARTIAL {init.listen_port} 1")
    assert target.expect("") == "OK"
    assert wait_md(init, "target", remote)
    buf = np.zeros(size, dtype=np.uint8)
    init.register_memory([(buf.ctypes.data, size, 0, "")], "DRAM")
    h = init.initialize_xfer("READ", init.get_xfer_descs([(buf.ctypes.data, size, 0)], "DRAM"), remote, "target")
    init.transfer(h)
    assert init.wait(h, 20) == "DONE"
    assert (buf == pattern(size, 6)).all()


def test_query_memory(make_agent):
    """query_memory on FILE registrations through POSIX: existing files give a dict,
    missing ones None."""
    agent = make_agent("storage", backends=["POSIX"])
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, f"f{i}") for i in range(3)]
        for p in paths[:2]:
            with open(p, "wb") as f:
                f.write(b"x" * 100)
        descs = [(0, 0, 0, p) for p in paths]
        res = agent.query_memory(descs, "POSIX", mem_type="FILE")
        assert len(res) == 3
        assert res[0] is not None and res[1] is not None and res[2] is None
