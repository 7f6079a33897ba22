"""A ``harmonia ingest`` process killed mid-run (SIGKILL: no cleanup, no finally) and run
again ends with exactly the landing content of a clean run: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from harmonia.demo.server import DemoServer
from harmonia.pipeline.ingest import ingest

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
    deadline = time.monotonic() + 120
    while srv.stats()["requests"] < 12:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the ingest never got going"
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
