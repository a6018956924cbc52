"""Raw-memory helpers NIXL's tests and examples use: ``malloc_passthru``, ``free_passthru``,
``ba_buf`` (fill a buffer with a byte pattern) and ``verify_transfer`` (compare two buffers)."""

from __future__ import annotations

import ctypes

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.restype = None
_libc.free.argtypes = [ctypes.c_void_p]


def malloc_passthru(size: int) -> int:
    """Allocates ``size`` bytes with the C allocator; returns the address (0 on failure)."""
    if size < 0:
        raise ValueError("size must be non-negative")
    return _libc.malloc(size) or 0


def free_passthru(addr: int) -> None:
    """Frees memory from ``malloc_passthru``."""
    _libc.free(addr)


def ba_buf(addr: int, size: int) -> None:
    """Fills ``size`` bytes at ``addr`` with the pattern ``i % 256``."""
    pattern = bytes(range(256)) * (size // 256 + 1)
    ctypes.memmove(addr, pattern, size)


def verify_transfer(addr1: int, addr2: int, size: int) -> None:
    """Raises ``AssertionError`` if the ``size`` bytes at the two addresses differ."""
    if ctypes.string_at(addr1, size) != ctypes.string_at(addr2, size):
        raise AssertionError(f"buffers at {addr1:#x} and {addr2:#x} differ")
