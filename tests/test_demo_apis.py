"""The demo channel APIs over real HTTP on loopback: pagination to each vendor's end condition,
incremental filters, the clock, auth, faults, determinism, and the documented field mapping
("Where the model's fields live" in docs/demo-apis.md) reproducing the world exactly."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from harmonia.demo.server import (
    CLOSE_RESOLVED,
    CLOSING_TEXTS,
    MG_BOT,
    SEARCH_RESULT_CAP,
    DemoServer,
)
from harmonia.settings import Credentials

C = Credentials()
SECRET = {
    "voice": C.voice_token.get_secret_value(),
    "sms": C.sms_auth_token.get_secret_value(),
    "email": C.email_api_token.get_secret_value(),
    "chat": C.chat_token.get_secret_value(),
    "messenger": C.messenger_access_token.get_secret_value(),
    "surveys": C.surveys_api_key.get_secret_value(),
    "crm": C.crm_token.get_secret_value(),
}
CONTACT_SOURCES = ("voice", "sms", "email", "chat", "messenger")
ALL_SOURCES = (*CONTACT_SOURCES, "surveys", "crm")


# ---------------------------------------------------------------------------------------------
# a plain requests client per source (what the connectors do, minus retries)


def session(source: str, secret: str | None = None) -> requests.Session:
    s = requests.Session()
    key = SECRET[source] if secret is None else secret
    if source in ("voice", "chat", "crm"):
        s.headers["Authorization"] = f"Bearer {key}"
    if source == "chat":
        s.headers["Intercom-Version"] = "2.11"
    if source == "sms":
        s.auth = (C.sms_account_sid, key)
    if source == "email":
        s.auth = (f"{C.email_user}/token", key)
    if source == "surveys":
        s.auth = (key, "")
    return s


def probe(
    srv: DemoServer, source: str, s: requests.Session, page_token: str | None = SECRET["messenger"]
) -> requests.Response:
    """One first-page request of a source (Messenger: ``page_token`` as ``access_token``)."""
    b = srv.url(source)
    w = srv.world
    if source == "voice":
        body = {
            "TimeRange": {"Type": "INITIATION_TIMESTAMP", "StartTime": w.start, "EndTime": w.end}
        }
        return s.post(f"{b}/search-contacts", json=body)
    if source == "sms":
        return s.get(f"{b}/2010-04-01/Accounts/{C.sms_account_sid}/Messages.json")
    if source == "email":
        return s.get(f"{b}/api/v2/incremental/tickets/cursor.json", params={"start_time": 0})
    if source == "chat":
        q = {"query": {"field": "updated_at", "operator": ">", "value": 0}}
        return s.post(f"{b}/conversations/search", json=q)
    if source == "messenger":
        params = {"platform": "messenger"}
        if page_token is not None:
            params["access_token"] = page_token
        return s.get(f"{b}/v19.0/{C.messenger_page_id}/conversations", params=params)
    if source == "surveys":
        return s.get(f"{b}/v1/survey_responses.json")
    return s.get(f"{b}/crm/v3/objects/contacts")


def fetch_voice(srv: DemoServer, start: int, end: int, n: int = 37) -> list[dict]:
    s, out, token = session("voice"), [], None
    while True:
        body = {"TimeRange": {"Type": "INITIATION_TIMESTAMP", "StartTime": start, "EndTime": end}}
        body["MaxResults"] = n
        if token:
            body["NextToken"] = token
        r = s.post(f"{srv.url('voice')}/search-contacts", json=body)
        r.raise_for_status()
        out += r.json()["Contacts"]
        token = r.json().get("NextToken")
        if not token:
            return out


def fetch_sms(srv: DemoServer, since: str | None = None, n: int = 29) -> list[dict]:
    s, out = session("sms"), []
    params: dict[str, Any] = {"PageSize": n}
    if since:
        params["DateSent>="] = since
    url: str | None = f"{srv.url('sms')}/2010-04-01/Accounts/{C.sms_account_sid}/Messages.json"
    while url:
        r = s.get(url, params=params)
        r.raise_for_status()
        out += r.json()["messages"]
        nxt = r.json()["next_page_uri"]
        url, params = (srv.base_url + nxt if nxt else None), {}
    return out


def fetch_email(srv: DemoServer, start_time: int = 0, cursor: str | None = None, n: int = 41):
    s, tickets, metrics = session("email"), [], []
    params: dict[str, Any] = {"include": "metric_sets", "per_page": n}
    params |= {"cursor": cursor} if cursor else {"start_time": start_time}
    while True:
        r = s.get(f"{srv.url('email')}/api/v2/incremental/tickets/cursor.json", params=params)
        r.raise_for_status()
        j = r.json()
        tickets += j["tickets"]
        metrics += j["metric_sets"]
        params = {"include": "metric_sets", "per_page": n, "cursor": j["after_cursor"]}
        if j["end_of_stream"]:
            return tickets, metrics, j["after_cursor"]


def fetch_chat(srv: DemoServer, after: int = 0, n: int = 33) -> list[dict]:
    s, out, start_after = session("chat"), [], None
    while True:
        body: dict[str, Any] = {"query": {"field": "updated_at", "operator": ">", "value": after}}
        body["pagination"] = {"per_page": n}
        if start_after:
            body["pagination"]["starting_after"] = start_after
        r = s.post(f"{srv.url('chat')}/conversations/search", json=body)
        r.raise_for_status()
        out += r.json()["conversations"]
        nxt = r.json()["pages"].get("next")
        if not nxt:
            return out
        start_after = nxt["starting_after"]


CONV_FIELDS = "id,updated_time,labels,participants,message_count"
MSG_FIELDS = "id,created_time,from,to,message,tags"


def fetch_messenger(srv: DemoServer, watermark: str | None = None, n: int = 17):
    tok = SECRET["messenger"]
    params: dict[str, Any] = {
        "platform": "messenger",
        "fields": CONV_FIELDS,
        "limit": n,
        "access_token": tok,
    }
    url: str | None = f"{srv.url('messenger')}/v19.0/{C.messenger_page_id}/conversations"
    convs: list[dict] = []
    while url:
        r = requests.get(url, params=params)
        r.raise_for_status()
        page = r.json()["data"]
        newer = [c for c in page if watermark is None or c["updated_time"] > watermark]
        convs += newer
        if len(newer) < len(page):
            break
        url, params = r.json().get("paging", {}).get("next"), None
    msgs: dict[str, list[dict]] = {}
    for conv in convs:
        url = f"{srv.url('messenger')}/v19.0/{conv['id']}/messages"
        params = {"fields": MSG_FIELDS, "limit": 3, "access_token": tok}
        msgs[conv["id"]] = []
        while url:
            r = requests.get(url, params=params)
            r.raise_for_status()
            msgs[conv["id"]] += r.json()["data"]
            url, params = r.json().get("paging", {}).get("next"), None
    return convs, msgs


def fetch_surveys(srv: DemoServer, since: int | None = None, n: int = 13) -> list[dict]:
    s, out, page = session("surveys"), [], 1
    while True:
        params: dict[str, Any] = {"per_page": n, "page": page}
        if since is not None:
            params["updated_since"] = since
        r = s.get(f"{srv.url('surveys')}/v1/survey_responses.json", params=params)
        r.raise_for_status()
        if not r.json():
            return out
        out += r.json()
        page += 1


def fetch_crm(srv: DemoServer, n: int = 19) -> list[dict]:
    s, out = session("crm"), []
    params: dict[str, Any] = {"limit": n, "properties": "email,phone,firstname,lastname"}
    url: str | None = f"{srv.url('crm')}/crm/v3/objects/contacts"
    while url:
        r = s.get(url, params=params)
        r.raise_for_status()
        out += r.json()["results"]
        url, params = r.json().get("paging", {}).get("next", {}).get("link"), None
    return out


def search_crm(srv: DemoServer, since_ms: int, n: int = 19) -> list[dict]:
    s, out, after = session("crm"), [], None
    while True:
        body: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": str(since_ms),
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["email", "phone"],
            "limit": n,
        }
        if after:
            body["after"] = after
        r = s.post(f"{srv.url('crm')}/crm/v3/objects/contacts/search", json=body)
        r.raise_for_status()
        out += r.json()["results"]
        after = r.json().get("paging", {}).get("next", {}).get("after")
        if not after:
            return out


def world_rows(srv: DemoServer, channel: str, now: int | None = None) -> list[dict]:
    now = srv.world.end if now is None else now
    return [
        r
        for r in srv.world.contacts.to_pylist()
        if r["channel"] == channel and r["first_version_at"] <= now
    ]


def sms_threads(messages: list[dict]) -> dict[str, list[dict]]:
    """Group Twilio messages into contacts by the documented rule (see docs/demo-apis.md)."""
    by_pair: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for m in messages:
        customer, company = (
            (m["from"], m["to"]) if m["direction"] == "inbound" else (m["to"], m["from"])
        )
        by_pair[(customer, company)].append(m)
    threads: dict[str, list[dict]] = {}
    for msgs in by_pair.values():
        openings = [m for m in msgs if is_opening(m)]
        openings.sort(key=lambda m: ts2822(m["date_sent"]))
        for m in msgs:
            t = ts2822(m["date_sent"])
            owner = [o for o in openings if ts2822(o["date_sent"]) <= t][-1]
            threads.setdefault(owner["sid"], []).append(m)
    return threads


def is_opening(m: dict) -> bool:
    first = m["body"].split(" ", 1)[0]
    if m["direction"] == "outbound-api":
        return True
    return m["direction"] == "inbound" and re.fullmatch(r"[A-Z0-9]+", first) is not None


def ts2822(s: str) -> int:
    return int(parsedate_to_datetime(s).timestamp())


def ts_iso(s: str | None) -> int | None:
    return None if s is None else int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


# ---------------------------------------------------------------------------------------------
# pagination: exactly the world's visible records


def test_every_source_paginates_to_exactly_the_world(demo_server: DemoServer) -> None:
    srv, w = demo_server, demo_server.world

    voice = fetch_voice(srv, w.start, w.end)
    assert sorted(c["ContactId"] for c in voice) == sorted(
        r["source_id"] for r in world_rows(srv, "voice")
    )

    msgs = fetch_sms(srv)
    assert len({m["sid"] for m in msgs}) == len(msgs)
    assert set(sms_threads(msgs)) == {r["source_id"] for r in world_rows(srv, "sms")}

    tickets, metrics, _ = fetch_email(srv)
    assert sorted(str(t["id"]) for t in tickets) == sorted(
        r["source_id"] for r in world_rows(srv, "email")
    )
    assert [m["ticket_id"] for m in metrics] == [t["id"] for t in tickets]

    chats = fetch_chat(srv)
    assert sorted(c["id"] for c in chats) == sorted(r["source_id"] for r in world_rows(srv, "chat"))

    convs, by_conv = fetch_messenger(srv)
    rows = world_rows(srv, "messenger")
    assert sorted(c["id"] for c in convs) == sorted(r["source_id"] for r in rows)
    assert all(len(by_conv[c["id"]]) == c["message_count"] for c in convs)
    n_msgs = srv.state.ms_msg["t"].size
    assert sum(len(v) for v in by_conv.values()) == n_msgs
    assert len({m["id"] for v in by_conv.values() for m in v}) == n_msgs

    surveys = fetch_surveys(srv)
    assert sorted(s["id"] for s in surveys) == sorted(w.surveys.column("source_id").to_pylist())

    crm = fetch_crm(srv)
    want = [c for c in w.customers.to_pylist() if c["crm_id"] and c["crm_created_at"] <= w.end]
    assert sorted(c["id"] for c in crm) == sorted(c["crm_id"] for c in want)
    assert [c["id"] for c in crm] == sorted((c["id"] for c in crm), key=int)


# ---------------------------------------------------------------------------------------------
# incremental filters


def test_incremental_filters_return_exactly_the_records_after_the_cursor(
    demo_server: DemoServer,
) -> None:
    srv, w = demo_server, demo_server.world
    mid = w.start + (w.end - w.start) // 2

    voice = fetch_voice(srv, mid, w.end)
    assert {c["ContactId"] for c in voice} == {
        r["source_id"] for r in world_rows(srv, "voice") if r["started_at"] >= mid
    }

    day = datetime.fromtimestamp(mid, UTC).strftime("%Y-%m-%d")
    day_start = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    msgs = fetch_sms(srv, since=day)
    assert msgs and all(ts2822(m["date_sent"]) >= day_start for m in msgs)
    assert len(msgs) == int((srv.state.sms_msg["t"] >= day_start).sum())

    tickets, _, _ = fetch_email(srv, start_time=mid)
    assert {str(t["id"]) for t in tickets} == {
        r["source_id"] for r in world_rows(srv, "email") if r["updated_at"] >= mid
    }
    assert all(t["generated_timestamp"] >= mid for t in tickets)

    chats = fetch_chat(srv, after=mid)
    assert {c["id"] for c in chats} == {
        r["source_id"] for r in world_rows(srv, "chat") if r["updated_at"] > mid
    }

    surveys = fetch_surveys(srv, since=mid)
    want = {s["source_id"] for s in w.surveys.to_pylist() if s["updated_at"] >= mid}
    assert {s["id"] for s in surveys} == want

    crm = search_crm(srv, mid * 1000)
    want = {
        c["crm_id"] for c in w.customers.to_pylist() if c["crm_id"] and c["crm_updated_at"] >= mid
    }
    assert {c["id"] for c in crm} == want
    stamps = [c["properties"]["lastmodifieddate"] for c in crm]
    assert stamps == sorted(stamps)

    watermark = datetime.fromtimestamp(mid, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    convs, _ = fetch_messenger(srv, watermark=watermark)
    assert {c["id"] for c in convs} == {
        r["source_id"] for r in world_rows(srv, "messenger") if r["updated_at"] > mid
    }


def test_email_cursor_resumes_with_new_and_updated_tickets_only(
    make_demo_server: Callable[..., DemoServer],
) -> None:
    srv = make_demo_server()
    w = srv.world
    t1 = w.start + (w.end - w.start) * 2 // 3
    srv.set_clock(t1)
    first, _, cursor = fetch_email(srv)
    srv.set_clock(w.end)
    later, _, _ = fetch_email(srv, cursor=cursor)
    rows = world_rows(srv, "email")
    want = {r["source_id"] for r in rows if r["updated_at"] > t1 or r["first_version_at"] > t1}
    assert {str(t["id"]) for t in later} == want
    assert {str(t["id"]) for t in first} | {str(t["id"]) for t in later} == {
        r["source_id"] for r in rows
    }


# ---------------------------------------------------------------------------------------------
# the clock: future records hidden, first versions before updated_at


def test_clock_hides_future_records_and_serves_first_versions(
    make_demo_server: Callable[..., DemoServer],
) -> None:
    srv = make_demo_server()
    w = srv.world
    chats_w = [r for r in world_rows(srv, "chat") if r["updated_at"] > r["first_version_at"] + 1]
    now = chats_w[len(chats_w) // 2]["first_version_at"] + 1  # that chat is in flight
    r = requests.post(f"{srv.base_url}/_admin/clock", json={"now": now})
    assert r.json() == {"now": now}

    chats = {c["id"]: c for c in fetch_chat(srv)}
    rows = world_rows(srv, "chat", now)
    assert set(chats) == {r["source_id"] for r in rows}
    in_flight = [r for r in rows if r["updated_at"] > now]
    assert in_flight, "the test world should have a chat in flight at mid-world"
    for r in in_flight:
        c = chats[r["source_id"]]
        assert c["updated_at"] == r["first_version_at"] and c["state"] == "open"
        assert c["statistics"]["last_close_at"] is None

    tickets, _, _ = fetch_email(srv)
    by_id = {str(t["id"]): t for t in tickets}
    for r in world_rows(srv, "email", now):
        t = by_id[r["source_id"]]
        want = r["updated_at"] if r["updated_at"] <= now else r["first_version_at"]
        assert t["generated_timestamp"] == want
        if r["updated_at"] > now:
            assert t["status"] in ("new", "open")

    voice = {c["ContactId"]: c for c in fetch_voice(srv, w.start, w.end)}
    assert set(voice) == {r["source_id"] for r in world_rows(srv, "voice", now)}
    late = [r for r in world_rows(srv, "voice", now) if r["updated_at"] > now]
    for r in late:
        assert voice[r["source_id"]]["LastUpdateTimestamp"] == r["first_version_at"]
        assert "disposition" not in voice[r["source_id"]]["Attributes"]

    msgs = fetch_sms(srv)
    assert msgs and max(ts2822(m["date_sent"]) for m in msgs) <= now
    assert all(s["created_at"] <= now for s in fetch_surveys(srv))
    assert all(ts_iso(c["createdAt"]) <= now for c in fetch_crm(srv))


# ---------------------------------------------------------------------------------------------
# auth


AUTH_SHAPES: dict[str, Callable[[requests.Response], bool]] = {
    "voice": lambda r: (
        r.json()["__type"] in ("UnrecognizedClientException", "AccessDeniedException")
    ),
    "sms": lambda r: r.json()["code"] == 20003 and r.json()["status"] == 401,
    "email": lambda r: r.json() == {"error": "Couldn't authenticate you"},
    "chat": lambda r: (
        r.json()["type"] == "error.list" and r.json()["errors"][0]["code"] == "unauthorized"
    ),
    "messenger": lambda r: (
        r.json()["error"]["code"] == 190 and r.json()["error"]["type"] == "OAuthException"
    ),
    "surveys": lambda r: r.json() == {"status": 401, "message": "Unauthorized"},
    "crm": lambda r: r.json()["category"] == "INVALID_AUTHENTICATION",
}


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_missing_and_wrong_credentials_are_refused_in_the_vendor_shape(
    demo_server: DemoServer, source: str
) -> None:
    wrong = session(source, secret="not-the-secret")
    r = probe(demo_server, source, wrong, page_token="not-the-secret")
    assert r.status_code == (403 if source == "voice" else 401)
    assert AUTH_SHAPES[source](r)

    r = probe(demo_server, source, requests.Session(), page_token=None)
    assert r.status_code == 401
    assert AUTH_SHAPES[source](r)
    assert probe(demo_server, source, session(source)).status_code == 200


# ---------------------------------------------------------------------------------------------
# faults


RATE_LIMIT_SHAPES: dict[str, Callable[[requests.Response], bool]] = {
    "voice": lambda r: r.status_code == 429 and r.json()["__type"] == "TooManyRequestsException",
    "sms": lambda r: (
        r.status_code == 429 and r.json()["code"] == 20429 and int(r.headers["Retry-After"]) <= 1
    ),
    "email": lambda r: (
        r.status_code == 429
        and r.json()["error"] == "APIRateLimitExceeded"
        and int(r.headers["Retry-After"]) <= 1
    ),
    "chat": lambda r: (
        r.status_code == 429
        and r.json()["errors"][0]["code"] == "rate_limit_exceeded"
        and r.headers["X-RateLimit-Remaining"] == "0"
        and int(r.headers["X-RateLimit-Reset"]) <= int(datetime.now(UTC).timestamp()) + 2
    ),
    "messenger": lambda r: (
        r.status_code == 403 and r.json()["error"]["code"] == 4 and "X-App-Usage" in r.headers
    ),
    "surveys": lambda r: r.status_code == 429 and int(r.headers["Retry-After"]) <= 1,
    "crm": lambda r: r.status_code == 429 and r.json()["errorType"] == "RATE_LIMIT",
}


def test_request_level_faults_in_each_vendor_shape(
    make_demo_server: Callable[..., DemoServer],
) -> None:
    srv = make_demo_server(faults={"rate_limit": 1.0})
    for source in ALL_SOURCES:
        r = probe(srv, source, session(source))
        assert RATE_LIMIT_SHAPES[source](r), (source, r.status_code, r.text)
    assert (
        requests.get(f"{srv.base_url}/_admin/health").status_code == 200
    )  # admin is never faulted

    srv.set_faults({"server_error": 1.0})
    for source in ALL_SOURCES:
        r = probe(srv, source, session(source))
        assert r.status_code in (500, 502, 503), source
        assert r.json()

    srv.set_faults({"slow": 1.0, "slow_seconds": 0.01})
    assert probe(srv, "voice", session("voice")).status_code == 200

    stats = requests.get(f"{srv.base_url}/_admin/stats").json()["sources"]
    assert all(stats[s]["faults"]["rate_limit"] == 1 for s in ALL_SOURCES)
    assert all(stats[s]["faults"]["server_error"] == 1 for s in ALL_SOURCES)
    assert stats["voice"]["faults"]["slow"] == 1


def test_rate_limit_at_a_rate_is_seeded_and_counted(
    make_demo_server: Callable[..., DemoServer],
) -> None:
    codes = []
    for _ in range(2):
        srv = make_demo_server(faults="rate_limit=0.3")
        codes.append([probe(srv, "surveys", session("surveys")).status_code for _ in range(40)])
        assert srv.stats()["sources"]["surveys"]["faults"]["rate_limit"] == codes[-1].count(429)
    assert codes[0] == codes[1]
    assert 0 < codes[0].count(429) < 40


def test_page_overlap_repeats_exactly_one_record(
    make_demo_server: Callable[..., DemoServer],
) -> None:
    srv = make_demo_server(faults={"page_overlap": 1.0})
    w = srv.world
    voice = fetch_voice(srv, w.start, w.end, n=10)
    ids = [c["ContactId"] for c in voice]
    pages = [ids[i : i + 10] for i in range(0, len(ids), 10)]
    assert len(pages) > 2
    for a, b in itertools.pairwise(pages):
        assert b[0] == a[-1]
        assert len(set(a) & set(b)) == 1
    assert set(ids) == {r["source_id"] for r in world_rows(srv, "voice")}

    surveys = fetch_surveys(srv, n=10)
    counts = Counter(s["id"] for s in surveys)
    assert set(counts.values()) == {1, 2}
    assert set(counts) == set(w.surveys.column("source_id").to_pylist())

    tickets, _, _ = fetch_email(srv, n=10)
    assert (
        len(tickets) - len({t["id"] for t in tickets})
        == -(-len({t["id"] for t in tickets}) // 10) - 1
    )


def test_crm_search_serves_at_most_the_result_cap_then_refuses_in_hubspot_shape(
    make_demo_server: Callable[..., DemoServer],
) -> None:
    srv = make_demo_server(search_result_cap=25)
    s = session("crm")
    url = f"{srv.url('crm')}/crm/v3/objects/contacts/search"
    body: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 10,
    }
    sizes, ids = [], []
    while True:
        r = s.post(url, json=body)
        if r.status_code != 200:
            break
        sizes.append(len(r.json()["results"]))
        ids += [c["id"] for c in r.json()["results"]]
        total = r.json()["total"]
        body["after"] = r.json()["paging"]["next"]["after"]  # always there: total > the cap
    # the page reaching the cap is cut at it and still links a next page, as HubSpot's does
    assert sizes == [10, 10, 5] and len(set(ids)) == 25 and total > 25
    assert r.status_code == 400
    err = r.json()
    assert err["status"] == "error" and err["category"] == "VALIDATION_ERROR"
    assert re.fullmatch(r"[0-9a-f-]{36}", err["correlationId"])
    assert "limited to 25" in err["message"] and "after=25" in err["message"]
    # the list endpoint has no such cap; the search's is HubSpot's 10,000 unless lowered
    assert len(fetch_crm(srv)) == total
    assert SEARCH_RESULT_CAP == 10_000


MALFORMED_CHECKS: dict[str, Callable[[dict], bool]] = {
    "voice:missing_field": lambda c: "InitiationTimestamp" not in c,
    "voice:bad_date": lambda c: isinstance(c["InitiationTimestamp"], str),
    "voice:bad_phone": lambda c: "?" in c["CustomerEndpoint"]["Address"],
    "voice:wrong_type": lambda c: c["Attributes"]["resolved"] is True,
    "voice:negative_duration": lambda c: any(
        (v or 0) < 0
        for v in (
            (c["Agent"] or {}).get("AgentInteractionDuration"),
            (c["Queue"] or {}).get("Duration"),
        )
    ),
    "chat:missing_field": lambda c: "created_at" not in c,
    "chat:bad_date": lambda c: isinstance(c["created_at"], str),
    "chat:bad_phone": lambda c: not re.search(r"\d{4}", c["custom_attributes"]["phone"]),
    "chat:wrong_type": lambda c: isinstance(c["statistics"]["count_conversation_parts"], str),
    "chat:negative_duration": lambda c: c["statistics"]["handling_time"] < 0,
    "surveys:missing_field": lambda s: "score" not in s,
    "surveys:bad_date": lambda s: isinstance(s["created_at"], str),
    "surveys:wrong_type": lambda s: isinstance(s["score"], str),
    "surveys:score_out_of_range": lambda s: s["score"] > (10 if s["survey_type"] == "nps" else 5),
}


def test_malformed_records_carry_the_defect_named_in_the_ground_truth(
    make_demo_server: Callable[..., DemoServer],
) -> None:
    srv = make_demo_server(faults={"malformed": 0.5, "schema_drift": 0.3})
    w = srv.world
    records = {
        "voice": {c["ContactId"]: c for c in fetch_voice(srv, w.start, w.end)},
        "chat": {c["id"]: c for c in fetch_chat(srv)},
        "surveys": {s["id"]: s for s in fetch_surveys(srv)},
    }
    seen: Counter[str] = Counter()
    for source, recs in records.items():
        for rid, rec in recs.items():
            kind = srv.malformed_kind(source, rid)
            if kind is not None:
                assert MALFORMED_CHECKS[f"{source}:{kind}"](rec), (source, kind, rid)
                seen[f"{source}:{kind}"] += 1
            else:
                assert "InitiationTimestamp" in rec or "created_at" in rec
        assert any("x_channel_experiment" in rec for rec in recs.values())
    assert set(seen) == set(MALFORMED_CHECKS)

    # the truth aligns the kind with each contact (contact_id = channel:source_id)
    kinds = srv.state.contact_malformed()
    for row, kind in zip(w.contacts.to_pylist(), kinds, strict=True):
        assert kind == srv.malformed_kind(row["channel"], row["source_id"])
    assert 0.3 < sum(k is not None for k in kinds) / len(kinds) < 0.7


def test_same_seed_same_bytes(make_demo_server: Callable[..., DemoServer]) -> None:
    faults = {
        "rate_limit": 0.2,
        "server_error": 0.2,
        "page_overlap": 0.3,
        "malformed": 0.2,
        "schema_drift": 0.2,
    }
    bodies = []
    for _ in range(2):
        srv = make_demo_server(faults=faults)
        seq = []
        for source in ALL_SOURCES:
            for _ in range(3):
                r = probe(srv, source, session(source))
                seq.append((r.status_code, r.content.replace(srv.base_url.encode(), b"BASE")))
        email = session("email")
        for _ in range(4):
            r = email.get(
                f"{srv.url('email')}/api/v2/incremental/tickets/cursor.json",
                params={"start_time": 0, "per_page": 7},
            )
            seq.append((r.status_code, r.content.replace(srv.base_url.encode(), b"BASE")))
        bodies.append(seq)
    # absolute links differ only by the port the two servers were given
    assert bodies[0] == bodies[1]
    assert {code for code, _ in bodies[0]} > {200}


# ---------------------------------------------------------------------------------------------
# the documented field mapping reproduces the world's harmonized columns exactly


FIELDS = (
    "direction",
    "handled_by",
    "started_at",
    "first_response_at",
    "first_agent_response_at",
    "queue_seconds",
    "abandoned",
    "ended_at",
    "handle_seconds",
    "source_topic",
    "quoted_protocol",
    "resolved",
)
PROTOCOL = re.compile(r"Protocolo #(\S+)")


def derive_voice(c: dict) -> dict:
    agent, queue, attrs = c["Agent"], c["Queue"], c["Attributes"]
    inbound = c["InitiationMethod"] == "INBOUND"
    far = agent["ConnectedToAgentTimestamp"] if agent else None
    return {
        "id": c["ContactId"],
        "direction": "inbound" if inbound else "outbound",
        "handled_by": "agent",
        "started_at": c["InitiationTimestamp"],
        "first_response_at": far,
        "first_agent_response_at": far,
        "queue_seconds": queue["Duration"] if queue else None,
        "abandoned": inbound and c["DisconnectTimestamp"] is not None and agent is None,
        "ended_at": c["DisconnectTimestamp"],
        "handle_seconds": agent["AgentInteractionDuration"] if agent else None,
        "source_topic": attrs.get("disposition"),
        "quoted_protocol": attrs.get("protocol"),
        "resolved": attrs.get("resolved") == "true",
        "phone": (c["CustomerEndpoint"] or {}).get("Address"),
        "crm_id": attrs.get("crm_id"),
    }


def derive_sms(thread: list[dict]) -> dict:
    msgs = sorted(thread, key=lambda m: (ts2822(m["date_sent"]), not is_opening(m)))
    opening = msgs[0]
    company = [m for m in msgs if m["direction"] != "inbound" and m["body"] not in CLOSING_TEXTS]
    agents = [m for m in company if m["messaging_service_sid"] != MG_BOT]
    closing = [m for m in msgs if m["direction"] != "inbound" and m["body"] in CLOSING_TEXTS]
    inbound = opening["direction"] == "inbound"
    proto = PROTOCOL.search(opening["body"])
    return {
        "id": opening["sid"],
        "direction": "inbound" if inbound else "outbound",
        "handled_by": "bot" if company and not agents else "agent",
        "started_at": ts2822(opening["date_sent"]),
        "first_response_at": min((ts2822(m["date_sent"]) for m in company), default=None),
        "first_agent_response_at": min((ts2822(m["date_sent"]) for m in agents), default=None),
        "queue_seconds": None,
        "abandoned": inbound and bool(closing) and not company,
        "ended_at": ts2822(closing[0]["date_sent"]) if closing else None,
        "handle_seconds": None,
        "source_topic": opening["body"].split(" ", 1)[0],
        "quoted_protocol": proto.group(1) if proto else None,
        "resolved": bool(closing) and closing[0]["body"] == CLOSE_RESOLVED,
        "phone": opening["from"] if inbound else opening["to"],
    }


def derive_email(t: dict, m: dict) -> dict:
    inbound = t["via"]["channel"] == "email"
    created = ts_iso(t["created_at"])
    rts = m["reply_time_in_seconds"]["calendar"]
    fields = {f["id"]: f["value"] for f in t["custom_fields"]}
    ended = t["status"] in ("pending", "solved", "closed")
    fr = None if rts is None else created + rts
    return {
        "id": str(t["id"]),
        "direction": "inbound" if inbound else "outbound",
        "handled_by": "agent",
        "started_at": created,
        "first_response_at": fr,
        "first_agent_response_at": fr,
        "queue_seconds": None,
        "abandoned": inbound and ended and fr is None,
        "ended_at": ts_iso(m["status_updated_at"]) if ended else None,
        "handle_seconds": fields[360000000103],
        "source_topic": t["tags"][0] if t["tags"] else None,
        "quoted_protocol": fields[360000000101],
        "resolved": t["status"] in ("solved", "closed"),
        "email": t["via"]["source"]["from" if inbound else "to"]["address"],
        "phone": fields[360000000102],
    }


def derive_chat(c: dict) -> dict:
    st, ca = c["statistics"], c["custom_attributes"]
    inbound = c["source"]["delivered_as"] == "customer_initiated"
    bot = c["ai_agent_participated"] and c["ai_agent"]["resolution_state"] != "routed_to_team"
    replies = [t for t in (ca["first_bot_reply_at"], st["first_admin_reply_at"]) if t is not None]
    fr = min(replies, default=None)
    return {
        "id": c["id"],
        "direction": "inbound" if inbound else "outbound",
        "handled_by": "bot" if bot else "agent",
        "started_at": c["created_at"],
        "first_response_at": fr,
        "first_agent_response_at": st["first_admin_reply_at"],
        "queue_seconds": None,
        "abandoned": inbound and c["state"] == "closed" and fr is None,
        "ended_at": st["last_close_at"],
        "handle_seconds": st["handling_time"],
        "source_topic": ca["intent"],
        "quoted_protocol": ca["protocol"],
        "resolved": ca["resolved"],
        "chat_contact_id": c["contacts"]["contacts"][0]["id"],
        "phone": ca["phone"],
        "email": ca["email"],
    }


def derive_messenger(conv: dict, msgs: list[dict]) -> dict:
    page = C.messenger_page_id
    msgs = sorted(msgs, key=lambda m: m["created_time"])
    opening = msgs[0]
    company = [m for m in msgs if m["from"]["id"] == page and m["message"] not in CLOSING_TEXTS]
    agents = [m for m in company if {"name": "source:api"} not in m["tags"]["data"]]
    closing = [m for m in msgs if m["from"]["id"] == page and m["message"] in CLOSING_TEXTS]
    inbound = opening["from"]["id"] != page
    proto = PROTOCOL.search(opening["message"])
    customer = next(p for p in conv["participants"]["data"] if p["id"] != page)
    return {
        "id": conv["id"],
        "direction": "inbound" if inbound else "outbound",
        "handled_by": "bot" if company and not agents else "agent",
        "started_at": ts_iso(opening["created_time"]),
        "first_response_at": ts_iso(company[0]["created_time"]) if company else None,
        "first_agent_response_at": ts_iso(agents[0]["created_time"]) if agents else None,
        "queue_seconds": None,
        "abandoned": inbound and bool(closing) and not company,
        "ended_at": ts_iso(closing[0]["created_time"]) if closing else None,
        "handle_seconds": None,
        "source_topic": conv["labels"]["data"][0]["name"] if conv["labels"]["data"] else None,
        "quoted_protocol": proto.group(1) if proto else None,
        "resolved": bool(closing) and closing[0]["message"] == CLOSE_RESOLVED,
        "messenger_psid": customer["id"],
        "email": customer.get("email"),
    }


def test_documented_mapping_reproduces_the_world(demo_server: DemoServer) -> None:
    srv, w = demo_server, demo_server.world
    tickets, metrics, _ = fetch_email(srv)
    convs, by_conv = fetch_messenger(srv)
    derived = {
        "voice": [derive_voice(c) for c in fetch_voice(srv, w.start, w.end)],
        "sms": [derive_sms(t) for t in sms_threads(fetch_sms(srv)).values()],
        "email": [derive_email(t, m) for t, m in zip(tickets, metrics, strict=True)],
        "chat": [derive_chat(c) for c in fetch_chat(srv)],
        "messenger": [derive_messenger(c, by_conv[c["id"]]) for c in convs],
    }
    identifiers = {
        "voice": ("phone", "phone_raw"),
        "sms": ("phone", "phone_raw"),
        "email": ("email", "email_raw"),
        "chat": ("chat_contact_id", "chat_contact_id"),
        "messenger": ("messenger_psid", "messenger_psid"),
    }
    for channel, got in derived.items():
        world = {r["source_id"]: r for r in world_rows(srv, channel)}
        assert len(got) == len(world)
        for d in got:
            r = world[d["id"]]
            for f in FIELDS:
                assert d[f] == r[f], (channel, d["id"], f, d[f], r[f])
            key, col = identifiers[channel]
            assert d[key] == r[col], (channel, key)
        if channel == "voice":
            assert {d["id"]: d["crm_id"] for d in got} == {k: r["crm_id"] for k, r in world.items()}

    refs = {s["person_properties"]["contact_ref"] for s in fetch_surveys(srv)}
    contact_ids = {f"{r['channel']}:{r['source_id']}" for r in w.contacts.to_pylist()}
    assert refs <= contact_ids


def test_demo_server_fixture_serves_base_urls(demo_server: DemoServer) -> None:
    assert demo_server.url("crm") == f"{demo_server.base_url}/crm"
    health = requests.get(f"{demo_server.base_url}/_admin/health").json()
    assert health["status"] == "ok" and health["now"] == demo_server.world.end


def test_tokens_are_stable(demo_server: DemoServer) -> None:
    s = session("chat")
    q = {
        "query": {"field": "updated_at", "operator": ">", "value": 0},
        "pagination": {"per_page": 5},
    }
    a = s.post(f"{demo_server.url('chat')}/conversations/search", json=q).json()
    b = s.post(f"{demo_server.url('chat')}/conversations/search", json=q).json()
    assert a["pages"]["next"] == b["pages"]["next"]
    q["pagination"]["starting_after"] = a["pages"]["next"]["starting_after"]
    c = s.post(f"{demo_server.url('chat')}/conversations/search", json=q).json()
    d = s.post(f"{demo_server.url('chat')}/conversations/search", json=q).json()
    assert c == d and c["pages"]["page"] == 2
    assert not {x["id"] for x in a["conversations"]} & {x["id"] for x in c["conversations"]}


def test_messenger_field_expansion_serves_each_conversations_messages_inline(
    demo_server: DemoServer,
) -> None:
    """``fields=…,messages.limit(N){…}`` (Graph field expansion): every conversation carries
    its newest N messages — the same bytes as its ``/messages`` edge — and, when it has more,
    a nested ``paging.next`` to that edge which continues exactly after them."""
    srv, tok, n = demo_server, SECRET["messenger"], 4
    base = f"{srv.url('messenger')}/v19.0"
    convs, by_conv = fetch_messenger(srv)
    r = requests.get(
        f"{base}/{C.messenger_page_id}/conversations",
        params={
            "platform": "messenger",
            "limit": 100,
            "fields": f"{CONV_FIELDS},messages.limit({n}){{{MSG_FIELDS}}}",
            "access_token": tok,
        },
    )
    r.raise_for_status()
    inline = r.json()["data"]
    assert [c["id"] for c in inline] == [c["id"] for c in convs]  # all fit on one page here
    long_ones = 0
    for conv, plain in zip(inline, convs, strict=True):
        edge = conv.pop("messages")
        assert conv == plain  # the conversation itself is unchanged by the expansion
        want = by_conv[conv["id"]]
        assert edge["data"] == want[:n]
        got = list(edge["data"])
        nxt = edge.get("paging", {}).get("next")
        assert (nxt is not None) == (len(want) > n)
        long_ones += nxt is not None
        while nxt:
            assert f"/v19.0/{conv['id']}/messages?" in nxt and f"limit={n}" in nxt
            page = requests.get(nxt).json()  # carries access_token, fields and limit
            got += page["data"]
            nxt = page.get("paging", {}).get("next")
        assert got == want
    assert long_ones > 0, "some conversation has more than the inline limit"
    # without subfields Graph returns id and created_time; a bad limit is refused like Graph
    plain_edge = requests.get(
        f"{base}/{C.messenger_page_id}/conversations",
        params={"fields": "id,messages.limit(2)", "limit": 1, "access_token": tok},
    ).json()["data"][0]["messages"]["data"]
    assert all(set(m) == {"id", "created_time"} for m in plain_edge)
    for bad in ("id,messages.limit(101){id}", "id,messages{id", "id,messages.since(3){id}"):
        resp = requests.get(
            f"{base}/{C.messenger_page_id}/conversations",
            params={"fields": bad, "access_token": tok},
        )
        assert resp.status_code == 400 and resp.json()["error"]["code"] == 100, bad
