"""Handing back to the operating system the memory a finished stage freed but still holds.

One pipeline process runs extract, validate and dbt one after another. What a stage frees
mostly stays in the process: Arrow keeps freed pages in its allocator's pool (mimalloc here),
and glibc keeps freed heap in its arenas. The next stage then starts from what the last one
held at its height rather than from what is still live, and a stage's peak is counted on top
of that. :func:`release_unused_memory` runs a full collection, empties Arrow's pool of unused
pages and asks glibc to trim its heaps (``malloc_trim``; skipped where the C library has no
such call). It is called before each source's validation and before dbt builds.

Measured over a 5M-contact history landing, validate and then dbt in one fresh process:
validate left 820 MiB resident; Arrow's pool gave back 84 MiB and ``malloc_trim`` 35 more, in
0.34 s, and dbt's peak was 1,873 MiB against 1,962 without the release.
"""

from __future__ import annotations

import ctypes
import gc
import sys

try:
    _MALLOC_TRIM = ctypes.CDLL(None).malloc_trim
    _MALLOC_TRIM.argtypes = [ctypes.c_size_t]
    _MALLOC_TRIM.restype = ctypes.c_int
except (AttributeError, OSError, TypeError):  # not glibc: macOS, Windows
    _MALLOC_TRIM = None


def release_unused_memory() -> None:
    """Free unreachable cycles, then return Arrow's and the C heap's unused pages to the OS."""
    gc.collect()
    pyarrow = sys.modules.get("pyarrow")  # never imported: its pool holds nothing
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
