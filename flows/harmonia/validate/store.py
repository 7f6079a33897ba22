"""Warehouse side of validation: the ``raw``, ``dq`` tables and the landing rows to check.

Python owns ``raw.<source>_<entity>`` and ``dq.*`` (see ``docs/data-quality.md`` for what each
table means to an auditor). Records are never moved through Python: verdicts (record key →
failed expectations) are registered as a frame and the raw JSON is copied inside DuckDB from
``landing.records`` (or the quarantine, on replay), byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb

from harmonia.settings import text_compression
from harmonia.validate.fields import RecordCheck

DQ_DDL = [
    "create schema if not exists raw",
    "create schema if not exists dq",
    """create table if not exists dq.dq_validation_runs (
        run_id varchar not null,
        source varchar not null,
        entity varchar not null,
        suite varchar not null,
        kind varchar not null,            -- 'landing' (pending batches) or 'replay' (quarantine)
        batches integer not null,         -- landing batches validated (0 for a replay)
        evaluated bigint not null,
        failed bigint not null,
        success boolean not null,
        started_at timestamptz not null,
        finished_at timestamptz not null,
        data_docs_path varchar           -- this validation's Data Docs page
    )""",
    """create table if not exists dq.dq_expectation_results (
        run_id varchar not null,
        source varchar not null,
        entity varchar not null,
        suite varchar not null,
        expectation varchar not null,     -- expectation type
        "column" varchar not null,        -- column(s) checked, comma-separated for pairs
        description varchar,
        success boolean not null,
        element_count bigint not null,
        unexpected_count bigint not null,
        sample_values json,               -- up to 5 distinct failing values as sent
        sample_record_ids json            -- up to 5 failing record ids
    )""",
    """create table if not exists dq.dq_reconciliation (
        run_id varchar not null,
        source varchar not null,
        batches integer not null,
        extracted bigint not null,        -- records received in the validated landing batches
        duplicates bigint not null,       -- of those, already landed (landing.batches.duplicates)
        landed bigint not null,           -- landing.records rows of those batches
        valid bigint not null,            -- written to raw.<source>_<entity>
        quarantined bigint not null,      -- written to dq.quarantine_<source>
        balanced boolean not null,        -- extracted = valid + quarantined + duplicates
        checked_at timestamptz not null
    )""",
    """create table if not exists dq.quarantine_releases (
        source varchar not null,
        entity varchar not null,
        record_id varchar not null,
        record_version varchar,
        quarantined_by_run_id varchar,    -- validation run that quarantined it
        released_by_run_id varchar not null,
        failed_expectations json,         -- what it had failed
        quarantined_at timestamptz,
        released_at timestamptz not null
    )""",
]


def raw_table(source: str, entity: str) -> str:
    return f"raw.{source}_{entity}"


def quarantine_table(source: str) -> str:
    return f"dq.quarantine_{source}"


def ensure_tables(con: duckdb.DuckDBPyConnection, checks: Iterable[RecordCheck]) -> None:
    """Create the ``raw``/``dq`` schemas and tables that do not exist yet."""
    checks = list(checks)
    wanted = {"dq.dq_validation_runs", "dq.dq_expectation_results", "dq.dq_reconciliation",
              "dq.quarantine_releases"}  # fmt: skip
    wanted |= {raw_table(c.source, c.entity) for c in checks}
    wanted |= {quarantine_table(c.source) for c in checks}
    have = {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'dq')"
        ).fetchall()
    }
    if wanted <= have:
        return  # every task of every run asks; ~30 DDL statements cost more than this check
    for ddl in DQ_DDL:
        con.execute(ddl).fetchall()
    text = text_compression(con)
    for check in checks:
        con.execute(
            f"""create table if not exists {raw_table(check.source, check.entity)} (
                record_id varchar not null,
                record_version varchar,
                raw_json json{text},
                run_id varchar,              -- the ingest run that landed it
                batch_id varchar,            -- the landing batch (page)
                extracted_at timestamptz,
                validated_at timestamptz not null,
                validation_run_id varchar    -- the validation (or replay) run that passed it
            )"""
        ).fetchall()
        con.execute(
            f"""create table if not exists {quarantine_table(check.source)} (
                record_id varchar not null,
                record_version varchar,
                entity varchar not null,
                raw_json json{text},
                run_id varchar,              -- the ingest run that landed it
                batch_id varchar,
                extracted_at timestamptz,
                failed_expectations json,    -- [{{"expectation": type, "column": ...}}, ...]
                quarantined_at timestamptz not null,
                validation_run_id varchar    -- the validation run that quarantined it
            )"""
        ).fetchall()


def landing_exists(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'landing' and table_name in ('records', 'batches')"
    ).fetchall()[0]
    return bool(row and row[0] == 2)


def pending_batches(con: duckdb.DuckDBPyConnection, source: str) -> list[tuple[str, str]]:
    """``(batch_id, entity)`` of a source's landing batches not yet validated, oldest first."""
    return [
        (str(b), str(e))
        for b, e in con.execute(
            "select batch_id, entity from landing.batches "
            "where source = ? and validated_at is null order by extracted_at, batch_id",
            [source],
        ).fetchall()
    ]


def pending_batch_sizes(con: duckdb.DuckDBPyConnection, source: str) -> list[tuple[str, str, int]]:
    """``(batch_id, entity, landed)`` of a source's pending batches, in ``pending_batches``
    order (``landed``: its rows in ``landing.records``, the rows validation reads)."""
    return [
        (str(b), str(e), int(n or 0))
        for b, e, n in con.execute(
            "select batch_id, entity, landed from landing.batches "
            "where source = ? and validated_at is null order by extracted_at, batch_id",
            [source],
        ).fetchall()
    ]


def batches_span(
    con: duckdb.DuckDBPyConnection, batch_ids: list[str]
) -> tuple[datetime | None, datetime | None]:
    """The earliest and the latest ``extracted_at`` of ``batch_ids``: bounds for their records.

    A record carries its page's ``extracted_at``, and ``landing.records`` is appended in
    extraction order, so ``extracted_at between first and last`` lets DuckDB skip the row
    groups of other runs and of the rest of this run by their min/max (zone maps). Without the
    lower bound, finding a slice's rows scanned the whole landing table (at 5M contacts of
    history, 16M rows for each entity of each slice); without the upper one, a history load's
    first slices scanned the rest of the load (1M contacts: 2.28 s against 0.82 s for 38 of
    its slices). ``(None, None)`` for no batches, which bounds nothing in.
    """
    if not batch_ids:
        return None, None
    rows = con.execute(
        "select min(extracted_at), max(extracted_at) from landing.batches "
        "where list_contains(?, batch_id)",
        [batch_ids],
    ).fetchall()  # consumed: DuckDB 2.0 refuses new work beside an open result
    return rows[0][0], rows[0][1]


def landing_relation(
    source: str, entity: str, batch_ids: list[str], span: tuple[datetime | None, datetime | None]
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) selecting ``(record_id, record_version, raw_json)`` of an
    entity's records in ``batch_ids``, which were extracted within ``span`` (``batches_span``
    of the slice): what ``flatten_sql.flatten_in_duckdb`` reads."""
    return (
        "select record_id, record_version, raw_json from landing.records "
        "where source = ? and entity = ? and extracted_at >= ? and extracted_at <= ? "
        "and list_contains(?, batch_id)",
        [source, entity, *span, batch_ids],
    )


def quarantine_relation(source: str, entity: str) -> tuple[str, list[Any]]:
    """SQL (and its parameters) selecting an entity's quarantined records, to replay them."""
    return (
        "select record_id, record_version, raw_json "
        f"from {quarantine_table(source)} where entity = ?",
        [entity],
    )
