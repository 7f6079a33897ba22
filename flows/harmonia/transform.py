"""Run harmonia's dbt project (``dbt_project/``) in-process against a warehouse file.

``dbt_build`` and ``dbt_docs_generate`` call dbt through its programmatic entry point
(``dbt.cli.main.dbtRunner``) with the project's own ``profiles.yml``; the warehouse path is
handed to the profile through ``HARMONIA_WAREHOUSE``. A failing model, seed, test or unit test
raises :class:`DbtBuildError` carrying dbt's own messages, so a flow run fails loudly and says
what failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harmonia.memory import release_unused_memory
from harmonia.settings import REPO_ROOT, get_settings

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
_FAILED = {"error", "fail", "runtime error"}


class DbtBuildError(RuntimeError):
    """dbt reported failures; ``failures`` holds ``(unique_id, status, message)`` per failure."""

    def __init__(self, command: str, failures: list[tuple[str, str, str]]) -> None:
        self.failures = failures
        lines = [f"dbt {command} failed ({len(failures)} failure(s)):"]
        lines += [f"- {uid} [{status}]: {message}" for uid, status, message in failures]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class NodeResult:
    """One dbt node's outcome (model, seed, data test or unit test)."""

    unique_id: str
    resource_type: str
    status: str
    message: str
    execution_time: float
    rows_affected: int | None = None
    #: when the node's execute step ran, as Unix time (None for a node that never executed)
    started_at: float | None = None
    completed_at: float | None = None


@dataclass(frozen=True)
class BuildResult:
    """What a successful ``dbt build`` did."""

    command: list[str]
    nodes: list[NodeResult] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts


@contextmanager
def _warehouse_env(warehouse_path: Path) -> Iterator[None]:
    # The profile reads these with env_var(); the memory cap comes from the checked setting, so
    # dbt gets the value landing and validate use. Restore the caller's environment afterwards.
    values = {
        "HARMONIA_WAREHOUSE": str(Path(warehouse_path).resolve()),
        "HARMONIA_DUCKDB_MEMORY_LIMIT": get_settings().duckdb_memory_limit,
    }
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _log_path(target_path: Path | None) -> Path:
    """``<home>/dbt/logs`` for the default target, else a ``logs`` folder beside the target."""
    if target_path is not None:
        return Path(target_path).parent / "logs"
    from harmonia.settings import get_settings

    return get_settings().home / "dbt" / "logs"


def _common_args(target_path: Path | None, vars: Mapping[str, Any] | None) -> list[str]:
    args = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    if target_path is not None:
        args += ["--target-path", str(target_path)]
    # dbt.log beside the run's other outputs, never in the source tree (where it grew forever)
    args += ["--log-path", str(_log_path(target_path))]
    if vars:
        args += ["--vars", json.dumps(dict(vars))]
    return args


def _invoke(command: list[str], warehouse_path: Path) -> Any:
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    with _warehouse_env(warehouse_path):
        try:
            return dbtRunner().invoke(command)
        finally:
            # dbt-duckdb keeps its database open for the life of the process; DuckDB allows one
            # writer per file, so release it for the steps that open the warehouse next.
            env = DuckDBConnectionManager._ENV
            if env is not None:
                env.close()
            DuckDBConnectionManager.close_all_connections()


def _unix(moment: datetime) -> float:
    # dbt stamps its timings in naive UTC
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _execute_span(item: Any) -> tuple[float | None, float | None]:
    """Unix times of a result's execute step, or ``(None, None)`` when it never ran."""
    for timing in getattr(item, "timing", None) or []:
        if timing.name == "execute" and timing.started_at and timing.completed_at:
            return _unix(timing.started_at), _unix(timing.completed_at)
    return None, None


def _node_results(result: Any) -> list[NodeResult]:
    run_results = getattr(result, "result", None)
    nodes: list[NodeResult] = []
    for item in getattr(run_results, "results", None) or []:
        adapter_response = getattr(item, "adapter_response", None) or {}
        rtype = item.node.resource_type
        started_at, completed_at = _execute_span(item)
        nodes.append(
            NodeResult(
                unique_id=item.node.unique_id,
                resource_type=str(getattr(rtype, "value", rtype)),
                status=str(item.status),
                message=str(item.message or ""),
                execution_time=float(item.execution_time or 0.0),
                rows_affected=adapter_response.get("rows_affected"),
                started_at=started_at,
                completed_at=completed_at,
            )
        )
    return nodes


def dbt_build(
    warehouse_path: Path | str,
    select: str | Sequence[str] | None = None,
    full_refresh: bool = False,
    vars: Mapping[str, Any] | None = None,
    *,
    exclude: str | Sequence[str] | None = None,
    target_path: Path | None = None,
    unit_tests: bool = False,
) -> BuildResult:
    """``dbt build`` (seeds, models, data tests; unit tests with ``unit_tests=True``) on
    ``warehouse_path``.

    Staging models are incremental; ``full_refresh`` rebuilds them from ``raw.*``. Unit tests
    check the SQL against fixed fixtures, not the data, so a pipeline run leaves them out
    (dbt's own advice: run them in development and CI); ``tests/test_dbt_rules.py`` runs them.
    Raises :class:`DbtBuildError` with dbt's messages when anything fails.
    """
    command = ["build", *_common_args(target_path, vars)]
    for flag, value in (("--select", select), ("--exclude", exclude)):
        if value:
            command += [flag, *([value] if isinstance(value, str) else list(value))]
    if not unit_tests:
        command += ["--exclude-resource-type", "unit_test"]
    if full_refresh:
        command.append("--full-refresh")
    # dbt's peak comes on top of what the stages before it freed but still hold
    release_unused_memory()
    return _checked(command, Path(warehouse_path))


def dbt_test(
    warehouse_path: Path | str,
    select: str | Sequence[str] | None = None,
    *,
    target_path: Path | None = None,
) -> BuildResult:
    """``dbt test`` (data tests, not unit tests) on the tables as built, without building.

    The unique tests of the incremental chains check the rows the last build replaced (their
    ``where: "scope: ..."``, docs/dbt.md). Raises :class:`DbtBuildError` on a failing test.
    """
    command = ["test", *_common_args(target_path, None), "--exclude-resource-type", "unit_test"]
    if select:
        command += ["--select", *([select] if isinstance(select, str) else list(select))]
    return _checked(command, Path(warehouse_path))


def _checked(command: list[str], warehouse_path: Path) -> BuildResult:
    """Run a dbt command that builds or tests nodes; raise on any failed node."""
    result = _invoke(command, warehouse_path)
    nodes = _node_results(result)
    failures = [(n.unique_id, n.status, n.message) for n in nodes if n.status in _FAILED]
    if result.exception is not None:
        failures.append(("dbt", "error", str(result.exception)))
    if failures or not result.success:
        raise DbtBuildError(" ".join(command[:1]), failures or [("dbt", "error", "unknown")])
    elapsed = getattr(result.result, "elapsed_time", 0.0) or 0.0
    return BuildResult(command=command, nodes=nodes, elapsed_seconds=float(elapsed))


def dbt_docs_generate(warehouse_path: Path | str, *, target_path: Path | None = None) -> Path:
    """Generate dbt's documentation site; returns the path of its ``index.html``."""
    command = ["docs", "generate", *_common_args(target_path, None)]
    result = _invoke(command, Path(warehouse_path))
    if result.exception is not None or not result.success:
        raise DbtBuildError("docs generate", [("dbt", "error", str(result.exception))])
    return (target_path or DBT_PROJECT_DIR / "target") / "index.html"


def dbt_parse(warehouse_path: Path | str, *, target_path: Path | None = None) -> None:
    """``dbt parse``: write the manifest (and its partial-parse state) to ``target_path``.

    The warehouse path is part of the profile, so a target directory moved beside a copied
    warehouse no longer matches it and the next command would parse the project in full.
    """
    result = _invoke(["parse", *_common_args(target_path, None)], Path(warehouse_path))
    if result.exception is not None or not result.success:
        raise DbtBuildError("parse", [("dbt", "error", str(result.exception))])
