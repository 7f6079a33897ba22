"""Validation end to end: demo APIs with malformed records and schema drift → real extraction
into a real DuckDB file → the Prefect ``validate`` flow with real GX → raw / quarantine / dq.

Every check is against the demo server's ground truth (which records it malformed, and how;
which carry unknown fields), not against what the validator itself reports.
"""

from __future__ import annotations

import gc
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from harmonia.demo.schema import SOURCES
from harmonia.demo.server import DemoServer
from harmonia.validate.context import EXPECTATIONS_DIR, open_context
from harmonia.validate.definitions import CHECKS
from harmonia.validate.engine import DataQualityError, SuiteError
from harmonia.validate.flow import ARTIFACT_KEY, ValidateResult, validate
from harmonia.validate.suites import write_suites
from test_validate_suites import assert_same_frame

pytestmark = pytest.mark.slow

FAULTS = "malformed=0.3,schema_drift=0.1"

#: (source, malformed kind) → the (expectation, column) pairs any one of which names the defect
EXPECTED: dict[tuple[str, str], set[tuple[str, str]]] = {}
_NULL = "expect_column_values_to_not_be_null"
_SET = "expect_column_values_to_be_in_set"
_TYPES = ("expect_column_values_to_be_null", "type_mismatches")
_RANGE = "expect_column_values_to_be_between"
for _src, _missing, _date, _phones, _durations in (
    ("voice", "initiated_at", "initiated_at", ["customer_phone"],
     ["agent_interaction_duration", "queue_duration"]),
    ("sms", "date_sent", "date_sent", ["from_phone", "to_phone"], []),
    ("email", "created_at", "created_at", ["requester_phone"], ["time_spent"]),
    ("chat", "created_at", "created_at", ["phone"], ["handling_time"]),
    ("messenger", "updated_time", "updated_time", [], []),
    ("surveys", "score", "created_at", [], []),
    ("crm", "created_at", "created_at", ["phone"], []),
):  # fmt: skip
    EXPECTED[(_src, "missing_field")] = {(_NULL, _missing)}
    EXPECTED[(_src, "bad_date")] = {(_SET, f"{_date}__parseable")}
    EXPECTED[(_src, "wrong_type")] = {_TYPES}
    EXPECTED[(_src, "bad_phone")] = {(_SET, f"{p}__parseable") for p in _phones}
    EXPECTED[(_src, "negative_duration")] = {(_RANGE, f"{d}__num") for d in _durations}
EXPECTED[("surveys", "score_out_of_range")] = {(_RANGE, "score__num")}


@dataclass
class World:
    base: Path  # landed, never validated (copied by tests that need a fresh start)
    warehouse: Path  # landed and validated once by the fixture
    gx_dir: Path
    expectations: Path
    result: ValidateResult
    malformed: dict[str, dict[str, str]]  # source → record_id → kind
    drifted: dict[str, set[str]]  # source → record ids served with unknown fields


@pytest.fixture(scope="module")
def world(prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> World:
    from harmonia.pipeline.ingest import ingest

    root = tmp_path_factory.mktemp("validate")
    base = root / "landed.duckdb"
    with DemoServer(seed=7, customers=150, faults=FAULTS) as srv:
        ingest(base_url=srv.base_url, warehouse=base)
        malformed = {}
        drifted = {}
        for src in SOURCES:
            table = srv.state.malformed_table(src).to_pydict()
            malformed[src] = dict(zip(table["record_id"], table["malformed_kind"], strict=True))
            data = srv.state.data[src]
            drifted[src] = {data.ids[int(i)].as_py() for i in data.drift.nonzero()[0]}
    expectations = root / "expectations"
    shutil.copytree(EXPECTATIONS_DIR, expectations)
    warehouse = root / "warehouse.duckdb"
    shutil.copy(base, warehouse)
    result = validate(
        warehouse=warehouse,
        gx_dir=root / "gx",
        expectations_dir=expectations,
        max_failure_share=1.0,
    )
    return World(base, warehouse, root / "gx", expectations, result, malformed, drifted)


def _rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _quarantine(path: Path, source: str) -> dict[str, list[tuple[str, str]]]:
    return {
        rid: [(f["expectation"], f["column"]) for f in json.loads(failed)]
        for rid, failed in _rows(
            path, f"select record_id, failed_expectations from dq.quarantine_{source}"
        )
    }


def _landed_ids(path: Path, source: str) -> set[str]:
    return {r for (r,) in _rows(path, "select record_id from landing.records where source = ?",
                                [source])}  # fmt: skip


def test_each_malformed_kind_is_quarantined_with_the_expectation_that_names_it(world: World):
    kinds_seen = set()
    for src in SOURCES:
        quarantined = _quarantine(world.warehouse, src)
        landed = _landed_ids(world.warehouse, src)
        bad = {rid: kind for rid, kind in world.malformed[src].items() if rid in landed}
        assert bad, f"the test world has no malformed {src} record: make it bigger"
        for rid, kind in bad.items():
            assert rid in quarantined, f"{src} {rid} ({kind}) was not quarantined"
            named = EXPECTED[(src, kind)] & set(quarantined[rid])
            assert named, f"{src} {rid} ({kind}) failed {quarantined[rid]}, none names {kind}"
            kinds_seen.add(kind)
    assert kinds_seen == {"missing_field", "bad_date", "bad_phone", "wrong_type",
                          "negative_duration", "score_out_of_range"}  # fmt: skip


def test_flatten_builds_the_reference_frame_for_every_landed_record(world: World):
    """The vectorized flattener and the one in DuckDB against the record-by-record one, on the
    demo world's landed records (30 % malformed by the server, 10 % with unknown fields): the
    same frame."""
    kinds = set()
    for check in CHECKS.values():
        rows = _rows(
            world.base,
            "select record_id, record_version, raw_json::varchar from landing.records "
            "where source = ? and entity = ? order by record_id, record_version",
            [check.source, check.entity],
        )
        assert rows, check.suite_name
        # and every landed record is flattened in SQL: none needs Python's reading
        assert assert_same_frame(check, rows) == 0, check.suite_name
        kinds |= {world.malformed[check.source].get(r[0]) for r in rows}
    assert {"missing_field", "bad_date", "bad_phone", "wrong_type"} <= kinds


def test_no_valid_record_is_quarantined(world: World):
    for src in SOURCES:
        wrongly = set(_quarantine(world.warehouse, src)) - set(world.malformed[src])
        assert not wrongly, f"{src}: valid records quarantined: {sorted(wrongly)[:5]}"


def test_every_landed_record_is_in_raw_or_quarantine_exactly_once(world: World):
    for check in CHECKS.values():
        src, entity = check.source, check.entity
        landed = _rows(
            world.warehouse,
            "select record_id, record_version from landing.records "
            "where source = ? and entity = ? order by all",
            [src, entity],
        )
        raw = _rows(world.warehouse, f"select record_id, record_version from raw.{src}_{entity}")
        quarantined = _rows(
            world.warehouse,
            f"select record_id, record_version from dq.quarantine_{src} where entity = ?",
            [entity],
        )
        assert sorted(raw + quarantined) == landed, f"{src}.{entity}"


def test_raw_and_quarantined_json_is_the_landed_text_stored_with_zstd(world: World):
    # byte for byte what landed; zstd, as landing.records has it (settings.text_compression)
    differ = _rows(
        world.warehouse,
        "select count(*) from raw.voice_contacts r join landing.records l "
        "on l.source = 'voice' and l.record_id = r.record_id "
        "and l.record_version = r.record_version where l.raw_json::varchar <> r.raw_json::varchar",
    )
    assert differ == [(0,)]
    con = duckdb.connect(str(world.warehouse))
    try:
        con.execute("checkpoint")
        for table in ("landing.records", "raw.voice_contacts", "dq.quarantine_voice"):
            used = con.execute(
                f"select distinct compression from pragma_storage_info('{table}') "
                "where column_name = 'raw_json' and segment_type <> 'VALIDITY'"
            ).fetchall()
            assert used == [("ZSTD",)], table
    finally:
        con.close()


def test_reconciliation_balances_for_every_source_and_run(world: World):
    rows = _rows(
        world.warehouse,
        "select source, extracted, duplicates, valid, quarantined, balanced "
        "from dq.dq_reconciliation where run_id = ?",
        [world.result.run_id],
    )
    assert {r[0] for r in rows} == set(SOURCES)
    for source, extracted, duplicates, valid, quarantined, balanced in rows:
        assert balanced and extracted == valid + quarantined + duplicates, source
        (received,) = _rows(
            world.warehouse,
            "select sum(records) from landing.batches where source = ?",
            [source],
        )[0]
        assert extracted == received
    assert _rows(world.warehouse, "select count(*) from landing.batches "
                                  "where validated_at is null") == [(0,)]  # fmt: skip


def test_the_dq_record_holds_every_validation_and_real_samples(world: World):
    from harmonia.settings import Credentials

    runs = _rows(
        world.warehouse,
        "select suite, evaluated, failed, data_docs_path from dq.dq_validation_runs "
        "where run_id = ?",
        [world.result.run_id],
    )
    assert {r[0] for r in runs} == set(CHECKS)
    crm = _rows(
        world.warehouse,
        "select unexpected_count, sample_values from dq.dq_expectation_results "
        "where run_id = ? and suite = 'crm_contacts' and \"column\" = 'phone__parseable'",
        [world.result.run_id],
    )
    phones = sum(
        1
        for (rid,) in _rows(world.warehouse, "select record_id from landing.records "
                                             "where source = 'crm'")
        if world.malformed["crm"].get(rid) == "bad_phone"
    )  # fmt: skip
    assert crm[0][0] == phones
    assert json.loads(crm[0][1]) == ["sem telefone"]  # the value the vendor sent
    samples = " ".join(
        s for (s,) in _rows(world.warehouse, "select sample_values from dq.dq_expectation_results")
    )
    secrets = [v.get_secret_value() for v in Credentials().model_dump().values()
               if hasattr(v, "get_secret_value")]  # fmt: skip
    assert secrets and not any(secret in samples for secret in secrets)


def test_data_docs_are_html_and_name_the_failures(world: World):
    index = world.result.data_docs_index
    assert index is not None and index.name == "index.html" and index.exists()
    (page,) = _rows(
        world.warehouse,
        "select data_docs_path from dq.dq_validation_runs where run_id = ? "
        "and suite = 'surveys_responses'",
        [world.result.run_id],
    )[0]
    html = Path(page).read_text()
    assert "<html" in html.lower()
    assert "score__num" in html and "created_at__parseable" in html
    assert "surveys_responses" in index.read_text()


def test_the_markdown_artifact_summarizes_the_run(world: World):
    import httpx
    from prefect.settings import PREFECT_API_URL

    response = httpx.get(f"{PREFECT_API_URL.value()}/artifacts/{world.result.artifact_id}")
    response.raise_for_status()
    artifact = response.json()
    assert artifact["key"] == ARTIFACT_KEY and artifact["type"] == "markdown"
    text = artifact["data"]
    assert text == world.result.summary
    for src in SOURCES:
        assert f"| {src} | landing |" in text
    assert "type_mismatches" in text and "balanced" in text


def test_unknown_new_fields_pass_and_survive_in_the_raw_json(world: World):
    checked = 0
    for src in ("voice", "email", "chat", "surveys", "crm"):
        drifted = world.drifted[src] - set(world.malformed[src])
        rows = _rows(
            world.warehouse,
            f"select record_id, raw_json::varchar from raw.{src}_{CHECKS_BY_SOURCE[src]}",
        )
        in_raw = {rid: raw for rid, raw in rows if rid in drifted}
        assert set(in_raw) == drifted & _landed_ids(world.warehouse, src)
        for raw in in_raw.values():
            assert "x_channel_experiment" in json.loads(raw)
            checked += 1
    assert checked > 0


CHECKS_BY_SOURCE = {"voice": "contacts", "email": "tickets", "chat": "conversations",
                    "surveys": "responses", "crm": "contacts"}  # fmt: skip


def _counts(path: Path) -> dict[str, int]:
    tables = [f"raw.{name}" for name in CHECKS] + [f"dq.quarantine_{s}" for s in SOURCES]
    tables += ["dq.dq_reconciliation", "dq.dq_validation_runs", "dq.dq_expectation_results"]
    return {t: _rows(path, f"select count(*) from {t}")[0][0] for t in tables}


def test_revalidation_is_idempotent(world: World):
    before = _counts(world.warehouse)
    again = validate(warehouse=world.warehouse, gx_dir=world.gx_dir,
                     expectations_dir=world.expectations)  # fmt: skip
    assert again.reports == []
    assert _counts(world.warehouse) == before


def test_a_later_run_reuses_the_stored_gx_definitions(world: World, tmp_path: Path):
    """The data source, assets and validation definitions are written once per GX folder,
    not on every run (they cost ~0.2 s per suite), and the reused ones judge the same."""
    gx_dir = tmp_path / "gx"
    quarantines = []
    for n in range(2):
        warehouse = tmp_path / f"w{n}.duckdb"
        shutil.copy(world.base, warehouse)
        validate(sources=["crm", "surveys"], warehouse=warehouse, gx_dir=gx_dir,
                 expectations_dir=world.expectations, max_failure_share=1.0)  # fmt: skip
        quarantines.append((_quarantine(warehouse, "crm"), _quarantine(warehouse, "surveys")))
        stored = {p.name: (p.stat().st_mtime_ns, p.read_bytes())
                  for p in (gx_dir / "validation_definitions").glob("*.json")}  # fmt: skip
        if n == 0:
            first = stored
    assert set(first) == {"crm_contacts.json", "surveys_responses.json"}
    assert stored == first  # not rewritten by the second run
    assert "fluent_datasources" in (gx_dir / "great_expectations.yml").read_text()
    assert quarantines[0] == quarantines[1] and quarantines[0][0] and quarantines[0][1]


def test_threshold_fails_loudly_after_recording_everything(world: World, tmp_path: Path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(world.base, warehouse)
    with pytest.raises(DataQualityError) as failed:
        validate(sources=["crm"], warehouse=warehouse, gx_dir=tmp_path / "gx",
                 expectations_dir=world.expectations)  # fmt: skip
    ids = [r for (r,) in _rows(warehouse, "select record_id from landing.records "
                                          "where source = 'crm'")]  # fmt: skip
    landed, bad = len(ids), sum(1 for rid in ids if rid in world.malformed["crm"])
    message = str(failed.value)
    assert f"crm: {bad} of {landed} records failed validation" in message
    assert "> 5.0%" in message
    assert _rows(warehouse, "select count(*) from dq.quarantine_crm") == [(bad,)]
    assert _rows(warehouse, "select count(*) from raw.crm_contacts") == [(landed - bad,)]
    assert _rows(warehouse, "select count(*) from landing.batches where source = 'crm' "
                            "and validated_at is null") == [(0,)]  # fmt: skip
    assert _rows(warehouse, "select balanced from dq.dq_reconciliation") == [(True,)]


def test_a_broken_suite_fails_the_run_and_loses_nothing(world: World, tmp_path: Path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(world.base, warehouse)
    broken = tmp_path / "expectations"
    shutil.copytree(world.expectations, broken)
    suite_file = broken / "voice_contacts.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"][-1]["kwargs"]["column"] = "no_such_column"
    suite["expectations"][-1]["kwargs"].pop("column_A", None)
    suite["expectations"][-1]["type"] = "expect_column_values_to_not_be_null"
    for k in ("column_B", "or_equal", "ignore_row_if"):
        suite["expectations"][-1]["kwargs"].pop(k, None)
    suite_file.write_text(json.dumps(suite))
    with pytest.raises(SuiteError, match="no_such_column"):
        validate(sources=["voice"], warehouse=warehouse, gx_dir=tmp_path / "gx",
                 expectations_dir=broken)  # fmt: skip
    assert _rows(warehouse, "select count(*) from raw.voice_contacts") == [(0,)]
    pending = _rows(warehouse, "select count(*) from landing.batches where source = 'voice' "
                               "and validated_at is null")  # fmt: skip
    assert pending[0][0] > 0
    fixed = validate(sources=["voice"], warehouse=warehouse, gx_dir=tmp_path / "gx",
                     expectations_dir=world.expectations, max_failure_share=1.0)  # fmt: skip
    assert fixed.reports[0].evaluated == len(_landed_ids(warehouse, "voice"))


def test_validation_lets_go_of_the_frames_it_checked(world: World, tmp_path: Path):
    """GX's engine keeps the last batch of every asset it validated (the frame itself), and
    the context stays open for the process: without letting go, each entity's last slice
    outlived validation and went on into the dbt build of the same process (127 MiB after a
    5M validate, docs/performance.md). No checked frame is alive once ``validate`` returns."""
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(world.base, warehouse)
    result = validate(sources=["voice", "surveys"], warehouse=warehouse, gx_dir=tmp_path / "gx",
                      expectations_dir=world.expectations, max_failure_share=1.0)  # fmt: skip
    assert sum(r.evaluated for r in result.reports) > 0
    gc.collect()
    left = [o for o in gc.get_objects() if type(o).__name__ == "PandasBatchData"]
    assert left == []


def test_validation_runs_duckdb_under_its_own_cap(world: World, tmp_path: Path, monkeypatch):
    """Validate's DuckDB connection takes HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT, not the
    global cap: a cap too small to read one page of JSON stops it, and says why."""
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(world.base, warehouse)
    monkeypatch.setenv("HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT", "1KB")
    with pytest.raises(duckdb.OutOfMemoryException, match=r"/1000 bytes used"):
        validate(sources=["voice"], warehouse=warehouse, gx_dir=tmp_path / "gx",
                 expectations_dir=world.expectations, max_failure_share=1.0)  # fmt: skip


def test_replay_after_a_suite_fix_moves_rows_from_quarantine_to_raw(world: World, tmp_path: Path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(world.base, warehouse)
    suites = tmp_path / "expectations"
    shutil.copytree(world.expectations, suites)
    gx_dir = tmp_path / "gx"
    # a too-strict suite: CSAT 1–4 (the definition says 1–5)
    context = open_context(gx_dir, suites)
    suite = context.suites.get("surveys_responses")
    for e in suite.expectations:
        if "csat" in str(getattr(e, "row_condition", "")):
            e.max_value = 4
    suite.save()
    validate(sources=["surveys"], warehouse=warehouse, gx_dir=gx_dir, expectations_dir=suites,
             max_failure_share=1.0)  # fmt: skip
    wrongly = set(_quarantine(warehouse, "surveys")) - set(world.malformed["surveys"])
    assert wrongly, "the too-strict suite should have quarantined valid CSAT 5 answers"

    write_suites(open_context(gx_dir, suites), [CHECKS["surveys_responses"]])  # the fix
    replay = validate(sources=["surveys"], replay_quarantine=True, warehouse=warehouse,
                      gx_dir=gx_dir, expectations_dir=suites)  # fmt: skip
    assert replay.reports[0].kind == "replay" and replay.reports[0].released == len(wrongly)
    still = set(_quarantine(warehouse, "surveys"))
    assert still == set(world.malformed["surveys"]) & _landed_ids(warehouse, "surveys")
    raw_ids = {r for (r,) in _rows(warehouse, "select record_id from raw.surveys_responses")}
    assert wrongly <= raw_ids
    released = _rows(
        warehouse,
        "select record_id, released_by_run_id from dq.quarantine_releases where source = ?",
        ["surveys"],
    )
    assert {r for r, _ in released} == wrongly
    assert {run for _, run in released} == {replay.run_id}
    assert _rows(
        warehouse,
        "select count(*) from dq.dq_validation_runs where kind = 'replay' and run_id = ?",
        [replay.run_id],
    ) == [(1,)]


def test_a_clean_world_validates_without_quarantine(
    demo_server: DemoServer, prefect_harness: str, tmp_path: Path
):
    from harmonia.pipeline.ingest import ingest

    warehouse = tmp_path / "w.duckdb"
    ingest(base_url=demo_server.base_url, warehouse=warehouse)
    result = validate(
        warehouse=warehouse, gx_dir=tmp_path / "gx", expectations_dir=EXPECTATIONS_DIR
    )
    assert {r.source for r in result.reports} == set(SOURCES)
    assert all(r.failed == 0 and r.balanced for r in result.reports)
    for src in SOURCES:
        assert _rows(warehouse, f"select count(*) from dq.quarantine_{src}") == [(0,)]


def _validated_content(path: Path) -> dict[str, list[tuple]]:
    """raw.*, the quarantines (with reasons) and the per-source reconciliation totals, without
    run ids and times."""
    out = {}
    for name in CHECKS:
        out[f"raw.{name}"] = _rows(
            path,
            "select record_id, record_version, raw_json::varchar, run_id, batch_id, extracted_at "
            f"from raw.{name} order by all",
        )
    for src in SOURCES:
        out[f"dq.quarantine_{src}"] = _rows(
            path,
            "select record_id, record_version, entity, raw_json::varchar, run_id, batch_id, "
            f"extracted_at, failed_expectations::varchar from dq.quarantine_{src} order by all",
        )
    out["reconciliation"] = _rows(
        path,
        "select source, sum(batches), sum(extracted), sum(duplicates), sum(landed), sum(valid), "
        "sum(quarantined), bool_and(balanced) from dq.dq_reconciliation group by source "
        "order by source",
    )
    out["validation_runs"] = _rows(
        path,
        "select suite, sum(batches), sum(evaluated), sum(failed) from dq.dq_validation_runs "
        "group by suite order by suite",
    )
    out["expectation_results"] = _rows(
        path,
        'select suite, expectation, "column", sum(element_count), sum(unexpected_count), '
        "bool_and(success) from dq.dq_expectation_results group by all order by all",
    )
    return out


def _report_totals(result: ValidateResult) -> list[tuple]:
    return [
        (r.source, r.batches, r.extracted, r.duplicates, r.valid, r.quarantined, r.balanced,
         r.evaluated, r.failed, r.top_failures(),
         [(e.entity, e.evaluated, e.failed,
           sorted((o.expectation, o.column, o.element_count, o.unexpected_count, o.success)
                  for o in e.outcomes))
          for e in r.entities])
        for r in result.reports
    ]  # fmt: skip


def test_validation_in_small_slices_loads_exactly_what_one_pass_does(world: World, tmp_path: Path):
    """The same landed world validated with the default slice size and in slices of at most
    50 records (whole batches, each committed on its own): the same raw rows, the same
    quarantine with the same reasons, the same totals per source in the dq record and in the
    report the flow enforces its thresholds on."""
    results, contents = [], []
    for name, size in (("one", None), ("sliced", 50)):
        warehouse = tmp_path / f"{name}.duckdb"
        shutil.copy(world.base, warehouse)
        kwargs = {} if size is None else {"max_records_per_slice": size}
        result = validate(warehouse=warehouse, gx_dir=tmp_path / "gx", max_failure_share=1.0,
                          expectations_dir=world.expectations, **kwargs)  # fmt: skip
        results.append(result)
        contents.append(_validated_content(warehouse))
        assert _rows(warehouse, "select count(*) from landing.batches "
                                "where validated_at is null") == [(0,)]  # fmt: skip
        slices = _rows(warehouse, "select source, count(*) from dq.dq_reconciliation "
                                  "group by source order by source")  # fmt: skip
        if size is None:
            assert {n for _, n in slices} == {1}
        else:
            # the tiny size really did split sources into several committed slices, each of
            # whole batches holding at most 50 records (or a single bigger batch)
            assert dict(slices)["messenger"] > 1 and sum(n for _, n in slices) > len(SOURCES)
            # a slice's batches share their validated_at stamp
            too_big = _rows(warehouse, "select source, validated_at, sum(landed) "
                                       "from landing.batches group by all "
                                       "having sum(landed) > 50 "
                                       "and count(*) filter (where landed > 0) > 1")  # fmt: skip
            assert too_big == []
            assert _rows(warehouse, "select count(*) from dq.dq_reconciliation "
                                    "where not balanced") == [(0,)]  # fmt: skip
    one, sliced = contents
    assert one == sliced
    assert any(one[f"dq.quarantine_{s}"] for s in SOURCES) and one["raw.crm_contacts"]
    assert _report_totals(results[0]) == _report_totals(results[1])
    assert {r.source for r in results[1].reports} == set(SOURCES)


def test_cli_default_slice_is_the_engine_default():
    """``harmonia validate`` repeats the default (to keep ``--help`` light): they agree."""
    from harmonia.validate import cli, engine

    assert cli.MAX_RECORDS_PER_SLICE == engine.MAX_RECORDS_PER_SLICE
