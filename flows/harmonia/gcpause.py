"""Pausing CPython's cyclic garbage collector around bulk JSON parsing, safely across threads.

Parsing allocates about ten containers per record. Every 700 of them CPython runs a
collection, and the full ones walk every live object: the parsed records, and everything
Prefect, GX and pandas hold beside them. Parsed JSON holds no reference cycles, so
refcounting frees all of it, and the collector only costs time there. Measured:

- validate, 123k Messenger messages parsed and kept: 2.9 s with the collector on, 0.27 s
  paused (``validate.flatten``);
- extract, a 200k-contact world over HTTP: ``orjson.loads`` of the pages held the GIL for
  8.6 s of a 35.3 s extract, 1.6 s with the collector paused around it; the extract took
  30.6 s (the pause was then in ``extract.http``). Paused for a source's whole run instead
  (``extract.runner``, now the only pause in extract: a page's records are parsed, keyed
  and landed before they are freed, and a collection in between walked them all), the
  extract took 28.9–32.2 s against 32.2–36.4 s and its process
  CPU 23.5–25.9 s against 26.1–29.8 s (three runs each, alternating). The collector had run
  18–19 full collections per extract; a collection after it found about 500 objects in
  cycles.

The sources extract on threads, so a pause cannot simply switch the collector off and on:
one thread would switch it back on under another's parse. The first pause switches it off
and the last one out restores it as it was found (off stays off).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block, from any thread; afterwards as it was."""
    global _pausers, _was_enabled
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
