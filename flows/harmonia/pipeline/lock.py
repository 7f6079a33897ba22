"""The warehouse lock: one writing pipeline run per DuckDB file at a time.

DuckDB allows one writer *process* per database file; a second process that opens the file for
writing fails at some random point with an IO error, and two overlapping runs that did get
through one after the other could each advance the same watermark from the same start. So every
run that writes (``pipeline``, the scheduled flows) first takes an OS file lock
(``fcntl.flock``) on ``<warehouse>.lock`` and keeps it for its whole writing part.

* **Bounded wait.** ``wait_seconds`` (default 10 minutes) bounds the wait for another run to
  finish; ``0`` fails fast. Either way a run that does not get the lock raises
  :class:`WarehouseBusy`, naming the process that holds it.
* **Crash safe.** The kernel drops a ``flock`` when its holder dies, so a killed run never
  leaves a stale lock behind; the lock file itself stays (deleting it would race).
* **Re-entrant in the thread that holds it** (``nightly`` runs the ``pipeline`` flow inside its
  own lock); other threads of the same process wait like other processes do.

Across machines the Prefect global concurrency limit ``harmonia-warehouse`` (see
``docs/operations.md``) plays the same role; this lock is what protects the file itself.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

DEFAULT_WAIT_SECONDS = 600.0


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse lock (after waiting ``waited`` seconds)."""

    def __init__(self, warehouse: Path, holder: str, waited: float) -> None:
        self.warehouse = warehouse
        self.holder = holder
        self.waited = waited
        how = "fail-fast" if waited == 0 else f"waited {waited:.0f}s"
        super().__init__(
            f"warehouse {warehouse} is busy: another run holds {lock_path(warehouse)} "
            f"({holder or 'holder unknown'}); {how}. Retry later or raise the lock wait."
        )


def lock_path(warehouse: Path | str) -> Path:
    """``<warehouse>.lock`` next to the warehouse file."""
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".lock")


@dataclass
class _Held:
    """This process's hold on one lock file."""

    guard: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    handle: IO[str] | None = None


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _held_for(path: Path) -> _Held:
    with _HELD_GUARD:
        return _HELD.setdefault(str(path.resolve()), _Held())


def read_holder(warehouse: Path | str) -> str:
    """What the current holder wrote into the lock file (pid, host, what, since); may be stale."""
    try:
        return lock_path(warehouse).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


class WarehouseLock:
    """``with WarehouseLock(path, wait_seconds=60, holder="incremental"):`` … writes …

    :meth:`acquire` takes the lock (so ``with acquire_warehouse(...)`` works too) and returns
    the lock; leaving the ``with`` block releases it.
    """

    def __init__(
        self,
        warehouse: Path | str,
        *,
        wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
        holder: str = "harmonia",
        poll_seconds: float = 0.5,
        on_wait: Any = print,
    ) -> None:
        self.warehouse = Path(warehouse)
        self.path = lock_path(self.warehouse)
        self.wait_seconds = None if wait_seconds is None else max(0.0, float(wait_seconds))
        self.holder = holder
        self.poll_seconds = poll_seconds
        self.on_wait = on_wait
        self._acquired = False

    def acquire(self) -> WarehouseLock:
        if self._acquired:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        held = _held_for(self.path)
        started = time.monotonic()
        timeout = -1 if self.wait_seconds is None else self.wait_seconds
        if not held.guard.acquire(timeout=timeout):  # another thread of this process holds it
            raise WarehouseBusy(self.warehouse, read_holder(self.warehouse), self.wait_seconds or 0)
        try:
            if held.depth == 0:
                held.handle = self._flock(started)
            held.depth += 1
        except BaseException:
            held.guard.release()
            raise
        self._acquired = True
        return self

    def _flock(self, started: float) -> IO[str]:
        # "a" never truncates what the current holder wrote; we rewrite it once we hold it
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while held
        told = False
        try:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if self.wait_seconds is not None and waited >= self.wait_seconds:
                        raise WarehouseBusy(
                            self.warehouse, read_holder(self.warehouse), self.wait_seconds
                        ) from None
                    if not told and self.on_wait is not None:
                        self.on_wait(
                            f"waiting for the warehouse lock {self.path} "
                            f"(held by {read_holder(self.warehouse) or 'another run'})"
                        )
                        told = True
                    time.sleep(self.poll_seconds)
            handle.seek(0)
            handle.truncate()
            handle.write(
                f"pid {os.getpid()} on {socket.gethostname()}: {self.holder}, "
                f"since {datetime.now(UTC).isoformat(timespec='seconds')}\n"
            )
            handle.flush()
            if told and self.on_wait is not None:
                self.on_wait(f"got the warehouse lock after {time.monotonic() - started:.1f}s")
            return handle
        except BaseException:
            handle.close()
            raise

    def release(self) -> None:
        if not self._acquired:
            return
        self._acquired = False
        held = _held_for(self.path)
        held.depth -= 1
        if held.depth == 0 and held.handle is not None:
            handle, held.handle = held.handle, None
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        held.guard.release()

    def __enter__(self) -> WarehouseLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_warehouse(
    warehouse: Path | str,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
    holder: str = "harmonia",
) -> WarehouseLock:
    """Take the warehouse lock now (raises :class:`WarehouseBusy`); release it with ``with``."""
    return WarehouseLock(warehouse, wait_seconds=wait_seconds, holder=holder).acquire()
