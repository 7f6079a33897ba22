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
import phonenumbers

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


@lru_cache(maxsize=65536)
def phone_parseable(value: str, region: str = "BR") -> bool:
    """Whether ``phonenumbers`` parses the value into a possible number (default ``region``)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(number)


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


def flatten(
    check: RecordCheck,
    rows: Iterable[tuple[str, str, str | bytes]],
    *,
    phone_region: str = "BR",
) -> pd.DataFrame:
    """Flatten ``(record_id, record_version, raw_json)`` rows into a checkable frame.

    A record whose JSON is not an object at all gets every field ``missing`` (and so fails
    the required checks) rather than breaking the batch.
    """
    fields = all_fields(check)
    accepted = {f.name: frozenset((*f.accepted_types, "missing", "null")) for f in fields}
    cols: dict[str, list[Any]] = {"record_id": [], "record_version": [], TYPE_COLUMN: []}
    for f in fields:
        cols[f.name] = []
        if f.kind == "timestamp":
            cols[f"{f.name}__ts"] = []
        if f.kind in ("timestamp", "phone", "email"):
            cols[f"{f.name}__parseable"] = []
        if f.kind in ("number", "integer"):
            cols[f"{f.name}__num"] = []

    for record_id, record_version, raw in rows:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            record = {}
        cols["record_id"].append("" if record_id is None else str(record_id))
        cols["record_version"].append("" if record_version is None else str(record_version))
        mismatches = []
        for f in fields:
            value = dig(record, f.path)
            text = as_text(value)
            cols[f.name].append(text)
            sent = json_type(value)
            if sent not in accepted[f.name]:
                mismatches.append(f"{f.path}: {sent}")
            if f.kind == "timestamp":
                ts = None if text is None else parse_timestamp(value, f.ts_format)
                cols[f"{f.name}__ts"].append(np.nan if ts is None else ts)
                cols[f"{f.name}__parseable"].append(text is None or ts is not None)
            elif f.kind == "phone":
                ok = text is None or (
                    isinstance(value, str) and phone_parseable(value, phone_region)
                )
                cols[f"{f.name}__parseable"].append(ok)
            elif f.kind == "email":
                ok = text is None or (isinstance(value, str) and email_parseable(value))
                cols[f"{f.name}__parseable"].append(ok)
            elif f.kind in ("number", "integer"):
                cols[f"{f.name}__num"].append(_number(value))
        cols[TYPE_COLUMN].append("; ".join(mismatches) or None)

    frame = pd.DataFrame(cols)
    for name in frame.columns:
        if name.endswith(("__ts", "__num")):
            frame[name] = frame[name].astype("float64")
        elif name.endswith("__parseable"):
            frame[name] = frame[name].astype(bool)
    return frame
