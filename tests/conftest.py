"""Shared pytest fixtures. Add to this file with small additive edits (see docs/team/README.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harmonia.demo.server import DemoServer

DEMO_SEED = 42
DEMO_CUSTOMERS = 120


@pytest.fixture(scope="session")
def demo_server() -> Iterator[DemoServer]:
    """The demo channel APIs over a small world (seed 42, 120 customers), no faults, on loopback.

    Session-scoped: do not move its clock or switch its faults; use ``make_demo_server``.
    """
    with DemoServer(seed=DEMO_SEED, customers=DEMO_CUSTOMERS, port=0) as srv:
        yield srv


@pytest.fixture
def make_demo_server() -> Iterator[Callable[..., DemoServer]]:
    """Factory: ``make_demo_server(faults={"rate_limit": 1.0}, customers=50, ...)`` returns a
    started :class:`DemoServer` (same keyword arguments), stopped when the test ends."""
    started: list[DemoServer] = []

    def make(**kwargs: Any) -> DemoServer:
        kwargs.setdefault("seed", DEMO_SEED)
        if "world" not in kwargs and "contacts" not in kwargs:
            kwargs.setdefault("customers", DEMO_CUSTOMERS)
        srv = DemoServer(port=0, **kwargs).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """A throwaway Prefect API (temporary database) for flows under test; yields its URL so
    that subprocesses (``harmonia ingest``) can report to the same API."""
    from prefect.logging.configuration import setup_logging
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    # Prefect's console handler keeps the stream it was built with: build it now, on the
    # session's stderr, not inside a test's capsys (closed after that test, so the next
    # test's flow logs would fail with "I/O operation on closed file")
    setup_logging()
    with prefect_test_harness(server_startup_timeout=60):
        yield str(get_current_settings().api.url)


@pytest.fixture(scope="session")
def metrics_edge_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hand-built fct_* tables (tests/metric_facts.py: a seeded world plus edge cases) with the
    metric marts built on them by real dbt (``marts.metrics``, the contact pairs of
    ``int_request_transitions`` and the customer months of ``int_customer_activity_months``
    only, reporting timezone ``metric_facts.EDGE_TIMEZONE``).
    Read-only for tests: copy it before changing it."""
    from harmonia.transform import dbt_build
    from metric_facts import EDGE_TIMEZONE, write_facts

    root = tmp_path_factory.mktemp("metrics-edge")
    warehouse = root / "warehouse.duckdb"
    write_facts(warehouse)
    dbt_build(
        warehouse,
        select=[
            "reference_points",
            "int_request_transitions",
            "int_customer_activity_months",
            "marts.metrics",
        ],
        vars={"reporting_timezone": EDGE_TIMEZONE},
        target_path=root / "target",
    )
    return warehouse


@pytest.fixture(scope="session")
def metrics_demo_warehouse(
    demo_server: DemoServer, prefect_harness: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The session's demo world through the real pipeline: ingest over HTTP, GX validation,
    full ``dbt build`` (facts and metric marts, reporting timezone UTC). Read-only for tests."""
    import shutil

    from harmonia.pipeline.ingest import ingest
    from harmonia.transform import dbt_build
    from harmonia.validate.context import EXPECTATIONS_DIR
    from harmonia.validate.flow import validate

    root = tmp_path_factory.mktemp("metrics-demo")
    warehouse = root / "warehouse.duckdb"
    ingest(base_url=demo_server.base_url, warehouse=warehouse)
    shutil.copytree(EXPECTATIONS_DIR, root / "expectations")
    validate(warehouse=warehouse, gx_dir=root / "gx", expectations_dir=root / "expectations")
    dbt_build(warehouse, target_path=root / "target")
    return warehouse
