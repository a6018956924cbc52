"""Two processes over the P2P metadata listener: vLLM-style pull, SGLang-style push, and a
peer killed mid-transfer."""

import os
import signal
import time

import numpy as np
import pytest

import nixl._bindings as nb
from conftest import pattern

KIB = 1024


def listening(make_agent, name, **conf):
    return make_agent(name, enable_listen_thread=True, listen_port=0, **conf)


def exchange(me, peer):
    """Both directions over the listeners: fetch the peer's, send ours."""
    me.fetch_remote_metadata(peer.name, "127.0.0.1", peer.port)
    deadline = time.monotonic() + 20
    while not me.check_remote_metadata(peer.name):
        assert time.monotonic() < deadline, "metadata never arrived"
        time.sleep(0.005)
    me.send_local_metadata("127.0.0.1", peer.port)


def test_vllm_style_pull(make_agent, spawn_peer):
    block, nblocks = 16 * KIB, 512
    peer = spawn_peer("prefill", block * nblocks, seed=5)
    me = listening(make_agent, "decode", capture_telemetry=True, num_threads=4)
    kv = np.zeros(block * nblocks, dtype=np.uint8)
    me.register_memory(me.get_reg_descs(np.array([[kv.ctypes.data, kv.nbytes, 0]]), "DRAM"))
    exchange(me, peer)
    peer.send(f"FETCH decode {me.listen_port}")
    assert peer.expect("") == "OK"

    # Prepped lists on both sides from N×3 arrays, as vLLM builds them.
    local_rows = np.stack(
        [kv.ctypes.data + np.arange(nblocks, dtype=np.uint64) * block,
         np.full(nblocks, block, dtype=np.uint64), np.zeros(nblocks, dtype=np.uint64)], axis=1)
    remote_rows = local_rows.copy()
    remote_rows[:, 0] = peer.addr + np.arange(nblocks, dtype=np.uint64) * block
    local_h = me.prep_xfer_dlist("NIXL_INIT_AGENT", local_rows, "DRAM")
    remote_h = me.prep_xfer_dlist("prefill", me.get_xfer_descs(remote_rows, "DRAM"))

    ids = np.random.default_rng(7).permutation(nblocks)[:300].astype(np.int64)
    h = me.make_prepped_xfer("READ", local_h, ids, remote_h, ids, notif_msg=b"req-42")
    assert me.transfer(h) in ("DONE", "PROC")
    while me.check_xfer_state(h) == "PROC":
        time.sleep(0.0005)
    t = me.get_xfer_telemetry(h)
    assert t.totalBytes == 300 * block
    assert 1 <= t.descCount <= 300 and t.xferDuration > 0 and t.startTime > 0
    expect = pattern(block * nblocks, 5)
    for i in ids:
        assert (kv[i * block:(i + 1) * block] == expect[i * block:(i + 1) * block]).all()
    untouched = np.setdiff1d(np.arange(nblocks), ids)
    assert (kv[untouched[0] * block:(untouched[0] + 1) * block] == 0).all()
    # The prefill side sees the notification only after the data was read.
    peer.send("NOTIFS 1 20")
    assert peer.expect("NOTIFS ") == "decode:req-42"
    # A full prefix hit: a standalone notification, as vLLM sends.
    me.send_notif("prefill", b"req-43-hit")
    peer.send("NOTIFS 1 20")
    assert peer.expect("NOTIFS ") == "decode:req-43-hit"
    me.release_xfer_handle(h)
    me.release_dlist_handle(local_h)
    me.release_dlist_handle(remote_h)
    me.remove_remote_agent("prefill")
    me.deregister_memory(me.get_reg_descs([(kv.ctypes.data, kv.nbytes, 0, "")], "DRAM"))


def test_sglang_style_push_with_chunk_notifications(make_agent, spawn_peer):
    chunk, n = 64 * KIB, 16
    peer = spawn_peer("prefill", chunk * n, seed=9)
    me = listening(make_agent, "decode")
    kv = np.zeros(chunk * n, dtype=np.uint8)
    me.register_memory([(kv.ctypes.data, kv.nbytes, 0, "")], "DRAM")
    peer.send(f"FETCH decode {me.listen_port}")
    assert peer.expect("") == "OK"
    peer.send(f"WRITE_CHUNKS decode {kv.ctypes.data} {chunk} {n}")
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        for sender, msgs in me.wait_notifs(1.0).items():
            assert sender == "prefill"
            got += msgs
    assert sorted(got) == sorted(f"chunk-{i}".encode() for i in range(n))
    assert peer.expect("DONE ") == ",".join(["DONE"] * n)
    assert (kv == pattern(chunk * n, 9)).all()


def test_peer_killed_mid_transfer_raises_remote_disconnect(make_agent, spawn_peer, monkeypatch):
    monkeypatch.setenv("NIXL_RS_PEER_TIMEOUT_MS", "1500")
    monkeypatch.setenv("NIXL_RS_TRANSPORT", "tcp")
    size = 64 * 1024 * KIB
    env = {"NIXL_RS_TRANSPORT": "tcp"}
    peer = spawn_peer("victim", size, seed=3, env=env)
    me = listening(make_agent, "survivor")
    buf = np.zeros(size, dtype=np.uint8)
    me.register_memory([(buf.ctypes.data, size, 0, "")], "DRAM")
    exchange(me, peer)
    l = me.get_xfer_descs([(buf.ctypes.data, size, 0)], "DRAM")
    r = me.get_xfer_descs([(peer.addr, size, 0)], "DRAM")
    h = me.initialize_xfer("READ", l, r, "victim")
    # Freeze the peer, post, then kill it while the READ is in flight.
    os.kill(peer.proc.pid, signal.SIGSTOP)
    assert me.transfer(h) == "PROC"
    time.sleep(0.1)
    os.kill(peer.proc.pid, signal.SIGKILL)
    peer.proc.wait()
    start = time.monotonic()
    with pytest.raises(nb.nixlRemoteDisconnectError):
        while me.check_xfer_state(h) == "PROC":
            assert time.monotonic() - start < 10, "no disconnect within the peer timeout"
            time.sleep(0.001)
    assert time.monotonic() - start < 10
    h.release()

    # The peer returns under the same name: usable again after add_remote_agent.
    peer2 = spawn_peer("victim", size, seed=4, env=env)
    exchange(me, peer2)
    r2 = me.get_xfer_descs([(peer2.addr, size, 0)], "DRAM")
    h2 = me.initialize_xfer("READ", l, r2, "victim")
    me.transfer(h2)
    assert me.wait(h2, 60) == "DONE"
    assert (buf == pattern(size, 4)).all()
