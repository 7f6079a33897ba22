"""Deployments and scheduling on a real Prefect server, and the warehouse lock.

* ``test_deployments_run_on_a_prefect_server``: a real ``prefect server start`` on loopback
  (own ``PREFECT_HOME`` and SQLite database in ``tmp_path``), a ``process`` work pool,
  ``prefect deploy --all`` of ``deployments/prefect.yaml``, a real ``prefect worker``; the
  incremental and backfill deployments run against the demo APIs over HTTP, and a run with a
  refused credential fails with the stage and the source in its state message.
* ``test_overlapping_runs_serialize_on_the_warehouse_lock``: two ``harmonia run-flow
  incremental`` processes started at once on one warehouse (plus one that must fail fast)
  end with exactly the content and watermarks of a single clean run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import duckdb
import pytest
from harmonia.demo.server import DemoServer
from harmonia.extract.sources import SOURCES
from harmonia.extract.state import to_epoch
from harmonia.pipeline.lock import WarehouseBusy, WarehouseLock, read_holder
from harmonia.pipeline.scheduled import Source

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POOL = "harmonia-process"
TINY = {"seed": 42, "customers": 30}  # ~180 records: every source, fast
RAW_TABLES = (
    "voice_contacts",
    "sms_messages",
    "email_tickets",
    "chat_conversations",
    "messenger_conversations",
    "surveys_responses",
    "crm_contacts",
)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


# --------------------------------------------------------------------------------------------
# helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a process group started with ``start_new_session``; kill if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


# --------------------------------------------------------------------------------------------
# fast checks


def test_source_literal_matches_the_extract_sources() -> None:
    assert list(get_args(Source)) == list(SOURCES)


def test_failure_automation_is_a_valid_prefect_automation() -> None:
    import yaml
    from prefect.events.schemas.automations import AutomationCore

    path = REPO / "deployments" / "automations" / "notify-on-failure.yaml"
    automation = AutomationCore.model_validate(yaml.safe_load(path.read_text()))
    assert automation.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert "flow_run.state.message" in automation.actions[0].body


def test_lock_is_exclusive_reentrant_and_names_its_holder(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with WarehouseLock(warehouse, wait_seconds=0, holder="first"):
        with WarehouseLock(warehouse, wait_seconds=0, holder="nested"):  # same thread: fine
            assert "first" in read_holder(warehouse)
        errors: list[BaseException] = []

        def other() -> None:
            try:
                WarehouseLock(warehouse, wait_seconds=0, holder="second").acquire()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert len(errors) == 1 and isinstance(errors[0], WarehouseBusy)
        assert f"pid {os.getpid()}" in str(errors[0]) and "first" in str(errors[0])
    # released: another holder gets it at once
    with WarehouseLock(warehouse, wait_seconds=0, holder="third"):
        assert "third" in read_holder(warehouse)


# --------------------------------------------------------------------------------------------
# a real Prefect server, deployments and a worker


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free loopback port with its own home and SQLite database;
    yields the environment (``PREFECT_API_URL`` …) for CLI calls and workers."""
    import requests

    root = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and not k.startswith("HARMONIA_")
    }
    env |= {
        "PREFECT_HOME": str(root / "home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_CLI_COLORS": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    log = root / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                *(str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"),
                *("--port", str(port), "--no-ui", "--analytics-off", "--no-scheduler"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if requests.get(f"{env['PREFECT_API_URL']}/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Prefect server did not start:\n{_tail(log)}")
            time.sleep(1)
        yield env | {"_log": str(log)}
    finally:
        _stop(server)


def _prefect(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(BIN / "prefect"), *args],
        env={k: v for k, v in env.items() if not k.startswith("_")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _wait_for(client, run_id, timeout: float, worker_log: Path):
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.type.value in FINAL:
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"flow run {run.name} still {run.state}:\n{_tail(worker_log)}")
        time.sleep(2)


@pytest.mark.slow
def test_deployments_run_on_a_prefect_server(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = prefect_server
    home = tmp_path / "home"
    _prefect(env, "work-pool", "create", POOL, "--type", "process")
    _prefect(env, "global-concurrency-limit", "create", "harmonia-warehouse", "--limit", "1")
    # = prefect --no-prompt deploy --prefect-file deployments/prefect.yaml --all (+ a compat fix)
    deployed = subprocess.run(
        [sys.executable, "-m", "harmonia.pipeline.deploy", "--all"],
        env={k: v for k, v in env.items() if not k.startswith("_")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    worker_log = tmp_path / "worker.log"
    worker_env = {k: v for k, v in env.items() if not k.startswith("_")} | {
        "HARMONIA_REPO": str(REPO),  # the pull step's working directory
        "HARMONIA_HOME": str(home),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    with open(worker_log, "wb") as out:
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
            env=worker_env,
            cwd=tmp_path,  # the pull step, not the worker's cwd, must find the repository
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with (
            DemoServer(**TINY, port=0) as demo,
            temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
            get_client(sync_client=True) as client,
        ):
            # by name (GET): the filter endpoints refuse the client's null paging, see deploy.py
            deployments = {
                name: client.read_deployment_by_name(f"harmonia-{name}/{name}")
                for name in ("incremental", "nightly", "backfill")
            }
            assert set(deployments) == {"incremental", "nightly", "backfill"}
            crons = {
                name: [(s.schedule.cron, s.schedule.timezone) for s in d.schedules]
                for name, d in deployments.items()
            }
            assert crons["incremental"] == [("*/15 * * * *", "America/Sao_Paulo")]
            assert crons["nightly"] == [("30 2 * * *", "America/Sao_Paulo")]
            assert crons["backfill"] == []
            assert {d.work_pool_name for d in deployments.values()} == {POOL}
            for name, strategy in (("incremental", "CANCEL_NEW"), ("nightly", "ENQUEUE")):
                dep = deployments[name]
                assert dep.global_concurrency_limit.limit == 1, name
                assert dep.concurrency_options.collision_strategy.value == strategy, name
            assert deployments["backfill"].entrypoint == (
                "flows/harmonia/pipeline/scheduled.py:backfill"
            )

            # typed parameters: the server refuses an unknown source before any worker runs
            with pytest.raises(Exception, match=r"fax|enum|valid"):
                client.create_flow_run_from_deployment(
                    deployments["incremental"].id, parameters={"sources": ["fax"]}
                )

            incremental_wh = home / "incremental.duckdb"
            run_inc = client.create_flow_run_from_deployment(
                deployments["incremental"].id,
                parameters={"base_url": demo.base_url, "warehouse": str(incremental_wh)},
            )
            # the documented CLI way, with a window and two sources
            since, until = datetime(2026, 10, 12, tzinfo=UTC), datetime(2026, 10, 22, tzinfo=UTC)
            backfill_wh = home / "backfill.duckdb"
            out = _prefect(
                env,
                "deployment",
                "run",
                "harmonia-backfill/backfill",
                "--params",
                json.dumps(
                    {
                        "since": since.isoformat(),
                        "until": until.isoformat(),
                        "sources": ["voice", "sms"],
                        "base_url": demo.base_url,
                        "warehouse": str(backfill_wh),
                    }
                ),
            )
            run_bf_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
            assert run_bf_id, out
            done_inc = _wait_for(client, run_inc.id, 900, worker_log)
            # a refused credential: the failed state must say which stage and which source
            # (after the first incremental run: the deployment's limit drops overlapping runs)
            run_bad = client.create_flow_run_from_deployment(
                deployments["incremental"].id,
                parameters={
                    "base_url": demo.base_url,
                    "sources": ["voice"],
                    "warehouse": str(home / "refused.duckdb"),
                },
                job_variables={"env": {"HARMONIA_VOICE_TOKEN": "not-the-token"}},
            )

            done_bf = _wait_for(client, run_bf_id.group(1), 900, worker_log)
            done_bad = _wait_for(client, run_bad.id, 900, worker_log)
            limit = client.read_global_concurrency_limit_by_name("harmonia-warehouse")

        assert done_inc.state.type.value == "COMPLETED", (done_inc.state, _tail(worker_log))
        assert done_bf.state.type.value == "COMPLETED", (done_bf.state, _tail(worker_log))
        assert done_bad.state.type.value == "FAILED", done_bad.state
        message = done_bad.state.message or ""
        assert "stage 'ingest' failed" in message and "voice" in message, message
        assert limit.active_slots == 0  # every run gave its slot back, the failed one too
    finally:
        _stop(worker)

    # incremental: every source landed, validated into raw, and its watermark committed
    per_source = dict(
        _query(incremental_wh, "select source, count(*) from landing.records group by 1")
    )
    assert set(per_source) == set(SOURCES) and min(per_source.values()) > 0, per_source
    for table in RAW_TABLES:
        (rows,) = _query(incremental_wh, f"select count(*) from raw.{table}")[0]
        assert rows > 0, table
    stated = {s for (s,) in _query(incremental_wh, "select distinct source from landing.state")}
    assert stated == set(SOURCES)

    # backfill: only the chosen sources, only the window, and no watermark written
    records = _query(
        backfill_wh, "select source, raw_json from landing.records where source in ('voice', 'sms')"
    )
    assert {s for (s,) in _query(backfill_wh, "select distinct source from landing.records")} == {
        "voice",
        "sms",
    }
    everything = _query(
        incremental_wh, "select count(*) from landing.records where source in ('voice', 'sms')"
    )[0][0]
    assert 0 < len(records) < everything  # the world has records outside the window
    cursor = {"voice": "InitiationTimestamp", "sms": "date_sent"}
    day_start = since.timestamp()  # sms filters by whole days: the window's first day counts
    for source, raw in records:
        value = to_epoch(json.loads(raw)[cursor[source]])
        assert value is not None and day_start <= value <= until.timestamp(), (source, raw)
    assert _query(backfill_wh, "select count(*) from landing.state") == [(0,)]
    (bf_raw,) = _query(backfill_wh, "select count(*) from raw.voice_contacts")[0]
    assert bf_raw > 0


# --------------------------------------------------------------------------------------------
# two overlapping runs on one warehouse


def _run_flow(home: Path, api_url: str, base_url: str, log: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMONIA_")} | {
        "HARMONIA_HOME": str(home),
        "PREFECT_API_URL": api_url,
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(BIN / "harmonia"), "run-flow", "incremental", "--base-url", base_url, *extra],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _snapshot(warehouse: Path) -> dict[str, object]:
    """What must be identical to a single clean run: records, watermarks, raw, quarantine."""
    snap: dict[str, object] = {
        "records": sorted(
            _query(
                warehouse,
                "select source, entity, record_id, record_version, raw_json::varchar "
                "from landing.records",
            )
        ),
        "state": sorted(
            _query(warehouse, "select source, entity, cursor::varchar from landing.state")
        ),
    }
    for table in RAW_TABLES:
        snap[table] = sorted(
            _query(warehouse, f"select record_id, record_version from raw.{table}")
        )
    quarantines = _query(
        warehouse,
        "select table_name from information_schema.tables where table_schema = 'dq' "
        "and table_name like 'quarantine_%'",
    )
    for (table,) in quarantines:
        snap[table] = sorted(_query(warehouse, f"select record_id, record_version from dq.{table}"))
    return snap


@pytest.mark.slow
def test_overlapping_runs_serialize_on_the_warehouse_lock(
    prefect_harness: str, tmp_path: Path
) -> None:
    shared, clean = tmp_path / "shared", tmp_path / "clean"
    warehouse = shared / "warehouse.duckdb"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "fast", "clean")}
    procs: dict[str, subprocess.Popen] = {}
    with DemoServer(**TINY, port=0) as demo:
        try:
            # hold the lock ourselves, so both runs are certain to find it taken
            with WarehouseLock(warehouse, wait_seconds=0, holder="the test"):
                for name in ("a", "b"):
                    procs[name] = _run_flow(
                        shared, prefect_harness, demo.base_url, logs[name], "--lock-wait", "900"
                    )
                procs["fast"] = _run_flow(
                    shared, prefect_harness, demo.base_url, logs["fast"], "--lock-wait", "0"
                )
                procs["clean"] = _run_flow(clean, prefect_harness, demo.base_url, logs["clean"])
                assert procs["fast"].wait(timeout=600) == 1, _tail(logs["fast"])
                deadline = time.monotonic() + 600
                while not all(
                    "waiting for the warehouse lock" in _tail(logs[n], 10**6) for n in "ab"
                ):
                    for n in "ab":
                        assert procs[n].poll() is None, _tail(logs[n])
                    assert time.monotonic() < deadline, _tail(logs["a"]) + _tail(logs["b"])
                    time.sleep(1)
            for name in ("a", "b", "clean"):
                assert procs[name].wait(timeout=900) == 0, _tail(logs[name])
        finally:
            for proc in procs.values():
                _stop(proc)

    fast = _tail(logs["fast"], 10**6)
    assert "stage 'lock' failed" in fast and "is busy" in fast and "the test" in fast, fast
    assert _snapshot(warehouse) == _snapshot(clean / "warehouse.duckdb")
    # one run landed everything, the other found only duplicates: nothing landed twice
    landed = _query(
        warehouse, "select run_id, sum(landed) from landing.batches group by 1 order by 2"
    )
    (total,) = _query(warehouse, "select count(*) from landing.records")[0]
    assert len(landed) == 2 and landed[0][1] == 0 and landed[1][1] == total, landed
