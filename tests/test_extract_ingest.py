"""The ingest flow against the demo APIs over real HTTP, into a real DuckDB file, under a real
(temporary) Prefect API: completeness under faults, late updates, quiet incremental runs,
fail-fast auth, and secrets kept out of logs, tables and artifacts.

The oracle is the generated world (``srv.world``) read at the server clock: which records
exist at ``now`` and at which version (docs/demo-apis.md: visible once ``now >=
first_version_at``; the first version until ``now >= updated_at``).

HubSpot's per-query search cap (10,000 results) is exercised with the demo's cap lowered
(``DemoServer(search_result_cap=…)``) and the crm source's ``result_cap`` lowered to match.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from harmonia.demo.generator import generate_world
from harmonia.demo.server import DemoServer, ms_message_id, sms_sid
from harmonia.extract.http import ClientError
from harmonia.extract.landing import Landing
from harmonia.extract.runner import SourceResult, run_source
from harmonia.extract.sources import CRM, SourceConfig
from harmonia.extract.state import read_state, to_epoch
from harmonia.pipeline.ingest import IngestFailed, IngestSummary, ingest
from harmonia.settings import Credentials

Expected = dict[tuple[str, str], dict[str, float]]  # (source, entity) -> {record_id: version}


def expected_at(srv: DemoServer, now: int) -> Expected:
    """Every record the world shows at ``now``, keyed like the landing zone, with the epoch of
    its version field."""
    w = srv.world
    out: Expected = defaultdict(dict)
    contacts = w.contacts.to_pylist()
    for c in contacts:
        if c["first_version_at"] > now:
            continue
        upd = max(c["updated_at"], c["first_version_at"])
        version = float(upd if upd <= now else c["first_version_at"])
        ch, sid = c["channel"], c["source_id"]
        if ch == "voice":
            out["voice", "contacts"][sid] = version
        elif ch == "email":
            out["email", "tickets"][sid] = version
            out["email", "metric_sets"][str(370_000_000_000 + int(sid))] = version
        elif ch == "chat":
            out["chat", "conversations"][sid] = version
        elif ch == "messenger":
            out["messenger", "conversations"][sid] = version
    # threads: one record per message (sms) / per message of the conversation version served
    for ch, arrays in (("sms", srv.state.sms_msg), ("messenger", srv.state.ms_msg)):
        table = srv.state.data[ch].table
        ids = table.column("source_id").to_pylist()
        fva = srv.state.fva[ch]
        upd = srv.state.upd[ch]
        for row, sid in enumerate(ids):
            if fva[row] > now:
                continue
            lo, hi = int(arrays["start"][row]), int(arrays["start"][row + 1])
            limit = now if ch == "sms" else (upd[row] if upd[row] <= now else fva[row])
            for i, t in enumerate(arrays["t"][lo:hi].tolist()):
                if t <= limit:
                    key = sms_sid(sid, i) if ch == "sms" else ms_message_id(sid, i)
                    out[ch, "messages"][key] = float(t)
    for s in w.surveys.to_pylist():
        if s["created_at"] <= now:
            final = max(s["updated_at"], s["created_at"])
            out["surveys", "responses"][s["source_id"]] = float(
                final if final <= now else s["created_at"]
            )
    for c in w.customers.to_pylist():
        if c["crm_id"] is not None and c["crm_created_at"] <= now:
            final = max(c["crm_updated_at"], c["crm_created_at"])
            out["crm", "contacts"][c["crm_id"]] = float(
                final if final <= now else c["crm_created_at"]
            )
    return dict(out)


def landed(warehouse: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            "select source, entity, record_id, record_version from landing.records"
        ).fetchall()
    out: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for source, entity, record_id, version in rows:
        out[source, entity].append((record_id, version))
    return dict(out)


def as_versions(rows: list[tuple[str, str]]) -> set[tuple[str, float | None]]:
    return {(rid, to_epoch(v)) for rid, v in rows}


def run(srv: DemoServer, warehouse: Path, **kwargs: object) -> IngestSummary:
    return ingest(base_url=srv.base_url, warehouse=warehouse, **kwargs)


def requests_by_source(srv: DemoServer) -> dict[str, int]:
    return {k: v["requests"] for k, v in srv.stats()["sources"].items()}


# Request faults at 15% and page_overlap at 20%: a small world takes few requests (about 25:
# Messenger's messages come inline) and has few page boundaries, and the faults must happen.
# Request faults are drawn from the seed in request order, so their count is reproducible.
REALISTIC_FAULTS = {
    "rate_limit": 0.15,
    "server_error": 0.15,
    "page_overlap": 0.2,
    "slow": 0.05,
    "slow_seconds": 0.05,
}


@pytest.mark.slow
def test_every_record_of_every_source_lands_exactly_once_under_faults(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    srv = make_demo_server(customers=300, faults=REALISTIC_FAULTS)
    warehouse = tmp_path / "warehouse.duckdb"

    summary = run(srv, warehouse)

    expected = expected_at(srv, srv.state.now)
    got = landed(warehouse)
    assert set(got) == set(expected)
    for key, want in expected.items():
        rows = got[key]
        assert len(rows) == len(want), f"{key}: {len(rows)} landed, world has {len(want)}"
        assert as_versions(rows) == set(want.items()), key
    stats = srv.stats()["sources"]
    faults = {k: sum(s["faults"].get(k, 0) for s in stats.values()) for k in REALISTIC_FAULTS}
    assert faults["rate_limit"] > 0 and faults["server_error"] > 0  # the faults did happen
    assert summary.total("retries") == faults["rate_limit"] + faults["server_error"]
    # page_overlap served records twice: counted as duplicates, stored once
    assert summary.total("duplicates") > 0
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        batches = conn.execute(
            "select sum(records), sum(landed), sum(duplicates) from landing.batches"
        ).fetchone()
        assert batches == (
            summary.total("records"),
            summary.total("landed"),
            summary.total("duplicates"),
        )
        assert batches[1] == sum(len(v) for v in expected.values())


def test_malformed_and_drifting_records_land_untouched(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    srv = make_demo_server(customers=120, faults={"malformed": 0.3, "schema_drift": 0.05})
    warehouse = tmp_path / "warehouse.duckdb"
    run(srv, warehouse, sources=["messenger", "voice"])

    expected = expected_at(srv, srv.state.now)
    got = landed(warehouse)
    for key in [("messenger", "conversations"), ("voice", "contacts")]:
        assert {rid for rid, _ in got[key]} == set(expected[key])
        assert len(got[key]) == len(expected[key])
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        # a conversation without updated_time is keyed by a hash of its content
        hashed = conn.execute(
            "select count(*) from landing.records where record_version like '~sha1:%'"
        ).fetchone()[0]
        drift = conn.execute(
            "select count(*) from landing.records where raw_json->>'x_channel_experiment' "
            "is not null"
        ).fetchone()[0]
        # the text is the vendor's key order, not a re-sorted one
        first = conn.execute(
            "select raw_json::varchar from landing.records where source = 'voice' limit 1"
        ).fetchone()[0]
    missing = [
        rid
        for rid in expected["messenger", "conversations"]
        if srv.malformed_kind("messenger", rid) == "missing_field"
    ]
    assert hashed == len(missing) > 0
    assert drift > 0
    assert first.startswith('{"AWSAccountId":')


@pytest.mark.slow
def test_late_updates_land_as_new_versions_and_quiet_runs_cost_little(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    srv = make_demo_server(customers=300)
    warehouse = tmp_path / "warehouse.duckdb"
    end = srv.state.now
    # stop the clock while a voice contact waits for its late update (after-contact work),
    # as the latest of those that are at least a day before the end
    fva, upd = srv.state.fva["voice"], srv.state.upd["voice"]
    pending = [(int(a), int(b)) for a, b in zip(fva, upd, strict=True) if a < b < end - 86400]
    assert pending, "the world has late voice updates"
    earlier = max(a for a, _ in pending) + 1
    srv.set_clock(earlier)
    first = run(srv, warehouse)
    assert first.total("landed") == sum(len(v) for v in expected_at(srv, earlier).values())

    srv.set_clock(end)
    second = run(srv, warehouse)

    before, after = expected_at(srv, earlier), expected_at(srv, end)
    got = landed(warehouse)
    for key in after:
        want = set(before.get(key, {}).items()) | set(after[key].items())
        assert as_versions(got[key]) == want, key
        assert len(got[key]) == len(want), key
    two_versions = {
        key: sum(1 for rid, v in after[key].items() if before.get(key, {}).get(rid, v) != v)
        for key in after
    }
    # the clock move did produce late updates (voice by construction of ``earlier``)
    assert two_versions["voice", "contacts"] > 0
    assert sum(two_versions.values()) > two_versions["voice", "contacts"]
    new_pairs = sum(len(set(after[k].items()) - set(before.get(k, {}).items())) for k in after)
    assert second.total("landed") == new_pairs

    # A third run with nothing new lands nothing, with the requests a careful client makes:
    # one per source, two for Delighted (its end is an empty page), and for the sources read
    # with a lookback, the pages of the window re-read.
    counts = requests_by_source(srv)
    third = run(srv, warehouse)
    spent = {k: v - counts.get(k, 0) for k, v in requests_by_source(srv).items()}
    assert third.total("landed") == 0
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        voice_mark = conn.execute(
            "select cursor->>'watermark' from landing.state where source = 'voice'"
        ).fetchone()[0]
    voice = srv.state.data["voice"].table
    started = voice.column("started_at").to_numpy()
    visible = srv.state.fva["voice"] <= srv.state.now
    in_lookback = int(np.sum(visible & (started >= int(float(voice_mark) - 86400))))
    assert spent == {
        "voice": max(1, -(-in_lookback // 100)),
        "sms": 1,
        "email": 1,
        "chat": 1,
        "messenger": 1,
        "surveys": 2,
        "crm": 1,
    }


def test_full_refresh_and_backfill_window(
    make_demo_server: Callable[..., DemoServer], prefect_harness: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    srv = make_demo_server(customers=120)
    warehouse = tmp_path / "warehouse.duckdb"
    run(srv, warehouse, sources=["voice", "surveys"])
    content = landed(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        state = conn.execute("select source, cursor from landing.state order by 1").fetchall()

    refresh = run(srv, warehouse, sources=["voice", "surveys"], full_refresh=True)
    assert refresh.total("records") == sum(len(v) for v in content.values())
    assert refresh.total("landed") == 0 and refresh.total("duplicates") == refresh.total("records")
    assert landed(warehouse) == content

    # a bounded backfill reads its window only and leaves the state alone
    end = srv.state.now
    since = datetime.fromtimestamp(end - 5 * 86400, UTC)
    until = datetime.fromtimestamp(end - 4 * 86400, UTC)
    window = run(srv, warehouse, sources=["voice"], since=since, until=until)
    starts = [c for c in srv.world.contacts.to_pylist() if c["channel"] == "voice"]
    want = [c for c in starts if since.timestamp() <= c["started_at"] <= until.timestamp()]
    assert window.sources[0].records == len(want) > 0
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert (
            conn.execute("select source, cursor from landing.state order by 1").fetchall() == state
        )


def test_auth_failure_fails_fast_naming_the_source(
    make_demo_server: Callable[..., DemoServer],
    prefect_harness: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = make_demo_server(customers=60)
    monkeypatch.setenv("HARMONIA_CRM_TOKEN", "not-the-right-token")
    warehouse = tmp_path / "warehouse.duckdb"

    with pytest.raises(IngestFailed) as err:
        run(srv, warehouse, sources=["crm", "surveys"])

    message = str(err.value)
    assert "crm: authentication refused (HTTP 401" in message
    assert "check HARMONIA_CRM_TOKEN" in message
    assert "not-the-right-token" not in message
    # neither the HTTP layer nor Prefect's task retries tried again
    assert srv.stats()["sources"]["crm"]["requests"] == 1
    by_source = {s.source: s for s in err.value.summary.sources}
    assert by_source["crm"].status == "failed"
    assert by_source["surveys"].status == "ok" and by_source["surveys"].landed > 0


def test_secrets_never_reach_logs_tables_or_artifacts(
    make_demo_server: Callable[..., DemoServer],
    prefect_harness: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secrets = {
        "HARMONIA_VOICE_TOKEN": "zz-voice-SECRET-51c7",
        "HARMONIA_SMS_AUTH_TOKEN": "zz-sms-SECRET-08d2",
        "HARMONIA_EMAIL_API_TOKEN": "zz-email-SECRET-9e41",
        "HARMONIA_CHAT_TOKEN": "zz-chat-SECRET-77aa",
        "HARMONIA_MESSENGER_ACCESS_TOKEN": "zz-messenger-SECRET-3f19",
        "HARMONIA_SURVEYS_API_KEY": "zz-surveys-SECRET-c0de",
        "HARMONIA_CRM_TOKEN": "zz-crm-SECRET-6b6b",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    # the server reads the same settings: it accepts only these tokens
    srv = make_demo_server(
        customers=80,
        credentials=Credentials(),
        faults={"rate_limit": 0.1, "server_error": 0.05},
    )
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    warehouse = tmp_path / "warehouse.duckdb"

    summary = run(srv, warehouse)
    assert summary.ok and summary.total("landed") > 0 and summary.total("retries") > 0

    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        # Prefect 3.8.8's read_artifacts/Artifact.get send nulls this server rejects (422)
        artifacts = client.request(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {"key": {"any_": ["ingest-summary"]}},
                "sort": "CREATED_DESC",
                "limit": 1,
                "offset": 0,
            },
        ).json()
    assert artifacts, "the flow publishes its summary artifact"
    artifact_text = f"{artifacts[0]['data']} {artifacts[0]['description']}"
    assert "messenger" in artifact_text and summary.run_id in artifact_text
    logs = []
    with get_client(sync_client=True) as client:
        while batch := client.read_logs(limit=200, offset=len(logs)):
            logs.extend(batch)
    assert any("messenger:" in log.message for log in logs)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = conn.execute(
            "select string_agg(raw_json::varchar || request_url, ' ') from landing.records"
        ).fetchone()[0]
        tables += conn.execute(
            "select string_agg(request_url, ' ') from landing.batches"
        ).fetchone()[0]
        tables += conn.execute(
            "select string_agg(cursor::varchar, ' ') from landing.state"
        ).fetchone()[0]
        messenger_urls = conn.execute(
            "select distinct request_url from landing.batches where source = 'messenger'"
        ).fetchall()
    assert any("access_token=REDACTED" in u for (u,) in messenger_urls)
    out, err = capfd.readouterr()
    haystacks = {
        "python logs": caplog.text,
        "stdout/stderr": out + err,
        "prefect logs": " ".join(log.message for log in logs),
        "artifacts": artifact_text,
        "landing tables": tables,
    }
    assert "GET /messenger" in caplog.text  # the request lines were logged ...
    for where, text in haystacks.items():
        for value in secrets.values():
            assert value not in text, f"{value} found in {where}"  # ... without the token


# --- crm: HubSpot's 10,000-result search cap -------------------------------------------------


def crm_capped(srv: DemoServer, cap: int, limit: int = 100) -> SourceConfig:
    """The crm source with its search cap lowered to the demo server's, page size ``limit``."""
    endpoint = CRM.endpoints[0]
    endpoint = replace(
        endpoint,
        body=(endpoint.body or {}) | {"limit": limit},
        paginator_options=endpoint.paginator_options | {"result_cap": cap},
    )
    return replace(CRM, endpoints=(endpoint,)).with_base_url(srv.url("crm"))


def run_crm(cfg: SourceConfig, warehouse: Path, run_id: str) -> SourceResult:
    with Landing(warehouse) as landing:
        return run_source(cfg, landing, Credentials(), run_id)


def crm_watermark(warehouse: Path) -> float | None:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return (read_state(conn, "crm", "contacts") or {}).get("watermark")


@pytest.mark.parametrize("limit", [100, 7])
def test_crm_search_starts_again_at_the_result_cap_and_misses_nothing(
    make_demo_server: Callable[..., DemoServer], tmp_path: Path, limit: int
) -> None:
    cap = 20
    srv = make_demo_server(search_result_cap=cap)
    cfg = crm_capped(srv, cap, limit)
    warehouse = tmp_path / "warehouse.duckdb"
    end = srv.state.now
    mid = srv.world.start + (end - srv.world.start) * 2 // 3
    srv.set_clock(mid)
    before = expected_at(srv, mid)["crm", "contacts"]
    assert len(before) > 3 * cap  # several searches' worth

    first = run_crm(cfg, warehouse, "first")
    got = landed(warehouse)["crm", "contacts"]
    assert as_versions(got) == set(before.items()) and len(got) == len(before)
    assert first.landed == len(before)
    # the search was sent again at least len/cap times, never past the cap
    stats = srv.stats()["sources"]["crm"]
    assert stats["status"] == {"200": stats["requests"]}
    assert stats["requests"] >= len(before) // cap + 1
    # the records sharing a restart's lastmodifieddate came again and were dropped
    assert first.duplicates == first.records - first.landed > 0
    assert crm_watermark(warehouse) == max(before.values())

    srv.set_clock(end)
    second = run_crm(cfg, warehouse, "second")
    after = expected_at(srv, end)["crm", "contacts"]
    changes = set(after.items()) - set(before.items())
    assert changes and second.landed == len(changes)
    got = landed(warehouse)["crm", "contacts"]
    assert as_versions(got) == set(before.items()) | set(after.items())
    assert len(got) == len(set(got))
    assert crm_watermark(warehouse) == max(after.values())


def test_crm_search_fails_clearly_when_more_records_than_the_cap_share_a_timestamp(
    make_demo_server: Callable[..., DemoServer], tmp_path: Path
) -> None:
    cap = 20
    world = generate_world(seed=42, customers=120)
    customers = world.customers
    has_crm = [i for i, c in enumerate(customers.column("crm_id").to_pylist()) if c is not None]
    tied = set(has_crm[: cap + 10])
    instant = world.start + 10 * 86400
    created = customers.column("crm_created_at").to_pylist()
    updated = customers.column("crm_updated_at").to_pylist()
    for i in tied:  # modified (or created) in the same second: a bulk import
        created[i], updated[i] = min(created[i], instant), instant
    columns = {"crm_created_at": created, "crm_updated_at": updated}
    for name, values in columns.items():
        at = customers.schema.get_field_index(name)
        customers = customers.set_column(at, name, pa.array(values, pa.int64()))
    srv = make_demo_server(world=replace(world, customers=customers), search_result_cap=cap)
    cfg = crm_capped(srv, cap)
    warehouse = tmp_path / "warehouse.duckdb"
    truth = expected_at(srv, srv.state.now)["crm", "contacts"]
    assert sum(1 for v in truth.values() if v == instant) == cap + 10

    with pytest.raises(ClientError) as err:
        run_crm(cfg, warehouse, "first")
    message = str(err.value)
    assert message.startswith("crm: contacts: more than 20 search results share")
    assert "properties.lastmodifieddate 20" in message  # the instant, ISO
    # everything before the instant landed (and its state committed); nothing after it
    got = dict(as_versions(landed(warehouse)["crm", "contacts"]))
    assert {k: v for k, v in truth.items() if v < instant}.items() <= got.items()
    assert all(v <= instant for v in got.values())
    assert crm_watermark(warehouse) == instant
    # a second run starts at the instant and stops after one search, not in a loop
    requests = srv.stats()["sources"]["crm"]["requests"]
    with pytest.raises(ClientError, match="more than 20 search results share"):
        run_crm(cfg, warehouse, "again")
    assert srv.stats()["sources"]["crm"]["requests"] == requests + 1
