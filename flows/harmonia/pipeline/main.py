"""The main job: ingest → validate → dbt build (+ docs) → export → report, as one Prefect flow.

``harmonia run`` runs it against whatever sources are configured; ``harmonia demo`` first
starts the demo channel APIs on loopback and points every source at them. Each stage is a
subflow or task of its own, so a failure names the stage (and, for ingest/validate, the
source) in the flow run's state and in the exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from harmonia.pipeline.lock import DEFAULT_WAIT_SECONDS, acquire_warehouse
from harmonia.settings import get_settings


class StageFailed(RuntimeError):
    """A pipeline stage failed; ``stage`` is one of lock, ingest, validate, dbt, docs, export,
    report."""

    def __init__(self, stage: str, error: BaseException) -> None:
        self.stage = stage
        self.error = error
        super().__init__(f"stage '{stage}' failed: {error}")


@dataclass
class PipelineResult:
    """Where everything a run produced lives, and how long each stage took."""

    warehouse: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    headline: dict[str, float | int | None] = field(default_factory=dict)


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_build_task(warehouse: Path, target: Path, full_refresh: bool = False) -> int:
    """``dbt build`` on the warehouse; fails with dbt's own messages."""
    from harmonia.transform import dbt_build

    result = dbt_build(warehouse, full_refresh=full_refresh, target_path=target)
    print(f"dbt build: {result.by_status()} in {result.elapsed_seconds:.1f}s")
    return len(result.nodes)


@task(name="dbt-docs", cache_policy=NO_CACHE)
def dbt_docs_task(warehouse: Path, target: Path) -> Path:
    """``dbt docs generate``: browsable lineage from API source to mart."""
    from harmonia.transform import dbt_docs_generate

    return dbt_docs_generate(warehouse, target_path=target)


@task(name="export-marts", cache_policy=NO_CACHE)
def export_task(warehouse: Path, out_dir: Path) -> Path:
    """Every metric mart as Parquet, for BI tools that read files."""
    from harmonia.report.export import export_marts

    written = export_marts(warehouse, out_dir)
    print(f"exported {len(written)} marts to {out_dir}")
    return out_dir


@task(name="html-report", cache_policy=NO_CACHE)
def report_task(warehouse: Path, out_path: Path) -> Path:
    """The self-contained HTML report a manager opens without a server."""
    from harmonia.report.render import build_report

    return Path(build_report(warehouse, out_path))


def headline_metrics(warehouse: Path) -> dict[str, float | int | None]:
    """The few numbers a person wants first, read from the marts (null when undefined)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        contacts, customers = con.execute(
            "select count(*), count(distinct customer_id) from marts.fct_contacts"
        ).fetchone()
        requests, fcr, per_request, cost = con.execute(
            "select count(*), avg(fcr::int), avg(contacts), sum(cost) from marts.fct_requests"
        ).fetchone()
        nps = con.execute(
            "select 100.0 * sum(promoters - detractors) / nullif(sum(responses), 0)"
            " from marts.mart_nps_monthly where channel = 'all'"
        ).fetchone()[0]

    def num(value: object) -> float | None:
        return None if value is None else float(value)

    return {
        "contacts": contacts,
        "customers": customers,
        "requests": requests,
        "fcr_rate": num(fcr),
        "contacts_per_request": num(per_request),
        "cost_per_request": num(cost / requests) if requests else None,
        "nps": num(nps),
    }


def _stage(result: PipelineResult, name: str, fn, *args, **kwargs):
    started = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise StageFailed(name, exc) from exc
    finally:
        result.seconds[name] = round(time.perf_counter() - started, 2)


@flow(name="harmonia-pipeline", log_prints=True)
def pipeline(
    sources: list[str] | None = None,
    full_refresh: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    base_url: str | None = None,
    warehouse: Path | None = None,
    transform: bool = True,
    max_failure_share: float = 0.05,
    lock_wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
) -> PipelineResult:
    """Run every stage on the configured sources; ``transform=False`` stops after validation.

    The whole run holds the warehouse lock (``harmonia.pipeline.lock``): an overlapping run
    waits up to ``lock_wait_seconds`` (``0``: fail fast, ``None``: no bound), then fails in
    stage ``lock``.
    """
    from harmonia.pipeline.ingest import ingest
    from harmonia.validate.flow import validate

    settings = get_settings()
    warehouse = Path(warehouse or settings.warehouse_path)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    result = PipelineResult(warehouse=warehouse)
    result.outputs["warehouse"] = warehouse

    held = _stage(
        result, "lock", acquire_warehouse, warehouse, lock_wait_seconds, "harmonia-pipeline"
    )
    with held:
        summary = _stage(
            result,
            "ingest",
            ingest,
            sources=sources,
            full_refresh=full_refresh,
            since=since,
            until=until,
            base_url=base_url,
            warehouse=warehouse,
        )
        result.counts["landed"] = summary.total("landed")
        result.counts["extracted"] = summary.total("records")
        checked = _stage(
            result,
            "validate",
            validate,
            sources=sources,
            max_failure_share=max_failure_share,
            warehouse=warehouse,
        )
        if checked.data_docs_index is not None:
            result.outputs["data_docs"] = Path(checked.data_docs_index)
        if transform:
            target = settings.home / "dbt" / "target"
            result.counts["dbt_nodes"] = _stage(
                result, "dbt", dbt_build_task, warehouse, target, full_refresh
            )
            result.outputs["dbt_docs"] = _stage(result, "docs", dbt_docs_task, warehouse, target)
            result.outputs["exports"] = _stage(
                result, "export", export_task, warehouse, settings.home / "exports"
            )
            report_path = settings.reports_dir / "harmonia-report.html"
            result.outputs["report"] = _stage(result, "report", report_task, warehouse, report_path)
            result.headline = headline_metrics(warehouse)
    _publish(result)
    return result


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"


def _publish(result: PipelineResult) -> None:
    lines = ["# harmonia pipeline run", ""]
    if result.headline:
        lines += ["| headline metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in result.headline.items()]
        lines += [""]
    lines += ["| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result.seconds.items()]
    lines += ["", "| output | where |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in result.outputs.items()]
    create_markdown_artifact(
        key="pipeline-run", markdown="\n".join(lines), description="harmonia pipeline run"
    )
