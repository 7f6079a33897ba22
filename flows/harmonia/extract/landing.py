"""The landing zone in DuckDB: append-only raw records, one batch per page, and the state.

``landing.records`` keeps every record as received (raw JSON text in the vendor's key order)
with its load metadata, unique on ``(source, entity, record_id, record_version)``.
``Landing.land`` writes pages — their new records, one ``landing.batches`` row per page and
entity and, when given, the state the pages advance — in ONE transaction, so after a crash
either those pages and their state are there or none of it (``docs/architecture.md``). The
runner hands it several pages of a source at once (a commit costs tens of milliseconds
whatever its size); a parent page (Meta conversations) always lands in the same transaction
as its children's records (messages).

Records are inserted as a whole through an Arrow table; the primary key's index skips
repeats (already landed, or twice in the same page), which are counted as duplicates.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from harmonia.extract.paginators import dig

SCHEMA_VERSION = 1

DDL = [
    "create schema if not exists landing",
    """
    create table if not exists landing.records (
        source varchar not null,
        entity varchar not null,
        record_id varchar not null,
        record_version varchar not null,
        raw_json json not null,
        run_id varchar not null,
        batch_id varchar not null,
        page_number integer not null,
        request_url varchar not null,
        extracted_at timestamptz not null,
        primary key (source, entity, record_id, record_version)
    )
    """,
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

# DuckDB allows one writer process; within it, commits from the per-source threads are
# serialized here so that concurrent pages never conflict on the shared tables.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def ensure_landing_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the landing schema and tables if missing; record the schema version."""
    for statement in DDL:
        conn.execute(statement)
    conn.execute(
        "insert into landing.schema_migrations select ?, ? "
        "where not exists (select 1 from landing.schema_migrations where version = ?)",
        [SCHEMA_VERSION, datetime.now(UTC), SCHEMA_VERSION],
    )


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
    """Serialize records and read their key and version.

    A record without a usable key or version (a malformed record) still lands: it is keyed by
    a hash of its content instead, so re-reading the same bytes is a duplicate and different
    bytes are a new version. Validation quarantines it later; landing keeps everything.
    """
    ids: list[str] = []
    versions: list[str] = []
    raws: list[str] = []
    for record in records:
        raw = dump_record(record)
        record_id = _scalar_text(dig(record, primary_key)) if isinstance(record, dict) else None
        version = _scalar_text(dig(record, version_field)) if isinstance(record, dict) else None
        if record_id is None or version is None:
            digest = "~sha1:" + hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()
            record_id = record_id if record_id is not None else digest
            version = version if version is not None else digest
        ids.append(record_id)
        versions.append(version)
        raws.append(raw)
    table = pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(versions, pa.string()), pa.array(raws, pa.string())],
        schema=_PAGE_SCHEMA,
    )
    return PageRows(source, entity, table)


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
        ``insert or ignore``: the primary key's index skips a key+version already landed or
        repeated within the batch, and ``returning`` tells how many each batch really added.
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
                            """
                            insert or ignore into landing.records
                            select source, entity, record_id, record_version, raw_json::json,
                                   ?, batch_id, page_number, request_url, extracted_at
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
