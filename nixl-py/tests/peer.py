"""A peer process for the two-process tests, driven by commands on stdin.

    python peer.py NAME SIZE SEED

Creates agent NAME with the metadata listener on a free port and telemetry on, registers a
SIZE-byte buffer filled with pattern(SEED), prints ``READY <port> <addr>``, then answers:

    FETCH <agent> <port>                 fetch <agent>'s metadata from 127.0.0.1:<port>
    SEND <port>                          send our metadata to 127.0.0.1:<port>
    SEND_PARTIAL <port> <0|1>            send partial metadata (1: with the buffer)
    NOTIFS <n> <timeout_s>               wait for <n> notifications -> NOTIFS <sender>:<msg>,...
    WRITE_CHUNKS <agent> <addr> <chunk> <n>   WRITE our chunks to <agent>'s <addr>, one
                                         initialize_xfer per chunk, notification chunk-<i>
    SUM                                  -> SUM <hex digest of the buffer>
    QUIT
"""

import hashlib
import sys
import time

import numpy as np

from nixl._api import nixl_agent, nixl_agent_config


def pattern(size, seed):
    return np.resize(((np.arange(251, dtype=np.uint64) * 31 + seed * 7) % 251).astype(np.uint8), size)


def main():
    name, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    agent = nixl_agent(
        name,
        nixl_agent_config(enable_listen_thread=True, listen_port=0, capture_telemetry=True),
    )
    buf = pattern(size, seed)
    agent.register_memory([(buf.ctypes.data, size, 0, "")], "DRAM")
    print(f"READY {agent.listen_port} {buf.ctypes.data}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "FETCH":
            agent.fetch_remote_metadata(cmd[1], "127.0.0.1", int(cmd[2]))
            deadline = time.monotonic() + 20
            while not agent.check_remote_metadata(cmd[1]):
                if time.monotonic() > deadline:
                    print("ERR fetch timed out", flush=True)
                    break
                time.sleep(0.005)
            else:
                print("OK", flush=True)
        elif cmd[0] == "SEND":
            agent.send_local_metadata("127.0.0.1", int(cmd[1]))
            print("OK", flush=True)
        elif cmd[0] == "SEND_PARTIAL":
            regs = agent.get_reg_descs([(buf.ctypes.data, size, 0, "")], "DRAM")
            if cmd[2] == "0":
                regs = agent.get_reg_descs([], "DRAM")
            agent.send_partial_agent_metadata(regs, True, ["UCX"], "127.0.0.1", int(cmd[1]))
            print("OK", flush=True)
        elif cmd[0] == "NOTIFS":
            want, deadline = int(cmd[1]), time.monotonic() + float(cmd[2])
            got = []
            while len(got) < want and time.monotonic() < deadline:
                for sender, msgs in agent.wait_notifs(0.5).items():
                    got += [f"{sender}:{m.decode()}" for m in msgs]
            print("NOTIFS " + ",".join(got), flush=True)
        elif cmd[0] == "WRITE_CHUNKS":
            remote, raddr, chunk, n = cmd[1], int(cmd[2]), int(cmd[3]), int(cmd[4])
            handles = []
            for i in range(n):
                local = agent.get_xfer_descs([(buf.ctypes.data + i * chunk, chunk, 0)], "DRAM")
                rem = agent.get_xfer_descs([(raddr + i * chunk, chunk, 0)], "DRAM")
                h = agent.initialize_xfer("WRITE", local, rem, remote, f"chunk-{i}".encode())
                agent.transfer(h)
                handles.append(h)
            states = agent.wait(handles, timeout=30)
            for h in handles:
                agent.release_xfer_handle(h)
            print("DONE " + ",".join(states), flush=True)
        elif cmd[0] == "SUM":
            print("SUM " + hashlib.sha256(buf.tobytes()).hexdigest(), flush=True)
        elif cmd[0] == "QUIT":
            break
        else:
            print(f"ERR unknown command {cmd[0]}", flush=True)


if __name__ == "__main__":
    main()
