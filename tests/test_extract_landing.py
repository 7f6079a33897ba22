"""The landing zone's key, on a real DuckDB file: a schema-1 landing zone (keyed by its four
columns) and a schema-2 one (a plain MD5 key) are migrated on open without losing or changing
a row; the 128-bit ``record_key`` still tells every record apart and skips every repeat, and
starts with the day of the record's version whatever its format and the session's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from harmonia.extract.landing import (
    RECORD_KEY_SQL,
    SCHEMA_VERSION,
    Landing,
    PageBatch,
    key_records,
)

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


# landing.records as schema 2 keyed it: the MD5 alone
SCHEMA_2_KEY = (
    "md5_number(concat_ws(chr(31), source, entity, length(record_id), record_id, record_version))"
)


def test_a_schema_2_landing_zone_is_rekeyed_row_for_row(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with Landing(path) as landing:  # today's tables, then made into schema 2's
        con = landing.conn
        con.execute("delete from landing.schema_migrations")
        con.execute("insert into landing.schema_migrations values (2, now())")
        con.execute(
            "insert into landing.records select 'voice', 'contacts', 'c' || i, "
            "(1780000000 + i * 3600)::varchar, json_object('id', 'c' || i, 'n', i), 'run-0', "
            f"'b0', 1, 'https://voice.test/contacts', now(), {SCHEMA_2_KEY} "
            "from (select i, 'voice' as source, 'contacts' as entity, 'c' || i as record_id, "
            "(1780000000 + i * 3600)::varchar as record_version from range(2000) t(i))"
        )
        before = con.execute(f"select {COLUMNS} from landing.records order by all").fetchall()

    with Landing(path) as landing:
        con = landing.conn
        after = con.execute(f"select {COLUMNS} from landing.records order by all").fetchall()
        versions = sorted(
            v for (v,) in con.execute("select version from landing.schema_migrations").fetchall()
        )
        days = con.execute(
            "select count(*) filter (where record_key >> 112 = "
            "(record_version::bigint // 86400)), count(distinct record_key), count(*) "
            "from landing.records"
        ).fetchone()
        leftovers = con.execute(
            "select count(*) from information_schema.tables where table_name = 'records_v2'"
        ).fetchone()
    assert after == before
    assert versions == [2, SCHEMA_VERSION]
    assert days == (2000, 2000, 2000)
    assert leftovers == (0,)

    # the rekeyed rows are known to the new key; a new version lands
    def page(ids: list[int], shift: int = 0) -> list[dict]:
        return [{"id": f"c{i}", "updated_at": str(1780000000 + i * 3600 + shift)} for i in ids]

    assert _land(path, page([0, 1000, 1999]), page=2) == (0, 3)
    assert _land(path, page([5], shift=1) + page([6]), page=3) == (1, 1)
    # the primary key is there: a repeat inserted by hand is refused
    with Landing(path) as landing, pytest.raises(duckdb.ConstraintException):
        landing.conn.execute("insert into landing.records select * from landing.records limit 1")


@pytest.mark.parametrize("time_zone", ["UTC", "America/Sao_Paulo", "Asia/Tokyo"])
def test_record_key_starts_with_the_version_day_in_every_format(
    tmp_path: Path, time_zone: str
) -> None:
    # one version of each API's format (and a malformed one); the day is read from the text,
    # so a machine in another time zone keys the same record the same way
    versions = {
        "1780603165": "2026-06-04",  # epoch seconds (Amazon Connect, Intercom)
        "1780603165.25": "2026-06-04",
        "1780603165123": "2026-06-04",  # epoch milliseconds
        "2021-03-25T10:19:36.000Z": "2021-03-25",  # HubSpot
        "2026-06-11T23:31:34Z": "2026-06-11",  # Zendesk
        "2026-10-31T00:56:16+0000": "2026-10-31",  # Meta
        "Wed, 28 Oct 2026 21:44:58 +0000": "2026-10-28",  # Twilio
        "v1": "1970-01-01",  # no date: day 0
        "": "1970-01-01",
    }
    path = tmp_path / "warehouse.duckdb"
    with Landing(path) as landing:
        landing.conn.execute(f"set TimeZone = '{time_zone}'")
        records = [{"id": f"r{i}", "updated_at": v} for i, v in enumerate(versions)]
        (result,) = landing.land([_page(records)], run_id="run-1")
        rows = landing.conn.execute(
            "select record_version, (date '1970-01-01' + (record_key >> 112)::integer)::varchar, "
            f"record_key = {RECORD_KEY_SQL} from landing.records"
        ).fetchall()
    assert result.landed == len(versions)
    assert {v: day for v, day, _ in rows} == versions
    assert all(same for _, _, same in rows)


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


def test_validation_takes_half_the_duckdb_cap_unless_given_its_own(monkeypatch) -> None:
    from harmonia.settings import Settings, validate_memory_limit
    from pydantic import ValidationError

    monkeypatch.delenv("HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT", raising=False)
    for cap, half in (("1GB", "0.5GB"), ("300MB", "150MB"), ("1.5 GiB", "0.75GiB")):
        monkeypatch.setenv("HARMONIA_DUCKDB_MEMORY_LIMIT", cap)
        assert validate_memory_limit() == half
    monkeypatch.setenv("HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT", "700MB")
    assert validate_memory_limit() == "700MB"
    monkeypatch.setenv("HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT", "1GB'; drop table x")
    with pytest.raises(ValidationError, match="validate_duckdb_memory_limit"):
        Settings()


def _raw_json_compression(con: duckdb.DuckDBPyConnection) -> set[str]:
    con.execute("checkpoint")
    rows = con.execute(
        "select distinct compression from pragma_storage_info('landing.records') "
        "where column_name = 'raw_json' and segment_type <> 'VALIDITY'"
    ).fetchall()
    return {c for (c,) in rows}


def test_raw_json_is_stored_with_zstd_where_the_file_has_it(tmp_path: Path) -> None:
    records = [{"id": f"c{i}", "updated_at": "v1", "note": "x" * 200} for i in range(3000)]
    path = tmp_path / "warehouse.duckdb"
    assert _land(path, records) == (3000, 0)
    with Landing(path) as landing:
        assert _raw_json_compression(landing.conn) == {"ZSTD"}
        (same,) = landing.conn.execute(
            "select bool_and(raw_json::varchar = json_object('id', record_id, "
            "'updated_at', 'v1', 'note', repeat('x', 200))::varchar) from landing.records"
        ).fetchone()
    assert same

    # a file of an older storage version (before DuckDB 1.2) has no zstd: DuckDB would refuse
    # the hint, so the table is created without it and lands the same records
    old = tmp_path / "old.duckdb"
    con = duckdb.connect()
    con.execute(f"attach '{old}' as old (storage_version 'v1.0.0')")
    con.execute("create table old.marker (i integer)")
    con.close()
    assert _land(old, records) == (3000, 0)
    with Landing(old) as landing:
        assert "ZSTD" not in _raw_json_compression(landing.conn)
