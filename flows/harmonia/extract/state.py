"""Incremental state: the watermark per source/entity kept in ``landing.state``.

Semantics (the same for every source; what differs is declared in ``sources.Incremental``):

* **Closed start.** A run asks for records from ``watermark - lookback`` inclusive (one unit
  less for servers that filter with ``>``). Boundary records come again; the landing dedupe on
  (key, version) drops them, so overlap costs a few bytes and never loses a record.
* **Data-based watermark.** The watermark is the largest cursor value *seen in the records*,
  never the client's clock: the vendor's clock (or the demo's simulated one) is what counts.
* **Commit with the data.** State is written only inside the transaction of the page that
  covers it (``Landing.land``). ``per_page`` endpoints (sorted ascending by the cursor,
  or with a resumable vendor cursor such as Zendesk's ``after_cursor``) advance with every
  page; the rest advance only with their last page, because their pages are unsorted or
  newest first and a mid-run watermark would skip the older pages not yet read. Paging tokens
  (NextToken, next_page_uri, starting_after, after) are bound to one query and expire, so they
  are never state. A crash therefore resumes from the last committed state: pages already
  landed come again and are counted as duplicates.
* **Never backwards.** A new watermark is ``max(old, seen)``.
* **Full refresh** ignores the state (reads from ``since`` or the beginning) and re-lands;
  dedupe keeps the content identical. **Backfill** ``since``/``until``: ``since`` replaces
  the state's start; a run bounded by ``until`` sends it where the API takes an upper bound,
  filters the rest client-side, and leaves the state untouched (a window in the past says
  nothing about where the open-ended stream stands).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

if TYPE_CHECKING:  # paginators use this module's time helpers; sources imports paginators
    from harmonia.extract.sources import Incremental


def read_state(conn: duckdb.DuckDBPyConnection, source: str, entity: str) -> dict[str, Any] | None:
    row = conn.execute(
        "select cursor from landing.state where source = ? and entity = ?", [source, entity]
    ).fetchone()
    return orjson.loads(row[0]) if row else None


def to_epoch(value: Any) -> float | None:
    """A vendor timestamp as epoch seconds: unix s or ms, ISO 8601, RFC 2822; None if not."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1000 if value > 1e11 else float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    # each reading is tried only where it can succeed, not to fail with a raise: the window
    # reads every record's cursor (a float() of an RFC 2822 date cost as much as its parse)
    head = text[0]
    iso_like = text[:4].isdigit() and text[4:5] == "-"  # no float starts so
    if not iso_like and (head in _FLOAT_HEADS or not head.isascii()):
        try:
            return to_epoch(float(text))
        except ValueError:
            pass
    parsed = None
    if head.isdigit():  # an ISO 8601 date starts with its year
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed is None:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


#: what a text ``float()`` reads can start with (digits, sign, point, inf, nan, any case;
#: and any non-ASCII character: it takes every script's decimal digits)
_FLOAT_HEADS = frozenset("0123456789+-.iInN")


def format_cursor(epoch: float, fmt: str) -> Any:
    """Epoch seconds in the form the server's filter takes."""
    if fmt == "epoch":
        return int(epoch)
    if fmt == "epoch_ms":
        return int(epoch * 1000)
    if fmt == "date":
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")
    raise ValueError(f"unknown cursor format {fmt!r}")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Window:
    """What one run of one incremental endpoint asks for, and what it may write back."""

    spec: Incremental
    start: float | None  # epoch seconds sent to the server / compared client-side
    until: float | None
    resume_cursor: str | None  # a vendor cursor to continue from instead of ``start``
    previous: float | None  # the committed watermark when the run began
    writes_state: bool
    seen: float | None = None  # the largest cursor among records read this run

    @classmethod
    def plan(
        cls,
        spec: Incremental,
        state: dict[str, Any] | None,
        *,
        full_refresh: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Window:
        previous = (state or {}).get("watermark")
        resume = None
        if since is not None:
            start: float | None = since.timestamp()
        elif full_refresh or previous is None:
            start = float(spec.initial)
        else:
            start = max(float(spec.initial), previous - spec.lookback.total_seconds())
            if spec.resume_path:
                resume = (state or {}).get(spec.resume_path)
        return cls(
            spec=spec,
            start=start,
            until=until.timestamp() if until is not None else None,
            resume_cursor=resume,
            previous=previous,
            writes_state=until is None,
        )

    # -- the request ----------------------------------------------------------------------

    def server_start(self) -> Any:
        """The start value as the server's filter takes it (one unit less if strict)."""
        assert self.start is not None
        start = self.start
        if self.spec.strict:
            start -= 0.001 if self.spec.format == "epoch_ms" else 1
        return format_cursor(max(start, 0), self.spec.format)

    def server_end(self) -> Any:
        """The upper bound for APIs that require one (Connect's ``EndTime``): ``until``, or
        a day past the later of the client clock and the watermark, so that a vendor clock a
        little ahead of ours (or the demo's simulated one) loses nothing."""
        if self.until is not None:
            return format_cursor(self.until, self.spec.format)
        return format_cursor(max(time.time(), self.previous or 0.0) + 86400, self.spec.format)

    # -- the records ----------------------------------------------------------------------

    def position(self, record: Any) -> tuple[float | None, str]:
        """A record's cursor and where it stands: ``in``, ``after`` until, ``before`` start."""
        value = to_epoch(record.get(self.spec.cursor_field)) if isinstance(record, dict) else None
        if value is None:
            return None, "in"  # unreadable cursor (malformed record): land it, let GX judge
        if self.until is not None and value > self.until:
            return value, "after"
        # whole-day filters: the server returns the full first day, which is simply overlap
        if self.spec.send == "client" and self.start is not None and value < self.start:
            return value, "before"
        return value, "in"

    def observe(self, value: float | None) -> None:
        if value is not None and (self.seen is None or value > self.seen):
            self.seen = value

    def state(self, resume_cursor: str | None = None) -> dict[str, Any] | None:
        """The state to commit now, or None when this run must not write it."""
        if not self.writes_state:
            return None
        marks = [m for m in (self.previous, self.seen) if m is not None]
        cursor: dict[str, Any] = {}
        if marks:
            cursor["watermark"] = max(marks)
            cursor["watermark_at"] = _iso(max(marks))
        if self.spec.resume_path and resume_cursor:
            cursor[self.spec.resume_path] = resume_cursor
        return cursor
