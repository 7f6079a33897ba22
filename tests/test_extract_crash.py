"""A ``harmonia ingest`` process killed mid-run (SIGKILL: no cleanup, no finally) and run
again ends with exactly the landing content of a clean run: nothing lost, nothing twice.

Landing buffers several pages per transaction (``RunOptions.flush_records`` /
``flush_seconds``): the state a transaction writes covers only pages committed in it or
before, whether the buffer is committed because it is full or because the vendor failed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from harmonia.demo.server import DemoServer
from harmonia.extract.http import ExtractError, HttpPolicy
from harmonia.extract.landing import Landing
from harmonia.extract.runner import PageEvent, RunOptions, run_source
from harmonia.extract.sources import CRM, SourceConfig
from harmonia.extract.state import read_state, to_epoch
from harmonia.pipeline.ingest import ingest
from harmonia.settings import Credentials

#: a source's summary line (``ingest_source``'s print) once it has committed records
LANDED = re.compile(r"\b[a-z]+: \d+ pages, \d+ records, [1-9]\d* landed")

CONTENT = """
    select source, entity, record_id, record_version, raw_json::varchar
    from landing.records order by all
"""


def _cli(srv: DemoServer, home: Path, api_url: str) -> subprocess.Popen[str]:
    env = os.environ | {
        "HARMONIA_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home / "prefect"),
    }
    harmonia = Path(sys.executable).parent / "harmonia"
    return subprocess.Popen(
        [str(harmonia), "ingest", "--base-url", srv.base_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_killed_ingest_resumes_to_the_content_of_a_clean_run(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    # every request slowed, so that the kill lands while pages are still coming in
    srv = make_demo_server(customers=300, faults={"slow": 1.0, "slow_seconds": 0.3})
    home = tmp_path / "killed"
    proc = _cli(srv, home, prefect_harness)
    # kill once some source has committed (its summary line says it landed records) while
    # the others are still reading: deterministic, where a request count raced the commit
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any(LANDED.search(line) for line in list(lines)):
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "no source committed: " + "".join(lines)
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        partial = conn.execute(CONTENT).fetchall()
        batches = conn.execute("select count(*) from landing.batches").fetchone()[0]
    assert batches > 0, "some pages had landed before the kill"

    srv.set_faults(None)
    rerun = _cli(srv, home, prefect_harness)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output

    clean = tmp_path / "clean" / "warehouse.duckdb"
    ingest(base_url=srv.base_url, warehouse=clean)

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        resumed = conn.execute(CONTENT).fetchall()
        dupes = conn.execute(
            "select count(*) - count(distinct (source, entity, record_id, record_version)) "
            "from landing.records"
        ).fetchone()[0]
    with duckdb.connect(str(clean), read_only=True) as conn:
        expected = conn.execute(CONTENT).fetchall()
    assert 0 < len(partial) < len(expected), "the kill came mid-run"
    assert set(partial) <= set(expected)
    assert dupes == 0
    assert resumed == expected


def small_pages(srv: DemoServer, size: int = 10) -> SourceConfig:
    """HubSpot (sorted ascending, state with every page) with small pages: many of them."""
    endpoint = CRM.endpoints[0]
    body = (endpoint.body or {}) | {"limit": size}
    return replace(CRM, endpoints=(replace(endpoint, body=body),)).with_base_url(srv.url("crm"))


def crm_landed(warehouse: Path) -> tuple[list[tuple], float | None, float | None]:
    """The landed crm content, the largest ``updatedAt`` among it, and the state's watermark."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(CONTENT).fetchall()
        state = read_state(conn, "crm", "contacts")
    newest = max((to_epoch(r[3]) or 0.0 for r in rows), default=None)
    return rows, newest, (state or {}).get("watermark")


@pytest.mark.parametrize("flush_records", [25, 10**9])
def test_a_failing_vendor_leaves_whole_batches_with_the_state_they_cover(
    make_demo_server: Callable[..., DemoServer], tmp_path: Path, flush_records: int
) -> None:
    """25: pages commit three at a time and the vendor breaks right after the first commit;
    10**9: nothing commits until the vendor breaks, then what was read commits. Either way
    the state is exactly the newest cursor among the committed records, and a rerun ends with
    the content of a clean run."""
    srv = make_demo_server(customers=300)
    cfg = small_pages(srv)
    warehouse = tmp_path / "failed.duckdb"

    def break_vendor(event: PageEvent) -> None:
        srv.set_faults({"server_error": 1.0})

    options = RunOptions(
        policy=HttpPolicy(max_attempts=1), flush_records=flush_records, flush_seconds=1e9
    )
    listener = break_vendor
    if flush_records == 10**9:
        # request faults are drawn from the seed: on a fresh server a few pages succeed first
        srv.set_faults({"server_error": 0.2})
        listener = None
    with Landing(warehouse) as landing, pytest.raises(ExtractError):
        run_source(cfg, landing, Credentials(), "failed", options, listener)
    partial, newest, watermark = crm_landed(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        pages = conn.execute("select count(*), sum(records) from landing.batches").fetchone()
    assert pages[0] >= 2 and pages[1] == len(partial) == 10 * pages[0]
    if flush_records == 25:
        # one transaction of three pages, then the failure; the fourth page was asked for
        # before the third landed (read ahead): it lands too if it came before the break
        assert pages[0] in (3, 4)
    assert watermark == newest

    srv.set_faults(None)
    with Landing(warehouse) as landing:
        run_source(cfg, landing, Credentials(), "rerun")
    with Landing(tmp_path / "clean.duckdb") as landing:
        run_source(cfg, landing, Credentials(), "clean")
    resumed, newest, watermark = crm_landed(warehouse)
    expected, *_ = crm_landed(tmp_path / "clean.duckdb")
    assert set(partial) < set(expected)
    assert resumed == expected and watermark == newest
