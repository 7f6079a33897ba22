"""Validation of pending landing batches (and replay of the quarantine) with GX on pandas.

Per source, in slices of whole pending landing batches holding at most
``MAX_RECORDS_PER_SLICE`` records (so memory is bounded whatever the backlog): flatten each
entity's raw JSON into a checkable frame, run that entity's suite on it (COMPLETE results keyed
by ``record_id`` + ``record_version``), build its Data Docs page, then in ONE DuckDB transaction
per slice copy passing records to ``raw.<source>_<entity>``, failing ones to
``dq.quarantine_<source>``, write the slice's data-quality record (``dq.dq_validation_runs``,
``dq.dq_expectation_results``, ``dq.dq_reconciliation``) and stamp its batches
``validated_at``. A crash before a slice's commit leaves its batches (and later slices') pending,
validated again next run; committed slices are never validated twice. The source's report sums
its slices; thresholds and reconciliation are enforced after everything is recorded.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from harmonia.validate import store
from harmonia.validate.fields import RecordCheck
from harmonia.validate.flatten_sql import flatten_in_duckdb
from harmonia.validate.suites import expectation_columns

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

DATASOURCE = "harmonia"
INDEX_COLUMNS = ["record_id", "record_version"]
SAMPLE_SIZE = 5
#: Landed records (``landing.batches.landed``) validated in one slice; a batch is never
#: split, so a single bigger batch is a slice of its own. At 1M contacts one pass over
#: Messenger's 1.4M records peaked at 6.2 GB RSS; at 100k contacts `harmonia validate`
#: peaked at 1.15 GB with a 139k-record slice and 1.06 GB with 100k-record slices (see
#: docs/data-quality.md), leaving room under 2 GB for the largest records (chat, ~2 KB).
MAX_RECORDS_PER_SLICE = 100_000


class DataQualityError(RuntimeError):
    """A source's share of failing records is above the threshold (everything is recorded)."""


class ReconciliationError(RuntimeError):
    """``extracted != valid + quarantined + duplicates`` for a source (everything is recorded)."""


class SuiteError(RuntimeError):
    """A suite is missing or an expectation could not be evaluated: no row can be judged."""


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str
    description: str
    success: bool
    element_count: int
    unexpected_count: int
    sample_values: list[Any]
    sample_record_ids: list[str]


@dataclass
class EntityResult:
    source: str
    entity: str
    suite: str
    evaluated: int
    failed: int
    outcomes: list[ExpectationOutcome]
    data_docs_path: str | None
    # (suite, run name, run time, batch id) of each GX result (one per slice)
    docs_keys: list[tuple[str, str, str, str]]
    started_at: datetime
    finished_at: datetime

    @property
    def failure_share(self) -> float:
        return self.failed / self.evaluated if self.evaluated else 0.0


@dataclass
class SourceReport:
    """What one source's validation (or replay) did, for the artifact and the caller."""

    run_id: str
    source: str
    kind: str  # landing | replay
    entities: list[EntityResult] = field(default_factory=list)
    batches: int = 0
    extracted: int = 0
    duplicates: int = 0
    valid: int = 0
    quarantined: int = 0
    balanced: bool = True
    released: int = 0  # replay: rows moved from quarantine to raw

    @property
    def evaluated(self) -> int:
        return sum(e.evaluated for e in self.entities)

    @property
    def failed(self) -> int:
        return sum(e.failed for e in self.entities)

    @property
    def failure_share(self) -> float:
        return self.failed / self.evaluated if self.evaluated else 0.0

    def top_failures(self, n: int = 3) -> list[tuple[str, str, str, int]]:
        """``(entity, expectation, column, unexpected_count)`` of the most violated checks."""
        rows = [
            (e.entity, o.expectation, o.column, o.unexpected_count)
            for e in self.entities
            for o in e.outcomes
            if o.unexpected_count
        ]
        return sorted(rows, key=lambda r: (-r[3], r[0], r[1], r[2]))[:n]


def new_run_id() -> str:
    return f"val-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _secrets() -> set[str]:
    from harmonia.settings import Credentials

    values = set()
    for value in Credentials().model_dump().values():
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else None
        if raw:
            values.add(raw)
    return values


def _scrub(value: Any, secrets: set[str]) -> Any:
    """Samples are data, never credentials: any value containing a secret is masked."""
    if isinstance(value, str) and any(s in value for s in secrets):
        return "***redacted***"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- GX -------------------------------------------------------------------------------------


def _stored_definition(context: AbstractDataContext, suite_name: str) -> Any | None:
    """The validation definition saved by an earlier run, if it is still exactly ours.

    ``add_or_update`` of the data source, asset and definition rewrites GX's files on every
    call (~0.2 s per suite); an incremental run would pay that for every suite. The stored
    definition is reused when it validates this suite on the ``whole`` batch of this suite's
    asset in our data source, and GX finds it and its suite fresh (the suite is loaded from
    the expectations store, so a rewritten suite is what runs).
    """
    from great_expectations.exceptions import DataContextError

    try:
        definition = context.validation_definitions.get(suite_name)
        batch_definition = definition.batch_definition
        asset = batch_definition.data_asset
        matches = (
            definition.suite.name == suite_name
            and batch_definition.name == "whole"
            and asset.name == suite_name
            and asset.datasource.name == DATASOURCE
        )
    except (DataContextError, LookupError, ValueError):
        # not stored yet, or it names a data source / asset the context no longer has
        return None
    if not matches or not definition.is_fresh().success:
        return None
    return definition


def _validation_definition(context: AbstractDataContext, suite_name: str) -> Any:
    import great_expectations as gx
    from great_expectations.exceptions import DataContextError

    stored = _stored_definition(context, suite_name)
    if stored is not None:
        return stored
    try:
        suite = context.suites.get(suite_name)
    except DataContextError as exc:
        raise SuiteError(
            f"no expectation suite {suite_name!r} in the expectations store: "
            "run `harmonia write-suites`"
        ) from exc
    try:
        source = context.data_sources.get(DATASOURCE)
    except KeyError:
        source = context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = source.get_asset(suite_name)
    except LookupError:
        asset = source.add_dataframe_asset(suite_name)
    try:
        batch_definition = asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
    )


_MEMO_LOCK = threading.Lock()


@contextmanager
def _memoized_expectation_configurations() -> Iterator[None]:
    """Build each expectation's ``configuration`` once while a suite is validated.

    GX 1.24's ``Expectation.configuration`` is a property that rebuilds an
    ``ExpectationConfiguration`` from the pydantic model (``.dict()``, deep copies) on every
    access, and validating one expectation reads it ~130 times (once per kwarg looked up):
    ~40 % of a small suite's validation time, the same for 10 rows as for 10,000. Inside this
    block the property returns, on this thread, the object built on first access for that
    expectation (expectations are not changed while they are validated, and GX deep-copies a
    configuration it means to change); other threads get a fresh one as before. On exit the
    original property is back. One block at a time (the lock).
    """
    from great_expectations.expectations.expectation import Expectation

    original = Expectation.__dict__.get("configuration")
    if not isinstance(original, property):  # not the GX this was written for: do nothing
        yield
        return
    built: dict[int, tuple[Any, Any]] = {}
    owner = threading.get_ident()

    def configuration(self: Any) -> Any:
        if threading.get_ident() != owner:
            return original.fget(self)
        # keyed by id() while holding the expectation itself, so an id cannot be reused
        hit = built.get(id(self))
        if hit is None or hit[0] is not self:
            hit = (self, original.fget(self))
            built[id(self)] = hit
        return hit[1]

    with _MEMO_LOCK:
        Expectation.configuration = property(configuration, doc=original.__doc__)  # type: ignore[method-assign]
        try:
            yield
        finally:
            Expectation.configuration = original  # type: ignore[method-assign]
            built.clear()


def _forget_batch(definition: Any) -> None:
    """Let go of the frame GX keeps after a run. The data source's execution engine caches the
    last batch of every asset it validated (a ``Batch`` holding the frame, one per asset for a
    whole-dataframe batch), and the contexts stay open for the process (``context._OPENED``),
    so each entity's last slice stayed resident after validation: into the next slice, and
    into the dbt build that follows in the same process (9 frames, 127 MiB shallow, after a 5M
    validate; ``docs/performance.md``, seventeenth round). Only this asset's batch goes (a
    context is shared by the tasks of a process); the next run loads its frame afresh. On a
    GX without these caches, nothing to do."""
    try:
        asset = definition.asset
        manager = definition.data_source.get_execution_engine().batch_manager
        batches = manager.batch_cache
    except AttributeError:
        return
    for batch_id, batch in list(batches.items()):
        if getattr(batch, "data_asset", None) is asset:
            batches.pop(batch_id, None)
            manager.batch_data_cache.pop(batch_id, None)


def run_suite(
    context: AbstractDataContext,
    check: RecordCheck,
    frame: pd.DataFrame,
    run_id: str,
    run_time: datetime,
) -> tuple[EntityResult, dict[tuple[str, str], list[dict[str, str]]]]:
    """Validate ``frame`` with the entity's suite; returns the result and, per failing record
    key, the expectations it failed (``[{"expectation": type, "column": ...}]``)."""
    from great_expectations.core.run_identifier import RunIdentifier

    started = datetime.now(UTC)
    definition = _validation_definition(context, check.suite_name)
    gx_run = RunIdentifier(run_name=run_id, run_time=run_time)
    with _memoized_expectation_configurations():
        result: ExpectationSuiteValidationResult = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": INDEX_COLUMNS,
                "return_unexpected_index_query": False,
            },
            run_id=gx_run,
        )
    _forget_batch(definition)
    docs_key = (check.suite_name, run_id, run_time.isoformat(), str(result.batch_id))
    page = None
    for site in context.get_docs_sites_urls(
        resource_identifier=_result_identifier(docs_key), only_if_exists=False
    ):
        page = str(site.get("site_url") or "").removeprefix("file://") or None

    secrets = _secrets()
    # row of each record key, built only when a failure names rows (most suites have none)
    position: dict[tuple[str, str], int] = {}
    failures: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    outcomes: list[ExpectationOutcome] = []
    for item in result.results:
        config = item.expectation_config.to_json_dict()
        etype = str(config["type"])
        column = expectation_columns(config)
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise SuiteError(
                f"{check.suite_name}: {etype} on {column!r} could not be evaluated: "
                f"{item.exception_info.get('exception_message')}"
            )
        res = item.result or {}
        keys = []
        for row in res.get("unexpected_index_list") or []:
            if not position:
                position = _positions(frame)
            key = (str(row["record_id"]), str(row["record_version"]))
            if key not in position:
                continue
            if not failures[key] or failures[key][-1] != {"expectation": etype, "column": column}:
                failures[key].append({"expectation": etype, "column": column})
            keys.append(key)
        unexpected = int(res.get("unexpected_count") or 0)
        if not item.success and not keys:
            raise SuiteError(
                f"{check.suite_name}: {etype} on {column!r} failed without naming rows; "
                "only row-level expectations may be used"
            )
        sample_cols = [
            c for c in (config.get("meta") or {}).get("sample_columns", []) if c in frame.columns
        ]
        samples: list[Any] = []
        sample_ids: list[str] = []
        for key in dict.fromkeys(keys):
            if len(sample_ids) < SAMPLE_SIZE:
                sample_ids.append(key[0])
            if sample_cols and len(samples) < SAMPLE_SIZE:
                row = frame.iloc[position[key]]
                vals = [_scrub(row[c], secrets) for c in sample_cols]
                value = vals[0] if len(vals) == 1 else vals
                if value not in samples:
                    samples.append(value)
            if len(sample_ids) >= SAMPLE_SIZE and len(samples) >= SAMPLE_SIZE:
                break
        outcomes.append(
            ExpectationOutcome(
                expectation=etype,
                column=column,
                description=str(config.get("description") or ""),
                success=bool(item.success),
                element_count=int(res.get("element_count") or len(frame)),
                unexpected_count=unexpected,
                sample_values=samples,
                sample_record_ids=sample_ids,
            )
        )
    entity_result = EntityResult(
        source=check.source,
        entity=check.entity,
        suite=check.suite_name,
        evaluated=len(frame),
        failed=len(failures),
        outcomes=outcomes,
        data_docs_path=page,
        docs_keys=[docs_key],
        started_at=started,
        finished_at=datetime.now(UTC),
    )
    return entity_result, dict(failures)


def _positions(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    """``{(record_id, record_version): row}`` of a frame."""
    return {key: i for i, key in enumerate(zip(frame.record_id, frame.record_version, strict=True))}


def _result_identifier(key: tuple[str, str, str, str]) -> Any:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    suite, run_name, run_time, batch_id = key
    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite),
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.fromisoformat(run_time)),
        batch_identifier=batch_id,
    )


def build_data_docs(context: AbstractDataContext, reports: list[SourceReport]) -> None:
    """Render the Data Docs pages of these validations (and the site index) as HTML.

    Done once per run, after every source, because each build also re-renders the index.
    """
    keys = [k for r in reports for e in r.entities for k in e.docs_keys]
    if keys:
        context.build_data_docs(resource_identifiers=[_result_identifier(k) for k in keys])
    else:
        context.build_data_docs()


# --- warehouse writes ------------------------------------------------------------------------


def _verdicts(
    entity: str, frame: pd.DataFrame, failures: dict[tuple[str, str], list[dict[str, str]]]
) -> pd.DataFrame:
    failed = [
        json.dumps(failures[key]) if key in failures else None
        for key in zip(frame.record_id, frame.record_version, strict=True)
    ]
    return pd.DataFrame(
        {
            "record_id": frame.record_id.astype(str),
            "record_version": frame.record_version.astype(str),
            "entity": entity,
            "failed_expectations": pd.Series(failed, dtype="object"),
        }
    )


def _record_results(
    con: duckdb.DuckDBPyConnection, run_id: str, kind: str, r: EntityResult, batches: int
) -> None:
    con.execute(
        "insert into dq.dq_validation_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            r.source,
            r.entity,
            r.suite,
            kind,
            batches,
            r.evaluated,
            r.failed,
            r.failed == 0,
            r.started_at,
            r.finished_at,
            r.data_docs_path,
        ],
    ).fetchall()
    if r.outcomes:
        # one statement for the suite's rows: executemany costs a round trip per row
        row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        con.execute(
            "insert into dq.dq_expectation_results values " + ", ".join([row] * len(r.outcomes)),
            [
                value
                for o in r.outcomes
                for value in (
                    run_id,
                    r.source,
                    r.entity,
                    r.suite,
                    o.expectation,
                    o.column,
                    o.description,
                    o.success,
                    o.element_count,
                    o.unexpected_count,
                    json.dumps(o.sample_values, default=str),
                    json.dumps(o.sample_record_ids),
                )
            ],
        ).fetchall()


def slices(pending: list[tuple[str, str, int]], max_records: int) -> list[list[tuple[str, str]]]:
    """``(batch_id, entity, landed)`` in order → consecutive groups of whole batches holding at
    most ``max_records`` landed records (a bigger batch alone).

    A batch that landed nothing (an empty page, all duplicates) never opens a slice of its
    own: alone it would be committed without any suite run, and its entity's
    ``dq_validation_runs.batches`` would not count it as one pass does.
    """
    out: list[list[tuple[str, str]]] = []
    size = 0
    for batch_id, entity, landed in pending:
        if not out or (size > 0 and landed > 0 and size + landed > max_records):
            out.append([])
            size = 0
        out[-1].append((batch_id, entity))
        size += landed
    return out


def _merge_outcomes(a: ExpectationOutcome, b: ExpectationOutcome) -> ExpectationOutcome:
    values = list(a.sample_values)
    for v in b.sample_values:
        if len(values) < SAMPLE_SIZE and v not in values:
            values.append(v)
    ids = list(dict.fromkeys(a.sample_record_ids + b.sample_record_ids))[:SAMPLE_SIZE]
    return ExpectationOutcome(
        expectation=a.expectation,
        column=a.column,
        description=a.description,
        success=a.success and b.success,
        element_count=a.element_count + b.element_count,
        unexpected_count=a.unexpected_count + b.unexpected_count,
        sample_values=values,
        sample_record_ids=ids,
    )


def _merge_entity(a: EntityResult, b: EntityResult) -> EntityResult:
    outcomes = {(o.expectation, o.column, o.description): o for o in a.outcomes}
    for o in b.outcomes:
        key = (o.expectation, o.column, o.description)
        outcomes[key] = _merge_outcomes(outcomes[key], o) if key in outcomes else o
    return EntityResult(
        source=a.source,
        entity=a.entity,
        suite=a.suite,
        evaluated=a.evaluated + b.evaluated,
        failed=a.failed + b.failed,
        outcomes=list(outcomes.values()),
        data_docs_path=a.data_docs_path or b.data_docs_path,
        docs_keys=a.docs_keys + b.docs_keys,
        started_at=min(a.started_at, b.started_at),
        finished_at=max(a.finished_at, b.finished_at),
    )


def _add_slice(report: SourceReport, part: SourceReport) -> None:
    """Fold one committed slice into the source's report: the same totals as one pass."""
    report.batches += part.batches
    report.extracted += part.extracted
    report.duplicates += part.duplicates
    report.valid += part.valid
    report.quarantined += part.quarantined
    report.balanced = report.balanced and part.balanced
    by_entity = {e.entity: i for i, e in enumerate(report.entities)}
    for e in part.entities:
        if e.entity in by_entity:
            i = by_entity[e.entity]
            report.entities[i] = _merge_entity(report.entities[i], e)
        else:
            by_entity[e.entity] = len(report.entities)
            report.entities.append(e)
    report.entities.sort(key=lambda e: e.entity)


def validate_source(
    con: duckdb.DuckDBPyConnection,
    context: AbstractDataContext,
    source: str,
    run_id: str,
    checks: dict[str, RecordCheck],
    *,
    phone_region: str = "BR",
    max_records_per_slice: int = MAX_RECORDS_PER_SLICE,
) -> SourceReport | None:
    """Validate a source's pending landing batches, a slice at a time (each committed on its
    own); None when nothing is pending. The report sums every slice.

    Each slice writes its own ``dq_validation_runs`` (per suite), ``dq_expectation_results``
    and ``dq_reconciliation`` rows in its transaction, so what is committed is always
    accounted for: a source validated in several slices has several rows per run, and the
    source's figures for a run are their sums.
    """
    if max_records_per_slice < 1:
        raise ValueError(f"max_records_per_slice must be positive, not {max_records_per_slice}")
    pending = store.pending_batch_sizes(con, source)
    if not pending:
        return None
    for entity in dict.fromkeys(e for _, e, _ in pending):
        if f"{source}_{entity}" not in checks:
            raise SuiteError(f"{source}: landing has entity {entity!r} but no suite checks it")
    report = SourceReport(run_id=run_id, source=source, kind="landing")
    for part in slices(pending, max_records_per_slice):
        _add_slice(
            report,
            _validate_slice(con, context, source, run_id, checks, part, phone_region),
        )
    return report


def _validate_slice(
    con: duckdb.DuckDBPyConnection,
    context: AbstractDataContext,
    source: str,
    run_id: str,
    checks: dict[str, RecordCheck],
    pending: list[tuple[str, str]],
    phone_region: str,
) -> SourceReport:
    """Validate and commit, in one transaction, the batches ``pending`` (one slice)."""
    report = SourceReport(run_id=run_id, source=source, kind="landing")
    by_entity: dict[str, list[str]] = defaultdict(list)
    for batch_id, entity in pending:
        by_entity[entity].append(batch_id)
    batch_ids = [b for b, _ in pending]
    # its own run time per slice: GX keys a stored result by suite, run and time (the batch
    # id of a whole-dataframe batch is the same every time), so slices would overwrite
    run_time = datetime.now(UTC)
    span = store.batches_span(con, batch_ids)

    verdicts: list[pd.DataFrame] = []
    for entity in sorted(by_entity):
        check = checks[f"{source}_{entity}"]
        relation, params = store.landing_relation(source, entity, by_entity[entity], span)
        frame = flatten_in_duckdb(con, check, relation, params, phone_region=phone_region)
        if frame.empty:
            continue
        result, failures = run_suite(context, check, frame, run_id, run_time)
        report.entities.append(result)
        verdicts.append(_verdicts(entity, frame, failures))

    now = datetime.now(UTC)
    con.execute("begin transaction").fetchall()
    try:
        still = con.execute(
            "select count(*) from landing.batches "
            "where list_contains(?, batch_id) and validated_at is null",
            [batch_ids],
        ).fetchall()[0]
        if not still or still[0] != len(batch_ids):
            raise RuntimeError(f"{source}: landing batches were validated concurrently; retry")
        if verdicts:
            con.register("_verdicts", pd.concat(verdicts, ignore_index=True))
            for entity in by_entity:
                join = (
                    "from landing.records r join _verdicts v on v.entity = r.entity "
                    "and v.record_id = r.record_id "
                    "and v.record_version = coalesce(r.record_version, '') "
                    "where r.source = ? and r.entity = ? and r.extracted_at >= ? "
                    "and r.extracted_at <= ? and list_contains(?, r.batch_id)"
                )
                con.execute(
                    f"insert into {store.raw_table(source, entity)} "
                    "select r.record_id, r.record_version, r.raw_json, r.run_id, r.batch_id, "
                    f"r.extracted_at, ?, ? {join} and v.failed_expectations is null",
                    [now, run_id, source, entity, *span, by_entity[entity]],
                ).fetchall()
                con.execute(
                    f"insert into {store.quarantine_table(source)} "
                    "select r.record_id, r.record_version, r.entity, r.raw_json, r.run_id, "
                    "r.batch_id, r.extracted_at, v.failed_expectations::json, ?, ? "
                    f"{join} and v.failed_expectations is not null",
                    [now, run_id, source, entity, *span, by_entity[entity]],
                ).fetchall()
            con.unregister("_verdicts")
        con.execute(
            "update landing.batches set validated_at = ? where list_contains(?, batch_id)",
            [now, batch_ids],
        ).fetchall()
        for result in report.entities:
            _record_results(con, run_id, "landing", result, len(by_entity[result.entity]))
        _reconcile(con, report, source, batch_ids, list(by_entity), now, span)
        con.execute("commit").fetchall()
    except BaseException:
        con.execute("rollback").fetchall()
        raise
    return report


def _reconcile(
    con: duckdb.DuckDBPyConnection,
    report: SourceReport,
    source: str,
    batch_ids: list[str],
    entities: list[str],
    now: datetime,
    span: tuple[datetime | None, datetime | None],
) -> None:
    # `span` (of extracted_at) and `now` keep the scans of landing and raw to this slice's
    # row groups
    extracted, duplicates = con.execute(
        "select coalesce(sum(records), 0), coalesce(sum(duplicates), 0) from landing.batches "
        "where list_contains(?, batch_id)",
        [batch_ids],
    ).fetchall()[0]
    (landed,) = con.execute(
        "select count(*) from landing.records where source = ? and extracted_at >= ? "
        "and extracted_at <= ? and list_contains(?, batch_id)",
        [source, *span, batch_ids],
    ).fetchall()[0]
    valid = 0
    for entity in entities:
        (n,) = con.execute(
            f"select count(*) from {store.raw_table(source, entity)} "
            "where validated_at = ? and validation_run_id = ? and list_contains(?, batch_id)",
            [now, report.run_id, batch_ids],
        ).fetchall()[0]
        valid += int(n)
    (quarantined,) = con.execute(
        f"select count(*) from {store.quarantine_table(source)} "
        "where quarantined_at = ? and validation_run_id = ? and list_contains(?, batch_id)",
        [now, report.run_id, batch_ids],
    ).fetchall()[0]
    report.batches = len(batch_ids)
    report.extracted, report.duplicates = int(extracted), int(duplicates)
    report.valid, report.quarantined = valid, int(quarantined)
    report.balanced = report.extracted == report.valid + report.quarantined + report.duplicates
    con.execute(
        "insert into dq.dq_reconciliation values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            report.run_id,
            source,
            report.batches,
            report.extracted,
            report.duplicates,
            int(landed),
            report.valid,
            report.quarantined,
            report.balanced,
            now,
        ],
    ).fetchall()


def replay_source(
    con: duckdb.DuckDBPyConnection,
    context: AbstractDataContext,
    source: str,
    run_id: str,
    checks: dict[str, RecordCheck],
    *,
    phone_region: str = "BR",
) -> SourceReport | None:
    """Re-validate a source's quarantined rows with the current suites; rows that now pass
    move to raw (removed from quarantine, the move kept in ``dq.quarantine_releases``)."""
    report = SourceReport(run_id=run_id, source=source, kind="replay")
    entities = [
        str(e)
        for (e,) in con.execute(
            f"select distinct entity from {store.quarantine_table(source)} order by 1"
        ).fetchall()
    ]
    if not entities:
        return None
    run_time = datetime.now(UTC)
    verdicts: list[pd.DataFrame] = []
    for entity in entities:
        check = checks.get(f"{source}_{entity}")
        if check is None:
            raise SuiteError(f"{source}: quarantine holds entity {entity!r} but no suite checks it")
        relation, params = store.quarantine_relation(source, entity)
        frame = flatten_in_duckdb(con, check, relation, params, phone_region=phone_region)
        result, failures = run_suite(context, check, frame, run_id, run_time)
        report.entities.append(result)
        verdicts.append(_verdicts(entity, frame, failures))

    now = datetime.now(UTC)
    q = store.quarantine_table(source)
    con.execute("begin transaction").fetchall()
    try:
        con.register("_verdicts", pd.concat(verdicts, ignore_index=True))
        passing = (
            f"from {q} q join _verdicts v on v.entity = q.entity and v.record_id = q.record_id "
            "and v.record_version = coalesce(q.record_version, '') "
            "where v.failed_expectations is null"
        )
        for entity in entities:
            con.execute(
                f"insert into {store.raw_table(source, entity)} "
                "select q.record_id, q.record_version, q.raw_json, q.run_id, q.batch_id, "
                f"q.extracted_at, ?, ? {passing} and q.entity = ?",
                [now, run_id, entity],
            ).fetchall()
        con.execute(
            "insert into dq.quarantine_releases "
            "select ?, q.entity, q.record_id, q.record_version, q.validation_run_id, ?, "
            f"q.failed_expectations, q.quarantined_at, ? {passing}",
            [source, run_id, now],
        ).fetchall()
        (released,) = con.execute(
            "select count(*) from dq.quarantine_releases where released_by_run_id = ? "
            "and source = ?",
            [run_id, source],
        ).fetchall()[0]
        con.execute(
            f"delete from {q} where exists (select 1 from _verdicts v where v.entity = {q}.entity "
            f"and v.record_id = {q}.record_id "
            f"and v.record_version = coalesce({q}.record_version, '') "
            "and v.failed_expectations is null)"
        ).fetchall()
        con.unregister("_verdicts")
        for result in report.entities:
            _record_results(con, run_id, "replay", result, 0)
        con.execute("commit").fetchall()
    except BaseException:
        con.execute("rollback").fetchall()
        raise
    report.released = int(released)
    report.valid = int(released)
    report.quarantined = report.evaluated - report.released
    return report


# --- a whole run -----------------------------------------------------------------------------


def enforce(reports: list[SourceReport], max_failure_share: float) -> None:
    """Raise (after everything is recorded) on an unbalanced reconciliation or a failure
    share above ``max_failure_share`` — naming each offending source and entity.

    The share is taken per (source, entity), never over a whole source: a source's child
    entity (Messenger's messages) would otherwise dilute a broken parent (its conversations).
    """
    unbalanced = [r for r in reports if r.kind == "landing" and not r.balanced]
    if unbalanced:
        raise ReconciliationError(
            "; ".join(
                f"{r.source}: extracted {r.extracted} != valid {r.valid} + quarantined "
                f"{r.quarantined} + duplicates {r.duplicates} (run {r.run_id})"
                for r in unbalanced
            )
        )
    over = [
        (r, entities)
        for r in reports
        if r.kind == "landing"
        and (entities := [e for e in r.entities if e.failure_share > max_failure_share])
    ]
    if over:
        raise DataQualityError(
            "data-quality threshold exceeded — "
            + "; ".join(
                f"{r.source}: {r.failed} of {r.evaluated} records failed validation ("
                + ", ".join(
                    f"{e.entity}: {e.failed} of {e.evaluated}, "
                    f"{e.failure_share:.1%} > {max_failure_share:.1%}"
                    for e in entities
                )
                + f"), quarantined in dq.quarantine_{r.source}"
                for r, entities in over
            )
        )


def summary_markdown(reports: list[SourceReport], run_id: str, data_docs: Path | None) -> str:
    """The run, for a person: per source evaluated / valid / quarantined / top failures."""
    lines = [f"# Data quality — validation run `{run_id}`", ""]
    if not reports:
        lines.append("Nothing was pending: no landing batch (or quarantined row) to validate.")
    else:
        lines += [
            "| source | kind | batches | evaluated | valid | quarantined | failure share "
            "| reconciliation | top failing expectations |",
            "|---|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in reports:
            top = (
                "<br>".join(f"{e}: `{x}` on `{c}` ({n})" for e, x, c, n in r.top_failures()) or "—"
            )
            if r.kind == "landing":
                rec = (
                    f"balanced ({r.extracted} = {r.valid} + {r.quarantined} + {r.duplicates} dup)"
                    if r.balanced
                    else f"**UNBALANCED** ({r.extracted} ≠ {r.valid} + {r.quarantined} + "
                    f"{r.duplicates} dup)"
                )
            else:
                rec = f"replay: {r.released} released to raw"
            lines.append(
                f"| {r.source} | {r.kind} | {r.batches} | {r.evaluated} | {r.valid} | "
                f"{r.quarantined} | {r.failure_share:.1%} | {rec} | {top} |"
            )
    if data_docs is not None:
        lines += ["", f"Great Expectations Data Docs: `{data_docs}`"]
    return "\n".join(lines) + "\n"
