"""Hand-built ``fct_*`` tables for the metric-mart tests (not a test module).

``write_facts`` creates ``marts.fct_contacts``, ``marts.fct_requests`` and
``marts.fct_survey_responses`` in a DuckDB file, with the column types of their dbt contracts,
from a seeded random world plus hand-placed edge cases the random part cannot promise:

- 2026-05-02: an SMS day with outbound contacts only (no inbound: rates and FRT null, and
  first_response attainment null);
- 2026-05-03: e-mail contacts that were never answered (unanswered_rate 1, FRT null);
- 2026-05-01 02:30 UTC: a chat contact answered in exactly its 60 s target, which is
  2026-04-30 in America/Sao_Paulo (day and month boundary; at the target counts as met);
- 2026-05-05: a voice day with only a follow-up of an older request (resolution eligible 0),
  answered after the voice first-response target (not met);
- a customer active in January and March but not February (retention gap);
- July 2026: CSAT answers only (nps null); June 2026: voice NPS only (csat null); answers
  whose surveyed contact is unknown.

The facts are consistent with each other (each request is derived from its contacts the way
model spec section 4 says), which is all the marts rely on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

#: reporting timezone the edge warehouse is built with (UTC-3: early-UTC contacts move a day
#: back)
EDGE_TIMEZONE = "America/Sao_Paulo"

CHANNELS = ("voice", "sms", "email", "chat", "messenger")
TOPICS = ("billing_copy", "delivery_status", "cancellation", "complaint", "unmapped")
COSTS = {
    "voice": (Decimal("1.50"), Decimal("0.60")),
    "sms": (Decimal("0.20"), Decimal("0.00")),
    "email": (Decimal("1.00"), Decimal("0.35")),
    "chat": (Decimal("0.40"), Decimal("0.30")),
    "messenger": (Decimal("0.30"), Decimal("0.25")),
}

DDL = {
    "fct_contacts": """
        contact_id varchar, channel varchar, direction varchar, handled_by varchar,
        started_at timestamptz, first_response_at timestamptz,
        first_agent_response_at timestamptz, queue_seconds bigint, abandoned boolean,
        ended_at timestamptz, handle_seconds bigint, source_topic varchar, topic varchar,
        request_ref varchar, resolved boolean, customer_id varchar, request_id varchar,
        cost decimal(18,4)
    """,
    "fct_requests": """
        request_id varchar, customer_id varchar, topic varchar, journey_stage varchar,
        opened_at timestamptz, first_channel varchar, last_channel varchar, contacts bigint,
        channels bigint, cross_channel boolean, first_response_seconds double,
        resolved boolean, resolved_at timestamptz, resolution_seconds double, fcr boolean,
        cost decimal(18,4), avoidable_cost decimal(18,4), followed_up_at timestamptz
    """,
    "fct_survey_responses": """
        response_id varchar, contact_id varchar, customer_id varchar, request_id varchar,
        channel varchar, survey_type varchar, score integer, answered_at timestamptz
    """,
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Contact:
    contact_id: str
    channel: str
    direction: str
    started_at: datetime
    customer_id: str
    request_id: str
    topic: str
    response_after: float | None = None  # seconds; None = never answered
    agent_after: float | None = None
    queue_seconds: int | None = None
    handle_seconds: int | None = None
    resolved: bool = False
    handled_by: str = "agent"

    @property
    def first_response_at(self) -> datetime | None:
        if self.response_after is None:
            return None
        return self.started_at + timedelta(seconds=self.response_after)

    @property
    def first_agent_response_at(self) -> datetime | None:
        if self.agent_after is None:
            return None
        return self.started_at + timedelta(seconds=self.agent_after)

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(seconds=(self.handle_seconds or 0) + 600)

    @property
    def cost(self) -> Decimal:
        per_contact, per_minute = COSTS[self.channel]
        minutes = Decimal(self.handle_seconds or 0) / 60
        return (per_contact + per_minute * minutes).quantize(Decimal("0.0001"))

    def row(self) -> tuple:
        inbound = self.direction == "inbound"
        return (
            self.contact_id,
            self.channel,
            self.direction,
            self.handled_by,
            self.started_at,
            self.first_response_at,
            self.first_agent_response_at,
            self.queue_seconds,
            inbound and self.response_after is None,
            self.ended_at,
            self.handle_seconds,
            f"src_{self.topic}",
            self.topic,
            None,
            self.resolved,
            self.customer_id,
            self.request_id,
            self.cost,
        )


@dataclass
class World:
    contacts: list[Contact] = field(default_factory=list)
    surveys: list[tuple] = field(default_factory=list)
    _n: int = 0

    def contact(self, channel: str, started_at: datetime, customer: str, request: str,
                **kwargs: object) -> Contact:  # fmt: skip
        self._n += 1
        contact = Contact(
            contact_id=f"{channel}:{self._n:05d}",
            channel=channel,
            direction=str(kwargs.pop("direction", "inbound")),
            started_at=started_at,
            customer_id=customer,
            request_id=request,
            topic=str(kwargs.pop("topic", "billing_copy")),
            **kwargs,  # type: ignore[arg-type]
        )
        self.contacts.append(contact)
        return contact

    def survey(self, contact: Contact | None, kind: str, score: int, answered_at: datetime,
               channel: str | None = None) -> None:  # fmt: skip
        self.surveys.append(
            (
                f"resp-{len(self.surveys) + 1:05d}",
                None if contact is None else contact.contact_id,
                None if contact is None else contact.customer_id,
                None if contact is None else contact.request_id,
                channel if contact is None else contact.channel,
                kind,
                score,
                answered_at,
            )
        )


def _random_contact_fields(rng: random.Random, channel: str, direction: str) -> dict:
    fields: dict[str, object] = {"direction": direction}
    if channel == "chat" and rng.random() < 0.4:
        fields["handled_by"] = "bot"
    answered = direction == "inbound" and rng.random() < 0.85
    if answered:
        typical = {"voice": 90, "sms": 600, "email": 9000, "chat": 40, "messenger": 1500}
        after = round(rng.lognormvariate(0, 0.9) * typical[channel], 3)
        fields["response_after"] = after
        if fields.get("handled_by") != "bot":
            fields["agent_after"] = after
        elif rng.random() < 0.5:
            fields["agent_after"] = after + rng.randint(30, 900)
    if channel == "voice" and answered:
        fields["queue_seconds"] = rng.randint(0, 300)
    if channel in ("voice", "email", "chat") and rng.random() < 0.9:
        fields["handle_seconds"] = rng.randint(30, 1800)
    return fields


def build_world(seed: int = 11, customers: int = 90) -> World:
    rng = random.Random(seed)
    world = World()
    start = utc("2026-01-20T00:00:00")
    cutoff = utc("2026-04-20T00:00:00")  # May belongs to the edge cases
    for c in range(customers):
        customer = f"cust-{c:03d}"
        at = start + timedelta(seconds=rng.randint(0, 75 * 86400))
        for r in range(rng.choice((1, 1, 2, 3))):
            channel = rng.choice(CHANNELS)
            topic = rng.choice(TOPICS)
            request = f"req-{c:03d}-{r}"
            for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
                if at >= cutoff:
                    break
                outbound_share = 0.3 if channel == "sms" else 0.08
                direction = "outbound" if rng.random() < outbound_share else "inbound"
                contact = world.contact(
                    channel,
                    at,
                    customer,
                    request,
                    topic=topic,
                    resolved=rng.random() < 0.35,
                    **_random_contact_fields(rng, channel, direction),
                )
                if rng.random() < 0.45:
                    kind = rng.choice(("nps", "csat"))
                    score = rng.randint(0, 10) if kind == "nps" else rng.randint(1, 5)
                    world.survey(contact, kind, score, at + timedelta(hours=rng.uniform(1, 60)))
                at += timedelta(hours=rng.uniform(0.05, 60))
                if rng.random() < 0.3:
                    channel = rng.choice(CHANNELS)
            at += timedelta(days=rng.uniform(2, 25))
    for k in range(6):
        world.survey(None, rng.choice(("nps", "csat")), rng.randint(1, 5),
                     start + timedelta(days=5 + 9 * k), channel=None)  # fmt: skip
    _edge_cases(world)
    return world


def _edge_cases(world: World) -> None:
    # an SMS day with outbound contacts only
    sms = world.contact("sms", utc("2026-05-02T12:00:00"), "edge-sms", "req-edge-sms",
                        direction="outbound", resolved=True)  # fmt: skip
    world.contact("sms", utc("2026-05-02T15:00:00"), "edge-sms2", "req-edge-sms2",
                  direction="outbound")  # fmt: skip
    # e-mails nobody answered
    world.contact("email", utc("2026-05-03T10:00:00"), "edge-mail", "req-edge-mail",
                  handle_seconds=None)  # fmt: skip
    world.contact("email", utc("2026-05-03T11:00:00"), "edge-mail2", "req-edge-mail2")
    # 23:30 on 30 April in Sao Paulo; answered exactly at the 60 s chat target
    world.contact("chat", utc("2026-05-01T02:30:00"), "edge-tz", "req-edge-tz",
                  response_after=60.0, agent_after=60.0, handle_seconds=200,
                  resolved=True)  # fmt: skip
    # a voice request opened on 4 May whose only follow-up is on 5 May
    world.contact("voice", utc("2026-05-04T14:00:00"), "edge-voice", "req-edge-voice",
                  response_after=25.0, agent_after=25.0, queue_seconds=20,
                  handle_seconds=300)  # fmt: skip
    follow_up = world.contact("voice", utc("2026-05-05T14:00:00"), "edge-voice",
                              "req-edge-voice", response_after=150.5, agent_after=150.5,
                              queue_seconds=140, handle_seconds=120,
                              resolved=True)  # fmt: skip
    # retention gap: January and March, not February
    world.contact("messenger", utc("2026-01-21T09:00:00"), "edge-gap", "req-edge-gap-1",
                  response_after=300.0, agent_after=300.0)  # fmt: skip
    world.contact("messenger", utc("2026-03-21T09:00:00"), "edge-gap", "req-edge-gap-2",
                  response_after=200.0, agent_after=200.0)  # fmt: skip
    # June: voice NPS only; July: CSAT only (channel and unknown contact)
    world.survey(follow_up, "nps", 10, utc("2026-06-10T12:00:00"))
    world.survey(follow_up, "nps", 3, utc("2026-06-11T12:00:00"))
    world.survey(sms, "csat", 5, utc("2026-07-03T12:00:00"))
    world.survey(None, "csat", 2, utc("2026-07-04T12:00:00"))


def _requests(world: World) -> list[tuple]:
    by_request: dict[str, list[Contact]] = {}
    for contact in world.contacts:
        by_request.setdefault(contact.request_id, []).append(contact)
    rows = []
    for request_id, members in by_request.items():
        members.sort(key=lambda c: (c.started_at, c.contact_id))
        first = members[0]
        mapped = [c.topic for c in members if c.topic != "unmapped"]
        inbound = [c for c in members if c.direction == "inbound"]
        first_response = (
            inbound[0].response_after if inbound and inbound[0].response_after is not None
            else None
        )  # fmt: skip
        resolving = [c for c in members if c.resolved]
        resolved_at = resolving[0].ended_at if resolving else None
        answers = [s[7] for s in world.surveys if s[3] == request_id]
        rows.append(
            (
                request_id,
                first.customer_id,
                mapped[0] if mapped else "unmapped",
                None,
                first.started_at,
                first.channel,
                members[-1].channel,
                len(members),
                len({c.channel for c in members}),
                len({c.channel for c in members}) > 1,
                first_response,
                bool(resolving),
                resolved_at,
                None if resolved_at is None else (resolved_at - first.started_at).total_seconds(),
                len(members) == 1 and bool(resolving),
                sum((c.cost for c in members), Decimal(0)),
                sum((c.cost for c in members[1:]), Decimal(0)),
                min(answers) if answers else None,
            )
        )
    return rows


def write_facts(warehouse: Path, world: World | None = None) -> World:
    """Create the three fact tables of ``world`` (default :func:`build_world`) in
    ``warehouse``'s ``marts`` schema, replacing any that exist."""
    world = world or build_world()
    tables = {
        "fct_contacts": [c.row() for c in world.contacts],
        "fct_requests": _requests(world),
        "fct_survey_responses": world.surveys,
    }
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists marts")
        for table, rows in tables.items():
            con.execute(f"create or replace table marts.{table} ({DDL[table]})")
            marks = ", ".join("?" for _ in rows[0])
            con.executemany(f"insert into marts.{table} values ({marks})", rows)
    return world
