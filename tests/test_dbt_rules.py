"""The identity and request rules of the dbt project, end to end on a real warehouse.

Each test writes hand-built vendor records (JSON shaped like the demo server's) into the
``raw.*`` tables of a DuckDB file in ``tmp_path``, runs the real ``dbt build`` through
``harmonia.transform.dbt_build`` and asserts who is one customer and which contacts are one
request. The dbt unit tests (``unit_tests:`` in the project) run here too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from harmonia.transform import DbtBuildError, dbt_build, dbt_docs_generate

pytestmark = pytest.mark.slow

T0 = 1_791_000_000  # 2026-10-03, inside the demo world's time range
HOUR = 3600
DAY = 86400
COMPANY_PHONE = "+551140040000"

RAW_TABLES = (
    "voice_contacts",
    "sms_messages",
    "email_tickets",
    "email_metric_sets",
    "chat_conversations",
    "messenger_conversations",
    "messenger_messages",
    "surveys_responses",
    "crm_contacts",
)


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def voice(
    cid: str,
    start: int,
    *,
    phone: str | None,
    disposition: str = "DISP_2VIA_BOLETO",
    protocol: str | None = None,
    crm_id: str | None = None,
    updated: int | None = None,
) -> dict[str, Any]:
    attrs = {"disposition": disposition, "resolved": "false"}
    if protocol:
        attrs["protocol"] = protocol
    if crm_id:
        attrs["crm_id"] = crm_id
    return {
        "ContactId": cid,
        "Channel": "VOICE",
        "InitiationMethod": "INBOUND",
        "InitiationTimestamp": start,
        "DisconnectTimestamp": start + 400,
        "LastUpdateTimestamp": updated or start + 400,
        "CustomerEndpoint": None
        if phone is None
        else {"Type": "TELEPHONE_NUMBER", "Address": phone},
        "SystemEndpoint": {"Type": "TELEPHONE_NUMBER", "Address": COMPANY_PHONE},
        "Queue": {"Duration": 40, "EnqueueTimestamp": start + 30},
        "Agent": {"ConnectedToAgentTimestamp": start + 70, "AgentInteractionDuration": 300},
        "Attributes": attrs,
    }


def ticket(tid: int, start: int, *, email: str, tag: str, protocol: str | None = None) -> dict:
    return {
        "id": tid,
        "via": {"channel": "email", "source": {"from": {"address": email}, "to": {}}},
        "created_at": iso(start),
        "updated_at": iso(start + DAY),
        "status": "solved",
        "tags": [tag],
        "description": "Olá, preciso de ajuda.",
        "custom_fields": [
            {"id": 360000000101, "value": protocol},
            {"id": 360000000102, "value": None},
            {"id": 360000000103, "value": 600},
        ],
    }


def metric_set(tid: int, start: int) -> dict[str, Any]:
    return {
        "id": 370_000_000_000 + tid,
        "ticket_id": tid,
        "created_at": iso(start),
        "updated_at": iso(start + DAY),
        "reply_time_in_seconds": {"calendar": 3 * HOUR},
        "status_updated_at": iso(start + DAY),
        "solved_at": iso(start + DAY),
    }


def chat(conv_id: str, start: int, *, contact: str, email: str | None, intent: str) -> dict:
    return {
        "type": "conversation",
        "id": conv_id,
        "created_at": start,
        "updated_at": start + 900,
        "source": {"delivered_as": "customer_initiated", "author": {"email": email or ""}},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact}]},
        "custom_attributes": {
            "intent": intent,
            "protocol": None,
            "phone": None,
            "email": email,
            "resolved": True,
            "first_bot_reply_at": None,
        },
        "statistics": {
            "first_admin_reply_at": start + 60,
            "last_close_at": start + 900,
            "handling_time": 800,
        },
        "ai_agent_participated": False,
        "ai_agent": None,
    }


def crm(crm_id: str, *, email: str | None, phone: str | None, updated: int = T0) -> dict:
    return {
        "id": crm_id,
        "properties": {"email": email, "phone": phone, "firstname": "X", "lastname": "Y"},
        "createdAt": iso(T0 - 90 * DAY),
        "updatedAt": iso(updated),
        "archived": False,
    }


def survey(rid: str, contact_ref: str, score: int, at: int) -> dict[str, Any]:
    return {
        "id": rid,
        "person": {"id": "1", "email": None},
        "survey_type": "nps",
        "score": score,
        "created_at": at,
        "updated_at": at,
        "person_properties": {"contact_ref": contact_ref},
    }


def version_of(table: str, rec: dict[str, Any]) -> str:
    key = {
        "voice_contacts": "LastUpdateTimestamp",
        "crm_contacts": "updatedAt",
        "email_metric_sets": "updated_at",
    }.get(table, "updated_at")
    return str(rec.get(key))


def id_of(table: str, rec: dict[str, Any]) -> str:
    return str(rec["ContactId"] if table == "voice_contacts" else rec["id"])


class Warehouse:
    """A DuckDB file with the raw/landing tables the Python pipeline would have written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with duckdb.connect(str(path)) as con:
            con.execute("create schema raw")
            con.execute("create schema landing")
            con.execute(
                "create table landing.batches "
                "(batch_id varchar, request_url varchar, extracted_at timestamptz)"
            )
            for table in RAW_TABLES:
                con.execute(
                    f"""create table raw.{table} (
                        record_id varchar not null, record_version varchar, raw_json json,
                        run_id varchar, batch_id varchar, extracted_at timestamptz,
                        validated_at timestamptz not null, validation_run_id varchar)"""
                )

    def add(self, table: str, records: Iterable[dict[str, Any]]) -> None:
        rows = [(id_of(table, r), version_of(table, r), json.dumps(r)) for r in records]
        with duckdb.connect(str(self.path)) as con:
            con.executemany(
                f"""insert into raw.{table} values
                    (?, ?, ?, 'run', 'batch', now(), now(), 'validation')""",
                rows,
            )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql).fetchall()

    def customer_of(self, contact_id: str) -> str:
        return self.query(
            f"select customer_id from marts.fct_contacts where contact_id = '{contact_id}'"
        )[0][0]

    def request_of(self, contact_id: str) -> str:
        return self.query(
            f"select request_id from marts.fct_contacts where contact_id = '{contact_id}'"
        )[0][0]


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    # chain: call (phone + crm id) -> CRM row (crm id + e-mail + phone) -> ticket (e-mail,
    # sent with odd case and spaces) -> chat (same e-mail + Intercom contact id)
    wh.add("voice_contacts", [
        voice("v-chain", T0, phone="(11) 98765-4321", crm_id="10001", protocol="20261003000111"),
        # two callers behind the blocklisted company switchboard, each authenticated
        voice("v-switch-1", T0 + HOUR, phone=COMPANY_PHONE, crm_id="10002"),
        voice("v-switch-2", T0 + 2 * HOUR, phone=COMPANY_PHONE, crm_id="10003"),
        # a caller whose number does not parse and nothing else: a customer of its own
        voice("v-lonely", T0 + 3 * HOUR, phone="12"),
    ])  # fmt: skip
    wh.add("crm_contacts", [
        crm("10001", email="ana.silva@gmail.com", phone="+5511987654321"),
        crm("10002", email="bruno@empresa.com.br", phone=None),
        crm("10003", email="carla@empresa.com.br", phone=None),
        # twelve people filed under one landline: a shared identifier
        *(crm(str(20000 + i), email=f"p{i}@familia.com", phone="+551133334444") for i in range(12)),
    ])  # fmt: skip
    wh.add("email_tickets", [
        # quotes the call's protocol a week later: same request despite the 72 h window
        ticket(500, T0 + 7 * DAY, email=" Ana.Silva@GMAIL.com ", tag="cobranca_segunda_via",
               protocol="20261003000111"),
    ])  # fmt: skip
    wh.add("email_metric_sets", [metric_set(500, T0 + 7 * DAY)])
    wh.add("chat_conversations", [
        # same customer, same topic (delivery_delay), 5 days apart: two requests
        chat("c-1", T0 + DAY, contact="ic-ana", email="ana.silva@gmail.com",
             intent="intent.delivery.late"),
        chat("c-2", T0 + 6 * DAY, contact="ic-ana", email=None, intent="intent.delivery.late"),
        # 2 days after c-2: joins c-2's request
        chat("c-3", T0 + 8 * DAY, contact="ic-ana", email=None, intent="intent.delivery.late"),
    ])  # fmt: skip
    wh.add("surveys_responses", [survey("s-1", "chat:c-1", 9, T0 + DAY + HOUR)])
    return wh


def test_identity_and_requests_on_a_real_warehouse(warehouse: Warehouse, tmp_path: Path) -> None:
    result = dbt_build(warehouse.path, target_path=tmp_path / "target")
    assert result.by_status().get("pass", 0) > 50

    ana = warehouse.customer_of("voice:v-chain")
    # chain through phone, crm id, e-mail and Intercom contact id
    assert warehouse.customer_of("email:500") == ana
    assert warehouse.customer_of("chat:c-1") == ana
    assert warehouse.customer_of("chat:c-2") == ana
    # customer_id = md5 of the smallest type:value of the component
    assert ana == warehouse.query("select md5('chat_contact_id:ic-ana')")[0][0]
    dim = warehouse.query(
        f"select crm_id, emails, phones, contacts, requests, last_nps_score "
        f"from marts.dim_customers where customer_id = '{ana}'"
    )[0]
    assert dim == ("10001", ["ana.silva@gmail.com"], ["+5511987654321"], 5, 3, 9)

    # the blocklisted switchboard links nobody
    assert warehouse.customer_of("voice:v-switch-1") != warehouse.customer_of("voice:v-switch-2")
    # an unparseable phone is not guessed: the contact is a customer of its own
    assert (
        warehouse.customer_of("voice:v-lonely")
        == warehouse.query("select md5('contact:voice:v-lonely')")[0][0]
    )
    # the family landline (24 neighbours: 12 e-mails and 12 crm ids > 10) links nobody
    assert warehouse.query(
        "select identifier_type, identifier_value, neighbours from dq.dq_shared_identifiers"
    ) == [("phone", "+551133334444", 24)]
    assert warehouse.query(
        "select count(distinct customer_id) from marts.dim_customers "
        "where crm_id between '20000' and '20011'"
    ) == [(12,)]

    # protocol quoted a week later: one request, named after its first contact
    assert warehouse.request_of("email:500") == warehouse.request_of("voice:v-chain")
    assert (
        warehouse.request_of("voice:v-chain")
        == warehouse.query("select md5('voice:v-chain')")[0][0]
    )
    # same topic 5 days apart: two requests; 2 days later: the second one continues
    assert warehouse.request_of("chat:c-1") != warehouse.request_of("chat:c-2")
    assert warehouse.request_of("chat:c-3") == warehouse.request_of("chat:c-2")
    request = warehouse.query(
        "select contacts, channels, cross_channel, first_channel, last_channel, resolved, fcr, "
        "topic, journey_stage from marts.fct_requests "
        f"where request_id = '{warehouse.request_of('voice:v-chain')}'"
    )[0]
    assert request == (2, 2, True, "voice", "email", True, False, "billing_copy", "post_purchase")
    followed = warehouse.query(
        "select followed_up_at is not null, fcr from marts.fct_requests "
        f"where request_id = '{warehouse.request_of('chat:c-1')}'"
    )
    assert followed == [(True, True)]


def test_late_update_relinks_on_the_next_build(warehouse: Warehouse, tmp_path: Path) -> None:
    dbt_build(warehouse.path, target_path=tmp_path / "target")
    switch_2 = warehouse.customer_of("voice:v-switch-2")
    assert warehouse.customer_of("voice:v-switch-1") != switch_2

    # CRM row 10003 is updated later: it now carries Bruno's e-mail (same person, two ids).
    warehouse.add("crm_contacts", [crm("10003", email="bruno@empresa.com.br", phone=None,
                                       updated=T0 + 10 * DAY)])  # fmt: skip
    # Staging is incremental: a newer version replaces the record's row, while an older
    # version that arrives late (a replayed page) must not displace the newer one.
    warehouse.add("voice_contacts", [
        voice("v-lonely", T0 + 3 * HOUR, phone="12", disposition="DISP_AJUDA_COMPRA",
              updated=T0 + 3 * HOUR + 900),
        voice("v-switch-1", T0 + HOUR, phone=COMPANY_PHONE, crm_id="10002",
              disposition="DISP_AJUDA_COMPRA", updated=T0 + HOUR + 100),
    ])  # fmt: skip
    dbt_build(warehouse.path, target_path=tmp_path / "target")
    topics = dict(warehouse.query("select contact_id, topic from marts.fct_contacts"))
    assert topics["voice:v-lonely"] == "purchase_help"
    assert topics["voice:v-switch-1"] == "billing_copy"
    merged = warehouse.customer_of("voice:v-switch-1")
    assert warehouse.customer_of("voice:v-switch-2") == merged
    assert merged != switch_2
    # every table follows: no contact, request or journey step keeps the old customer
    for table in ("fct_contacts", "fct_requests", "fct_journey_steps"):
        assert warehouse.query(
            f"select count(*) from marts.{table} where customer_id = '{switch_2}'"
        ) == [(0,)]
    assert warehouse.query(
        f"select contacts from marts.dim_customers where customer_id = '{merged}'"
    ) == [(2,)]


def test_a_request_joined_through_two_stars_is_one(warehouse: Warehouse, tmp_path: Path) -> None:
    # w-1..w-3 are an island of one customer and topic (a star on w-1), and w-4, another
    # caller, quotes w-3's protocol (a star on w-3): one request, named after w-1, which a
    # single round of label propagation would not have found
    day = T0 + 20 * DAY
    warehouse.add("voice_contacts", [
        voice("w-1", day, phone="(21) 99999-0001"),
        voice("w-2", day + HOUR, phone="(21) 99999-0001"),
        voice("w-3", day + 2 * HOUR, phone="(21) 99999-0001", protocol="20261023000999"),
        voice("w-4", day + 3 * HOUR, phone="(21) 99999-0002", disposition="DISP_AJUDA_COMPRA",
              protocol="20261023000999"),
    ])  # fmt: skip
    dbt_build(warehouse.path, target_path=tmp_path / "target")
    requests = {warehouse.request_of(f"voice:w-{i}") for i in range(1, 5)}
    assert requests == {hashlib.md5(b"voice:w-1", usedforsecurity=False).hexdigest()}
    assert warehouse.customer_of("voice:w-4") != warehouse.customer_of("voice:w-1")


def test_an_identity_component_past_its_cap_fails_the_build(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # the fixture's largest customer has more than 2 linkable identifiers
    with pytest.raises(DbtBuildError, match="more than var max_component_identifiers"):
        dbt_build(
            warehouse.path,
            select=["+int_identifier_components", "topics"],
            vars={"max_component_identifiers": 2},
            target_path=tmp_path / "target",
        )
    # at the default cap the same graph builds
    result = dbt_build(
        warehouse.path,
        select=["+int_identifier_components", "topics"],
        target_path=tmp_path / "target",
    )
    largest = warehouse.query(
        "select max(component_identifiers) from intermediate.int_identifier_components"
    )
    model = [n.status for n in result.nodes if n.unique_id.endswith(".int_identifier_components")]
    assert model == ["success"]
    assert largest[0][0] > 2


def test_unit_tests_and_docs(warehouse: Warehouse, tmp_path: Path) -> None:
    # `dbt build` runs each model's unit tests right before the model (its parents exist then);
    # pipeline runs leave them out (they test the SQL, not the data), so ask for them
    result = dbt_build(warehouse.path, target_path=tmp_path / "target", unit_tests=True)
    unit = [n for n in result.nodes if n.resource_type == "unit_test"]
    assert len(unit) >= 8
    assert {n.status for n in unit} == {"pass"}
    assert any("messenger_bot_and_agent_replies" in n.unique_id for n in unit)
    # and a pipeline run does not run them
    plain = dbt_build(warehouse.path, target_path=tmp_path / "target")
    assert not [n for n in plain.nodes if n.resource_type == "unit_test"]
    index = dbt_docs_generate(warehouse.path, target_path=tmp_path / "target")
    assert index.is_file()


def test_a_full_build_keeps_each_records_newest_version(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # Several versions of one record in raw.* before the first build: latest_version picks by
    # the parsed vendor version (narrow rows, then the winner's JSON by rowid), not by load
    # order. v-lonely's newer version was loaded later; v-switch-1's older one was loaded
    # later and must lose; two equal versions of 10002 go to the later validation.
    warehouse.add("voice_contacts", [
        voice("v-lonely", T0 + 3 * HOUR, phone="12", disposition="DISP_AJUDA_COMPRA",
              updated=T0 + 3 * HOUR + 900),
        voice("v-switch-1", T0 + HOUR, phone=COMPANY_PHONE, crm_id="10002",
              disposition="DISP_AJUDA_COMPRA", updated=T0 + HOUR - 100),
    ])  # fmt: skip
    warehouse.add("crm_contacts", [crm("10002", email="bruno.new@empresa.com.br", phone=None)])
    dbt_build(warehouse.path, target_path=tmp_path / "target")
    topics = dict(warehouse.query("select contact_id, topic from marts.fct_contacts"))
    assert topics["voice:v-lonely"] == "purchase_help"
    assert topics["voice:v-switch-1"] == "billing_copy"
    assert warehouse.query(
        "select email from staging.stg_crm__contacts where crm_contact_id = '10002'"
    ) == [("bruno.new@empresa.com.br",)]
    assert warehouse.query("select count(*) from staging.stg_voice__contacts") == [(4,)]


def test_the_memory_limit_comes_from_the_environment(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The profile's memory_limit reaches DuckDB: far too little fails the model loudly (a
    # normal run never sets this; docs/dbt.md "Memory" has the measured peaks).
    monkeypatch.setenv("HARMONIA_DUCKDB_MEMORY_LIMIT", "1MB")
    with pytest.raises(DbtBuildError, match="Out of Memory"):
        dbt_build(warehouse.path, select="stg_chat__conversations", target_path=tmp_path / "t")
    monkeypatch.setenv("HARMONIA_DUCKDB_MEMORY_LIMIT", "64MB")
    dbt_build(warehouse.path, select="stg_chat__conversations", target_path=tmp_path / "t")
    assert warehouse.query("select count(*) from staging.stg_chat__conversations") == [(3,)]
