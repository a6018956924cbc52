"""CUDA input forms end to end, run by test_cuda.py in a child process on a CUDA driver (the
fake one of nixl-core's tests, or a real GPU's). Device memory comes from the driver through
ctypes; it reaches nixl as the two shapes GPU libraries hand out:

- an object with ``__cuda_array_interface__`` (CuPy, Numba, ...), and
- a torch-like tensor: a stand-in ``torch`` module put into ``sys.modules`` whose ``Tensor``
  has ``is_cuda``, ``data_ptr()``, ``get_device()``, ...

Two agents in this process: VRAM -> VRAM READ with a notification, DRAM -> VRAM WRITE, VRAM ->
DRAM READ through prepped lists, each checked byte for byte after a download; a strided array
is refused. Prints ``CUDA-OK <device name>`` at the end.
"""

import ctypes
import sys
import types

import numpy as np

from nixl._api import nixl_agent, nixl_agent_config

SIZE = 3 << 20  # 768 blocks of 4 KiB for the prepped READ

cu = ctypes.CDLL("libcuda.so.1")


def check(rc, what):
    if rc != 0:
        raise RuntimeError(f"{what} failed: CUresult {rc}")


def init():
    check(cu.cuInit(0), "cuInit")
    dev, ctx = ctypes.c_int(), ctypes.c_void_p()
    check(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
    check(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
    check(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    name = ctypes.create_string_buffer(256)
    check(cu.cuDeviceGetName(name, 256, dev), "cuDeviceGetName")
    return name.value.decode()


def alloc(n):
    p = ctypes.c_ulonglong()
    check(cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(n)), "cuMemAlloc")
    return p.value


def upload(ptr, host):
    check(cu.cuMemcpy(ctypes.c_ulonglong(ptr), ctypes.c_ulonglong(host.ctypes.data),
                      ctypes.c_size_t(host.nbytes)), "cuMemcpy (upload)")
    check(cu.cuCtxSynchronize(), "cuCtxSynchronize")


def download(ptr, n):
    out = np.zeros(n, dtype=np.uint8)
    check(cu.cuMemcpy(ctypes.c_ulonglong(out.ctypes.data), ctypes.c_ulonglong(ptr),
                      ctypes.c_size_t(n)), "cuMemcpy (download)")
    check(cu.cuCtxSynchronize(), "cuCtxSynchronize")
    return out


class CudaArray:
    """What CuPy or Numba hand out: a device pointer behind ``__cuda_array_interface__``."""

    def __init__(self, ptr, shape, typestr="|u1", strides=None, device=0):
        self._iface = {"data": (ptr, False), "shape": shape, "typestr": typestr,
                       "strides": strides, "version": 3}
        self.device = types.SimpleNamespace(id=device)

    @property
    def __cuda_array_interface__(self):
        return self._iface


def fake_torch():
    """A minimal ``torch`` with the tensor methods nixl uses. nixl never imports torch, so in
    this fresh process the stand-in is what it finds, installed or not."""
    torch = types.ModuleType("torch")

    class Tensor:
        def __init__(self, ptr, nbytes, cuda, device=0):
            self._ptr, self._n, self.is_cuda, self._dev = ptr, nbytes, cuda, device

        def data_ptr(self):
            return self._ptr

        def numel(self):
            return self._n // 4

        def element_size(self):
            return 4

        def is_contiguous(self):
            return True

        def get_device(self):
            return self._dev if self.is_cuda else -1

    torch.Tensor = Tensor
    sys.modules["torch"] = torch
    return torch


def finish(agent, h):
    assert agent.transfer(h) in ("DONE", "PROC")
    assert agent.wait(h, timeout=30) == "DONE"
    agent.release_xfer_handle(h)


def main():
    name = init()
    torch = fake_torch()
    rng = np.random.default_rng(3)
    want = rng.integers(0, 256, SIZE, dtype=np.uint8)
    src_ptr, dst_ptr = alloc(SIZE), alloc(SIZE)
    upload(src_ptr, want)
    upload(dst_ptr, np.full(SIZE, 0xEE, dtype=np.uint8))

    a = nixl_agent("cuda-a", nixl_agent_config(backends=["UCX"]))
    b = nixl_agent("cuda-b", nixl_agent_config(backends=["UCX"]))
    dst = CudaArray(dst_ptr, (SIZE // 4,), typestr="<f4")
    src = torch.Tensor(src_ptr, SIZE, cuda=True)
    host = np.zeros(SIZE, dtype=np.uint8)
    host_t = torch.Tensor(host.ctypes.data, SIZE, cuda=False)

    reg_a = a.register_memory([dst])
    assert reg_a.getType() == a.nixl_mems["VRAM"], reg_a
    a.register_memory(host_t)
    reg_b = b.register_memory(src)
    assert reg_b.getType() == b.nixl_mems["VRAM"], reg_b
    a.add_remote_agent(b.get_agent_metadata())

    # VRAM -> VRAM READ, with a notification.
    local, remote = a.get_xfer_descs(dst), b.get_xfer_descs(src)
    assert local.getType() == remote.getType() == a.nixl_mems["VRAM"]
    assert local[0] == (dst_ptr, SIZE, 0) and remote[0] == (src_ptr, SIZE, 0)
    finish(a, a.initialize_xfer("READ", local, remote, "cuda-b", b"vram-read"))
    got = download(dst_ptr, SIZE)
    assert (got == want).all(), "VRAM->VRAM READ: wrong bytes"
    notifs = b.wait_notifs(timeout=30)
    assert notifs.get("cuda-a") == [b"vram-read"], notifs

    # DRAM -> VRAM WRITE (our host tensor into b's device memory).
    host[:] = want[::-1]
    finish(a, a.initialize_xfer("WRITE", a.get_xfer_descs(host_t), remote, "cuda-b"))
    assert (download(src_ptr, SIZE) == want[::-1]).all(), "DRAM->VRAM WRITE: wrong bytes"

    # VRAM -> DRAM READ through prepped lists of 4 KiB blocks from both input forms.
    host[:] = 0
    blocks = SIZE // 4096
    lrows = [(host.ctypes.data + i * 4096, 4096, 0) for i in range(blocks)]
    rrows = [(src_ptr + i * 4096, 4096, 0) for i in range(blocks)]
    lh = a.prep_xfer_dlist("NIXL_INIT_AGENT", lrows, "cpu")
    rh = a.prep_xfer_dlist("cuda-b", rrows, "cuda")
    ids = np.arange(blocks)[::-2].copy()
    finish(a, a.make_prepped_xfer("READ", lh, ids, rh, ids))
    expect = want[::-1].reshape(blocks, 4096)
    got = host.reshape(blocks, 4096)
    assert (got[ids] == expect[ids]).all(), "prepped VRAM->DRAM READ: wrong bytes"
    untouched = np.ones(blocks, dtype=bool)
    untouched[ids] = False
    assert (got[untouched] == 0).all(), "prepped VRAM->DRAM READ wrote blocks not asked for"

    # A strided view cannot be one descriptor.
    try:
        a.get_xfer_descs(CudaArray(dst_ptr, (4, 4), typestr="<u4", strides=(32, 4)))
    except ValueError as e:
        assert "contiguous" in str(e)
    else:
        raise AssertionError("a strided CUDA array was described")
    print(f"CUDA-OK {name}", flush=True)


if __name__ == "__main__":
    main()
