"""The landing zone in DuckDB: append-only raw records, one batch per page, and the state.

``landing.records`` keeps every record as received (its JSON text as the vendor sent it,
``extract.pages``) with its load metadata, unique on ``(source, entity, record_id,
record_version)``.
``Landing.land`` writes pages — their new records, one ``landing.batches`` row per page and
entity and, when given, the state the pages advance — in ONE transaction, so after a crash
either those pages and their state are there or none of it (``docs/architecture.md``). The
runner hands it several pages of a source at once (a commit costs tens of milliseconds
whatever its size); a parent page (Meta conversations) always lands in the same transaction
as its children's records (messages).

Records are inserted as a whole through an Arrow table; the primary key's index skips
repeats (already landed, or twice in the same page), which are counted as duplicates. The key
indexed is ``record_key``, one 128-bit integer — not the four strings themselves: DuckDB's
``insert or ignore`` into an index of four varchars got slower with every row already in the
table (2M rows in 42 s, 3M in 86 s), into one 128-bit integer it stays near linear (3M in 21 s).

Its top 16 bits are the day of the record's version (``VERSION_DAY_SQL``), the other 112 the
MD5 of (source, entity, record id, version). The day puts the records a run sees — new versions
and the lookback's re-reads, all recent — in one corner of the index: DuckDB loads an index's
nodes from the file as lookups reach them, so a random key made every run read most of the
index, in proportion to the history (schema 2: a 10k-contact increment over 15.4M landed
records spent ~3 s and ~700 MiB on it), while a day-first key reads the newest days'
(``docs/performance.md``, "Tenth round"). A collision of two different keys (odds about
n²/2¹¹³ within one day) would be counted as a duplicate; the four columns stay in the table
as they were.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from harmonia.extract.paginators import dig
from harmonia.settings import limit_duckdb_memory, text_compression

SCHEMA_VERSION = 3
# 2: landing.records keyed by record_key (was the four columns); 3: record_key starts with the
# version's day

# The day of a record's version, as days since 1970-01-01 in 0..65535, 0 when it reads as no
# date. Every API's version is a time: epoch seconds (Amazon Connect, Intercom, our surveys),
# epoch milliseconds, ISO 8601 (Zendesk, HubSpot, Meta) or RFC 2822 (Twilio). Read from the
# text alone, never through the session's time zone, so a key is the same on every machine;
# the day a date carries as written is enough for locality.
VERSION_DAY_SQL = """least(65535, greatest(0, coalesce(
    case
        when regexp_full_match(record_version, '[0-9]{9,11}([.][0-9]+)?')
            then floor(record_version::double / 86400)::integer
        when regexp_full_match(record_version, '[0-9]{12,14}')
            then floor(record_version::double / 86400000)::integer
        else coalesce(
            try_cast(left(record_version, 10) as date),
            try_strptime(substr(record_version, 6, 11), '%d %b %Y')::date
        ) - date '1970-01-01'
    end, 0)))"""

# The record's identity as one 128-bit integer: the version's day, then 112 bits of the MD5.
# The id's length goes in first so no choice of id and version can read as another (the source
# and entity names are ours).
RECORD_KEY_SQL = (
    f"(({VERSION_DAY_SQL})::uhugeint << 112) | (md5_number(concat_ws(chr(31), source, entity, "
    "length(record_id), record_id, record_version)) >> 16)"
)

RECORDS_DDL = """
    create table if not exists landing.records (
        source varchar not null,
        entity varchar not null,
        record_id varchar not null,
        record_version varchar not null,
        raw_json json not null{raw_json_compression},  -- settings.text_compression
        run_id varchar not null,
        batch_id varchar not null,
        page_number integer not null,
        request_url varchar not null,
        extracted_at timestamptz not null,
        record_key uhugeint primary key
    )
"""

# the landing zone's other tables (landing.records: records_ddl)
DDL = [
    "create schema if not exists landing",
    """
    create table if not exists landing.batches (
        batch_id varchar primary key,
        run_id varchar not null,
        source varchar not null,
        entity varchar not null,
        page_number integer not null,
        request_url varchar not null,
        records integer not null,
        landed integer not null,
        duplicates integer not null,
        extracted_at timestamptz not null,
        validated_at timestamptz
    )
    """,
    """
    create table if not exists landing.state (
        source varchar not null,
        entity varchar not null,
        cursor json not null,
        run_id varchar not null,
        updated_at timestamptz not null,
        primary key (source, entity)
    )
    """,
    """
    create table if not exists landing.schema_migrations (
        version integer primary key,
        applied_at timestamptz not null
    )
    """,
]

_PAGE_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("record_version", pa.string()),
        ("raw_json", pa.string()),
    ]
)

# DuckDB checkpoints (folds the WAL into the file, the primary key's index included) when the
# WAL passes this size; its default, 16 MB, meant a checkpoint every few thousand records, each
# rewriting an index that grows with the table: 3M records landed in 88 s, 41 s at 256 MB
# (37.8 s at 1 GB). A commit is durable either way (the WAL); a crash replays at most this much.
CHECKPOINT_THRESHOLD = "256MB"

# DuckDB allows one writer process; within it, commits from the per-source threads are
# serialized here so that concurrent pages never conflict on the shared tables.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def ensure_landing_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the landing schema and tables if missing, migrate an older landing zone, and
    record the schema version — in one transaction."""
    conn.begin()
    try:
        old = _records_to_migrate(conn)
        if old is not None:
            conn.execute(f"alter table landing.records rename to {old}")
            _migrate_records(old, conn)
        conn.execute(DDL[0])
        conn.execute(records_ddl(conn))
        for statement in DDL[1:]:
            conn.execute(statement)
        conn.execute(
            "insert into landing.schema_migrations select ?, ? "
            "where not exists (select 1 from landing.schema_migrations where version = ?)",
            [SCHEMA_VERSION, datetime.now(UTC), SCHEMA_VERSION],
        )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def records_ddl(conn: duckdb.DuckDBPyConnection) -> str:
    """``landing.records``'s DDL for this file (raw_json compressed as ``text_compression``
    says)."""
    return RECORDS_DDL.format(raw_json_compression=text_compression(conn))


def _records_to_migrate(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The name an older landing.records is renamed to before its rows are migrated:
    ``records_v1`` for schema 1 (keyed by its four columns, no ``record_key``), ``records_v2``
    for schema 2 (a plain MD5 key); None for today's table or no landing zone yet."""
    columns = {
        name
        for (name,) in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'landing' and table_name = 'records'"
        ).fetchall()
    }
    if not columns:
        return None
    if "record_key" not in columns:
        return "records_v1"
    return "records_v2" if _schema_version(conn) == 2 else None


def _schema_version(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The newest schema version recorded, None for a new landing zone."""
    exists = conn.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'landing' and table_name = 'schema_migrations'"
    ).fetchall()
    if not exists[0][0]:
        return None
    return conn.execute("select max(version) from landing.schema_migrations").fetchall()[0][0]


def _migrate_records(old: str, conn: duckdb.DuckDBPyConnection) -> None:
    """Copy an older landing.records (renamed to ``old``) into one keyed as this schema keys it,
    every row as it was.

    The rows go in in key order and the primary key comes after them (``alter table``): its
    index is then laid out in key order, so a run reads only the newest days' part of it. Built
    row by row as landed (or under a key declared first) the layout follows the old table's
    order, and lookups of recent keys read most of the index (15M synthetic rows: 2.65 s
    against 0.29 s for 60,000 lookups); declared first it also failed to commit 15M rows in
    1 GB. The old key was unique, so the new one must be: the counts are compared.
    """
    conn.execute(DDL[0])
    conn.execute(records_ddl(conn).replace(" primary key", ""))
    conn.execute(
        f"insert into landing.records select source, entity, record_id, record_version, "
        f"raw_json, run_id, batch_id, page_number, request_url, extracted_at, {RECORD_KEY_SQL} "
        f"from landing.{old} order by 11"
    )
    conn.execute("alter table landing.records add primary key (record_key)")
    (before,) = conn.execute(f"select count(*) from landing.{old}").fetchall()[0]
    (after,) = conn.execute("select count(*) from landing.records").fetchall()[0]
    if before != after:
        raise RuntimeError(f"landing migration copied {after} of {before} records; rolled back")
    conn.execute(f"drop table landing.{old}")


def dump_record(record: Any) -> str:
    """The record as compact JSON text, keys in the order they were received."""
    try:
        return orjson.dumps(record).decode()
    except TypeError:  # integers beyond 64 bits: orjson refuses, the stdlib does not
        import json

        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class PageRows:
    """One entity's records of one page, keyed and serialized, ready to land."""

    source: str
    entity: str
    table: pa.Table  # record_id, record_version, raw_json

    @property
    def received(self) -> int:
        return self.table.num_rows


def key_records(
    source: str, entity: str, records: list[Any], primary_key: str, version_field: str
) -> PageRows:
    """Parsed records serialized (``dump_record``) and keyed as ``key_raw_records`` keys them."""
    raws = [dump_record(record).encode() for record in records]
    return key_raw_records(source, entity, raws, records, primary_key, version_field)


def key_raw_records(
    source: str,
    entity: str,
    raws: Sequence[Any],  # bytes-like: bytes, msgspec.Raw
    records: list[Any],
    primary_key: str,
    version_field: str,
) -> PageRows:
    """Records as JSON text (``raws``, landed as they are) with their key and version read from
    ``records``: the parsed records, or the fields of them that were read
    (``extract.pages.PageDecoder``), position for position.

    A record without a usable key or version (a malformed record) still lands: it is keyed by
    a hash of its text instead, so re-reading the same bytes is a duplicate and different
    bytes are a new version. Validation quarantines it later; landing keeps everything.
    """
    ids: list[str] = []
    versions: list[str] = []
    for raw, record in zip(raws, records, strict=True):
        record_id = _scalar_text(dig(record, primary_key)) if isinstance(record, dict) else None
        version = _scalar_text(dig(record, version_field)) if isinstance(record, dict) else None
        if record_id is None or version is None:
            digest = "~sha1:" + hashlib.sha1(raw, usedforsecurity=False).hexdigest()
            record_id = record_id if record_id is not None else digest
            version = version if version is not None else digest
        ids.append(record_id)
        versions.append(version)
    table = pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(versions, pa.string()), _text_array(raws)],
        schema=_PAGE_SCHEMA,
    )
    return PageRows(source, entity, table)


def _text_array(raws: Sequence[Any]) -> pa.Array:
    """UTF-8 texts (bytes-like: ``bytes`` or ``msgspec.Raw`` slices of a page) as one Arrow
    string array, built from their joined bytes and offsets: no Python object per value.
    The texts are valid UTF-8 already (a page is checked whole: ``PageDecoder.decode``)."""
    offsets = np.zeros(len(raws) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, raws), np.int64, len(raws)), out=offsets[1:])
    data = pa.py_buffer(b"".join(raws))
    return pa.LargeStringArray.from_buffers(len(raws), pa.py_buffer(offsets), data).cast(
        pa.string()
    )


@dataclass(frozen=True)
class PageBatch:
    """One page of one entity, as it will be recorded in ``landing.batches``."""

    rows: PageRows
    page_number: int
    request_url: str  # secret-free
    extracted_at: datetime
    first_of_page: bool = True  # False for a sideload (a second entity of the same page)


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    entity: str
    records: int
    landed: int
    duplicates: int
    first_of_page: bool


_RECORDS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("entity", pa.string()),
        ("record_id", pa.string()),
        ("record_version", pa.string()),
        ("raw_json", pa.string()),
        ("batch_id", pa.string()),
        ("page_number", pa.int32()),
        ("request_url", pa.string()),
        ("extracted_at", pa.timestamp("us", tz="UTC")),
    ]
)


class Landing:
    """Writes pages into the landing tables of one DuckDB file (one per thread: ``cursor``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = duckdb.connect(self.path)
        self.conn.execute(f"set checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        limit_duckdb_memory(self.conn)
        with _WRITE_LOCKS_GUARD:
            self._lock = _WRITE_LOCKS.setdefault(str(Path(self.path).resolve()), threading.Lock())
        with self._lock:
            ensure_landing_schema(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Landing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for one thread on the same database."""
        return self.conn.cursor()

    def land(
        self,
        batches: list[PageBatch],
        *,
        run_id: str,
        state: dict[tuple[str, str], dict[str, Any]] | None = None,
        conn: duckdb.DuckDBPyConnection | None = None,
    ) -> list[BatchResult]:
        """Land page batches and the state they advance in ONE transaction.

        One or more pages (one batch per entity in each); a parent page lands together with
        its children's pages. The records of all batches go in as one Arrow table through one
        ``insert or ignore``: the primary key's index (``record_key``) skips a key+version
        already landed or repeated within the batch, and ``returning`` tells how many each batch
        really added.
        """
        conn = conn or self.conn
        ids = [str(uuid.uuid4()) for _ in batches]
        records = _records_table(batches, ids)
        with self._lock:
            conn.begin()
            try:
                added: Counter[str] = Counter()
                if records.num_rows:
                    conn.register("harmonia_records", records)
                    try:
                        returned = conn.execute(
                            f"""
                            insert or ignore into landing.records
                            select source, entity, record_id, record_version, raw_json::json,
                                   ?, batch_id, page_number, request_url, extracted_at,
                                   {RECORD_KEY_SQL}
                            from harmonia_records
                            returning batch_id
                            """,
                            [run_id],
                        ).fetchall()
                    finally:
                        conn.unregister("harmonia_records")
                    added.update(r[0] for r in returned)
                results = [
                    BatchResult(
                        batch_id,
                        b.rows.entity,
                        b.rows.received,
                        added[batch_id],
                        b.rows.received - added[batch_id],
                        b.first_of_page,
                    )
                    for batch_id, b in zip(ids, batches, strict=True)
                ]
                conn.register("harmonia_batches", _batches_table(batches, results, run_id))
                try:
                    conn.execute("insert into landing.batches select *, null from harmonia_batches")
                finally:
                    conn.unregister("harmonia_batches")
                stamp = max((b.extracted_at for b in batches), default=datetime.now(UTC))
                for (source, entity), cursor in (state or {}).items():
                    conn.execute(
                        "insert or replace into landing.state values (?, ?, ?, ?, ?)",
                        [source, entity, orjson.dumps(cursor).decode(), run_id, stamp],
                    )
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return results


def _records_table(batches: list[PageBatch], ids: list[str]) -> pa.Table:
    """All batches' records as one table: the record columns concatenated, each batch's own
    values (source, entity, batch id, page, URL, time) repeated over its records — built once
    per column, not per batch (a Messenger page has a batch per conversation)."""
    kept = [(batch_id, b) for batch_id, b in zip(ids, batches, strict=True) if b.rows.received]
    if not kept:
        return _RECORDS_SCHEMA.empty_table()
    records = pa.concat_tables([b.rows.table for _, b in kept])
    # row i of the result belongs to batch owner[i]
    owner = pa.array(np.repeat(np.arange(len(kept)), [b.rows.received for _, b in kept]))

    def per_batch(values: list[Any], type_: pa.DataType) -> pa.Array:
        return pa.array(values, type_).take(owner)

    return pa.Table.from_arrays(
        [
            per_batch([b.rows.source for _, b in kept], pa.string()),
            per_batch([b.rows.entity for _, b in kept], pa.string()),
            records.column("record_id"),
            records.column("record_version"),
            records.column("raw_json"),
            per_batch([batch_id for batch_id, _ in kept], pa.string()),
            per_batch([b.page_number for _, b in kept], pa.int32()),
            per_batch([b.request_url for _, b in kept], pa.string()),
            per_batch([b.extracted_at for _, b in kept], pa.timestamp("us", tz="UTC")),
        ],
        schema=_RECORDS_SCHEMA,
    )


def _batches_table(batches: list[PageBatch], results: list[BatchResult], run_id: str) -> pa.Table:
    return pa.table(
        {
            "batch_id": pa.array([r.batch_id for r in results], pa.string()),
            "run_id": pa.array([run_id] * len(results), pa.string()),
            "source": pa.array([b.rows.source for b in batches], pa.string()),
            "entity": pa.array([b.rows.entity for b in batches], pa.string()),
            "page_number": pa.array([b.page_number for b in batches], pa.int32()),
            "request_url": pa.array([b.request_url for b in batches], pa.string()),
            "records": pa.array([r.records for r in results], pa.int32()),
            "landed": pa.array([r.landed for r in results], pa.int32()),
            "duplicates": pa.array([r.duplicates for r in results], pa.int32()),
            "extracted_at": pa.array(
                [b.extracted_at for b in batches], pa.timestamp("us", tz="UTC")
            ),
        }
    )
