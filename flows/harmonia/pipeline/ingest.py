"""The ``ingest`` flow: pull every channel API into the landing zone, all sources at once.

One task per source (never per record) runs ``harmonia.extract.runner.run_source`` in the
thread pool; each lands its pages, one transaction per page, with the state they advance. A
failed source is retried as a whole by Prefect — safe because a run resumes from the last
committed state — except for errors retrying cannot fix (refused credentials, a malformed
request). The flow publishes a keyed table artifact (``ingest-summary``) and returns an
``IngestSummary``; if any source failed it raises ``IngestFailed`` after publishing.

Credentials are read inside each task from ``harmonia.settings.Credentials`` (env vars): they
are never flow or task parameters, so they never reach the Prefect API or its logs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import Task, exponential_backoff

from harmonia.extract.http import ExtractError
from harmonia.extract.landing import Landing
from harmonia.extract.runner import PageEvent, RunOptions, SourceResult, run_source
from harmonia.extract.sources import SOURCES, resolve_sources
from harmonia.settings import Credentials, get_settings

#: Progress listeners (the CLI's live display). In-process only; not a flow parameter.
PROGRESS_LISTENERS: list[Callable[[PageEvent], None]] = []


class IngestFailed(RuntimeError):
    """At least one source failed; ``summary`` has what every source did."""

    def __init__(self, summary: IngestSummary) -> None:
        failed = [s for s in summary.sources if s.status != "ok"]
        lines = "; ".join(f"{s.error or s.source + ': failed'}" for s in failed)
        super().__init__(f"ingest failed for {len(failed)} source(s): {lines}")
        self.summary = summary


@dataclass
class IngestSummary:
    run_id: str
    warehouse: str
    sources: list[SourceResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.sources)

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources)

    def rows(self) -> list[dict[str, object]]:
        keys = ("pages", "records", "landed", "duplicates", "requests", "retries")
        return [
            {"source": s.source, "status": s.status}
            | {k: getattr(s, k) for k in keys}
            | {"duration_s": s.duration_s, "error": s.error or ""}
            for s in self.sources
        ]


def _retry_unless_permanent(task: Task, task_run: TaskRun, state: State) -> bool:
    """Retry flaky failures, not refused credentials or malformed requests."""
    try:
        state.result()
    except ExtractError as exc:
        return exc.retryable
    except Exception:
        return True
    return True


@task(
    task_run_name="ingest-{source}",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_unless_permanent,
)
def ingest_source(
    source: str,
    base_url: str,
    warehouse: str,
    run_id: str,
    full_refresh: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SourceResult:
    """Land every new page of one source, each page with the state it advances."""
    cfg = resolve_sources([source], base_urls={source: base_url})[0]
    options = RunOptions(full_refresh=full_refresh, since=since, until=until)

    def tell(event: PageEvent) -> None:
        for listener in list(PROGRESS_LISTENERS):
            listener(event)

    with Landing(warehouse) as landing:
        result = run_source(cfg, landing, Credentials(), run_id, options, tell)
    print(
        f"{source}: {result.pages} pages, {result.records} records, {result.landed} landed, "
        f"{result.duplicates} duplicates, {result.retries} retries in {result.duration_s:.1f}s"
    )
    return result


@flow(name="ingest", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=8))
def ingest(
    sources: list[str] | None = None,
    full_refresh: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    base_url: str | None = None,
    base_urls: dict[str, str] | None = None,
    warehouse: Path | None = None,
) -> IngestSummary:
    """Pull the chosen sources (default: all) into ``landing.records`` concurrently.

    ``base_url`` is the demo APIs' root (each source under ``/<source>``); ``base_urls``
    points single sources elsewhere (the real vendor). ``full_refresh`` ignores the state;
    ``since``/``until`` bound a backfill window (see ``harmonia.extract.state``).
    """
    from prefect.runtime import flow_run

    settings = get_settings()
    run_id = str(flow_run.id or uuid.uuid4())
    path = str(warehouse or settings.warehouse_path)
    configs = resolve_sources(sources, base_url or settings.demo_base_url, base_urls)
    with Landing(path):
        pass  # create the schema once, before the sources race for it
    futures = {
        cfg.name: ingest_source.submit(
            cfg.name, str(cfg.base_url), path, run_id, full_refresh, since, until
        )
        for cfg in configs
    }
    summary = IngestSummary(run_id=run_id, warehouse=path)
    for name, future in futures.items():
        try:
            summary.sources.append(future.result())
        except Exception as exc:
            message = str(exc) if isinstance(exc, ExtractError) else f"{name}: {exc!r}"
            summary.sources.append(SourceResult(name, status="failed", error=message))
    create_table_artifact(
        key="ingest-summary",
        table=summary.rows(),
        description=(
            f"Ingest run {run_id}: {summary.total('landed')} records landed, "
            f"{summary.total('duplicates')} duplicates, {summary.total('retries')} retries."
        ),
    )
    if not summary.ok:
        raise IngestFailed(summary)
    return summary


__all__ = ["PROGRESS_LISTENERS", "SOURCES", "IngestFailed", "IngestSummary", "ingest"]
