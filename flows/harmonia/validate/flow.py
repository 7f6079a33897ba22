"""The Prefect ``validate`` flow: every pending landing batch checked, split, and accounted for.

Reads top to bottom: one task per source (its pending batches, in bounded slices of whole
batches each committed on its own, never per record) validates and records, then the flow
publishes the ``data-quality`` markdown artifact and only then enforces the reconciliation and
the failure-share threshold, so a failing run has already written everything an auditor needs.
``replay_quarantine=True`` re-validates the quarantine with the current suites instead (after
a suite fix).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from harmonia.memory import release_unused_memory
from harmonia.settings import limit_duckdb_memory, validate_memory_limit
from harmonia.validate.engine import (
    MAX_RECORDS_PER_SLICE,
    SourceReport,
    enforce,
    new_run_id,
    replay_source,
    summary_markdown,
    validate_source,
)

ARTIFACT_KEY = "data-quality"
DEFAULT_MAX_FAILURE_SHARE = 0.05


@dataclass(frozen=True)
class ValidateResult:
    run_id: str
    reports: list[SourceReport]
    data_docs_index: Path | None
    summary: str
    artifact_id: str  # the keyed ``data-quality`` markdown artifact of this run


def _is_lock_error(task: object, task_run: object, state: object) -> bool:
    """Retry only when the warehouse file is locked by another writer, nothing else."""
    try:
        state.result()  # type: ignore[attr-defined]
    except duckdb.IOException as exc:
        return "lock" in str(exc).lower()
    except Exception:
        return False
    return False


@task(
    name="validate-source",
    task_run_name="validate-{source}",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=2,
    retry_jitter_factor=0.5,
    retry_condition_fn=_is_lock_error,
)
def validate_source_task(
    source: str,
    run_id: str,
    warehouse: Path,
    gx_dir: Path,
    expectations_dir: Path | None = None,
    phone_region: str = "BR",
    replay: bool = False,
    max_records_per_slice: int = MAX_RECORDS_PER_SLICE,
) -> SourceReport | None:
    """Validate one source's pending landing batches (or replay its quarantine)."""
    from harmonia.validate.context import open_context
    from harmonia.validate.definitions import CHECKS
    from harmonia.validate.store import ensure_tables, landing_exists, pending_batches

    # what extract or the source before left freed but held, so this source's peak is not
    # counted on top of it (harmonia.memory)
    release_unused_memory()
    with duckdb.connect(str(warehouse)) as con:
        limit_duckdb_memory(con, validate_memory_limit())
        ensure_tables(con, CHECKS.values())
        if replay:
            context = open_context(gx_dir, expectations_dir)
            report = replay_source(con, context, source, run_id, CHECKS, phone_region=phone_region)
        elif not landing_exists(con):
            print(f"{source}: no landing tables yet, nothing to validate")
            return None
        elif not pending_batches(con, source):
            # before GX is touched: its first import alone costs seconds
            report = None
        else:
            context = open_context(gx_dir, expectations_dir)
            report = validate_source(
                con,
                context,
                source,
                run_id,
                CHECKS,
                phone_region=phone_region,
                max_records_per_slice=max_records_per_slice,
            )
    if report is None:
        print(f"{source}: nothing pending")
    else:
        print(
            f"{source} ({report.kind}): evaluated {report.evaluated}, valid {report.valid}, "
            f"quarantined {report.quarantined}, failure share {report.failure_share:.1%}"
        )
    return report


@task(name="build-data-docs", cache_policy=NO_CACHE)
def build_docs_task(
    reports: list[SourceReport], gx_dir: Path, expectations_dir: Path | None = None
) -> Path | None:
    """Render this run's validations as GX Data Docs HTML; returns the site's index page."""
    from harmonia.validate.context import data_docs_index, open_context
    from harmonia.validate.engine import build_data_docs

    index = data_docs_index(gx_dir)
    if reports or not index.exists():
        # with nothing validated there is no page to add: rebuilding the site would only
        # re-render every stored result (a cost that grows with every run)
        build_data_docs(open_context(gx_dir, expectations_dir), reports)
    return index if index.exists() else None


@flow(name="validate", log_prints=True)
def validate(
    sources: list[str] | None = None,
    replay_quarantine: bool = False,
    max_failure_share: float = DEFAULT_MAX_FAILURE_SHARE,
    phone_region: str = "BR",
    warehouse: Path | None = None,
    gx_dir: Path | None = None,
    expectations_dir: Path | None = None,
    max_records_per_slice: int = MAX_RECORDS_PER_SLICE,
) -> ValidateResult:
    """Validate pending landing batches of ``sources`` (default: all) with their GX suites.

    Fails — after recording everything and publishing the artifact — when a source's
    reconciliation does not balance or its share of failing records exceeds
    ``max_failure_share``. Each source's pending batches are validated and committed in
    slices of whole batches of at most ``max_records_per_slice`` records.
    """
    from harmonia.settings import get_settings
    from harmonia.validate.definitions import SOURCES_CHECKED

    settings = get_settings()
    warehouse = Path(warehouse or settings.warehouse_path)
    gx_dir = Path(gx_dir or settings.gx_output_dir)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    chosen = list(sources or SOURCES_CHECKED)
    unknown = sorted(set(chosen) - set(SOURCES_CHECKED))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; known: {list(SOURCES_CHECKED)}")

    run_id = new_run_id()
    logger = get_run_logger()
    logger.info("validation run %s for %s", run_id, ", ".join(chosen))
    reports = [
        r
        for source in chosen
        if (
            r := validate_source_task(
                source,
                run_id,
                warehouse,
                gx_dir,
                expectations_dir,
                phone_region,
                replay_quarantine,
                max_records_per_slice,
            )
        )
        is not None
    ]
    docs = build_docs_task(reports, gx_dir, expectations_dir)
    summary = summary_markdown(reports, run_id, docs)
    artifact_id = create_markdown_artifact(
        key=ARTIFACT_KEY, markdown=summary, description=f"validation run {run_id}"
    )
    if docs is not None:
        print(f"Data Docs: {docs}")
    enforce(reports, max_failure_share)
    return ValidateResult(
        run_id=run_id,
        reports=reports,
        data_docs_index=docs,
        summary=summary,
        artifact_id=str(artifact_id),
    )
