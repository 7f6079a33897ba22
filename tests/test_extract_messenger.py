"""Messenger with Graph field expansion lands exactly what one request per conversation
landed: the same records (ids, versions, JSON) as the per-conversation path and as the world,
first run and incremental run, also when conversations exceed the inline limit and their
nested ``paging.next`` must be followed — with far fewer requests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
from harmonia.demo.server import DemoServer
from harmonia.extract.landing import Landing
from harmonia.extract.runner import SourceResult, run_source
from harmonia.extract.sources import MESSENGER, MESSENGER_PER_CONVERSATION, SourceConfig
from harmonia.extract.state import to_epoch
from harmonia.settings import Credentials
from test_extract_ingest import expected_at

# Every record as landed, and for messages the conversation their batch's request URL names
# (a Graph message does not name its conversation; stg_messenger__messages reads it so).
CONTENT = """
    select r.entity, r.record_id, r.record_version, r.raw_json::varchar,
           regexp_extract(b.request_url, '/([^/?]+)/messages', 1) as conversation
    from landing.records r join landing.batches b using (batch_id)
    order by all
"""


def with_inline_limit(n: int) -> SourceConfig:
    endpoint = MESSENGER.endpoints[0]
    fields = endpoint.params["fields"].replace("messages.limit(100)", f"messages.limit({n})")
    assert fields != endpoint.params["fields"]
    return replace(
        MESSENGER, endpoints=(replace(endpoint, params=endpoint.params | {"fields": fields}),)
    )


def extract(srv: DemoServer, cfg: SourceConfig, warehouse: Path) -> tuple[SourceResult, int]:
    """One run of ``cfg`` into ``warehouse``; the result and the requests the server saw."""
    before = srv.stats()["requests"]
    with Landing(warehouse) as landing:
        result = run_source(
            cfg.with_base_url(srv.url("messenger")), landing, Credentials(), str(uuid.uuid4())
        )
    assert result.status == "ok"
    return result, srv.stats()["requests"] - before


def content(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(CONTENT).fetchall()


def test_field_expansion_lands_the_records_of_one_request_per_conversation(
    make_demo_server: Callable[..., DemoServer], tmp_path: Path
) -> None:
    srv = make_demo_server(customers=300)
    end = srv.state.now
    fva, upd = srv.state.fva["messenger"], srv.state.upd["messenger"]
    # a clock at which some conversations are still at their first version (late messages)
    earlier = int(np.median(upd[upd > fva]))
    ways = {
        "per_conversation": MESSENGER_PER_CONVERSATION,
        "expansion": MESSENGER,
        "expansion_limit_2": with_inline_limit(2),  # most conversations need paging.next
    }
    for now in (earlier, end):  # a first run, then an incremental run with late updates
        srv.set_clock(now)
        got, spent = {}, {}
        for name, cfg in ways.items():
            result, spent[name] = extract(srv, cfg, tmp_path / f"{name}.duckdb")
            got[name] = content(tmp_path / f"{name}.duckdb")
            assert result.requests == spent[name]
        assert got["expansion"] == got["per_conversation"]
        assert got["expansion_limit_2"] == got["per_conversation"]
        # ... and they are the world: every message of every conversation version served
        want = expected_at(srv, now)
        for entity in ("conversations", "messages"):
            landed = {(r[1], to_epoch(r[2])) for r in got["expansion"] if r[0] == entity}
            assert landed >= set(want["messenger", entity].items()), entity
        messages = {r[1] for r in got["expansion"] if r[0] == "messages"}
        assert messages == set(want["messenger", "messages"])
        assert all(r[4].startswith("t_") for r in got["expansion"] if r[0] == "messages")
        # requests: expansion needs none per conversation (none here has over 100 messages);
        # with limit 2, one per further 2 messages of each conversation version read
        assert spent["expansion"] < spent["per_conversation"]
        assert spent["expansion"] < spent["expansion_limit_2"]
    assert spent["expansion"] == 1  # the incremental run: one page of conversations


def test_a_conversation_record_lands_without_its_expanded_edge(
    make_demo_server: Callable[..., DemoServer], tmp_path: Path
) -> None:
    srv = make_demo_server(customers=60)
    warehouse = tmp_path / "warehouse.duckdb"
    result, spent = extract(srv, MESSENGER, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        keys = conn.execute(
            "select distinct unnest(json_keys(raw_json)) from landing.records "
            "where entity = 'conversations'"
        ).fetchall()
        batches = conn.execute(
            "select entity, count(*), sum(records) from landing.batches group by 1 order by 1"
        ).fetchall()
    assert ("messages",) not in keys and ("updated_time",) in keys
    # one conversations page; its inline messages one sideload batch per conversation, whose
    # request URL is the page's plus the edge's address, #/{conversation-id}/messages
    conversations = result.entities["conversations"].records
    assert spent == 1 and result.pages == 1
    assert batches == [
        ("conversations", 1, conversations),
        ("messages", conversations, result.entities["messages"].records),
    ]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        urls = conn.execute(
            "select b.request_url, r.raw_json->>'id' from landing.batches b "
            "join landing.records r using (batch_id) where r.entity = 'messages'"
        ).fetchall()
    page = urls[0][0].split("#")[0]
    assert "/conversations?" in page and "access_token=REDACTED" in page
    assert {u.split("#")[0] for u, _ in urls} == {page}
