"""How much of a file the kernel holds in its page cache (``mincore`` of a mapping)."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_FAILED = ctypes.c_void_p(-1).value


def resident_bytes(path: str | Path) -> int:
    """Bytes of ``path`` in the page cache now (whole pages), read without touching them."""
    size = os.path.getsize(path)
    if size == 0:
        return 0
    page = mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr == _FAILED:
            raise OSError(ctypes.get_errno(), f'mmap of {path} failed')
        try:
            pages = (size + page - 1) // page
            vec = ctypes.create_string_buffer(pages)
            if _LIBC.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), f'mincore of {path} failed')
            return sum(byte & 1 for byte in vec.raw) * page
        finally:
            _LIBC.munmap(addr, size)
    finally:
        os.close(fd)
