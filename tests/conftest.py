"""Shared pytest fixtures. Add to this file with small additive edits (see docs/team/README.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield str(get_current_settings().api.url)
