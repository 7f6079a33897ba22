"""The flows the Prefect deployments run (``deployments/prefect.yaml``), also runnable locally.

* :func:`incremental` — every 15 minutes: ingest what is new since each source's watermark,
  then validate it (GX, quarantine). No dbt: the marts are rebuilt nightly.
* :func:`nightly` — once a night: catch-up ingest + validate, the full ``dbt build`` (models and
  dbt's data tests), ``dbt docs generate``, the Parquet export and the HTML report.
* :func:`backfill` — on demand, never scheduled: re-read a date window of chosen sources.
  A window with an end leaves the watermarks alone (``docs/extraction.md``).

Every flow holds the warehouse for its whole writing part: a slot of the Prefect global
concurrency limit ``harmonia-warehouse`` when the server has one (all workers, all machines),
then the OS file lock on ``<warehouse>.lock`` (``harmonia.pipeline.lock``), which is what keeps
two processes off the DuckDB file. The work itself is the ``pipeline`` flow
(``harmonia.pipeline.main``) run as a subflow, so a failure is its ``StageFailed`` naming the
stage (and, for ingest, every failed source) — the message Prefect puts on the failed flow
run's state, which is what notifications show.

Parameters are typed (``sources`` is a list of known source names, windows are datetimes), so
Prefect rejects a bad run request before a worker starts it. Locally:
``harmonia run-flow incremental|nightly|backfill`` (``harmonia.pipeline.cli``).
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from prefect import flow

from harmonia.pipeline.lock import DEFAULT_WAIT_SECONDS, WarehouseLock
from harmonia.pipeline.main import PipelineResult, _stage
from harmonia.settings import get_settings

#: The channel sources a run can be limited to (the keys of ``harmonia.extract.sources.SOURCES``).
Source = Literal["voice", "sms", "email", "chat", "messenger", "surveys", "crm"]

#: Prefect global concurrency limit every writing run takes one slot of (create it with limit 1).
WAREHOUSE_LIMIT = "harmonia-warehouse"
MIN_SLOT_WAIT = 10.0


def hold_warehouse(
    warehouse: Path, wait_seconds: float | None, holder: str, use_prefect_limit: bool = True
) -> ExitStack:
    """Take the Prefect limit slot (if the limit exists) and the warehouse file lock.

    Returns the held stack; leaving its ``with`` block releases both. Not getting either within
    ``wait_seconds`` raises (``TimeoutError`` / ``WarehouseBusy``).
    """
    stack = ExitStack()
    try:
        if use_prefect_limit:
            from prefect.concurrency.sync import concurrency

            # strict=False: without the limit (a laptop, the temporary local API) the file
            # lock alone serializes the runs of this machine. Even "fail fast" gives the slot
            # an API round trip's time: a zero timeout expires before the first request.
            slot_wait = None if wait_seconds is None else max(wait_seconds, MIN_SLOT_WAIT)
            try:
                stack.enter_context(
                    concurrency(WAREHOUSE_LIMIT, occupy=1, timeout_seconds=slot_wait, strict=False)
                )
            except TimeoutError:
                raise TimeoutError(
                    f"warehouse {warehouse} is busy: no free slot of the Prefect global "
                    f"concurrency limit '{WAREHOUSE_LIMIT}' within {slot_wait:.0f}s "
                    "(another run holds it). Retry later or raise the lock wait."
                ) from None
        stack.enter_context(WarehouseLock(warehouse, wait_seconds=wait_seconds, holder=holder))
    except BaseException:
        stack.close()
        raise
    return stack


def _warehouse(warehouse: Path | None) -> Path:
    path = Path(warehouse or get_settings().warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _run_pipeline(
    name: str, warehouse: Path | None, lock_wait_seconds: float | None, **params: object
) -> PipelineResult:
    """Hold the warehouse (Prefect limit + file lock), then run ``pipeline`` as a subflow.

    ``pipeline`` takes the same file lock again (re-entrant in this thread) and names the
    failing stage; its ``StageFailed`` propagates unchanged, so this flow run's failed state
    carries the stage and, for ingest, every failed source.
    """
    from harmonia.pipeline.main import pipeline

    path = _warehouse(warehouse)
    waited = PipelineResult(warehouse=path)
    with _stage(waited, "lock", hold_warehouse, path, lock_wait_seconds, name):
        result = pipeline(warehouse=path, lock_wait_seconds=lock_wait_seconds, **params)
    # the outer wait is the one that counts (the subflow's re-entrant take is instant)
    result.seconds = {"lock": waited.seconds["lock"]} | {
        k: v for k, v in result.seconds.items() if k != "lock"
    }
    print(
        f"{name}: done; "
        + ", ".join(f"{k} {v}" for k, v in result.counts.items())
        + "; seconds: "
        + ", ".join(f"{k} {v}" for k, v in result.seconds.items())
    )
    return result


@flow(name="harmonia-incremental", log_prints=True)
def incremental(
    sources: list[Source] | None = None,
    base_url: str | None = None,
    warehouse: Path | None = None,
    max_failure_share: float = 0.05,
    lock_wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
) -> PipelineResult:
    """Ingest what is new since each source's watermark (default: all sources), validate it.

    ``base_url`` is the root of the demo channel APIs (default: the settings'); waits up to
    ``lock_wait_seconds`` for a run holding the warehouse, ``0`` fails fast.
    """
    return _run_pipeline(
        "incremental",
        warehouse,
        lock_wait_seconds,
        sources=_names(sources),
        base_url=base_url,
        transform=False,
        max_failure_share=max_failure_share,
    )


@flow(name="harmonia-nightly", log_prints=True)
def nightly(
    sources: list[Source] | None = None,
    base_url: str | None = None,
    warehouse: Path | None = None,
    full_refresh: bool = False,
    max_failure_share: float = 0.05,
    lock_wait_seconds: float | None = 3 * DEFAULT_WAIT_SECONDS,
) -> PipelineResult:
    """Catch-up ingest + validate, then the full ``dbt build`` (every model and dbt's data
    tests), dbt docs, the Parquet export and the HTML report (the ``pipeline`` flow).

    ``full_refresh`` re-reads every source from the beginning and rebuilds dbt's incremental
    models (a repair, not a nightly habit). Waits longer for the warehouse than the
    15-minute runs do: a night's build must not be dropped because an ingest was running.
    """
    return _run_pipeline(
        "nightly",
        warehouse,
        lock_wait_seconds,
        sources=_names(sources),
        base_url=base_url,
        full_refresh=full_refresh,
        transform=True,
        max_failure_share=max_failure_share,
    )


@flow(name="harmonia-backfill", log_prints=True)
def backfill(
    since: datetime,
    until: datetime | None = None,
    sources: list[Source] | None = None,
    base_url: str | None = None,
    warehouse: Path | None = None,
    transform: bool = False,
    max_failure_share: float = 0.05,
    lock_wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
) -> PipelineResult:
    """Re-read ``[since, until]`` (default until: now) of ``sources`` (default: all) and
    validate it; with ``transform`` also dbt build, docs, export and report.

    The window has an end, so the watermarks stay where they are: a backfill never moves the
    incremental runs forward or back. Naive datetimes are UTC.
    """
    since = _utc(since)
    until = _utc(until) if until is not None else datetime.now(UTC)
    if since >= until:
        raise ValueError(f"backfill window is empty: since {since} is not before until {until}")
    print(f"backfill {since.isoformat()} .. {until.isoformat()} of {sources or 'all sources'}")
    return _run_pipeline(
        "backfill",
        warehouse,
        lock_wait_seconds,
        sources=_names(sources),
        base_url=base_url,
        since=since,
        until=until,
        transform=transform,
        max_failure_share=max_failure_share,
    )


def _names(sources: list[Source] | None) -> list[str] | None:
    return list(sources) if sources else None


FLOWS = {"incremental": incremental, "nightly": nightly, "backfill": backfill}
