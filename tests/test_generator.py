"""The world generator: exact schemas, determinism, size control, the invariants the pipeline's
rules rely on (72 h request window, shared-identifier degree), and the truth files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from harmonia.demo import schema
from harmonia.demo.generator import (
    END_ANCHOR,
    REQUEST_WINDOW,
    TOPICS,
    UNMAPPED_CODES,
    generate_world,
    identity_ceiling,
    normalize_phone,
    topic_map_rows,
    topics_rows,
)
from harmonia.demo.schema import World
from harmonia.demo.truth import TRUTH_FILES, contacts_truth, write_truth
from harmonia.settings import Settings


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=7, contacts=12_000)


@pytest.fixture(scope="module")
def frames(world: World) -> dict[str, pd.DataFrame]:
    # nullable dtypes keep int64 columns with nulls as integers
    return {
        name: getattr(world, name).to_pandas(types_mapper=pd.ArrowDtype)
        for name in ("customers", "requests", "contacts", "surveys")
    }


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_anchor_is_2026_11_01_utc() -> None:
    assert dt.datetime.fromtimestamp(END_ANCHOR, dt.UTC) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_tables_match_the_schema_exactly(world: World) -> None:
    assert world.customers.schema.equals(schema.CUSTOMERS)
    assert world.requests.schema.equals(schema.REQUESTS)
    assert world.contacts.schema.equals(schema.CONTACTS)
    assert world.surveys.schema.equals(schema.SURVEYS)
    assert world.end == END_ANCHOR and world.start == END_ANCHOR - 30 * 86400


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    a = generate_world(seed=3, customers=800)
    b = generate_world(seed=3, customers=800)
    c = generate_world(seed=4, customers=800)
    for name in ("customers", "requests", "contacts", "surveys"):
        assert _ipc(getattr(a, name)) == _ipc(getattr(b, name)), name
    assert _ipc(a.contacts) != _ipc(c.contacts)
    assert _ipc(a.customers) != _ipc(c.customers)


def test_size_control() -> None:
    by_customers = generate_world(seed=1, customers=500)
    assert by_customers.customers.num_rows == 500
    for target in (3_000, 20_000):
        w = generate_world(seed=1, contacts=target)
        assert abs(w.contacts.num_rows - target) / target < 0.08, w.contacts.num_rows
    with pytest.raises(ValueError):
        generate_world(customers=10, contacts=10)


def test_row_orders_and_indexes(frames: dict[str, pd.DataFrame]) -> None:
    cu, rq, co, sv = (frames[k] for k in ("customers", "requests", "contacts", "surveys"))
    assert (cu.customer_idx.to_numpy() == np.arange(len(cu))).all()
    assert (rq.request_idx.to_numpy() == np.arange(len(rq))).all()
    assert (co.contact_idx.to_numpy() == np.arange(len(co))).all()
    assert (sv.survey_idx.to_numpy() == np.arange(len(sv))).all()
    assert rq.opened_at.is_monotonic_increasing
    assert co.started_at.is_monotonic_increasing
    assert sv.created_at.is_monotonic_increasing


def test_ids_unique(frames: dict[str, pd.DataFrame]) -> None:
    co, cu, rq, sv = (frames[k] for k in ("contacts", "customers", "requests", "surveys"))
    assert not co.duplicated(["channel", "source_id"]).any()
    assert sv.source_id.is_unique
    for col in ("email", "phone_e164", "messenger_psid", "chat_contact_id", "crm_id"):
        assert cu[col].dropna().is_unique, col
    assert rq.protocol.dropna().is_unique
    by_channel = co.groupby("channel").source_id.first()
    assert by_channel["sms"].startswith("SM") and len(by_channel["sms"]) == 34
    assert by_channel["messenger"].startswith("t_")
    assert by_channel["email"].isdigit() and by_channel["chat"].isdigit()
    assert len(by_channel["voice"].split("-")) == 5


def test_contacts_belong_to_their_requests_customer(frames: dict[str, pd.DataFrame]) -> None:
    co, rq = frames["contacts"], frames["requests"]
    owner = rq.customer_idx.to_numpy()[co.request_idx.to_numpy()]
    assert (owner == co.customer_idx.to_numpy()).all()
    first = co.groupby("request_idx").started_at.min()
    assert (first.to_numpy() == rq.opened_at.to_numpy()[first.index]).all()
    assert co.request_idx.nunique() == len(rq)


def test_times_are_consistent(world: World, frames: dict[str, pd.DataFrame]) -> None:
    co = frames["contacts"]
    start, end = world.start, world.end
    assert co.started_at.between(start, end - 1).all()
    for col in ("first_response_at", "first_agent_response_at", "ended_at"):
        v = co[col].dropna()
        assert (v >= co.started_at[v.index]).all(), col
        assert (v < end).all(), col
    fr = co.dropna(subset=["first_response_at", "first_agent_response_at"])
    assert (fr.first_agent_response_at >= fr.first_response_at).all()
    assert (co.first_version_at <= co.updated_at).all()
    assert (co.updated_at < end).all() and (co.first_version_at >= co.started_at).all()
    assert co.ended_at.isna().sum() > 0  # some contacts are still open at the end
    open_ = co[co.ended_at.isna()]
    assert (open_.started_at > end - 12 * 86400).all()


def test_channel_rules(frames: dict[str, pd.DataFrame]) -> None:
    co = frames["contacts"]
    ab = co[co.abandoned]
    assert (ab.direction == "inbound").all() and ab.first_response_at.isna().all()
    assert ab.ended_at.notna().all()
    voice_ab = (co.channel == "voice") & (co.direction == "inbound")
    rate = co[voice_ab].abandoned.mean()
    assert 0.03 < rate < 0.10
    assert (co[co.handled_by == "bot"].channel == "chat").all()
    assert co[co.channel != "voice"].queue_seconds.isna().all()
    assert co[co.channel.isin(["sms", "messenger"])].handle_seconds.isna().all()
    assert co[co.channel.isin(["voice", "email"])].n_messages.isna().all()
    assert co[co.channel.isin(["sms", "messenger", "chat"])].n_messages.notna().all()
    assert not co[co.abandoned].resolved.any()
    bots = co[co.handled_by == "bot"]
    assert bots.first_agent_response_at.isna().all()
    assert ((bots.first_response_at - bots.started_at).dropna() <= 5).all()


def test_consecutive_contacts_of_a_request(frames: dict[str, pd.DataFrame]) -> None:
    co = frames["contacts"].sort_values(["request_idx", "started_at", "contact_idx"])
    same = co.request_idx.to_numpy()[1:] == co.request_idx.to_numpy()[:-1]
    gap = np.diff(co.started_at.to_numpy())[same]
    quoted = co.quoted_protocol.notna().to_numpy()[1:][same]
    assert (gap[~quoted] <= REQUEST_WINDOW).all()
    assert (gap[quoted] > REQUEST_WINDOW).any()  # protocols join what the window cannot


def test_same_topic_requests_of_a_customer_are_apart(frames: dict[str, pd.DataFrame]) -> None:
    co, rq = frames["contacts"], frames["requests"]
    span = co.groupby("request_idx").started_at.agg(["min", "max"])
    r = rq.join(span, on="request_idx").sort_values(["customer_idx", "topic", "opened_at"])
    c, t = r.customer_idx.to_numpy(), r.topic.to_numpy()
    pair = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    assert pair.sum() > 0  # customers do come back about the same thing
    gap = r["min"].to_numpy()[1:] - r["max"].to_numpy()[:-1]
    assert (gap[pair] > REQUEST_WINDOW).all()


def test_protocols(frames: dict[str, pd.DataFrame]) -> None:
    co, rq = frames["contacts"], frames["requests"]
    share = rq.protocol.notna().mean()
    assert 0.3 < share < 0.5
    q = co.dropna(subset=["quoted_protocol"])
    assert (q.quoted_protocol.to_numpy() == rq.protocol.to_numpy()[q.request_idx.to_numpy()]).all()


def test_shared_phones(frames: dict[str, pd.DataFrame]) -> None:
    cu = frames["customers"]
    groups = cu.dropna(subset=["shared_phone_e164"]).groupby("shared_phone_e164")
    kinds = groups.shared_phone_kind.agg(["first", "nunique", "size"])
    assert (kinds["nunique"] == 1).all()
    switch = kinds[kinds["first"] == "switchboard"]
    family = kinds[kinds["first"] == "family"]
    assert len(switch) >= 1 and (switch["size"] > 10).all()
    assert len(family) >= 1 and family["size"].between(2, 3).all()


def test_phone_formats_parse_to_the_customers_phones(frames: dict[str, pd.DataFrame]) -> None:
    co, cu = frames["contacts"], frames["customers"]
    sample = co.dropna(subset=["phone_raw"]).sample(300, random_state=0)
    owned = cu.set_index("customer_idx")[["phone_e164", "shared_phone_e164"]]
    for raw, who in zip(sample.phone_raw, sample.customer_idx, strict=True):
        e164 = phonenumbers.format_number(
            phonenumbers.parse(raw, "BR"), phonenumbers.PhoneNumberFormat.E164
        )
        assert e164 in set(owned.loc[who].dropna()), (raw, who)
    norm = normalize_phone(pa.array(sample.phone_raw.tolist()))
    parsed = [
        phonenumbers.format_number(phonenumbers.parse(x, "BR"), phonenumbers.PhoneNumberFormat.E164)
        for x in sample.phone_raw
    ]
    assert norm.to_pylist() == parsed
    assert sample.phone_raw.str.contains(r"\(").any() and sample.phone_raw.str.startswith("+").any()


def test_every_contact_carries_an_identifier(frames: dict[str, pd.DataFrame]) -> None:
    co = frames["contacts"]
    ids = co[["phone_raw", "email_raw", "messenger_psid", "chat_contact_id", "crm_id"]]
    assert ids.notna().any(axis=1).all()


def test_topics(frames: dict[str, pd.DataFrame]) -> None:
    co = frames["contacts"]
    mapped = {(ch, code): t for ch, code, t in topic_map_rows()}
    assert {t for t, _ in topics_rows()} == set(TOPICS)
    stages = {"awareness", "consideration", "decision", "purchase", "post_purchase"}
    assert {s for _, s in topics_rows()} == stages
    assert set(mapped.values()) == set(TOPICS)
    unmapped = {(ch, code) for ch, codes in UNMAPPED_CODES.items() for code in codes}
    keys = list(zip(co.channel, co.source_topic, strict=True))
    assert all(k in mapped or k in unmapped for k in keys)
    share = np.mean([k in unmapped for k in keys])
    assert 0.003 < share < 0.03
    rq_topic = frames["requests"].topic.to_numpy()[co.request_idx.to_numpy()]
    ok = [mapped.get(k) in (None, t) for k, t in zip(keys, rq_topic, strict=True)]
    assert all(ok)


def test_surveys(frames: dict[str, pd.DataFrame]) -> None:
    co, sv = frames["contacts"], frames["surveys"]
    contact = co.set_index("contact_idx").loc[sv.contact_idx.to_numpy()]
    assert (sv.created_at.to_numpy() > contact.ended_at.to_numpy()).all()
    assert (sv.customer_idx.to_numpy() == contact.customer_idx.to_numpy()).all()
    assert (sv.updated_at >= sv.created_at).all()
    nps = sv[sv.survey_type == "nps"]
    csat = sv[sv.survey_type == "csat"]
    assert nps.score.between(0, 10).all() and csat.score.between(1, 5).all()
    resolved = contact.resolved.to_numpy()[(sv.survey_type == "nps").to_numpy()]
    assert nps.score[resolved].mean() > nps.score[~resolved].mean() + 1
    closed = co.ended_at.notna() & ~co.abandoned
    assert 0.12 < len(sv) / closed.sum() < 0.25


def test_identity_ceiling_reaches_099() -> None:
    result = identity_ceiling(generate_world(seed=11, contacts=30_000))
    assert result["f1"] >= 0.99, result
    assert result["shared_identifiers"] >= 1


def test_identity_ceiling_on_default_demo_data_has_margin() -> None:
    # the default demo data (docs/accuracy.md): the 0.99 target is reachable with margin, and
    # the hard cases are still there: islands (recall < 1) and merged families (precision < 1)
    fields = Settings.model_fields
    world = generate_world(
        seed=fields["demo_seed"].default, customers=fields["demo_customers"].default
    )
    result = identity_ceiling(world)
    assert result["f1"] >= 0.995, result
    assert result["recall"] < 1 and result["precision"] < 1, result
    assert result["found_customers"] > result["true_customers"]


def test_truth_files(world: World, tmp_path: Path) -> None:
    paths = write_truth(world, tmp_path / "truth")
    assert sorted(p.name for p in paths) == sorted(TRUTH_FILES)
    contacts = pq.read_table(tmp_path / "truth" / "contacts.parquet")
    assert contacts.num_rows == world.contacts.num_rows
    assert pc.all(pc.starts_with(contacts.column("contact_id"), "voice:")).as_py() is False
    ids = contacts.column("contact_id").to_pylist()
    assert len(set(ids)) == len(ids)
    first = world.contacts.slice(0, 1).to_pylist()[0]
    assert ids[0] == f"{first['channel']}:{first['source_id']}"
    assert set(contacts.column("topic").to_pylist()) <= set(TOPICS)
    assert pq.read_table(tmp_path / "truth" / "requests.parquet").equals(world.requests)
    assert pq.read_table(tmp_path / "truth" / "customers.parquet").equals(world.customers)
    assert pq.read_table(tmp_path / "truth" / "surveys.parquet").equals(world.surveys)
    marked = contacts_truth(world, ["missing_field"] + [None] * (world.contacts.num_rows - 1))
    assert marked.column("malformed").null_count == world.contacts.num_rows - 1
