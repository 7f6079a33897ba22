"""BI access as docs/bi.md describes it: read-only, one writer, no PII in what BI reads.

On the demo warehouse built by the real pipeline (``metrics_demo_warehouse``):

* a read-only connection (``read_only=True``, and the ``access_mode=read_only`` config that a
  ``duckdb:///...?access_mode=read_only`` SQLAlchemy URI hands to DuckDB) reads every table of
  the ``marts`` schema, but INSERT, CREATE TABLE, DROP, UPDATE and DELETE fail with DuckDB's
  read-only error and leave the marts as they were; with ``enable_external_access=false`` it
  cannot touch other files either;
* DuckDB's single-writer rule in both directions (a copy of the warehouse, two processes): a
  reader cannot open the file while the pipeline holds it for writing, and a reader that holds
  it blocks the pipeline;
* the Parquet files of ``harmonia export`` hold no e-mail or phone of ``marts.dim_customers``
  and nothing that looks like one;
* no column of any BI-facing marts table (every ``mart_*`` and ``fct_*``) holds an e-mail or
  phone of the demo world's truth, in any writing the vendors used, or anything shaped like one
  (``tests/test_marts.py::test_marts_hold_no_email_or_phone`` checks the ``mart_*`` tables
  against ``dim_customers``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from harmonia.demo.server import DemoServer
from harmonia.report import MARTS
from harmonia.report.export import export_marts

pytestmark = pytest.mark.slow

READ_ONLY_ERROR = "attached in read-only mode"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
# E.164 or a bare national number: 10 to 15 digits, optionally after a plus sign
PHONE = re.compile(r"^\+?\d{10,15}$")
# a Brazilian phone as the vendors write it (E.164, bare, national, formatted); narrower than
# PHONE because fct_contacts.request_ref holds 14-digit protocol numbers, which are not PII
PHONE_BR = re.compile(r"^(\+?55)?\s?\(?[1-9]{2}\)?[\s-]?9?\d{4}[\s-]?\d{4}$")

WRITES = (
    "insert into marts.{t} select * from marts.{t} limit 1",
    "create table marts.bi_scratch as select 1 as x",
    "drop table marts.{t}",
    'update marts.{t} set "{c}" = "{c}"',
    "delete from marts.{t}",
)


def _mart_tables(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' order by table_name"
        ).fetchall()
    return [name for (name,) in rows]


def _row_counts(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in tables:
        (rows,) = con.execute(f"select count(*) from marts.{table}").fetchone() or (0,)
        counts[table] = int(rows)
    return counts


@pytest.mark.parametrize(
    "how",
    [
        pytest.param({"read_only": True}, id="read_only=True"),
        # what duckdb-engine passes on for duckdb:////path?access_mode=read_only (Superset)
        pytest.param({"config": {"access_mode": "read_only"}}, id="access_mode=read_only"),
    ],
)
def test_read_only_connection_reads_every_mart_and_cannot_write(
    metrics_demo_warehouse: Path, how: dict
) -> None:
    tables = _mart_tables(metrics_demo_warehouse)
    assert set(MARTS) <= set(tables) and "fct_contacts" in tables
    with duckdb.connect(str(metrics_demo_warehouse), **how) as con:
        before = _row_counts(con, tables)
        assert all(before[mart] > 0 for mart in MARTS), before
        (first_column,) = con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'mart_channel_daily' "
            "and ordinal_position = 1"
        ).fetchone() or ("",)
        for template in WRITES:
            sql = template.format(t="mart_channel_daily", c=first_column)
            with pytest.raises(duckdb.Error, match=READ_ONLY_ERROR):
                con.execute(sql)
        assert _row_counts(con, tables) == before
    with duckdb.connect(str(metrics_demo_warehouse), read_only=True) as con:
        assert _row_counts(con, tables) == before
        assert "bi_scratch" not in _mart_tables(metrics_demo_warehouse)


def test_external_access_off_confines_a_bi_connection_to_the_warehouse(
    metrics_demo_warehouse: Path, tmp_path: Path
) -> None:
    # read-only protects the warehouse, not the server's files: COPY TO and read_csv still work
    # unless external access is off (docs/bi.md: `&enable_external_access=false`)
    config = {"access_mode": "read_only", "enable_external_access": "false"}
    outside = tmp_path / "leak.csv"
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("secret\n42\n")
    with duckdb.connect(str(metrics_demo_warehouse), config=config) as con:
        (rows,) = con.execute("select count(*) from marts.mart_channel_daily").fetchone() or (0,)
        assert rows > 0
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            con.execute(f"copy (select * from marts.dim_customers) to '{outside}'")
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            con.execute(f"select * from read_csv('{elsewhere}')")
    assert not outside.exists()


# --- one writer ------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("holding", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def hold_warehouse() -> Iterator[Callable[[Path, str], None]]:
    """``hold(path, mode)`` opens ``path`` in another process (``rw`` or ``ro``) and keeps it
    open until the test ends."""
    holders: list[subprocess.Popen[str]] = []

    def hold(path: Path, mode: str) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        holders.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "holding", proc.stderr.read() if proc.stderr else line

    yield hold
    for proc in holders:
        proc.communicate("\n", timeout=60)


def _open_in_other_process(path: Path, read_only: bool) -> subprocess.CompletedProcess[str]:
    code = f"import duckdb; duckdb.connect({str(path)!r}, read_only={read_only}).sql('select 1')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_a_writer_and_a_bi_reader_exclude_each_other(
    metrics_demo_warehouse: Path, tmp_path: Path, hold_warehouse: Callable[[Path, str], None]
) -> None:
    writer_side = tmp_path / "writing.duckdb"
    reader_side = tmp_path / "reading.duckdb"
    shutil.copyfile(metrics_demo_warehouse, writer_side)
    shutil.copyfile(metrics_demo_warehouse, reader_side)

    # the pipeline is writing: a BI tool cannot even open the file read-only
    hold_warehouse(writer_side, "rw")
    blocked = _open_in_other_process(writer_side, read_only=True)
    assert blocked.returncode != 0 and "lock" in blocked.stderr.lower(), blocked.stderr

    # a BI tool holds the file read-only: other readers are fine, the pipeline is locked out
    hold_warehouse(reader_side, "ro")
    assert _open_in_other_process(reader_side, read_only=True).returncode == 0
    writer = _open_in_other_process(reader_side, read_only=False)
    assert writer.returncode != 0 and "conflicting lock" in writer.stderr.lower(), writer.stderr


# --- exports -----------------------------------------------------------------------------------


def test_parquet_exports_hold_no_email_or_phone(
    metrics_demo_warehouse: Path, tmp_path: Path
) -> None:
    with duckdb.connect(str(metrics_demo_warehouse), read_only=True) as con:
        identifiers = {
            value
            for (value,) in con.execute(
                "select unnest(list_concat(emails, phones)) from marts.dim_customers"
            ).fetchall()
        }
    assert any("@" in v for v in identifiers) and any(v.startswith("+") for v in identifiers)

    exported = export_marts(metrics_demo_warehouse, tmp_path / "exports")
    assert {e.mart for e in exported} == set(MARTS)
    problems: list[str] = []
    with duckdb.connect() as con:
        for export in exported:
            relation = f"read_parquet('{export.path}')"
            columns = con.execute(f"describe select * from {relation}").fetchall()
            for column, data_type, *_ in columns:
                if "mail" in column or "phone" in column:
                    problems.append(f"{export.mart}.{column}: an e-mail/phone column")
                values = {
                    v
                    for (v,) in con.execute(
                        f'select distinct "{column}"::varchar from {relation} '
                        f'where "{column}" is not null'
                    ).fetchall()
                }
                if leaked := values & identifiers:
                    problems.append(f"{export.mart}.{column}: holds {sorted(leaked)[:3]}")
                if data_type == "VARCHAR":
                    looks = [v for v in values if EMAIL.search(v) or PHONE.match(v)]
                    if looks:
                        problems.append(f"{export.mart}.{column}: looks like PII {looks[:3]}")
    assert not problems, "\n".join(problems)


# --- every BI-facing table of the warehouse -----------------------------------------------------


def _truth_identifiers(srv: DemoServer) -> set[str]:
    """Every e-mail and phone of the demo world, as the truth holds them and as the vendors
    wrote them (raw case / formatting), plus each phone's bare digits and national number."""
    world = srv.world
    values: set[str] = set()
    for table, columns in (
        (world.customers, ("email", "phone_e164", "shared_phone_e164", "crm_phone_e164")),
        (world.contacts, ("phone_raw", "email_raw")),
    ):
        for column in columns:
            values |= {v for v in table.column(column).to_pylist() if v}
    for value in list(values):
        if "@" in value:
            values |= {value.strip(), value.strip().lower()}
        else:
            digits = re.sub(r"\D", "", value)
            values |= {digits, digits[2:] if digits.startswith("55") else digits}
    return {v for v in values if len(v) >= 8}


def test_bi_facing_marts_hold_no_email_or_phone_of_the_world(
    metrics_demo_warehouse: Path, demo_server: DemoServer
) -> None:
    """Every column of every ``mart_*`` and ``fct_*`` table (the BI-facing relations of
    docs/bi.md), cast to text, against every identifier of the demo world's truth; text columns
    also against e-mail and phone shapes."""
    identifiers = _truth_identifiers(demo_server)
    assert sum("@" in v for v in identifiers) > 50 and sum(v[0] == "+" for v in identifiers) > 50
    problems: list[str] = []
    scanned = {"tables": 0, "columns": 0, "values": 0}
    with duckdb.connect(str(metrics_demo_warehouse), read_only=True) as con:
        con.execute(
            "create temp table ids as select unnest(?::varchar[]) as v", [sorted(identifiers)]
        )
        tables = [t for t in _mart_tables(metrics_demo_warehouse) if t != "dim_customers"]
        assert set(MARTS) <= set(tables) and {"fct_contacts", "fct_requests"} <= set(tables)
        for table in tables:
            scanned["tables"] += 1
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
            for column, data_type in columns:
                scanned["columns"] += 1
                if "mail" in column or "phone" in column:
                    problems.append(f"{table}.{column}: an e-mail/phone column")
                values = [
                    v
                    for (v,) in con.execute(
                        f'select distinct "{column}"::varchar from marts.{table} '
                        f'where "{column}" is not null'
                    ).fetchall()
                ]
                scanned["values"] += len(values)
                hits = con.execute(
                    "select distinct ids.v from unnest(?::varchar[]) as t(x) join ids "
                    "on contains(t.x, ids.v) limit 3",
                    [values],
                ).fetchall()
                if hits:
                    problems.append(f"{table}.{column}: holds {[h for (h,) in hits]}")
                if data_type == "VARCHAR":
                    looks = [v for v in values if EMAIL.search(v) or PHONE_BR.match(v)]
                    if looks:
                        problems.append(f"{table}.{column}: looks like PII {looks[:3]}")
    print(f"\nscanned {scanned} against {len(identifiers)} identifiers of the world")
    assert scanned["values"] > 1000, scanned
    assert not problems, "\n".join(problems)
