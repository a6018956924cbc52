"""Bandwidth through the Python API, shaped as nixlbench's points so the two compare (run
side by side by python-compare.sh): two processes on this host (this one initiates, a child
running this script with --role target owns the remote buffer), pre-faulted huge-page
buffers (nixlbench's `--buffer huge`), one request of --request_bytes made of blocks with
the remote blocks shuffled, made once with make_prepped_xfer, --warmup_iter untimed posts,
then --num_iter timed posts, each waited for (`wait`, the package's blocking wait, which nixlbench's C ABI wait also is).
GB/s = bytes moved / wall time of the timed posts / 1e9, as nixlbench reports it.

    python_bw.py --op_type READ --block_sizes 64K,1M,16M --request_bytes 256M \\
        --num_iter 8 --warmup_iter 2 --json out.json

Writes one JSON list of {"lib", "op", "block", "batch", "iters", "gbps"} (stdout if no --json).
"""

import argparse
import json
import mmap
import subprocess
import sys
import time

import numpy as np

from nixl._api import nixl_agent, nixl_agent_config

TARGET = "pybw-target"


def size(v: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    v = v.strip().upper().removesuffix("IB").removesuffix("B")
    return int(v[:-1]) * units[v[-1]] if v and v[-1] in units else int(v)


HUGE = 2 << 20


def buffer(nbytes: int) -> np.ndarray:
    """What nixlbench's `--buffer huge` allocates: anonymous memory, 2 MiB aligned, advised
    MADV_HUGEPAGE, every page touched. (numpy's own large arrays are advised so too, which
    is why the comparison uses huge pages on both sides rather than plain malloc.)"""
    # Private: Python's default, a shared mapping, is shmem, which gets no huge pages here.
    m = mmap.mmap(-1, nbytes + HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.madvise(mmap.MADV_HUGEPAGE)
    whole = np.frombuffer(m, dtype=np.uint8)
    start = -whole.ctypes.data % HUGE
    buf = whole[start:start + nbytes]
    buf.fill(1)
    return buf


def target(nbytes: int):
    agent = nixl_agent(TARGET, nixl_agent_config(backends=["UCX"]))
    buf = buffer(nbytes)
    agent.register_memory([(buf.ctypes.data, nbytes, 0, "")], "DRAM")
    print(f"READY {buf.ctypes.data} {agent.get_agent_metadata().hex()}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[:1] == ["LOAD"]:
            agent.add_remote_agent(bytes.fromhex(cmd[1]))
            print("OK", flush=True)
        elif cmd[:1] == ["QUIT"]:
            break


def point(agent, buf, remote_addr, op, block, total, iters, warmup, seed):
    n = total // block
    offs = np.arange(n, dtype=np.uint64) * block
    rows = lambda base: np.stack(  # noqa: E731
        [base + offs, np.full(n, block, np.uint64), np.zeros(n, np.uint64)], axis=1)
    local = agent.prep_xfer_dlist("NIXL_INIT_AGENT", rows(buf.ctypes.data), "DRAM")
    remote = agent.prep_xfer_dlist(TARGET, rows(remote_addr), "DRAM")
    perm = np.random.default_rng(seed).permutation(n)
    h = agent.make_prepped_xfer(op, local, np.arange(n), remote, perm)
    for _ in range(warmup):
        if agent.transfer(h) != "DONE":
            agent.wait(h)
    start = time.perf_counter()
    for _ in range(iters):
        if agent.transfer(h) != "DONE":
            agent.wait(h)
    wall = time.perf_counter() - start
    agent.release_xfer_handle(h)
    agent.release_dlist_handle(local)
    agent.release_dlist_handle(remote)
    return {"lib": "python", "op": op, "block": block, "batch": n, "iters": iters,
            "gbps": n * block * iters / wall / 1e9}


def expect(child, word):
    """The target's next line starting with `word`, split (log lines are skipped)."""
    for line in child.stdout:
        if line.split()[:1] == [word]:
            return line.split()
    raise SystemExit(f"the target exited before saying {word} (rc={child.wait()})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--role", default="initiator", choices=["initiator", "target"])
    p.add_argument("--buf_bytes", type=size, default=0)
    p.add_argument("--op_type", default="READ", type=str.upper, choices=["READ", "WRITE"])
    p.add_argument("--block_sizes", default="64K,1M,16M")
    p.add_argument("--request_bytes", type=size, default=256 << 20)
    p.add_argument("--num_iter", type=int, default=8)
    p.add_argument("--warmup_iter", type=int, default=2)
    p.add_argument("--json")
    a = p.parse_args()
    if a.role == "target":
        target(a.buf_bytes)
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--role", "target", "--buf_bytes", str(a.request_bytes)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        hello = expect(child, "READY")
        remote_addr, md = int(hello[1]), bytes.fromhex(hello[2])
        agent = nixl_agent("pybw-init", nixl_agent_config(backends=["UCX"]))
        buf = buffer(a.request_bytes)
        agent.register_memory([(buf.ctypes.data, a.request_bytes, 0, "")], "DRAM")
        agent.add_remote_agent(md)
        child.stdin.write(f"LOAD {agent.get_agent_metadata().hex()}\n")
        child.stdin.flush()
        expect(child, "OK")
        rows = [point(agent, buf, remote_addr, a.op_type, size(b), a.request_bytes,
                      a.num_iter, a.warmup_iter, seed=0x5EED ^ size(b))
                for b in a.block_sizes.split(",")]
    finally:
        if child.poll() is None:
            child.stdin.write("QUIT\n")
            child.stdin.flush()
            child.wait(timeout=30)
    out = json.dumps(rows)
    if a.json:
        with open(a.json, "w") as f:
            f.write(out + "\n")
    else:
        print(out)


if __name__ == "__main__":
    main()
