"""Describing tensors: torch tensors (never importing torch) and any GPU array that exposes
``__cuda_array_interface__`` (CuPy, Numba, ...), as ``(addr, len, dev)`` with the memory type
``"cpu"`` or ``"cuda"``."""

from __future__ import annotations

import math
import sys

import numpy as np


def is_torch(obj) -> bool:
    """True for a torch tensor; torch counts only if the caller imported it."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def is_tensor(obj) -> bool:
    """A torch tensor or an object with ``__cuda_array_interface__``."""
    return is_torch(obj) or hasattr(type(obj), "__cuda_array_interface__")


def mem_type(t) -> str:
    if is_torch(t):
        return "cuda" if t.is_cuda else "cpu"
    return "cuda"


def desc(t) -> tuple[int, int, int]:
    """``(addr, bytes, device)`` of a contiguous tensor; ValueError for a strided view."""
    if is_torch(t):
        if not t.is_contiguous():
            raise ValueError("tensors must be contiguous to be described")
        dev = t.get_device() if t.is_cuda else 0
        return (t.data_ptr(), t.numel() * t.element_size(), max(dev, 0))
    iface = t.__cuda_array_interface__
    if iface.get("mask") is not None:
        raise ValueError("masked CUDA arrays cannot be described")
    shape = tuple(iface["shape"])
    itemsize = np.dtype(iface["typestr"]).itemsize
    strides = iface.get("strides")
    if strides is not None and tuple(strides) != _c_strides(shape, itemsize):
        if math.prod(shape) > 1:
            raise ValueError("CUDA arrays must be C-contiguous to be described")
    return (int(iface["data"][0]), math.prod(shape) * itemsize, _device_of(t))


def _c_strides(shape, itemsize):
    strides, step = [], itemsize
    for dim in reversed(shape):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def _device_of(t) -> int:
    """The GPU ordinal: ``get_device()`` (torch-like) or ``device.id`` (CuPy); else 0, which
    registration checks against the pointer's real device."""
    get = getattr(t, "get_device", None)
    if callable(get):
        return max(int(get()), 0)
    dev = getattr(getattr(t, "device", None), "id", None)
    return int(dev) if isinstance(dev, int) else 0
