"""Shared fixtures: agents, buffers, the peer process, and the NIXL_RS_REQUIRE rule (a test
skipped for a missing requirement fails instead when NIXL_RS_REQUIRE names it)."""

import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def require(name: str, why: str):
    """Skips with a visible reason, or fails if NIXL_RS_REQUIRE lists ``name``."""
    wanted = [w.strip() for w in os.environ.get("NIXL_RS_REQUIRE", "").split(",")]
    if name in wanted:
        pytest.fail(f"{name} is required (NIXL_RS_REQUIRE) but {why}")
    pytest.skip(f"skipped: {why}")


def torch_or_skip():
    try:
        import torch
    except ImportError:
        require("torch", "torch is not installed")
    return torch


def pattern(size: int, seed: int) -> np.ndarray:
    """The bytes peer.py fills its buffer with."""
    return np.resize(((np.arange(251, dtype=np.uint64) * 31 + seed * 7) % 251).astype(np.uint8), size)


@pytest.fixture
def make_agent():
    """Creates agents and drops them at the end of the test."""
    from nixl._api import nixl_agent, nixl_agent_config

    made = []

    def make(name, **conf):
        a = nixl_agent(name, nixl_agent_config(**conf))
        made.append(a)
        return a

    yield make
    made.clear()


class Peer:
    """A peer.py process."""

    def __init__(self, name, size, seed, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "peer.py"), name, str(size), str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=e,
        )
        ready = self.expect("READY ")
        port, addr = ready.split()
        self.name, self.port, self.addr, self.size = name, int(port), int(addr), size

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"peer exited (rc={self.proc.poll()}) before {prefix!r}")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("QUIT")
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def spawn_peer():
    peers = []

    def spawn(name, size, seed, env=None):
        p = Peer(name, size, seed, env)
        peers.append(p)
        return p

    yield spawn
    for p in peers:
        p.close()


def big_pair(make_agent, size):
    """Two agents over TCP in one process (slow enough that transfers are really in flight)."""
    a = make_agent("a", backends=[])
    b = make_agent("b", backends=[])
    for ag in (a, b):
        ag.create_backend("UCX", {"transport": "tcp"})
    src = np.resize(np.arange(251, dtype=np.uint8), size)
    dst = np.zeros(size, dtype=np.uint8)
    a.register_memory([(src.ctypes.data, size, 0, "")], "DRAM")
    b.register_memory([(dst.ctypes.data, size, 0, "")], "DRAM")
    a.add_remote_agent(b.get_agent_metadata())
    l = a.get_xfer_descs([(src.ctypes.data, size, 0)], "DRAM")
    r = a.get_xfer_descs([(dst.ctypes.data, size, 0)], "DRAM")
    # The buffers live as long as the agents: a transfer canceled on one side may still be
    # finishing on the other when the test returns.
    a._buffers = b._buffers = (src, dst)
    return a, b, src, dst, l, r
