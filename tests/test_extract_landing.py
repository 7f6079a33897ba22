"""The landing zone's key, on a real DuckDB file: a schema-1 landing zone (keyed by its four
columns) is migrated on open without losing or changing a row, and the 128-bit ``record_key``
that replaced the four-column key still tells every record apart and skips every repeat."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from harmonia.extract.landing import SCHEMA_VERSION, Landing, PageBatch, key_records

# landing.records as schema 1 created it (before record_key)
SCHEMA_1_RECORDS = """
create table landing.records (
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
"""

COLUMNS = (
    "source, entity, record_id, record_version, raw_json::varchar, run_id, batch_id, "
    "page_number, request_url, extracted_at"
)


def _page(records: list[dict], page: int = 1) -> PageBatch:
    rows = key_records("voice", "contacts", records, "id", "updated_at")
    return PageBatch(rows, page, "https://voice.test/contacts?page=1", datetime.now(UTC))


def _land(path: Path, records: list[dict], page: int = 1) -> tuple[int, int]:
    with Landing(path) as landing:
        (result,) = landing.land([_page(records, page)], run_id=f"run-{page}")
    return result.landed, result.duplicates


def test_a_schema_1_landing_zone_is_migrated_row_for_row(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema landing")
    con.execute(SCHEMA_1_RECORDS)
    con.execute(
        "create table landing.schema_migrations (version integer primary key, "
        "applied_at timestamptz not null)"
    )
    con.execute("insert into landing.schema_migrations values (1, now())")
    con.execute(
        "insert into landing.records select 'voice', 'contacts', 'c' || i, 'v1', "
        "json_object('id', 'c' || i, 'updated_at', 'v1', 'n', i), 'run-0', 'b0', 1, "
        "'https://voice.test/contacts', now() from range(1000) t(i)"
    )
    before = con.execute(f"select {COLUMNS} from landing.records order by all").fetchall()
    con.close()

    with Landing(path) as landing:
        con = landing.conn
        after = con.execute(f"select {COLUMNS} from landing.records order by all").fetchall()
        versions = [
            v for (v,) in con.execute("select version from landing.schema_migrations").fetchall()
        ]
        keys = con.execute(
            "select count(distinct record_key), count(*) from landing.records"
        ).fetchone()
        leftovers = con.execute(
            "select count(*) from information_schema.tables where table_name = 'records_v1'"
        ).fetchone()
    assert after == before
    assert sorted(versions) == [1, SCHEMA_VERSION]
    assert keys == (1000, 1000)
    assert leftovers == (0,)

    # the migrated rows are known to the new key: the same versions are duplicates, a new
    # version of one of them and a new record land
    old = [{"id": f"c{i}", "updated_at": "v1", "n": i} for i in range(3)]
    assert _land(path, old, page=2) == (0, 3)
    assert _land(
        path, [{"id": "c0", "updated_at": "v2"}, {"id": "new", "updated_at": "v1"}], page=3
    ) == (2, 0)
    # opening again does not migrate again
    with Landing(path) as landing:
        (n,) = landing.conn.execute("select count(*) from landing.records").fetchone()
    assert n == 1002


def test_record_key_tells_apart_ids_and_versions_that_concatenate_alike(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    sep = chr(31)  # the separator the key joins with
    tricky = [
        {"id": f"a{sep}b", "updated_at": "c"},
        {"id": "a", "updated_at": f"b{sep}c"},
        {"id": "ab", "updated_at": "c"},
        {"id": "a", "updated_at": "bc"},
        {"id": "1", "updated_at": "1:1"},
        {"id": "1:1", "updated_at": "1"},
    ]
    assert _land(path, tricky) == (6, 0)
    # repeated within one page and across pages: each repeat counted once as a duplicate
    assert _land(path, tricky + tricky[:2], page=2) == (0, 8)
    with Landing(path) as landing:
        (n,) = landing.conn.execute("select count(*) from landing.records").fetchone()
    assert n == 6


def test_landing_caps_duckdb_memory_at_the_configured_limit(tmp_path: Path, monkeypatch) -> None:
    # without a cap DuckDB keeps every landed block cached up to 80 % of the machine's RAM
    monkeypatch.setenv("HARMONIA_DUCKDB_MEMORY_LIMIT", "300MB")
    with Landing(tmp_path / "w.duckdb") as landing:
        (limit,) = landing.conn.execute("select current_setting('memory_limit')").fetchone()
    assert limit == "286.1 MiB"  # 300 MB as DuckDB reports it


def test_a_malformed_memory_limit_is_refused_before_anything_is_opened(monkeypatch) -> None:
    from harmonia.settings import Settings
    from pydantic import ValidationError

    monkeypatch.setenv("HARMONIA_DUCKDB_MEMORY_LIMIT", "2GB; drop table x")
    with pytest.raises(ValidationError, match="duckdb_memory_limit"):
        Settings()
