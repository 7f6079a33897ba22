"""Incremental dbt builds give the same warehouse as a build from scratch.

The staging models are incremental (delete+insert on the record key, reading only records with a
version validated since the last build), and so are the identity chain, request stitching, the
facts and the customer dimension after them: they replace the rows of the identifiers, components,
contacts, requests and customers a changed record (or a new survey answer) can reach (docs/dbt.md,
"The scoped identity chain"); so are the survey facts and the channel-switch pairs. The metric
marts are rebuilt in full. This test runs the real pipeline stages on a small demo world over
HTTP: ingest + GX validation + ``dbt build`` with the demo clock at 70 % of the world's window,
then the clock moves to the end (new contacts and late versions of existing ones), ingest +
validation again, and an incremental ``dbt build``. The result must equal, table by table
(content hash), a build from scratch of a copy of the same warehouse, and the advance must really
have held the cases that matter: new contacts, a late update that merged two customers and one
that changed a contact's topic or resolution, and the chains must really have been scoped (fewer
records than the warehouse holds). Both builds' SQL models are also checked for tables copied
into CTEs (read from their plans)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from harmonia.dbt_plugins import register_udfs
from harmonia.demo.server import DemoServer
from harmonia.transform import DbtBuildError, dbt_build, dbt_test

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
#: a CTE over a `contacts` CTE (request_ref, request_id): each ref quoted in one request only,
#: with that request
ONE_REQUEST_REFS = """refs as (
                select request_ref, any_value(request_id) as request_id
                from contacts
                where request_ref is not null
                group by request_ref
                having count(distinct request_id) = 1
            )"""
#: the incremental models of the chains (a delete_changed pre_hook each)
CHAIN_TABLES = 21
#: the scoped chains' per-build bookkeeping: what this build took as changed, so it differs
#: from a build from scratch's (everything) by design
SCOPE_MODELS = {
    "int_identity_build",
    "int_identity_changed_records",
    "int_identity_scope_nodes",
    "int_identity_scope_observations",
    "int_identity_scope_components",
    "int_identity_scope_component_labels",
    "int_identity_scope_clusters",
    "int_identity_scope_customers",
    "int_identity_scope_contacts",
    "int_request_scope_contacts",
    "int_request_scope_components",
    "int_request_scope_component_labels",
    "int_request_scope_requests",
    "int_mart_scope_contacts",
    "int_mart_scope_requests",
    "int_mart_scope_customers",
}


def content_hashes(warehouse: Path) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the rows ordered by their text) of every table dbt builds."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where (table_schema in ? and table_name not in ?) "
            "or (table_schema = 'dq' and table_name = 'dq_shared_identifiers') order by all",
            [list(DBT_SCHEMAS), sorted(SCOPE_MODELS)],
        ).fetchall()
        return {
            t: con.execute(
                f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), '')) "
                f"from (select t::varchar as r from {t} as t)"
            ).fetchone()
            for (t,) in tables
        }


def run_results(target: Path) -> list[dict]:
    """The results of the last dbt command whose target path is ``target``."""
    return json.loads((target / "run_results.json").read_text())["results"]


def incremental_staging(target: Path) -> set[str]:
    """Staging models the last build ran incrementally: their compiled SQL (dbt's
    run_results.json) reads only the raw rows validated since the model's watermark and
    compares them with the rows it keeps (macros latest_version, keep_newer_versions)."""
    results = run_results(target)
    return {
        r["unique_id"].rsplit(".", 1)[-1]
        for r in results
        if r["unique_id"].startswith("model.harmonia.stg_")
        and "where validated_at > (" in (r.get("compiled_code") or "")
        and " as kept" in (r.get("compiled_code") or "")
    }


def tables_copied_into_ctes(warehouse: Path, target: Path) -> list[str]:
    """CTEs of the last build's SQL models that DuckDB materializes as a copy of a whole table.

    DuckDB materializes a CTE that a query reads more than once. For an import CTE (``select *
    from <relation>``) that means copying the table, every column of every row, before the
    query starts: at 5M contacts such copies spilled a gigabyte to disk and took seconds where
    the two reads they replaced took a fraction of that. Such CTEs are written ``as not
    materialized``. Found from the plans (``explain (format json)``) of the compiled SQL.
    """
    results = run_results(target)
    copies: list[str] = []

    def copied(node: dict) -> bool:
        while node["name"] == "PROJECTION" and len(node["children"]) == 1:
            node = node["children"][0]
        return node["name"] in ("SEQ_SCAN", "TABLE_SCAN") and not any(
            "Filter" in key for key in node.get("extra_info", {})
        )

    def walk(node: dict, model: str) -> None:
        # DuckDB's own CTEs (__aggregate_cte_...) hold aggregates, not tables
        name = node.get("extra_info", {}).get("CTE Name", "")
        if node["name"] == "CTE" and not name.startswith("__") and copied(node["children"][0]):
            copies.append(f"{model}: {name}")
        for child in node["children"]:
            walk(child, model)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        register_udfs(con)
        for r in results:
            code = r.get("compiled_code") or ""
            if not r["unique_id"].startswith("model.") or "def model(" in code:
                continue
            (plan,) = con.execute(f"explain (format json) {code}").fetchone()[1:]
            for root in json.loads(plan):
                walk(root, r["unique_id"].rsplit(".", 1)[-1])
    return copies


def assert_no_table_copied_into_a_cte(warehouse: Path, target: Path) -> None:
    copies = tables_copied_into_ctes(warehouse, target)
    assert not copies, "write these CTEs `as not materialized`: " + ", ".join(copies)


def scoped_test_rows(warehouse: Path, target: Path) -> dict[str, tuple[int, int]]:
    """(rows looked at, rows in the table) of each test of the last build that took the
    `where: "scope: ..."` form (macro duckdb__get_where_subquery), from its compiled SQL."""
    results = run_results(target)
    found: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for r in results:
            code = r.get("compiled_code") or ""
            if not r["unique_id"].startswith("test.") or "dbt_subquery" not in code:
                continue
            match = re.search(r"\(\s*(select \* from (\S+)\s.*?)\)\s*dbt_subquery", code, re.S)
            assert match, r["unique_id"]
            (tested,) = con.execute(f"select count(*) from ({match[1]})").fetchall()[0]
            (total,) = con.execute(f"select count(*) from {match[2]}").fetchall()[0]
            found[r["unique_id"].split(".")[2]] = (tested, total)
    return found


def chain_replacements(log: Path, since: int) -> dict[str, str]:
    """How each table of the chains was replaced, from dbt.log after byte ``since``, by its
    first `pre_hook` (macro delete_changed): "full" when it deleted every row (a plain
    `delete from`), "scoped" when it deleted the rows of a scope (strategy append) or staged
    their rowids (strategy replace_changed). The other deletes of a table have a `where` of
    their own: replace_changed's `rowid in`, the union's gone SMS threads (`as unioned`),
    and the customer months of another timezone."""
    with log.open("rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    table = r'"\w+"\."(?:intermediate|marts)"\."(\w+)"'
    found = dict.fromkeys(re.findall(rf"delete from {table}(?!\s*(?:where|as)\b)", text), "full")
    scoped = rf"delete from {table}\s+where\s+(?!rowid\b|reporting_timezone\b)"
    staged = r'create or replace temp table temp\.main\."(\w+)__dbt_scope"'
    for name in re.findall(scoped, text) + re.findall(staged, text):
        found[name] = "scoped" if found.get(name, "scoped") == "scoped" else "both"
    return found


def stitched_rows(warehouse: Path) -> dict[str, tuple[int, tuple[object, ...]]]:
    """contact_id -> (rowid, the whole row) of int_contacts_stitched_to_requests."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select rowid, * from intermediate.int_contacts_stitched_to_requests"
        ).fetchall()
        names = [d[0] for d in con.description]
    at = names.index("contact_id")
    return {row[at]: (row[0], row[1:]) for row in rows}


def identity_scope(warehouse: Path) -> tuple[int, int, int, int]:
    """(records taken as changed, records, contacts relabelled, contacts) of the last build."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select (select count(*) from intermediate.int_identity_changed_records), "
            "(select count(distinct record_key) from intermediate.int_identifiers_observed), "
            "(select count(*) from intermediate.int_identity_scope_contacts), "
            "(select count(*) from intermediate.int_contacts_identified)"
        ).fetchone()


def records_and_contacts(warehouse: Path) -> int:
    """Every record a full identity build takes: the contacts and the CRM rows."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select (select count(*) from intermediate.int_contacts_unioned) "
            "+ (select count(*) from staging.stg_crm__contacts)"
        ).fetchone()[0]


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


def built_from_scratch(
    warehouse: Path, tmp_path: Path, vars: dict[str, object] | None = None
) -> dict[str, tuple[int, str]]:
    """content_hashes of a copy of ``warehouse`` with every dbt relation dropped and built from
    raw.* alone (``vars`` as the build compared with had them)."""
    scratch = tmp_path / "scratch.duckdb"
    shutil.copy(warehouse, scratch)
    drop_dbt_relations(scratch)
    dbt_build(scratch, target_path=tmp_path / "target-scratch", full_refresh=True, vars=vars)
    return content_hashes(scratch)


def write_late_versions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    record_ids: list[str],
    version: str,
    patch: str,
    params: list[object],
    tag: str,
) -> None:
    """New versions of ``record_ids`` in ``raw.<table>`` as validation writes them: the newest
    version's raw_json with ``patch`` (a JSON expression over it; ``params`` fill its ``?``)
    merged in, record_version ``version`` (SQL over the old one), validated now."""
    con.execute(
        f"""
        insert into raw.{table}
        select
            record_id,
            {version} as record_version,
            json_merge_patch(raw_json, {patch}) as raw_json,
            '{tag}' as run_id,
            '{tag}' as batch_id,
            now() as extracted_at,
            now() as validated_at,
            '{tag}' as validation_run_id,
        from raw.{table}
        where record_id in ?
        qualify row_number() over (partition by record_id order by validated_at desc) = 1
        """,
        [*params, record_ids],
    )


def write_late_call_quoting(
    con: duckdb.DuckDBPyConnection, record_id: str, ref: str, tag: str
) -> None:
    """A late version of the Amazon Connect contact ``record_id`` that quotes protocol ``ref``."""
    write_late_versions(
        con,
        "voice_contacts",
        [record_id],
        "(record_version::bigint + 1)::varchar",
        "json_object('LastUpdateTimestamp', record_version::bigint + 1, "
        "'Attributes', json_object('protocol', ?::varchar))",
        [ref],
        tag,
    )


def late_call_then_build(
    warehouse: Path, tmp_path: Path, call: tuple[str, str, str], probe: str, params: list[object]
) -> tuple[object, ...]:
    """Write a late version of a call quoting a ref (``call``: record id, ref, tag, as
    write_late_call_quoting takes them), build, and return the row of ``probe``."""
    with duckdb.connect(str(warehouse)) as con:
        write_late_call_quoting(con, *call)
    dbt_build(warehouse, target_path=tmp_path / "target")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(probe, params).fetchone()


def assert_equals_a_build_from_scratch(warehouse: Path, tmp_path: Path) -> None:
    got, want = content_hashes(warehouse), built_from_scratch(warehouse, tmp_path)
    differing = sorted(t for t in want if got.get(t) != want[t])
    assert not differing, f"incremental build differs from a build from scratch in {differing}"


def test_incremental_build_equals_a_build_from_scratch(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    srv = make_demo_server(customers=CUSTOMERS)
    start, end = srv.world.start, srv.world.end
    srv.set_clock(start + int((end - start) * 0.7))
    warehouse = tmp_path / "warehouse.duckdb"
    target = tmp_path / "target"
    log = tmp_path / "logs" / "dbt.log"  # dbt's log beside its target (harmonia.transform)

    land_and_validate(srv, tmp_path)
    dbt_build(warehouse, target_path=target)
    before = contacts(warehouse)
    assert before, "the first build holds no contacts"
    assert not incremental_staging(target), "the first build cannot be incremental"
    assert_no_table_copied_into_a_cte(warehouse, target)
    # a first build is full, and its scoped tests read their whole tables as plain tests:
    # `is_full or col in (scope)` made DuckDB build the scope models' hash tables anyway,
    # every row of them on a full build (out of memory at 1GB in a 5M history load)
    assert not scoped_test_rows(warehouse, target)

    srv.set_clock(end)
    land_and_validate(srv, tmp_path)
    since = log.stat().st_size
    rows_before = stitched_rows(warehouse)
    dbt_build(warehouse, target_path=target)
    after = contacts(warehouse)
    replaced = chain_replacements(log, since)
    assert {"int_identifiers_observed", "fct_journey_steps"} <= set(replaced), replaced
    assert len(replaced) == CHAIN_TABLES and set(replaced.values()) == {"scoped"}, replaced
    # replace_changed, here in int_contacts_stitched_to_requests (scope
    # int_request_scope_requests): a scope contact written again exactly as it was keeps its
    # row, so its delete costs nothing at the checkpoint, and only new or changed rows are
    # appended. Rowids are compacted when a checkpoint drops deleted rows, so this reads
    # their order: the rows that stayed keep theirs, and every row written now comes after
    with duckdb.connect(str(warehouse), read_only=True) as con:
        scope = {r[0] for r in con.execute(
            "select contact_id from intermediate.int_request_scope_requests"
        ).fetchall()}  # fmt: skip
        mart_scope = {r[0] for r in con.execute(
            "select contact_id from intermediate.int_mart_scope_contacts"
        ).fetchall()}  # fmt: skip
    rows_after = stitched_rows(warehouse)
    same = {
        c for c in rows_before.keys() & rows_after.keys() if rows_before[c][1] == rows_after[c][1]
    }
    kept, untouched = same & scope, same - scope
    written = rows_after.keys() - same
    assert kept and written and untouched, (len(kept), len(written), len(untouched))
    assert sorted(same, key=lambda c: rows_before[c][0]) == sorted(
        same, key=lambda c: rows_after[c][0]
    )
    assert max(rows_after[c][0] for c in same) < min(rows_after[c][0] for c in written)
    assert min(rows_after[c][0] for c in kept) < max(rows_after[c][0] for c in untouched)
    # and the facts take only the contacts whose row changed (int_mart_scope_contacts): every
    # written one, and of the kept ones at most those a new survey answer names
    assert written - set(rows_before) and written <= mart_scope, sorted(written - mart_scope)
    assert kept - mart_scope, "the facts took every contact of the request scope"
    # the staging models took the incremental path: only records with a new version parsed
    assert incremental_staging(target) == STAGING_MODELS
    assert_no_table_copied_into_a_cte(warehouse, target)
    # the scoped tests (unique and relationships on the chains and facts) looked at some of
    # their rows, not none and not all
    looked_at = scoped_test_rows(warehouse, target)
    assert {"unique_combination_int_request_links_contact_a__contact_b",
            "relationships_fct_contacts_customer_id__customer_id__ref_dim_customers_",
            "relationships_fct_journey_steps_contact_id__contact_id__ref_fct_contacts_",
            "unique_fct_journey_steps_contact_id"} <= set(
        looked_at
    ), sorted(looked_at)  # fmt: skip
    assert all(0 < tested < total for tested, total in looked_at.values()), looked_at
    # and the identity chain a scoped one: some records changed, not all, some contacts kept
    changed, records, relabelled, identified = identity_scope(warehouse)
    assert 0 < changed < records / 2, (changed, records)
    assert 0 < relabelled < identified, (relabelled, identified)

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
    got, want = content_hashes(warehouse), built_from_scratch(warehouse, tmp_path)
    assert {t for t in want if t.startswith("marts.fct_")}, want
    differing = sorted(t for t in want if got.get(t) != want[t])
    assert not differing, f"incremental build differs from a build from scratch in {differing}"
    assert got.keys() == want.keys()

    # and a run with nothing new changes nothing, and takes no record as changed
    dbt_build(warehouse, target_path=target)
    assert content_hashes(warehouse) == want
    assert identity_scope(warehouse)[:1] == (0,)

    # another reporting timezone moves contacts across month ends: the customer months are
    # computed again, every one (int_customer_activity_months), and the chain stays scoped
    # (the timezone is read after the facts)
    sao_paulo = {"reporting_timezone": "America/Sao_Paulo"}
    dbt_build(warehouse, target_path=target, vars=sao_paulo)
    assert identity_scope(warehouse)[:1] == (0,)
    in_sao_paulo = content_hashes(warehouse)
    assert in_sao_paulo == built_from_scratch(warehouse, tmp_path, sao_paulo)
    moved = sorted(t for t in want if in_sao_paulo.get(t) != want[t])
    assert "intermediate.int_customer_activity_months" in moved, moved
    dbt_build(warehouse, target_path=target)  # and back: as before
    assert content_hashes(warehouse) == want

    # the chains' unique tests check the rows the last build replaced (where: "scope: ..."): a
    # duplicate among them fails; one of a contact no build touched is not looked at again
    with duckdb.connect(str(warehouse)) as con:
        (duplicated,) = con.execute(
            "select min(contact_id) from intermediate.int_contacts_identified"
        ).fetchone()
        con.execute(
            "insert into intermediate.int_contacts_identified "
            "select * from intermediate.int_contacts_identified where contact_id = ?",
            [duplicated],
        )
    dbt_test(warehouse, "int_contacts_identified", target_path=target)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into intermediate.int_identity_scope_contacts values (?)", [duplicated])
    with pytest.raises(DbtBuildError, match="unique_int_contacts_identified_contact_id"):
        dbt_test(warehouse, "int_contacts_identified", target_path=target)

    # a setting the chain reads changes rows of records that did not change: the build after
    # it recomputes the whole chain, and equals a build from scratch with that setting
    tight = {"max_identifier_degree": 3}
    since = log.stat().st_size
    dbt_build(warehouse, target_path=target, vars=tight)
    assert identity_scope(warehouse)[0] == records_and_contacts(warehouse)
    # a full build over existing tables: the chains' pre_hooks delete every row without a
    # scope, and the scoped tests read their whole tables
    replaced = chain_replacements(log, since)
    assert {"int_identifiers_screened", "fct_contacts", "fct_journey_steps"} <= set(replaced)
    assert len(replaced) == CHAIN_TABLES and set(replaced.values()) == {"full"}, replaced
    assert not scoped_test_rows(warehouse, target)
    assert content_hashes(warehouse) == built_from_scratch(warehouse, tmp_path, tight)
    assert content_hashes(warehouse) != want, "max_identifier_degree 3 changed nothing"


def customers_sharing(warehouse: Path) -> set[tuple[str, str]]:
    """Pairs (contact_id, contact_id), smaller first, of contacts with one customer."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return set(
            con.execute(
                "select a.contact_id, b.contact_id from marts.fct_contacts a "
                "join marts.fct_contacts b on a.customer_id = b.customer_id "
                "and a.contact_id < b.contact_id"
            ).fetchall()
        )


def connected_parts(nodes: set[str], edges: list[tuple[str, str]]) -> list[set[str]]:
    """The connected components of a small graph (union-find)."""
    parent = {n: n for n in nodes}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for a, b in edges:
        parent[root(a)] = root(b)
    parts: dict[str, set[str]] = {}
    for n in nodes:
        parts.setdefault(root(n), set()).add(n)
    return list(parts.values())


def phone_holding_a_customer_together(con: duckdb.DuckDBPyConnection) -> tuple[str, set[str]]:
    """A linkable phone whose removal cuts its customer's identifiers in parts, and the keys
    of a part that holds neither the phone nor the customer's label: when the phone stops
    linking, that part must take a label of its own, though none of its identifiers is on a
    changed record."""
    rows = con.execute(
        "select s.node_id, c.identifier_key, c.customer_label "
        "from intermediate.int_identifiers_clustered c "
        "join intermediate.int_identifiers_screened s using (identifier_key) where c.is_linkable"
    ).fetchall()
    key_of = {node: key for node, key, _ in rows}
    label_of = {key: label for _, key, label in rows}
    edges = con.execute("select node_a, node_b from intermediate.int_identifier_edges").fetchall()
    for phone in sorted(k for k in label_of if k.startswith("phone:")):
        members = {k for k, label in label_of.items() if label == label_of[phone]} - {phone}
        inner = [(key_of[a], key_of[b]) for a, b in edges if {key_of[a], key_of[b]} <= members]
        for part in connected_parts(members, inner):
            if label_of[phone] not in part:
                return phone, part
    raise AssertionError("no phone holds two parts of a customer together")


def test_late_versions_that_cut_links_rebuild_like_a_build_from_scratch(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    """Late CRM versions that remove edges split customers, and the scoped identity chain must
    relabel every part: (1) records that clear their e-mail and phone, which held an e-mail
    and a phone seen apart together; (2) records that all take one customer's phone, which
    then has more than var('max_identifier_degree') neighbours, is shared and loses every
    edge, so that customer falls apart into parts with no identifier of a changed record
    (only its old component, int_identity_scope_clusters, finds them). And one late call
    version quotes another customer's protocol, started before any of its contacts: rule 1
    re-centres that ref's star on the call, so links between contacts that did not change
    are replaced (only the ref closure of int_request_scope_contacts finds them). The demo
    world's late versions never do these, so the new versions are written to raw.* as
    validation writes them (a newer version, a later validated_at) and dbt takes it from
    there: the scoped build must equal a build from scratch. So must the next, whose only change
    is a survey answer moved to another customer's contact, and the next, where the records
    that made the phone shared give it up (it links the stranded part again, through records
    that did not change), and the next, where late versions of two SMS messages stop cutting
    a thread (its contact is gone), and the next, where a late call quotes the ref of another
    customer's request (a contact of it two links away from the ref joins the call's request,
    though neither it nor a contact linked to it is in the request scope). Then a build after
    one more late version stops in the middle of the request chain, as a crash would: the next
    build must be full and equal a build from scratch again."""
    srv = make_demo_server(customers=CUSTOMERS)
    srv.set_clock(srv.world.end)
    warehouse = tmp_path / "warehouse.duckdb"
    land_and_validate(srv, tmp_path)
    dbt_build(warehouse, target_path=tmp_path / "target")
    before = customers_sharing(warehouse)

    with duckdb.connect(str(warehouse)) as con:
        # CRM records whose e-mail and phone are both seen on contacts of their customer
        bridges = con.execute(
            """
            select crm.crm_contact_id
            from staging.stg_crm__contacts as crm
            where crm.email is not null and crm.phone is not null
                and exists (
                    select 1 from intermediate.int_contacts_identified as c
                    where c.email = crm.email and c.phone is null
                )
                and exists (
                    select 1 from intermediate.int_contacts_identified as c
                    where c.phone = crm.phone and c.email is null
                )
            order by crm.crm_contact_id
            limit 10
            """
        ).fetchall()
        assert bridges, "no CRM record bridges an e-mail and a phone seen apart"
        family_phone, stranded = phone_holding_a_customer_together(con)
        family_value = family_phone.removeprefix("phone:")
        sharers = con.execute(
            "select crm_contact_id from staging.stg_crm__contacts "
            "where crm_contact_id not in ? and email is not null "
            "order by crm_contact_id limit 11",
            [[b for (b,) in bridges]],
        ).fetchall()
        # a ref two or more contacts of one customer quote, and an earlier call of another
        (protocol, caller_id, caller_record) = con.execute(
            """
            with refs as (
                select request_ref, min(customer_id) as customer_id, min(started_at) as first_at
                from intermediate.int_contacts_stitched_to_requests
                where request_ref is not null
                group by request_ref
                having count(*) >= 2 and count(distinct customer_id) = 1
            )
            select refs.request_ref, c.contact_id, c.source_id
            from refs
            inner join intermediate.int_contacts_stitched_to_requests as c
                on c.channel = 'voice' and c.customer_id <> refs.customer_id
                and c.started_at < refs.first_at and c.request_ref is null
            order by refs.request_ref, c.contact_id
            limit 1
            """
        ).fetchone()
        write_late_call_quoting(con, caller_record, protocol, "late-ref")
        crm_version = "'2099-01-01T00:00:00.000Z'"
        crm_patch = (
            "json_object('updatedAt', '2099-01-01T00:00:00.000Z', "
            "'properties', json_object('email', {email}, 'phone', ?::varchar))"
        )
        cleared = crm_patch.format(email="?::json")
        sharing = crm_patch.format(email="raw_json -> '$.properties.email'")
        for records, patch, params in (
            (bridges, cleared, ["null", None]),
            (sharers, sharing, [family_value]),
        ):
            ids = [r for (r,) in records]
            write_late_versions(con, "crm_contacts", ids, crm_version, patch, params, "late-split")
    dbt_build(warehouse, target_path=tmp_path / "target")
    after = customers_sharing(warehouse)
    changed, _, relabelled, identified = identity_scope(warehouse)
    assert changed == len(bridges) + len(sharers) + 1, (changed, bridges, sharers)
    assert 0 < relabelled < identified
    with duckdb.connect(str(warehouse), read_only=True) as con:
        shared = con.execute(
            "select is_shared from intermediate.int_identifiers_screened where identifier_key = ?",
            [family_phone],
        ).fetchone()
        relabelled_part = con.execute(
            "select count(*) from intermediate.int_identifiers_clustered "
            "where identifier_key in ? and customer_label not in ?",
            [sorted(stranded), sorted(stranded)],
        ).fetchone()[0]
        quoting = con.execute(
            "select count(distinct request_id), bool_or(contact_id = ?) "
            "from marts.fct_contacts where request_ref = ?",
            [caller_id, protocol],
        ).fetchone()
    assert shared == (True,), f"{family_phone} did not become shared"
    assert relabelled_part == 0, "the part cut off by the shared phone kept a label outside it"
    assert quoting == (1, True), f"{caller_id} quoting {protocol} is not in its request"

    split = before - after
    assert split, "clearing the bridges split no customer"
    assert after <= before, "clearing identifiers merged customers"

    assert_equals_a_build_from_scratch(warehouse, tmp_path)

    # a late version of a survey answer that moves it to a contact of another customer, and
    # nothing else: the answer's request and customer lose their follow-up and last NPS, the
    # other contact's gain them, though no contact changed
    with duckdb.connect(str(warehouse)) as con:
        (response, contact_then, contact_now) = con.execute(
            """
            with answered as (
                select response_id, contact_id, customer_id, request_id
                from marts.fct_survey_responses
                where survey_type = 'nps' and contact_id is not null
                qualify row_number() over (
                    partition by customer_id order by answered_at desc, response_id desc
                ) = 1
            ),
            unsurveyed as (
                select min(c.contact_id) as contact_id
                from marts.fct_contacts as c
                where c.customer_id not in (
                    select customer_id from marts.fct_survey_responses
                    where customer_id is not null
                )
            )
            select answered.response_id, answered.contact_id, unsurveyed.contact_id
            from answered, unsurveyed
            order by answered.response_id
            limit 1
            """
        ).fetchone()
        write_late_versions(
            con,
            "surveys_responses",
            [response],
            "'4102444800'",
            "json_object('updated_at', 4102444800, "
            "'person_properties', json_object('contact_ref', ?::varchar))",
            [contact_now],
            "late-answer",
        )
    dbt_build(warehouse, target_path=tmp_path / "target")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        scope = con.execute(
            "select contact_id from intermediate.int_mart_scope_contacts order by 1"
        ).fetchall()
        moved = con.execute(
            "select contact_id from marts.fct_survey_responses where response_id = ?", [response]
        ).fetchone()
    assert scope == sorted([(contact_then,), (contact_now,)]), scope
    assert moved == (contact_now,)
    assert_equals_a_build_from_scratch(warehouse, tmp_path)

    # the sharers give the family phone up again: it is linkable once more and joins the
    # stranded part to the family, though every record showing them both is unchanged (their
    # components are found because the records of the scope observations are taken whole:
    # int_identity_scope_components)
    with duckdb.connect(str(warehouse)) as con:
        write_late_versions(
            con,
            "crm_contacts",
            [r for (r,) in sharers],
            "'2099-01-01T12:00:00.000Z'",
            "json_object('updatedAt', '2099-01-01T12:00:00.000Z', "
            "'properties', json_object('phone', ?::varchar))",
            [None],
            "late-unshare",
        )
    dbt_build(warehouse, target_path=tmp_path / "target")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (family_label, shared) = con.execute(
            "select c.customer_label, s.is_shared from intermediate.int_identifiers_clustered c "
            "join intermediate.int_identifiers_screened s using (identifier_key) "
            "where identifier_key = ?",
            [family_phone],
        ).fetchone()
        rejoined = con.execute(
            "select count(*) from intermediate.int_identifiers_clustered "
            "where identifier_key in ? and customer_label = ?",
            [sorted(stranded), family_label],
        ).fetchone()[0]
    assert not shared, f"{family_phone} is still shared"
    assert rejoined == len(stranded), "the stranded part did not rejoin the family"
    assert_equals_a_build_from_scratch(warehouse, tmp_path)

    # late versions of an SMS message that opened a thread and of the closing text before it,
    # both in lower case: neither cuts the pair any more, so the second thread merges into the
    # first and its contact is gone (taken as changed: its identifiers and the rows built
    # from it go too)
    with duckdb.connect(str(warehouse)) as con:
        (opener, closing) = con.execute(
            """
            with messages as (
                select
                    message_id,
                    is_from_customer,
                    vendor_direction,
                    lag(message_id) over pair_order as previous_id,
                from staging.stg_sms__messages
                window pair_order as (
                    partition by coalesce(customer_phone, customer_phone_raw),
                        coalesce(company_phone, '')
                    order by sent_at, message_id
                )
            )
            select messages.message_id, messages.previous_id
            from messages
            inner join intermediate.int_sms_contacts_sessionized as threads
                on threads.contact_id = 'sms:' || messages.message_id
            where messages.is_from_customer and messages.vendor_direction <> 'outbound-api'
                and messages.previous_id is not null
            order by messages.message_id
            limit 1
            """
        ).fetchone()
        late = "Fri, 01 Jan 2099 00:00:00 +0000"
        write_late_versions(
            con,
            "sms_messages",
            [opener, closing],
            f"'{late}'",
            f"json_object('date_updated', '{late}', 'body', lower(raw_json ->> '$.body'))",
            [],
            "late-merge",
        )
    dbt_build(warehouse, target_path=tmp_path / "target")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        gone = con.execute(
            "select (select count(*) from intermediate.int_identity_changed_records "
            "where record_key = ?), (select count(*) from marts.fct_contacts where contact_id = ?)",
            [f"sms:{opener}", f"sms:{opener}"],
        ).fetchone()
    assert gone == (1, 0), f"sms:{opener} was not taken as gone: {gone}"
    assert_equals_a_build_from_scratch(warehouse, tmp_path)

    # a late call version quotes a ref of another customer's request, one with a contact two
    # links or more away from every contact quoting that ref: the call's request takes in the
    # whole request, and that contact is neither in the request scope nor at an end of a link
    # that touches it (only its old component names it: int_request_scope_components)
    with duckdb.connect(str(warehouse)) as con:
        star = con.execute(
            f"""
            with contacts as (
                select contact_id, customer_id, request_id, request_ref
                from intermediate.int_contacts_stitched_to_requests
            ),
            links as (
                select contact_a, contact_b from intermediate.int_request_links
                union all
                select contact_b, contact_a from intermediate.int_request_links
            ),
            {ONE_REQUEST_REFS},
            near as (
                select contacts.request_ref, contacts.contact_id
                from contacts
                inner join refs using (request_ref)
                union
                select contacts.request_ref, links.contact_b
                from contacts
                inner join refs using (request_ref)
                inner join links on links.contact_a = contacts.contact_id
            )
            select refs.request_ref, far.contact_id, far.customer_id
            from refs
            inner join contacts as far on far.request_id = refs.request_id
            where far.contact_id not in (
                select contact_id from near where near.request_ref = refs.request_ref
            )
            order by refs.request_ref, far.contact_id
            limit 1
            """
        ).fetchone()
        assert star, "no request has a contact two links away from the contacts quoting its ref"
        (star_ref, far_leaf, star_customer) = star
        (star_caller, star_record) = con.execute(
            """
            select contact_id, source_id
            from intermediate.int_contacts_stitched_to_requests
            where channel = 'voice' and request_ref is null and customer_id <> ?
                and customer_id not in (
                    select customer_id from intermediate.int_contacts_stitched_to_requests
                    where request_ref = ?
                )
            order by contact_id
            limit 1
            """,
            [star_customer, star_ref],
        ).fetchone()
    reach = late_call_then_build(
        warehouse,
        tmp_path,
        (star_record, star_ref, "late-star"),
        "select "
        "(select count(*) from intermediate.int_request_scope_contacts where contact_id = ?), "
        "(select count(*) from intermediate.int_request_scope_components where contact_node in "
        "(select node_b from intermediate.int_request_links where contact_b = ?)), "
        "(select count(distinct request_id) from marts.fct_contacts where contact_id in (?, ?))",
        [far_leaf, far_leaf, far_leaf, star_caller],
    )
    assert reach == (0, 1, 1), f"{far_leaf} (scope, old component, requests): {reach}"
    assert_equals_a_build_from_scratch(warehouse, tmp_path)

    # a late call version of another customer's lone call quotes the ref of a one-customer
    # request and falls between two of its contacts: the later one's channel_switch flips,
    # while its row, its request's id and its customer's contacts stay as they were, so its
    # customer is in scope only as a customer of a scope request (int_mart_scope_customers)
    with duckdb.connect(str(warehouse)) as con:
        found = con.execute(
            f"""
            with contacts as (
                select
                    *,
                    count(*) over (partition by request_id) as request_contacts,
                    lead(contact_id) over request_order as next_id,
                    lead(channel) over request_order as next_channel,
                    lead(started_at) over request_order as next_started_at,
                from intermediate.int_contacts_stitched_to_requests
                window request_order as (partition by request_id order by started_at, contact_id)
            ),
            {ONE_REQUEST_REFS},
            one_customer as (
                select request_id, any_value(customer_id) as customer_id
                from contacts
                group by request_id
                having count(distinct customer_id) = 1
            ),
            gaps as (
                select refs.request_ref, contacts.*
                from contacts
                inner join refs using (request_id)
                inner join one_customer using (request_id, customer_id)
                where contacts.next_id is not null
                    -- the switch before it (from its contact) and after (from a call) differ
                    and (contacts.channel <> contacts.next_channel)
                    <> (contacts.next_channel <> 'voice')
            )
            select gaps.request_ref, gaps.next_id, gaps.customer_id, lone.source_id
            from gaps
            inner join contacts as lone
                on lone.channel = 'voice'
                and lone.request_ref is null
                and lone.request_contacts = 1
                and lone.customer_id <> gaps.customer_id
                and lone.started_at > gaps.started_at
                and lone.started_at < gaps.next_started_at
            order by gaps.request_ref, gaps.next_id, lone.contact_id
            limit 1
            """
        ).fetchone()
        assert found, "no lone call falls between two contacts of a one-customer request"
        (gap_ref, follower, follower_customer, lone_record) = found
        (switched,) = con.execute(
            "select channel_switch from marts.fct_journey_steps where contact_id = ?", [follower]
        ).fetchone()
    gap = late_call_then_build(
        warehouse,
        tmp_path,
        (lone_record, gap_ref, "late-gap"),
        "select "
        "(select channel_switch from marts.fct_journey_steps where contact_id = ?), "
        "(select count(*) from intermediate.int_mart_scope_customers where customer_id = ?), "
        "(select count(*) from intermediate.int_mart_scope_contacts where contact_id in ("
        "select contact_id from marts.fct_contacts where customer_id = ?))",
        [follower, follower_customer, follower_customer],
    )
    assert gap == (not switched, 1, 0), f"{follower} (switch, customer, contacts in scope): {gap}"
    assert_equals_a_build_from_scratch(warehouse, tmp_path)

    # one more late version (a bridge record again, unchanged); a build that stops in the
    # middle of the request chain, as a crash there would, has replaced some of the chain's
    # tables and not others: the next build is full
    with duckdb.connect(str(warehouse)) as con:
        write_late_versions(
            con,
            "crm_contacts",
            [bridges[0][0]],
            "'2099-01-02T00:00:00.000Z'",
            "json_object('updatedAt', '2099-01-02T00:00:00.000Z')",
            [],
            "late-touch",
        )
    dbt_build(warehouse, target_path=tmp_path / "target", select="+int_request_links")
    dbt_build(warehouse, target_path=tmp_path / "target")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        build = con.execute(
            "select is_full, completed from intermediate.int_identity_build"
        ).fetchone()
    assert build == (True, True), f"the build after a stopped one was not full: {build}"

    assert_equals_a_build_from_scratch(warehouse, tmp_path)
