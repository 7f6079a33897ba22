"""Flatteners: raw landing JSON → one pandas row of checkable columns per record.

Each source entity's ``RecordCheck`` (``harmonia.validate.definitions``) says which fields to
pull out; this module turns every raw record into ``record_id``, ``record_version`` (the
landing key, what failing rows are identified by) plus the columns described in
``harmonia.validate.fields``: the value as text, its JSON type, parsed timestamps with a
parse-failure marker, a ``phonenumbers``-based ``__parseable`` flag for phones, and so on.

Nothing here decides pass or fail: that is the suite's job. Unknown fields in the JSON
(schema drift) are simply not looked at, and the raw JSON is never modified.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
import pandas as pd

from harmonia.gcpause import gc_paused
from harmonia.phones import read_phone
from harmonia.validate.fields import Field, RecordCheck

#: a field absent from the JSON (as opposed to present with JSON null)
MISSING = object()

#: per record, the fields whose JSON type is not what the models expect (``path: type; ...``)
TYPE_COLUMN = "type_mismatches"

#: epoch seconds outside [1970, 2100) are not plausible record timestamps
_EPOCH_MAX = 4_102_444_800.0


def source_id_field(check: RecordCheck) -> Field:
    """The vendor's primary key inside the JSON, checked like any other required field."""
    return Field(
        "source_id", check.primary_key, "id", required=True, why="primary key of the record"
    )


def all_fields(check: RecordCheck) -> tuple[Field, ...]:
    return (source_id_field(check), *check.fields)


def _split_path(path: str) -> list[tuple[str, tuple[str, str] | None]]:
    parts: list[tuple[str, tuple[str, str] | None]] = []
    for seg in path.split("."):
        if "[" in seg and seg.endswith("]"):
            name, sel = seg[:-1].split("[", 1)
            key, _, value = sel.partition("=")
            parts.append((name, (key, value)))
        else:
            parts.append((seg, None))
    return parts


@lru_cache(maxsize=256)
def _compiled(path: str) -> tuple[tuple[str, tuple[str, str] | None], ...]:
    return tuple(_split_path(path))


def dig(record: Any, path: str) -> Any:
    """The value at ``path`` in ``record``; ``MISSING`` when any step is absent."""
    obj = record
    for name, sel in _compiled(path):
        if isinstance(obj, dict):
            if name not in obj:
                return MISSING
            obj = obj[name]
        elif isinstance(obj, list) and name.isdigit():
            idx = int(name)
            if idx >= len(obj):
                return MISSING
            obj = obj[idx]
        else:
            return MISSING
        if sel is not None:
            key, want = sel
            if not isinstance(obj, list):
                return MISSING
            found = MISSING
            for item in obj:
                if isinstance(item, dict) and str(item.get(key)) == want:
                    found = item
                    break
            if found is MISSING:
                return MISSING
            obj = found
    return obj


def json_type(value: Any) -> str:
    """The JSON type of a value: missing, null, bool, number, numeric_string, string, …"""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "string"
        return "numeric_string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def as_text(value: Any) -> str | None:
    """The value as an auditor would read it: strings as-is, everything else as JSON."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def parse_timestamp(value: Any, fmt: str) -> float | None:
    """Epoch seconds of a vendor timestamp in format ``fmt``; None when it does not parse.

    Strict on purpose: an epoch field must be a number, an ISO field an ISO 8601 string,
    an RFC 2822 field an RFC 2822 string. A naive ISO time is taken as UTC.
    """
    if fmt in ("epoch", "epoch_ms"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        seconds = float(value) / (1000.0 if fmt == "epoch_ms" else 1.0)
        if not math.isfinite(seconds) or not 0 <= seconds < _EPOCH_MAX:
            return None
        return seconds
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        if fmt == "rfc2822":
            parsed = email.utils.parsedate_to_datetime(value)
        else:
            parsed = datetime.fromisoformat(value.strip())
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = parsed.timestamp()
    return seconds if 0 <= seconds < _EPOCH_MAX else None


def phone_parseable(value: str, region: str = "BR") -> bool:
    """Whether ``phonenumbers`` parses the value into a possible number (default ``region``);
    one cached parse per value and process, shared with dbt staging (``harmonia.phones``)."""
    return read_phone(value, region)[0]


def email_parseable(value: str) -> bool:
    """A usable address once trimmed: one ``@``, a local part, a dotted domain, no spaces."""
    candidate = value.strip()
    if not candidate or any(ch.isspace() for ch in candidate):
        return False
    local, at, domain = candidate.rpartition("@")
    if not at or not local or "@" in local or "." not in domain:
        return False
    return all(label for label in domain.split("."))


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None or value is MISSING:
        return np.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return np.nan
    return np.nan


def _values(records: list[dict[str, Any]], path: str) -> list[Any]:
    """``dig(record, path)`` for every record, a whole column at a time.

    A path of plain keys (the usual case) is walked one level at a time over the column;
    list indexes and ``[key=value]`` selectors go through ``dig`` record by record.
    """
    steps = _compiled(path)
    if any(sel is not None or name.isdigit() for name, sel in steps):
        return [dig(record, path) for record in records]
    values: list[Any] = records
    for name, _ in steps:
        values = [v.get(name, MISSING) if type(v) is dict else MISSING for v in values]
    return values


def _texts(values: list[Any]) -> list[str | None]:
    """``as_text`` of every value (strings, by far the most common, are kept as they are)."""
    return [v if type(v) is str else as_text(v) for v in values]


@lru_cache(maxsize=65536)
def _parse_text_timestamp(value: str, fmt: str) -> float | None:
    # the same timestamps recur across records (sideloads, threads, re-landed versions)
    return parse_timestamp(value, fmt)


@lru_cache(maxsize=65536)
def _email_ok(value: str) -> bool:
    return email_parseable(value)


#: records parsed (as Python dicts) at a time: the parsed JSON of a whole slice would take
#: several times its text in memory, the columns only what they keep
FLATTEN_CHUNK = 20_000


def flatten(
    check: RecordCheck,
    rows: Iterable[tuple[str, str, str | bytes]],
    *,
    phone_region: str = "BR",
    chunk_size: int = FLATTEN_CHUNK,
) -> pd.DataFrame:
    """Flatten ``(record_id, record_version, raw_json)`` rows into a checkable frame.

    A record whose JSON is not an object at all gets every field ``missing`` (and so fails
    the required checks) rather than breaking the batch. Built column by column (each field
    once over a chunk of ``chunk_size`` records, so only one chunk is ever parsed at a
    time; ``rows`` may be an iterator), with parse results cached per distinct value: the
    same frame as judging record by record with ``dig``, ``json_type`` and the parsers
    above, faster. ``harmonia.validate.flatten_sql`` builds the same frame inside DuckDB.
    """
    return columns_frame(
        flatten_columns(check, rows, phone_region=phone_region, chunk_size=chunk_size)
    )


def flatten_columns(
    check: RecordCheck,
    rows: Iterable[tuple[str, str, str | bytes]],
    *,
    phone_region: str = "BR",
    chunk_size: int = FLATTEN_CHUNK,
) -> dict[str, list[Any]]:
    """``flatten``'s columns as Python lists, before they become a frame."""
    fields = all_fields(check)
    cols: dict[str, list[Any]] = {"record_id": [], "record_version": [], TYPE_COLUMN: []}
    for f in fields:
        cols[f.name] = []
        if f.kind == "timestamp":
            cols[f"{f.name}__ts"] = []
            cols[f"{f.name}__parseable"] = []
        elif f.kind in ("phone", "email"):
            cols[f"{f.name}__parseable"] = []
        elif f.kind in ("number", "integer"):
            cols[f"{f.name}__num"] = []
    with gc_paused():  # parsed JSON holds no cycles: the collector only costs time here
        chunk: list[tuple[str, str, str | bytes]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= chunk_size:
                _flatten_chunk(fields, chunk, cols, phone_region)
                chunk = []
        if chunk:
            _flatten_chunk(fields, chunk, cols, phone_region)
        del chunk
    return cols


def columns_frame(cols: dict[str, list[Any]]) -> pd.DataFrame:
    """The frame of ``flatten_columns``' lists: numbers as float64, parse flags as bool."""
    frame = pd.DataFrame(cols)
    for name in frame.columns:
        if name.endswith(("__ts", "__num")):
            frame[name] = frame[name].astype("float64")
        elif name.endswith("__parseable"):
            frame[name] = frame[name].astype(bool)
    return frame


def _flatten_chunk(
    fields: tuple[Field, ...],
    rows: list[tuple[str, str, str | bytes]],
    cols: dict[str, list[Any]],
    phone_region: str,
) -> None:
    """Append the columns of ``rows`` to ``cols`` (every value depends on its record alone)."""
    ids = cols["record_id"]
    versions = cols["record_version"]
    records: list[dict[str, Any]] = []
    for record_id, record_version, raw in rows:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        records.append(record if type(record) is dict else {})
        ids.append("" if record_id is None else str(record_id))
        versions.append("" if record_version is None else str(record_version))

    n = len(records)
    mismatches: list[list[str] | None] = [None] * n
    for f in fields:
        values = _values(records, f.path)
        texts = _texts(values)
        cols[f.name].extend(texts)
        accepted = frozenset((*f.accepted_types, "missing", "null"))
        # json_type of a str is only needed when a str may be the wrong type
        strings_ok = {"string", "numeric_string"} <= accepted
        for i, v in enumerate(values):
            if v is None or v is MISSING or (strings_ok and type(v) is str):
                continue
            sent = json_type(v)
            if sent not in accepted:
                found = mismatches[i]
                if found is None:
                    mismatches[i] = [f"{f.path}: {sent}"]
                else:
                    found.append(f"{f.path}: {sent}")
        if f.kind == "timestamp":
            fmt = f.ts_format
            stamps = [
                None
                if t is None
                else (_parse_text_timestamp(v, fmt) if type(v) is str else parse_timestamp(v, fmt))
                for v, t in zip(values, texts, strict=True)
            ]
            cols[f"{f.name}__ts"].extend(np.nan if ts is None else ts for ts in stamps)
            cols[f"{f.name}__parseable"].extend(
                t is None or ts is not None for t, ts in zip(texts, stamps, strict=True)
            )
        elif f.kind == "phone":
            cols[f"{f.name}__parseable"].extend(
                t is None or (type(v) is str and phone_parseable(v, phone_region))
                for v, t in zip(values, texts, strict=True)
            )
        elif f.kind == "email":
            cols[f"{f.name}__parseable"].extend(
                t is None or (type(v) is str and _email_ok(v))
                for v, t in zip(values, texts, strict=True)
            )
        elif f.kind in ("number", "integer"):
            cols[f"{f.name}__num"].extend(
                float(v) if type(v) is int or type(v) is float else _number(v) for v in values
            )
    cols[TYPE_COLUMN].extend(None if m is None else "; ".join(m) for m in mismatches)
