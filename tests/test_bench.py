"""``harmonia bench`` at a tiny size: every stage is measured and reported, the floor ratio
and the targets are there; dlt ``rest_api`` loads the same records per source as harmonia;
history mode runs a real increment over each history. No timing thresholds: speed belongs in
the numbers, not here."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from harmonia.bench.dlt_compare import compare, failure_text, plan_source
from harmonia.bench.history import HistoryOptions, _load_note, dbt_summary, run_history
from harmonia.bench.run import (
    ALL_STAGES,
    PEAK_RSS_NODES,
    SLOWEST_NODES,
    BenchOptions,
    _dlt_note,
    _e2e_note,
    _harmonia_one_source,
    print_result,
    run_bench,
)
from harmonia.demo.server import DemoServer
from harmonia.extract.sources import MESSENGER, MESSENGER_PER_CONVERSATION, SOURCES
from harmonia.settings import REPO_ROOT, Credentials, get_settings, validate_memory_limit


def test_bench_reports_every_stage(
    prefect_harness: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    kept = tmp_path / "kept"
    options = BenchOptions(contacts=300, repeat=1, out=out, workdir=tmp_path, keep=kept)
    run_bench(options, say=lambda _: None)
    result = json.loads(out.read_text())
    # --keep: the last run's warehouse is there to inspect, the temporary directory is gone
    assert (kept / "warehouse.duckdb").is_file()
    assert not list(tmp_path.glob("harmonia-bench-*"))
    capsys.readouterr()
    print_result(result)
    printed = capsys.readouterr().out
    assert ".[bench]" in printed  # the install hint survives rich's markup

    stages = result["stages"]
    assert set(stages) == {"generate", *ALL_STAGES}
    for name, row in stages.items():
        assert row["records"] > 0, name
        assert row["records_per_s"] > 0, name
        assert row["peak_rss_mib"] > 0, name
    # the floor reads the same pages the extractor landed
    assert stages["floor"]["records"] == stages["extract"]["records"]
    assert stages["floor"]["ratio"] > 0
    assert stages["incremental"]["ratio"] > 0
    targets = {t["target"]: t for t in result["targets"]}
    assert targets["extract+land over the floor"]["status"] in ("met", "not met")
    assert targets["1M contacts end to end"]["status"] == "not measured"
    # the incremental share is judged for a 1M world only; its ratio is still reported
    assert targets["incremental (~1 %) over a full run"]["status"] == "not measured"
    assert targets["incremental (~1 %) over a full run"]["measured"] > 0
    assert targets["extract+land vs dlt rest_api"]["status"] == "not measured"
    assert result["dlt"] is None
    # the RSS figures are read against DuckDB's cap, so the result names it
    assert result["meta"]["duckdb_memory_limit"] == get_settings().duckdb_memory_limit
    assert result["meta"]["validate_duckdb_memory_limit"] == validate_memory_limit()
    assert_dbt_detail(stages["dbt"]["detail"], stages["dbt"]["runs_s"][-1])


def test_a_target_out_of_reach_names_its_bound() -> None:
    """The floor measured at 1M, when it alone is over 60 s, and the ceiling over dlt, when it
    is under 10x, go into the targets' notes: the table says why a target is not met."""
    assert "rerun with --contacts 1000000" in _e2e_note(300, False, 90.0)
    assert _e2e_note(1_000_000, True, None) == ""
    assert _e2e_note(1_000_000, True, 59.9) == ""
    assert "the floor alone took 82.1 s" in _e2e_note(1_000_000, True, 82.1)

    assert "--with-dlt" in _dlt_note(None)
    within = _dlt_note({"total": {"ceiling_ratio": 12.0}})
    assert within.startswith("per source") and "ceiling" not in within
    assert "ceiling 4.70x" in _dlt_note({"total": {"ceiling_ratio": 4.7}})
    assert "ceiling" not in _dlt_note({"total": {"ceiling_ratio": None}})


def test_dlt_loads_the_same_records_per_source(prefect_harness: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    options = BenchOptions(
        contacts=300, repeat=1, stages=("extract",), with_dlt=True, out=out, workdir=tmp_path
    )
    run_bench(options, say=lambda _: None)
    result = json.loads(out.read_text())

    per_source = result["dlt"]["sources"]
    assert set(per_source) == set(SOURCES)
    for name, row in per_source.items():
        assert row["error"] is None, name
        # every entity harmonia landed (sideloads and child endpoints too), counted in dlt's
        # tables: the same pages were read on both sides
        entities = {spec.entity for ep in SOURCES[name].endpoints for spec in ep.records}
        assert set(row["harmonia_records"]) == entities, name
        assert row["dlt_records"] == row["harmonia_records"], name
        assert sum(row["dlt_records"].values()) > 0, name
        assert row["dlt_records_per_s"] > 0, name
        # the bare fetch of the same pages ran and bounds the ratio
        assert row["floor_fetch_s"] > 0, name
        assert row["ceiling_ratio"] > 0, name
    assert result["dlt"]["total"]["records_match"] is True
    target = {t["target"]: t for t in result["targets"]}["extract+land vs dlt rest_api"]
    assert target["status"] in ("met", "not met")


def test_a_failed_dlt_load_falls_back_and_never_stops_the_bench(
    prefect_harness: str, demo_server: DemoServer, tmp_path: Path
) -> None:
    """dlt failing in one loader format is a note and the next format loads; failing in all of
    them is the source's error, and the comparison carries on to the next source. (A format
    dlt does not know is a real failure of a real ``pipeline.run``.)"""
    run_harmonia = _harmonia_one_source(demo_server.base_url)
    (fell_back,) = compare(
        demo_server.base_url,
        tmp_path / "a",
        run_harmonia,
        sources=["surveys"],
        say=lambda _: None,
        formats=("no_such_format", "parquet"),
    )
    failed, next_one = compare(
        demo_server.base_url,
        tmp_path / "b",
        run_harmonia,
        sources=["chat", "surveys"],
        say=lambda _: None,
        formats=("no_such_format",),
    )
    assert fell_back.source == "surveys"
    assert fell_back.error is None and fell_back.loader_file_format == "parquet"
    assert any(n.startswith("dlt with no_such_format failed: ") for n in fell_back.notes)
    assert fell_back.dlt_records == fell_back.harmonia_records
    assert sum(fell_back.dlt_records.values()) > 0

    assert failed.source == "chat"
    assert failed.error == "dlt failed in every loader format (no_such_format)"
    assert failed.dlt_s == 0 and failed.dlt_records == {}
    assert sum(failed.harmonia_records.values()) > 0  # harmonia's side was still measured
    assert failed.as_dict()["throughput_ratio"] is None
    assert next_one.source == "surveys" and sum(next_one.harmonia_records.values()) > 0


def test_a_dlt_failure_is_reported_without_the_source_secrets() -> None:
    secrets = MESSENGER.secrets(Credentials())
    token = Credentials().messenger_access_token.get_secret_value()
    assert secrets == [token]
    try:
        try:
            raise ValueError(f"GET /messenger/me?fields=x&access_token={token} said {token!r}")
        except ValueError as cause:
            raise RuntimeError("Pipeline execution failed at stage extract") from cause
    except RuntimeError as exc:
        text = failure_text(exc, secrets)
    assert token not in text
    assert text.startswith("ValueError: GET /messenger/me?fields=x&access_token=REDACTED")
    long = failure_text(ValueError("x" * 1000), secrets)
    assert len(long) == 400


def test_dlt_plan_follows_messenger_either_way() -> None:
    """Messenger's messages inlined by field expansion map to dlt's nested table of the
    conversation (the braces reach the server as they are); read per conversation, to a child
    resource with the parent's id in its path."""
    inline = plan_source(MESSENGER.with_base_url("http://127.0.0.1:1/messenger"), Credentials())
    (resource,) = inline.config["resources"]
    assert resource["endpoint"]["data_selector"] == "data"
    assert "{{" in resource["endpoint"]["params"]["fields"]
    assert inline.tables == {
        "conversations": "conversations",
        "messages": "conversations__messages__data",
    }

    per_conversation = plan_source(
        MESSENGER_PER_CONVERSATION.with_base_url("http://127.0.0.1:1/messenger"), Credentials()
    )
    _, child = per_conversation.config["resources"]
    assert "{resources.conversations.id}" in child["endpoint"]["path"]
    assert per_conversation.tables == {"conversations": "conversations", "messages": "messages"}


def assert_dbt_detail(detail: dict[str, Any], stage_s: float) -> None:
    """A dbt stage's detail (harmonia.bench.run._dbt_detail) read from that build's results:
    dbt's own elapsed time inside the stage's, its models and tests counted and timed, and its
    slowest nodes, slowest first, every one a node of the project."""
    assert 0 < detail["elapsed_s"] <= stage_s
    kinds = detail["per_type"]
    # the project's models and tests (a few dozen of each), every one run
    assert kinds["model"]["nodes"] > 30 and kinds["test"]["nodes"] > 30, kinds
    assert kinds["model"]["seconds"] > 0 and kinds["test"]["seconds"] > 0, kinds
    slowest = detail["slowest"]
    assert len(slowest) == SLOWEST_NODES
    seconds = [n["seconds"] for n in slowest]
    assert seconds == sorted(seconds, reverse=True)
    # SQL and Python models alike (the component labels are Python models)
    models = {
        p.stem
        for p in (REPO_ROOT / "dbt_project" / "models").rglob("*")
        if p.suffix in (".sql", ".py")
    }
    assert all(n["node"] in models for n in slowest if n["type"] == "model"), slowest
    assert dbt_summary(detail).startswith(f"dbt {detail['elapsed_s']:.1f}s elapsed; models ")


def assert_peak_rss_nodes(detail: dict[str, Any], start_mib: float, peak_mib: float) -> None:
    """The nodes a sampled dbt stage was largest during: highest first, each a node that
    ran, its peak and the resident set it began at both within what the process sampled."""
    nodes = detail["peak_rss_nodes"]
    assert 0 < len(nodes) <= PEAK_RSS_NODES
    peaks = [n["peak_rss_mib"] for n in nodes]
    assert peaks == sorted(peaks, reverse=True)
    for n in nodes:
        assert start_mib <= n["start_rss_mib"] <= peak_mib, n
        assert start_mib <= n["peak_rss_mib"] <= peak_mib, n
    assert {n["type"] for n in nodes} <= {"model", "test", "seed"}, nodes
    assert f"highest RSS during: {nodes[0]['node']} " in dbt_summary(detail)


@pytest.mark.parametrize("stages", ["validate", "extract,dbt", "extract,validate,report", "x"])
def test_a_fresh_process_run_refuses_stages_that_skip_one(stages: str, tmp_path: Path) -> None:
    """harmonia.bench.stages runs the first stages of the pipeline in order: a list that
    skips one (dbt without validate) or names another is refused before anything runs."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harmonia.bench.stages",
            "http://127.0.0.1:1",
            str(tmp_path),
            str(tmp_path / "out.json"),
            stages,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "the first stages of extract,validate,dbt,report" in done.stderr
    assert not (tmp_path / "out.json").exists()


def test_history_mode_runs_an_increment_over_each_history(
    prefect_harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RSS is read against DuckDB's cap, so the result names the one the run had
    monkeypatch.setenv("HARMONIA_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.delenv("HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT", raising=False)
    out = tmp_path / "history.json"
    options = HistoryOptions(
        sizes=(200, 400),
        increment_share=0.05,
        out=out,
        workdir=tmp_path,
        keep=tmp_path / "kept",
        days=20,
        same_daily_volume=True,
        repeat=2,
    )
    run_history(options, say=lambda _: None)
    result = json.loads(out.read_text())

    small, large = result["runs"]
    assert large["history_contacts"] > small["history_contacts"]
    # the same contacts per day: twice the contacts over twice the days
    assert (small["history_days"], large["history_days"]) == (20, 40)
    assert (small["history_span_days"], large["history_span_days"]) == (20, 40)
    for run in (small, large):
        assert run["increment_new_contacts"] + run["increment_updated_contacts"] > 0
        assert set(run["increment"]) == {"extract", "validate", "dbt", "report"}
        # an increment reads a part of what the history read, and lands on top of it
        assert 0 < run["increment"]["extract"]["records"] < run["history"]["extract"]["records"]
        assert run["landing_rows_after"] > run["history"]["extract"]["records"]
        assert 0 < run["increment_start_rss_mib"] <= run["increment_peak_rss_mib"]
        assert run["increment_peak_rss_mib"] <= run["process_peak_rss_mib"]
        # the load ran in a process of its own: its resident set sampled per stage, the
        # highest of them its peak, within that process's lifetime high-water mark
        load_peaks = [run["history"][k]["peak_rss_mib"] for k in ("extract", "validate", "dbt")]
        assert all(p > 0 for p in load_peaks), load_peaks
        assert run["history_peak_rss_mib"] == max(load_peaks)
        assert run["history_peak_rss_mib"] <= run["history_process_peak_rss_mib"]
        # each repeat started from the same history (restored from its copy): the same
        # records landed, on top of the same rows; the reported seconds are their medians
        repeats = run["increment_runs"]
        assert len(repeats) == 2
        assert repeats[0]["landed"] == repeats[1]["landed"] > 0, repeats
        # (medians of the unrounded seconds: within a millisecond of the rounded ones')
        median_s = statistics.median(r["total_s"] for r in repeats)
        assert run["increment_s"] == pytest.approx(median_s, abs=2e-3)
        for stage in ("extract", "validate", "dbt", "report"):
            want = statistics.median(r[stage] for r in repeats)
            assert run["increment"][stage]["seconds"] == pytest.approx(want, abs=2e-3), stage
        assert run["increment_peak_rss_mib"] == max(r["peak_rss_mib"] for r in repeats)
        assert_dbt_detail(run["increment_dbt_detail"], max(r["dbt"] for r in repeats))
        # sampled in the increment's own process, so the nodes it peaked during are named
        assert_peak_rss_nodes(
            run["increment_dbt_detail"], run["increment_start_rss_mib"], run["process_peak_rss_mib"]
        )
        assert_peak_rss_nodes(run["history_dbt_detail"], 0, run["history_process_peak_rss_mib"])
    assert result["scaling_ratio"] > 0
    assert {t["status"] for t in result["targets"]} == {"not measured"}
    assert result["meta"]["duckdb_memory_limit"] == "1GB"
    assert result["meta"]["validate_duckdb_memory_limit"] == "0.5GB"
    assert result["meta"]["repeat"] == 2
    # --keep: each size's warehouse survives, holding what the run landed
    for size, run in ((200, small), (400, large)):
        with duckdb.connect(str(tmp_path / "kept" / f"h{size}" / "warehouse.duckdb")) as con:
            (rows,) = con.execute("select count(*) from landing.records").fetchone()
        assert rows == run["landing_rows_after"]


def test_a_saved_history_is_reused_for_the_same_world_only_and_a_failed_run_is_kept(
    prefect_harness: str, tmp_path: Path
) -> None:
    saved = tmp_path / "saved"
    first = run_history(
        HistoryOptions(
            sizes=(200,), increment_share=0.05, workdir=tmp_path, save_history=saved, repeat=2
        ),
        say=lambda _: None,
    )["runs"][0]
    # the second increment started from the copy --save-history made, as the first did
    first_landed = [r["landed"] for r in first["increment_runs"]]
    assert first_landed[0] == first_landed[1] > 0, first_landed
    # the copy is the history before the increment: fewer landed rows than after it
    manifest = json.loads((saved / "h200" / "history.json").read_text(encoding="utf-8"))
    # what saved it: the caps the load ran under, the checkout's commit, when
    saved_by = manifest["saved_by"]
    assert saved_by["duckdb_memory_limit"] == get_settings().duckdb_memory_limit
    assert saved_by["validate_duckdb_memory_limit"] == validate_memory_limit()
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert saved_by["commit"] == (head or None)
    assert saved_by["saved_at"].startswith(str(datetime.now(UTC).year))
    assert first["history_saved_by"] is None  # loaded by that run
    with duckdb.connect(str(saved / "h200" / "warehouse.duckdb"), read_only=True) as con:
        (rows,) = con.execute("select count(*) from landing.records").fetchone()
    assert 0 < rows < first["landing_rows_after"]

    kept = tmp_path / "kept"
    again = run_history(
        HistoryOptions(
            sizes=(200,),
            increment_share=0.05,
            workdir=tmp_path,
            history_from=saved,
            keep=kept,
            repeat=2,
        ),
        say=lambda _: None,
    )["runs"][0]
    assert "copied from" in again["history_load"]
    # the second increment started from the saved history again, not from the first's result
    first_repeat, second_repeat = again["increment_runs"]
    assert first_repeat["landed"] == second_repeat["landed"] == first["increment_runs"][0]["landed"]
    # the copy was parsed for its own path before the clock ran: the increment's build parsed
    # only what changed, as a scheduled run over a warehouse that stays put does
    log = (kept / "h200" / "logs" / "dbt.log").read_text(encoding="utf-8")
    increment_build = log.rsplit("Running with dbt=", 1)[1]
    assert "Unable to do partial parsing" not in increment_build
    assert again["history"] == first["history"]
    assert again["history_saved_by"] == saved_by
    # the load's RSS comes back from the manifest too
    assert again["history_peak_rss_mib"] == first["history_peak_rss_mib"] > 0
    assert again["history_process_peak_rss_mib"] == first["history_process_peak_rss_mib"]
    # the same increment over the same history reads and lands the same records
    assert again["increment"]["extract"]["records"] == first["increment"]["extract"]["records"]
    assert again["landing_rows_after"] == first["landing_rows_after"]

    # at 5M the load's RSS target says when the load is a saved one, not this run's
    assert _load_note(5_000_000, True, 1_753.0, saved).startswith(f"the load saved in {saved}")
    note = _load_note(5_000_000, True, 1_753.0, saved, saved_by)
    assert f"DuckDB cap {saved_by['duckdb_memory_limit']}" in note
    assert saved_by["saved_at"] in note
    assert _load_note(5_000_000, True, 1_753.0, None) == ""
    assert _load_note(200, False, 1_753.0, saved) == "largest: 200"

    with pytest.raises(ValueError, match="not of"):
        run_history(
            HistoryOptions(sizes=(200,), increment_share=0.1, workdir=tmp_path, history_from=saved),
            say=lambda _: None,
        )

    # a run that fails keeps its working directory (without --keep) and says where
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    (broken / "h200" / "warehouse.duckdb").write_bytes(b"not a DuckDB file")
    said: list[str] = []
    failed_dirs = tmp_path / "work"
    failed_dirs.mkdir()
    with pytest.raises(subprocess.CalledProcessError):
        run_history(
            HistoryOptions(
                sizes=(200,), increment_share=0.05, workdir=failed_dirs, history_from=broken
            ),
            say=said.append,
        )
    (left,) = failed_dirs.glob("harmonia-history-failed-h200-*")
    assert (left / "warehouse.duckdb").read_bytes() == b"not a DuckDB file"
    assert (left / "expectations").is_dir()
    assert any(f"kept at {left}" in line for line in said)
    # the temporary directory the run worked in is gone; only the failed size's is left
    assert [p.name for p in failed_dirs.iterdir()] == [left.name]
