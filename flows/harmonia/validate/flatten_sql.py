"""The flattener run inside DuckDB: ``flatten.flatten``'s frame, built from landed records in SQL.

At 1M contacts the Python flattener was 59 % of ``harmonia validate`` (py-spy: ~110 of 184 s,
every value of every record walked by a Python loop, one core). Here one statement parses each
record once (``json_extract`` with every field's path), and returns every field's JSON type and
text as Arrow columns; DuckDB does that on both cores. Python finishes only what DuckDB would
judge differently: float and container texts (re-serialized by orjson, as ``as_text`` does),
``float()`` of strings, phones, e-mails, and timestamps outside the plain formats the SQL
parses, each once per distinct value.

The frame is exactly ``flatten.flatten``'s, column for column and dtype for dtype
(``tests/test_validate_suites.py`` compares both on every odd value of every field). Records
that DuckDB's JSON reader would read differently from orjson go through ``flatten.flatten``
whole: text DuckDB does not parse, and text with what its lenient reader accepts and orjson
refuses (trailing commas, ``NaN``/``Infinity``, overflowing exponents, integers past 64
bits). Landing keeps each record's text as sent, but only from pages that are strict JSON
(``extract.pages``), so real records can hold only the last two. A key written twice in one
object is read first by DuckDB and last by orjson; no vendor sends one
(``docs/data-quality.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from harmonia.validate.fields import Field, RecordCheck
from harmonia.validate.flatten import (
    _EPOCH_MAX,
    TYPE_COLUMN,
    _email_ok,
    _number,
    _parse_text_timestamp,
    all_fields,
    columns_frame,
    flatten,
    flatten_columns,
    json_type,
    phone_parseable,
)

#: DuckDB's ``json_type`` → the JSON type ``flatten.json_type`` names (a string's two names
#: are told apart by ``float()``, in Python)
_TYPE_NAMES = {
    "NULL": "null",
    "BOOLEAN": "bool",
    "BIGINT": "number",
    "UBIGINT": "number",
    "DOUBLE": "number",
    "OBJECT": "object",
    "ARRAY": "array",
}
_NUMBERS = ("BIGINT", "UBIGINT", "DOUBLE")

#: text that DuckDB's JSON reader accepts and orjson refuses or reads otherwise: trailing
#: commas; and where a value starts (after ``:``, ``,`` or ``[``), ``NaN`` / ``Infinity`` /
#: ``inf`` in any case, whole integers of 19 digits or more (orjson reads those past 64 bits as
#: floats) and positive exponents of three digits (past 1.8e308 orjson refuses the number).
#: A string that only looks like one costs speed, not exactness: its record goes to Python.
PYTHON_ONLY = (
    r",\s*[\]}]|[:,\[]\s*([-+]?(?i:nan|inf|infinity)|-?[0-9]{19,}|-?[0-9]+(\.[0-9]*)?[eE]\+?[0-9]{3,})"
    r"\s*([,}\]]|$)"
)

# ISO 8601 and RFC 2822 in the plain forms the vendors send, which DuckDB and Python parse to
# the same instant (a date that does not exist fails both); anything else is parsed in Python
_ISO = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)
_RFC2822 = (
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" [0-9]{4} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] [+-]([01][0-9]|2[0-3])[0-5][0-9]$"
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _key(name: str) -> str:
    return '."' + name.replace('"', '\\"') + '"'


class _Paths:
    """The JSON paths of one ``json_extract`` call, and each field's value expression over
    its result ``j`` (a list: ``j[i]`` is the i-th path's JSON, NULL when absent)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def slot(self, path: str) -> str:
        if path not in self.paths:
            self.paths.append(path)
        return f"j[{self.paths.index(path) + 1}]"

    def value(self, path: str) -> str:
        """SQL for ``flatten.dig(record, path)`` as JSON (NULL for ``MISSING``)."""
        json_path = "$"
        segments = path.split(".")
        special = [s for s in segments if s.isdigit() or ("[" in s and s.endswith("]"))]
        if len(special) > 1:
            raise ValueError(f"{path!r}: one list index or selector per path is compiled to SQL")
        for n, seg in enumerate(segments):
            if "[" in seg and seg.endswith("]"):
                name, sel = seg[:-1].split("[", 1)
                key, _, want = sel.partition("=")
                # dig compares str(item[key]): for JSON text and integers that is the text
                if not want.isdigit():
                    raise ValueError(f"selector {seg!r}: only integer ids are compiled to SQL")
                items = self.slot(json_path + _key(name))
                rest = "$" + "".join(_key(s) for s in segments[n + 1 :])
                pick = (
                    f"list_filter(json_extract({items}, '$[*]'), lambda e: "
                    f"json_type(e, {_quote('$' + _key(key))}) in ('BIGINT', 'UBIGINT', 'VARCHAR')"
                    f" and json_extract_string(e, {_quote('$' + _key(key))}) = {_quote(want)})[1]"
                )
                return (
                    f"case when json_type({items}) = 'ARRAY' "
                    f"then json_extract({pick}, {_quote(rest)}) end"
                )
            if seg.isdigit():
                # dig: an index into a list, or the key of an object; one of them is absent
                rest = "".join(_key(s) for s in segments[n + 1 :])
                as_index = self.slot(f"{json_path}[{seg}]{rest}")
                as_key = self.slot(f"{json_path}{_key(seg)}{rest}")
                return f"coalesce({as_index}, {as_key})"
            json_path += _key(seg)
        return self.slot(json_path)


def _field_sql(i: int, f: Field, value: str) -> list[str]:
    """The columns DuckDB computes for field ``i``: type, text, and what its kind needs."""
    t = f"json_type({value})"
    cols = [
        f"{t} as t{i}",
        f"case {t} when 'VARCHAR' then json_extract_string({value}, '$') "
        f"when 'NULL' then null else {value}::varchar end as s{i}",
    ]
    if f.kind in ("number", "integer") or (
        f.kind == "timestamp" and f.ts_format in ("epoch", "epoch_ms")
    ):
        cols.append(f"case when {t} in {_NUMBERS} then {value}::double end as d{i}")
    elif f.kind == "timestamp":
        text = f"json_extract_string({value}, '$')"
        if f.ts_format == "rfc2822":
            pattern = _RFC2822
            parsed = f"try_strptime(substr({text}, 6), '%d %b %Y %H:%M:%S %z')"
        else:
            pattern = _ISO
            parsed = f"try_cast({text} as timestamptz)"
        matched = f"({t} = 'VARCHAR' and regexp_full_match({text}, {_quote(pattern)}))"
        cols.append(f"{matched} as m{i}")
        cols.append(f"case when {matched} then epoch_us({parsed}) end as u{i}")
    return cols


def flatten_query(
    check: RecordCheck, relation: str, order_by: str, python_only: str | None = PYTHON_ONLY
) -> str:
    """SQL over ``relation`` (``record_id``, ``record_version``, ``raw_json``) that returns,
    ordered by ``order_by``, each record's key, whether Python must flatten it (``fb``, with
    its ``raw``: text DuckDB cannot parse, or that matches ``python_only``), and per field
    ``i`` its columns ``t{i}``, ``s{i}``, and ``d{i}`` or ``m{i}``/``u{i}``."""
    paths = _Paths()
    values = [paths.value(f.path) for f in all_fields(check)]
    per_field = [
        col for i, (f, v) in enumerate(zip(all_fields(check), values, strict=True))
        for col in _field_sql(i, f, f"v{i}")
    ]  # fmt: skip
    value_cols = ", ".join(f"{v} as v{i}" for i, v in enumerate(values))
    path_list = "[" + ", ".join(_quote(p) for p in paths.paths) + "]"
    lenient = "" if python_only is None else f"or regexp_matches(raw, {_quote(python_only)})"
    return f"""
        with records as (
            select record_id, record_version, raw_json::varchar as raw, row({order_by}) as _order,
                try(json_extract(raw_json::varchar, {path_list})) as j
            from ({relation})
        ),
        judged as (
            select *, j is null {lenient} as fb
            from records
        ),
        fields as (
            select record_id, record_version, fb, _order,
                case when fb then raw end as raw, {value_cols}
            from (select * replace (case when fb then null else j end as j) from judged)
        )
        select coalesce(record_id::varchar, '') as record_id,
            coalesce(record_version::varchar, '') as record_version, fb, raw,
            {", ".join(per_field)}
        from fields
        order by _order
    """


def _unique_map(texts: pa.Array, mask: pa.Array, judge: Callable[[str], bool]) -> pa.Array:
    """``judge`` of each text where ``mask`` is true (once per distinct text), else false."""
    chosen = pc.filter(texts, mask)
    distinct = pc.unique(chosen).to_pylist()
    good = pa.array([v for v in distinct if judge(v)], pa.string())
    hit = pc.fill_null(pc.is_in(texts, value_set=good), False)
    return pc.and_(pc.fill_null(mask, False), hit)


def _strings(texts: pa.Array) -> pd.Series | np.ndarray:
    """A text column as ``pd.DataFrame`` builds one from a list of ``str``/``None``."""
    if texts.null_count == len(texts):
        return np.array([None] * len(texts), dtype=object)
    return pd.Series(texts, dtype=pd.StringDtype(na_value=np.nan))


def _timestamps(f: Field, i: int, table: pa.Table, t: pa.Array, s: pa.Array) -> np.ndarray:
    """Epoch seconds of field ``i`` (NaN where absent or unparseable), as ``flatten`` has them."""
    if f.ts_format in ("epoch", "epoch_ms"):
        raw = table[f"d{i}"].to_numpy(zero_copy_only=False).astype("float64")
        seconds = raw / 1000.0 if f.ts_format == "epoch_ms" else raw
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(seconds) & (seconds >= 0) & (seconds < _EPOCH_MAX)
        return np.where(ok, seconds, np.nan)
    micros = table[f"u{i}"].to_numpy(zero_copy_only=False).astype("float64")
    seconds = micros / 1e6
    with np.errstate(invalid="ignore"):
        ok = (seconds >= 0) & (seconds < _EPOCH_MAX)
    out = np.where(ok, seconds, np.nan)
    # strings the SQL did not parse: Python's parser (cached per distinct text)
    rest = pc.and_(pc.equal(t, "VARCHAR"), pc.invert(pc.fill_null(_column(table, f"m{i}"), False)))
    todo = np.flatnonzero(pc.fill_null(rest, False).to_numpy(zero_copy_only=False))
    if len(todo):
        texts = pc.take(s, pa.array(todo)).to_pylist()
        fmt = f.ts_format
        for pos, text in zip(todo, texts, strict=True):
            ts = _parse_text_timestamp(text, fmt)
            out[pos] = np.nan if ts is None else ts
    # anything else present (a number, a bool, an object) is not a vendor's timestamp text
    return out


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table[name]
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def frame_from_table(
    check: RecordCheck, table: pa.Table, *, phone_region: str = "BR"
) -> pd.DataFrame:
    """The flatten frame from ``flatten_query``'s result."""
    n = table.num_rows
    if n == 0:
        return flatten(check, [])
    cols: dict[str, Any] = {
        "record_id": _strings(_column(table, "record_id")),
        "record_version": _strings(_column(table, "record_version")),
    }
    mismatches: list[list[str] | None] = [None] * n
    fields = all_fields(check)
    per_field: dict[str, Any] = {}
    for i, f in enumerate(fields):
        t = _column(table, f"t{i}")
        s = _column(table, f"s{i}")
        present = pc.fill_null(pc.and_(pc.is_valid(t), pc.not_equal(t, "NULL")), False)
        is_text = pc.fill_null(pc.equal(t, "VARCHAR"), False)
        # floats and containers: their text as orjson writes it (``as_text``)
        redo = pc.fill_null(pc.is_in(t, value_set=pa.array(["DOUBLE", "OBJECT", "ARRAY"])), False)
        if pc.any(redo).as_py():
            values = s.to_pylist()
            for pos in np.flatnonzero(redo.to_numpy(zero_copy_only=False)):
                values[pos] = orjson.dumps(orjson.loads(values[pos])).decode()
            s = pa.array(values, pa.string())
        per_field[f.name] = _strings(s)

        accepted = frozenset(f.accepted_types)
        ok_types = [k for k, v in _TYPE_NAMES.items() if v in accepted or v == "null"]
        wrong = pc.and_(present, pc.invert(pc.is_in(t, value_set=pa.array(ok_types))))
        if {"string", "numeric_string"} <= accepted:
            wrong = pc.and_(wrong, pc.invert(is_text))
            numeric_text = None
        else:
            numeric_text = _unique_map(s, is_text, lambda v: json_type(v) == "numeric_string")
            if "numeric_string" in accepted:
                wrong = pc.or_(
                    pc.and_(wrong, pc.invert(is_text)), pc.and_(is_text, pc.invert(numeric_text))
                )
            elif "string" in accepted:
                wrong = pc.or_(pc.and_(wrong, pc.invert(is_text)), numeric_text)
        todo = np.flatnonzero(pc.fill_null(wrong, False).to_numpy(zero_copy_only=False))
        if len(todo):
            types = pc.take(t, pa.array(todo)).to_pylist()
            numeric = (
                pc.take(numeric_text, pa.array(todo)).to_pylist()
                if numeric_text is not None
                else [False] * len(todo)
            )
            for pos, duck, num in zip(todo, types, numeric, strict=True):
                name = _TYPE_NAMES.get(duck) or ("numeric_string" if num else "string")
                found = mismatches[pos]
                if found is None:
                    mismatches[pos] = [f"{f.path}: {name}"]
                else:
                    found.append(f"{f.path}: {name}")

        present_np = present.to_numpy(zero_copy_only=False)
        if f.kind == "timestamp":
            ts = _timestamps(f, i, table, t, s)
            per_field[f"{f.name}__ts"] = ts
            per_field[f"{f.name}__parseable"] = ~present_np | ~np.isnan(ts)
        elif f.kind in ("phone", "email"):
            judge = (lambda v: phone_parseable(v, phone_region)) if f.kind == "phone" else _email_ok
            good = _unique_map(s, is_text, judge).to_numpy(zero_copy_only=False)
            per_field[f"{f.name}__parseable"] = ~present_np | good
        elif f.kind in ("number", "integer"):
            nums = _column(table, f"d{i}").to_numpy(zero_copy_only=False).astype("float64")
            text_pos = np.flatnonzero(is_text.to_numpy(zero_copy_only=False))
            if len(text_pos):
                texts = pc.take(s, pa.array(text_pos))
                distinct = pc.unique(texts)
                parsed = np.array([_number(v) for v in distinct.to_pylist()], "float64")
                nums[text_pos] = parsed[pc.index_in(texts, value_set=distinct).to_numpy()]
            per_field[f"{f.name}__num"] = nums

    cols[TYPE_COLUMN] = _strings(
        pa.array([None if m is None else "; ".join(m) for m in mismatches], pa.string())
    )
    cols.update(per_field)
    frame = pd.DataFrame(cols)
    fallback = _column(table, "fb").to_numpy(zero_copy_only=False)
    if fallback.any():
        frame = _with_python_rows(check, table, frame, np.flatnonzero(fallback), phone_region)
    return frame


def _with_python_rows(
    check: RecordCheck,
    table: pa.Table,
    frame: pd.DataFrame,
    positions: np.ndarray,
    phone_region: str,
) -> pd.DataFrame:
    """``frame`` with the rows at ``positions`` flattened by ``flatten.flatten`` instead."""
    take = pa.array(positions)
    rows = zip(
        pc.take(_column(table, "record_id"), take).to_pylist(),
        pc.take(_column(table, "record_version"), take).to_pylist(),
        pc.take(_column(table, "raw"), take).to_pylist(),
        strict=True,
    )
    python = flatten_columns(check, list(rows), phone_region=phone_region)
    cols: dict[str, list[Any]] = {}
    for name in frame.columns:
        values = frame[name].tolist()
        if isinstance(frame[name].dtype, pd.StringDtype):
            values = [None if v is np.nan or v != v else v for v in values]
        for pos, value in zip(positions, python[name], strict=True):
            values[pos] = value
        cols[name] = values
    return columns_frame(cols)


def _arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    to_table = getattr(relation, "to_arrow_table", None)  # DuckDB 2.0; 1.x calls it arrow()
    return to_table() if to_table is not None else relation.arrow()


def flatten_in_duckdb(
    con: duckdb.DuckDBPyConnection,
    check: RecordCheck,
    relation: str,
    params: Sequence[Any] = (),
    *,
    order_by: str = "record_id, record_version",
    phone_region: str = "BR",
) -> pd.DataFrame:
    """``flatten.flatten`` of the records ``relation`` selects, in ``order_by`` order."""
    query = flatten_query(check, relation, order_by)
    table = _arrow(con.sql(query, params=list(params)))
    return frame_from_table(check, table, phone_region=phone_region)
