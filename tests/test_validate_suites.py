"""The pieces validation is built from, checked directly: the flattener's parsing decisions (and
that the column-at-a-time flattener builds exactly the frame the record-by-record one did), and
the committed suites (reproducible from the field specs, and up to date with them)."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from harmonia.validate.context import EXPECTATIONS_DIR, open_context
from harmonia.validate.definitions import CHECKS, SURVEYS_RESPONSES, VOICE_CONTACTS
from harmonia.validate.flatten import (
    MISSING,
    TYPE_COLUMN,
    all_fields,
    as_text,
    dig,
    email_parseable,
    flatten,
    json_type,
    parse_timestamp,
    phone_parseable,
)
from harmonia.validate.flatten_sql import PYTHON_ONLY, flatten_query, frame_from_table
from harmonia.validate.suites import ROW_LEVEL, build_suite, write_suites


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (1_700_000_000, "epoch", 1_700_000_000.0),
        ("1700000000", "epoch", None),  # a string where the vendor sends a number
        (True, "epoch", None),
        ("2026-13-45T25:61:00", "epoch", None),
        ("2024-05-01T12:00:00Z", "iso8601", 1_714_564_800.0),
        ("2024-05-01T12:00:00+0000", "iso8601", 1_714_564_800.0),
        ("2024-05-01T12:00:00.000Z", "iso8601", 1_714_564_800.0),
        ("2026-02-30T25:00:00Z", "iso8601", None),
        ("31/02/2026 10:00", "iso8601", None),
        ("Wed, 01 May 2024 12:00:00 +0000", "rfc2822", 1_714_564_800.0),
        ("Fri, 31 Feb 2026 25:61:00 +0000", "rfc2822", None),
    ],
)
def test_timestamps_parse_strictly_in_the_vendor_format(value, fmt, expected):
    assert parse_timestamp(value, fmt) == expected


def test_phones_are_judged_by_phonenumbers_with_a_default_region():
    assert phone_parseable("(11) 98765-4321", "BR")
    assert phone_parseable("+55 11 98765 4321", "BR")
    assert not phone_parseable("(11) 98765-4321", "US")  # no country code, wrong region
    assert not phone_parseable("+55 11 9XXXX-0000", "BR")
    assert not phone_parseable("sem telefone", "BR")


def test_emails_are_usable_once_trimmed():
    assert email_parseable("  Ana.Lima@Example.COM ")
    assert not email_parseable("ana lima@example.com")
    assert not email_parseable("ana@example")
    assert not email_parseable("@example.com")


def test_flatten_marks_defects_without_touching_unknown_fields():
    good = {"ContactId": "c1", "Channel": "VOICE", "InitiationMethod": "INBOUND",
            "InitiationTimestamp": 100, "LastUpdateTimestamp": 200, "x_new": {"a": 1},
            "Agent": {"ConnectedToAgentTimestamp": 150, "AgentInteractionDuration": 30},
            "Attributes": {"resolved": "true"}}  # fmt: skip
    bad = dict(good, ContactId="c2", InitiationTimestamp="2026-13-45T25:61:00",
               Attributes={"resolved": True})  # fmt: skip
    frame = flatten(VOICE_CONTACTS, [("c1", "200", orjson.dumps(good)),
                                     ("c2", "200", orjson.dumps(bad))])  # fmt: skip
    first, second = frame.iloc[0], frame.iloc[1]
    assert first.initiated_at__ts == 100 and first.initiated_at__parseable
    assert frame.type_mismatches.isna().tolist() == [True, False]
    assert not second.initiated_at__parseable
    assert second.initiated_at == "2026-13-45T25:61:00"
    assert second.type_mismatches == "InitiationTimestamp: string; Attributes.resolved: bool"
    assert "x_new" not in frame.columns


def test_suites_use_only_row_level_expectations():
    for check in CHECKS.values():
        for expectation in build_suite(check).expectations:
            assert expectation.expectation_type in ROW_LEVEL
    ranges = [e for e in build_suite(SURVEYS_RESPONSES).expectations
              if getattr(e, "row_condition", None)]  # fmt: skip
    assert len(ranges) == 2  # NPS 0–10, CSAT 1–5


def test_committed_suites_are_reproducible_and_up_to_date(tmp_path: Path):
    suites = tmp_path / "expectations"
    shutil.copytree(EXPECTATIONS_DIR, suites)
    committed = {p.name: p.read_bytes() for p in EXPECTATIONS_DIR.glob("*.json")}
    context = open_context(tmp_path / "gx", suites)
    written = write_suites(context)
    assert {p.name for p in written} == {f"{name}.json" for name in CHECKS} == set(committed)
    regenerated = {p.name: p.read_bytes() for p in suites.glob("*.json")}
    assert regenerated == committed, "run `harmonia write-suites` and commit expectations/"


def reference_flatten(
    check: Any, rows: Iterable[tuple[Any, Any, Any]], phone_region: str = "BR"
) -> pd.DataFrame:
    """The flattener as it was before it was vectorized (issue #8): one record at a time, one
    field at a time, through the scalar helpers. The frame the suites judge must not change."""

    def number(value: Any) -> float:
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
                cols[f"{f.name}__num"].append(number(value))
        cols[TYPE_COLUMN].append("; ".join(mismatches) or None)
    frame = pd.DataFrame(cols)
    for name in frame.columns:
        if name.endswith(("__ts", "__num")):
            frame[name] = frame[name].astype("float64")
        elif name.endswith("__parseable"):
            frame[name] = frame[name].astype(bool)
    return frame


def duckdb_flatten(
    check: Any, rows: list[tuple[Any, Any, Any]], python_only: str | None = PYTHON_ONLY
) -> tuple[pd.DataFrame, int]:
    """``flatten_sql``'s frame of ``rows`` (registered in DuckDB as a table, kept in their
    order), and how many of them it handed to the Python flattener."""

    def text(value: Any) -> str | None:
        return value.decode() if isinstance(value, bytes) else None if value is None else str(value)

    table = pa.table(
        {
            "pos": list(range(len(rows))),
            **{c: [text(r[i]) for r in rows] for i, c in enumerate(LANDING_COLUMNS)},
        }
    )
    with duckdb.connect() as con:
        con.register("rows", table)
        query = flatten_query(check, "select * from rows", "pos", python_only)
        result = con.sql(query).to_arrow_table()
    return frame_from_table(check, result), result["fb"].to_pylist().count(True)


def assert_same_frame(check: Any, rows: list[tuple[Any, Any, Any]]) -> int:
    """``flatten``, and ``flatten_sql`` in DuckDB, give exactly the reference frame: columns,
    order, dtypes, values. Returns how many rows ``flatten_sql`` gave to Python."""
    old = reference_flatten(check, rows)
    in_duckdb, to_python = duckdb_flatten(check, rows)
    for new in (flatten(check, rows), in_duckdb):
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        assert list(new.columns) == list(old.columns)
        assert new.dtypes.to_dict() == old.dtypes.to_dict()
    return to_python


#: values of every JSON type and shape a vendor has sent or could send where a field sits
ODD_VALUES: list[Any] = [
    MISSING, None, True, False, 0, 1, -1, 1_700_000_000, 1_700_000_000_123, 1.5, -2.25, 1e308,
    "", " ", "x", "12", " 12 ", "1_000", "nan", "inf", "-0", "sem telefone", "(11) 98765-4321",
    "+55 11 98765 4321", "+55 11 9XXXX-0000", "ana@example.com", " Ana.Lima@Example.COM ",
    "ana lima@example.com", "ana@example", "@example.com", "a@b..c", "2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00+0000", "2024-05-01T12:00:00.000Z", "2026-13-45T25:61:00",
    "Wed, 01 May 2024 12:00:00 +0000", "Fri, 31 Feb 2026 25:61:00 +0000", "1800-01-01T00:00:00Z",
    "VOICE", "inbound", "open", "nps", "csat", "true", "ção ✓", [], [1, "a"], {}, {"a": {"b": 1}},
]  # fmt: skip


LANDING_COLUMNS = ("record_id", "record_version", "raw_json")

#: JSON values orjson refuses (or reads as a float) that a lenient reader takes
LENIENT_JSON = ["NaN", "-Infinity", "inf", "1e999", "12345678901234567890123", "[1,2,]", "1,"]


def _put(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``record`` with ``value`` at ``path`` (intermediate objects, lists and selected list
    items created as needed); ``MISSING`` leaves the path absent, and so does a parent that
    another field already set to a scalar."""
    if value is MISSING:
        return record
    obj: Any = record
    steps = path.split(".")
    for n, seg in enumerate(steps):
        if not isinstance(obj, dict | list) or (isinstance(obj, list) and not seg.isdigit()):
            return record
        last = n == len(steps) - 1
        name, sel = seg, None
        if "[" in seg and seg.endswith("]"):
            name, sel = seg[:-1].split("[", 1)
        if isinstance(obj, list):  # a numeric step: the first element
            while len(obj) <= int(name):
                obj.append({})
            if last:
                obj[int(name)] = value
                return record
            obj = obj[int(name)]
            continue
        if not isinstance(obj, dict):
            return record
        if sel is not None:
            key, _, want = sel.partition("=")
            item: dict[str, Any] = {key: int(want) if want.isdigit() else want}
            obj[name] = [{key: "other"}, item]
            obj = item
            continue
        if last:
            obj[name] = value
            return record
        nxt = steps[n + 1]
        obj = obj.setdefault(name, [] if nxt.isdigit() else {})
    return record


def _odd_rows(check: Any) -> list[tuple[Any, Any, Any]]:
    """Every field of ``check`` set, in turn, to every odd value, its parents to the wrong
    shape, plus records that are not JSON objects at all and keys that are null."""
    rows: list[tuple[Any, Any, Any]] = []
    fields = all_fields(check)
    for f in fields:
        for i, value in enumerate(ODD_VALUES):
            record = _put({}, f.path, value)
            # the other fields get a plausible value, so each row differs in one place
            for g in fields:
                if g is not f and ODD_VALUES[(i + len(g.path)) % len(ODD_VALUES)] is not MISSING:
                    record = _put(record, g.path, ODD_VALUES[(i + len(g.path)) % len(ODD_VALUES)])
            rows.append((f"{f.name}-{i}", str(i), orjson.dumps(record)))
        head = f.path.split(".")[0].split("[")[0]
        for j, parent in enumerate(["s", 3, None, True, [], [[]], {}]):
            rows.append((f"{f.name}-parent-{j}", "1", orjson.dumps({head: parent})))
        # what DuckDB's JSON reader accepts and orjson refuses or reads otherwise
        for j, lenient in enumerate(LENIENT_JSON):
            rows.append((f"{f.name}-lenient-{j}", "1", f'{{"{head}":{lenient}}}'.encode()))
    for k, raw in enumerate([b"[]", b"1", b"null", b'"x"', b"{not json", b"", "{}", '{"a": 1}']):
        rows.append((f"not-an-object-{k}", "1", raw))
    rows.append((None, None, b"{}"))
    rows.append((123, 4, b"{}"))
    return rows


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_flatten_in_chunks_of_a_stream_builds_the_one_pass_frame(name: str):
    """Chunks (and a row iterator instead of a list) change nothing, and
    the collector paused while flattening is back as it was found."""
    rows = _odd_rows(CHECKS[name])
    whole = flatten(CHECKS[name], rows, chunk_size=len(rows) + 1)
    assert gc.isenabled()
    for size in (1, 7, len(rows) - 1):
        chunked = flatten(CHECKS[name], iter(rows), chunk_size=size)
        pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
        assert chunked.dtypes.to_dict() == whole.dtypes.to_dict()
    assert gc.isenabled()
    gc.disable()
    try:
        flatten(CHECKS[name], rows[:3], chunk_size=2)
        assert not gc.isenabled()  # not switched on behind the caller's back
    finally:
        gc.enable()
    empty = flatten(CHECKS[name], iter([]))
    assert empty.empty and list(empty.columns) == list(whole.columns)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_flatten_builds_the_reference_frame_for_odd_records(name: str):
    rows = _odd_rows(CHECKS[name])
    to_python = assert_same_frame(CHECKS[name], rows)
    # DuckDB's own reading is what is tested: without the hand-over for text orjson reads
    # otherwise, every row but those (and the two that are not JSON at all) stays in SQL
    lenient = [r for r in rows if "-lenient-" in str(r[0])]
    plain = [r for r in rows if "-lenient-" not in str(r[0])]
    frame, plain_to_python = duckdb_flatten(CHECKS[name], plain, python_only=None)
    pd.testing.assert_frame_equal(frame, reference_flatten(CHECKS[name], plain), check_exact=True)
    assert plain_to_python == 2
    assert to_python >= len(lenient) + 2  # each handed over, or the frames would differ
    # the odd values do reach the checks: types, parse failures and numbers all show up
    frame = flatten(CHECKS[name], rows)
    assert frame[TYPE_COLUMN].notna().any() and frame[TYPE_COLUMN].isna().any()
    parseable = [c for c in frame.columns if c.endswith("__parseable")]
    assert all((~frame[c]).any() for c in parseable)
    nums = [c for c in frame.columns if c.endswith("__num")]
    assert all(frame[c].notna().any() and frame[c].isna().any() for c in nums)


def test_flatten_reads_list_indexes_and_selectors_like_dig():
    from harmonia.validate.definitions import EMAIL_TICKETS

    ticket = {"id": 1, "custom_fields": [{"id": 360000000102, "value": "(11) 98765-4321"},
                                         {"id": "360000000103", "value": "-5"}]}  # fmt: skip
    frame = flatten(EMAIL_TICKETS, [("1", "1", orjson.dumps(ticket))])
    assert frame.requester_phone.tolist() == ["(11) 98765-4321"]
    assert frame.requester_phone__parseable.tolist() == [True]
    assert frame.time_spent__num.tolist() == [-5.0]  # a numeric string: value kept, type flagged
    assert "custom_fields[id=360000000103].value: numeric_string" in frame.type_mismatches[0]


def test_paths_the_sql_flattener_cannot_read_like_dig_are_refused():
    from harmonia.validate.flatten_sql import _Paths

    assert _Paths().value("a.0.b") == "coalesce(j[1], j[2])"
    for path in ("a.0.b.1", "a[id=1].b.0", "a[id=x].b"):
        with pytest.raises(ValueError, match="compiled to SQL"):
            _Paths().value(path)
