"""Incremental dbt builds give the same warehouse as a build from scratch.

The staging models are incremental (delete+insert on the record key, reading only records with
a version validated since the last build); everything after them is rebuilt in full, because a
late record can merge two customers or two requests and rename the ids of contacts that did not
change themselves (docs/dbt.md, "Incremental staging"). This test runs the real pipeline
stages on a small demo world over HTTP: ingest + GX validation + ``dbt build`` with the demo
clock at 70 % of the world's window, then the clock moves to the end (new contacts and late
versions of existing ones), ingest + validation again, and an incremental ``dbt build``. The
result must equal, table by table (content hash), a build from scratch of a copy of the same
warehouse, and the advance must really have held the cases that matter: new contacts, a late
update that merged two customers and one that changed a contact's topic or resolution.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from harmonia.demo.server import DemoServer
from harmonia.transform import dbt_build

pytestmark = pytest.mark.slow

CUSTOMERS = 150
#: schemas dbt writes (dq holds Python's tables too; only the dbt model is compared there)
DBT_SCHEMAS = ("staging", "intermediate", "marts")
STAGING_MODELS = {
    "stg_voice__contacts",
    "stg_sms__messages",
    "stg_email__tickets",
    "stg_email__ticket_metrics",
    "stg_chat__conversations",
    "stg_messenger__conversations",
    "stg_messenger__messages",
    "stg_surveys__responses",
    "stg_crm__contacts",
}


def content_hashes(warehouse: Path) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the rows ordered by their text) of every table dbt builds."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ? or (table_schema = 'dq' and table_name = "
            "'dq_shared_identifiers') order by all",
            [list(DBT_SCHEMAS)],
        ).fetchall()
        return {
            t: con.execute(
                f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), '')) "
                f"from (select t::varchar as r from {t} as t)"
            ).fetchone()
            for (t,) in tables
        }


def incremental_staging(target: Path) -> set[str]:
    """Staging models the last build ran incrementally: their compiled SQL (dbt's
    run_results.json) reads only the raw rows validated since the model's watermark and
    compares them with the rows it keeps (macros latest_version, keep_newer_versions)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].rsplit(".", 1)[-1]
        for r in results
        if r["unique_id"].startswith("model.harmonia.stg_")
        and "where validated_at >= (" in (r.get("compiled_code") or "")
        and " as kept" in (r.get("compiled_code") or "")
    }


def contacts(warehouse: Path) -> dict[str, tuple[str, str, str, bool]]:
    """contact_id -> (customer_id, request_id, topic, resolved) from marts.fct_contacts."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select contact_id, customer_id, request_id, topic, resolved from marts.fct_contacts"
        ).fetchall()
    return {cid: (cust, req, topic, resolved) for cid, cust, req, topic, resolved in rows}


def land_and_validate(srv: DemoServer, root: Path) -> None:
    from harmonia.pipeline.ingest import ingest
    from harmonia.validate.context import EXPECTATIONS_DIR
    from harmonia.validate.flow import validate

    if not (root / "expectations").exists():
        shutil.copytree(EXPECTATIONS_DIR, root / "expectations")
    warehouse = root / "warehouse.duckdb"
    ingest(base_url=srv.base_url, warehouse=warehouse)
    validate(warehouse=warehouse, gx_dir=root / "gx", expectations_dir=root / "expectations")


def drop_dbt_relations(warehouse: Path) -> None:
    """Everything dbt built, gone: the next build starts from raw.* alone."""
    with duckdb.connect(str(warehouse)) as con:
        for schema in (*DBT_SCHEMAS, "seeds"):
            con.execute(f"drop schema if exists {schema} cascade")
        con.execute("drop table if exists dq.dq_shared_identifiers")


def test_incremental_build_equals_a_build_from_scratch(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    srv = make_demo_server(customers=CUSTOMERS)
    start, end = srv.world.start, srv.world.end
    srv.set_clock(start + int((end - start) * 0.7))
    warehouse = tmp_path / "warehouse.duckdb"
    target = tmp_path / "target"

    land_and_validate(srv, tmp_path)
    dbt_build(warehouse, target_path=target)
    before = contacts(warehouse)
    assert before, "the first build holds no contacts"
    assert not incremental_staging(target), "the first build cannot be incremental"

    srv.set_clock(end)
    land_and_validate(srv, tmp_path)
    dbt_build(warehouse, target_path=target)
    after = contacts(warehouse)
    # the staging models took the incremental path: only records with a new version parsed
    assert incremental_staging(target) == STAGING_MODELS

    # the advance holds the cases that matter
    new = set(after) - set(before)
    assert new, "the clock advance brought no new contacts"
    assert set(before) <= set(after), "a contact disappeared"
    changed_topic_or_resolution = [cid for cid in before if before[cid][2:] != after[cid][2:]]
    assert changed_topic_or_resolution, "no late update changed a contact's topic or resolution"
    old_customers_by_new: dict[str, set[str]] = {}
    for cid, (customer, *_) in before.items():
        old_customers_by_new.setdefault(after[cid][0], set()).add(customer)
    merged = {new_id: old for new_id, old in old_customers_by_new.items() if len(old) > 1}
    assert merged, "no late record merged two customers of the first build"

    # a copy of the same warehouse, every dbt relation dropped, built from scratch
    scratch = tmp_path / "scratch.duckdb"
    shutil.copy(warehouse, scratch)
    drop_dbt_relations(scratch)
    dbt_build(scratch, target_path=tmp_path / "target-scratch", full_refresh=True)

    got, want = content_hashes(warehouse), content_hashes(scratch)
    assert {t for t in want if t.startswith("marts.fct_")}, want
    differing = sorted(t for t in want if got.get(t) != want[t])
    assert not differing, f"incremental build differs from a build from scratch in {differing}"
    assert got.keys() == want.keys()

    # and a run with nothing new changes nothing
    dbt_build(warehouse, target_path=target)
    assert content_hashes(warehouse) == want
