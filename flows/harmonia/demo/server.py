"""The demo channel APIs: one loopback HTTP server imitating seven vendors over a generated world.

Each vendor is mounted under its source prefix (``/voice``, ``/sms``, ``/email``, ``/chat``,
``/messenger``, ``/surveys``, ``/crm``) plus ``/_admin``; the wire contract is
``docs/demo-apis.md``. The world stays columnar (pyarrow + numpy): every source keeps a sorted
key index over its rows and a page is rendered on demand, so a million contacts fit in memory
and same seed + same requests give the same bytes.

Public API: :func:`build_app` (the ASGI app) and :class:`DemoServer` (uvicorn in a background
thread, for tests and the CLI).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import numpy as np
import orjson
import pyarrow as pa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from harmonia.demo import WORLD_DAYS
from harmonia.demo.schema import SOURCES, World
from harmonia.settings import Credentials

# --------------------------------------------------------------------------------------------
# formats

AWS_ACCOUNT = "000000000000"
CONNECT_INSTANCE_ID = "9f0c2d1e-0000-4000-8000-00000000c0de"
CONNECT_INSTANCE_ARN = f"arn:aws:connect:us-east-1:{AWS_ACCOUNT}:instance/{CONNECT_INSTANCE_ID}"
COMPANY_PHONE = "+551140040000"
SUPPORT_EMAIL = "suporte@harmonia.example"
PAGE_NAME = "Harmonia Store"
MG_AGENTS = "MG00000000000000000000000000000a9e"  # Twilio messaging service used by agents
MG_BOT = "MG00000000000000000000000000000b07"  # messaging service used by the SMS bot
ZD_FIELD_PROTOCOL = 360000000101
ZD_FIELD_PHONE = 360000000102
ZD_FIELD_TIME_SPENT = 360000000103  # Time Tracking app: "Total time spent (sec)"
INTERCOM_BOT_ID = "8000001"

#: closing texts of SMS and Messenger threads: the message that ends the contact (not a reply)
CLOSE_RESOLVED = "Atendimento encerrado: sua solicitação foi resolvida. Obrigado pelo contato!"
CLOSE_UNRESOLVED = "Atendimento encerrado."
CLOSING_TEXTS = (CLOSE_RESOLVED, CLOSE_UNRESOLVED)

AGENT_NAMES = (
    "Ana Lima",
    "Bruno Costa",
    "Carla Dias",
    "Diego Alves",
    "Elisa Rocha",
    "Felipe Nunes",
    "Gabriela Melo",
    "Hugo Pires",
    "Isabela Freitas",
    "João Teixeira",
    "Karina Lopes",
    "Lucas Moreira",
    "Mariana Castro",
    "Nicolas Barros",
    "Olívia Ramos",
    "Paulo Martins",
)

ROLE_CUSTOMER, ROLE_BOT, ROLE_AGENT = 0, 1, 2
MSG_OPEN, MSG_REPLY, MSG_FOLLOW, MSG_CLOSE_OK, MSG_CLOSE = 0, 1, 2, 3, 4


# The vendors' time formats, from time.gmtime: the same text as datetime.fromtimestamp(t, UTC)
# and email.utils.format_datetime, in a third of the time (rendering timestamps was ~15 % of
# the server's CPU); names of days and months are written out, not taken from the C locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _gmtime(t: int) -> time.struct_time:
    if isinstance(t, int):
        return time.gmtime(t)
    # datetime rounds a fraction to the microsecond where gmtime cuts it (1.9999995 -> 2)
    return datetime.fromtimestamp(t, UTC).timetuple()


def rfc2822(t: int) -> str:
    g = _gmtime(t)
    return (
        f"{_DAYS[g.tm_wday]}, {g.tm_mday:02d} {_MONTHS[g.tm_mon - 1]} {g.tm_year:04d} "
        f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} +0000"
    )


def iso_z(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", _gmtime(t))


def iso_ms(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", _gmtime(t))


def iso_meta(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", _gmtime(t))


# --------------------------------------------------------------------------------------------
# deterministic hashing (data-level faults, boilerplate ids)

_M64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """splitmix64 finalizer on Python ints (same result as :func:`mix64_np`)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def mix64_np(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@lru_cache(maxsize=4096)
def salt(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit(seed: int, what: str, key: int) -> float:
    return mix64(salt(seed, what) ^ (key & _M64)) / 2.0**64


def hex_id(n: int, *parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()[:n]


# --------------------------------------------------------------------------------------------
# faults

#: malformed kinds each source can show (the defect is always visible in the final version)
MALFORMED_KINDS: dict[str, tuple[str, ...]] = {
    "voice": ("missing_field", "bad_date", "bad_phone", "wrong_type", "negative_duration"),
    "sms": ("missing_field", "bad_date", "bad_phone", "wrong_type"),
    "email": ("missing_field", "bad_date", "bad_phone", "wrong_type", "negative_duration"),
    "chat": ("missing_field", "bad_date", "bad_phone", "wrong_type", "negative_duration"),
    "messenger": ("missing_field", "bad_date", "wrong_type"),
    "surveys": ("missing_field", "bad_date", "wrong_type", "score_out_of_range"),
    "crm": ("missing_field", "bad_date", "bad_phone", "wrong_type"),
}
REQUEST_FAULTS = ("rate_limit", "server_error", "slow")

#: HubSpot's CRM search serves at most this many results for one query; paging past it is a
#: 400 (the crm search endpoint; ``DemoServer(search_result_cap=…)`` lowers it for tests)
SEARCH_RESULT_CAP = 10_000


@dataclass
class Faults:
    """Fault rates in [0, 1] per kind, plus knobs. All zero = a well-behaved server."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    slow: float = 0.0
    page_overlap: float = 0.0
    malformed: float = 0.0
    schema_drift: float = 0.0
    slow_seconds: float = 0.2
    retry_after_seconds: int = 1

    @classmethod
    def parse(cls, spec: Faults | Mapping[str, Any] | str | None) -> Faults:
        """From ``"rate_limit=0.05,malformed=0.01"``, a mapping, or an existing Faults."""
        if spec is None:
            return cls()
        if isinstance(spec, Faults):
            return cls(**asdict(spec))
        if isinstance(spec, str):
            items: dict[str, Any] = {}
            for part in filter(None, (p.strip() for p in spec.split(","))):
                key, _, value = part.partition("=")
                items[key.strip()] = float(value) if value else 1.0
            spec = items
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(spec) - set(known)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}; known: {sorted(known)}")
        out = cls(
            **{k: (int(v) if k == "retry_after_seconds" else float(v)) for k, v in spec.items()}
        )
        for k in (
            "rate_limit",
            "server_error",
            "slow",
            "page_overlap",
            "malformed",
            "schema_drift",
        ):
            if not 0.0 <= getattr(out, k) <= 1.0:
                raise ValueError(f"fault rate {k} must be within [0, 1]")
        out.retry_after_seconds = max(0, min(1, out.retry_after_seconds))
        return out


# --------------------------------------------------------------------------------------------
# key indexes: sorted composite keys (time << ROW_BITS | row) over one source's rows

ROW_BITS = 24
ROW_MASK = (1 << ROW_BITS) - 1
KEY_MAX = (1 << 62) - 1


def compose(t: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return (t.astype(np.int64) << ROW_BITS) | rows.astype(np.int64)


class KeyIndex:
    """Rows ordered by a key; optional version flag per entry (first/final event of a row).

    ``visible(pos, now)`` decides which entries exist at the server clock; pages are keyset
    slices, so a cursor (the last key served) stays valid while the clock moves.
    """

    def __init__(
        self,
        keys: np.ndarray,
        final: np.ndarray | None,
        visible: Callable[[np.ndarray, np.ndarray, int], np.ndarray],
    ) -> None:
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.rows = (self.keys & ROW_MASK).astype(np.int64)
        self.final = None if final is None else final[order]
        self._visible = visible

    def mask(self, lo: int, hi: int, now: int) -> np.ndarray:
        fin = None if self.final is None else self.final[lo:hi]
        return self._visible(self.keys[lo:hi], fin, now) if hi > lo else np.zeros(0, bool)

    def bounds(self, lo_key: int, hi_key: int) -> tuple[int, int]:
        """Positions of keys in [lo_key, hi_key)."""
        return (
            int(np.searchsorted(self.keys, lo_key, "left")),
            int(np.searchsorted(self.keys, hi_key, "left")),
        )

    def count(self, lo_key: int, hi_key: int, now: int) -> int:
        lo, hi = self.bounds(lo_key, hi_key)
        return int(self.mask(lo, hi, now).sum())

    def take(
        self, start: int, stop: int, n: int, now: int, descending: bool = False
    ) -> tuple[np.ndarray, bool]:
        """Up to ``n`` visible positions from ``start`` towards ``stop``, more?."""
        out: list[np.ndarray] = []
        got = 0
        chunk = max(64, 2 * n)
        if not descending:
            pos = start
            while pos < stop and got <= n:
                end = min(stop, pos + chunk)
                hits = np.flatnonzero(self.mask(pos, end, now)) + pos
                out.append(hits)
                got += len(hits)
                pos = end
                chunk *= 2
        else:
            pos = start  # exclusive upper position; walk down to stop
            while pos > stop and got <= n:
                beg = max(stop, pos - chunk)
                hits = (np.flatnonzero(self.mask(beg, pos, now)) + beg)[::-1]
                out.append(hits)
                got += len(hits)
                pos = beg
                chunk *= 2
        allpos = np.concatenate(out) if out else np.zeros(0, np.int64)
        return allpos[:n], len(allpos) > n


def encode_token(obj: Mapping[str, Any]) -> str:
    return (
        base64.urlsafe_b64encode(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))
        .decode()
        .rstrip("=")
    )


def decode_token(token: str) -> dict[str, Any]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as exc:
        raise BadRequest("invalid pagination token") from exc
    if not isinstance(data, dict):
        raise BadRequest("invalid pagination token")
    return data


class BadRequest(Exception):
    """A malformed client request (400 in the vendor's shape)."""


class NotFound(Exception):
    """An unknown object (404 in the vendor's shape)."""


# --------------------------------------------------------------------------------------------
# threads of messages (sms, messenger)


def build_thread(r: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """The messages of a thread contact as (time, role, kind), in send order.

    Fixed events first (opening, first company reply, first agent reply), then fill-in
    messages up to ``n_messages``, then the closing text at ``ended_at``. A closing text is the
    system ending the thread and is not a reply (abandoned threads have one too).
    """
    s = int(r["started_at"])
    inbound = r["direction"] == "inbound"
    fr, far, end = r["first_response_at"], r["first_agent_response_at"], r["ended_at"]
    msgs: list[tuple[int, int, int]] = []
    if inbound:
        msgs.append((s, ROLE_CUSTOMER, MSG_OPEN))
        if fr is not None:
            msgs.append(
                (int(fr), ROLE_AGENT if far is not None and far == fr else ROLE_BOT, MSG_REPLY)
            )
        if far is not None and far != fr:
            msgs.append((int(far), ROLE_AGENT, MSG_REPLY))
    else:
        opener = (
            ROLE_AGENT if (far is not None and far == s) or r["handled_by"] == "agent" else ROLE_BOT
        )
        if fr is not None and fr != s:
            opener = ROLE_BOT if r["handled_by"] == "bot" else opener
        msgs.append((s, opener, MSG_OPEN))
        if fr is not None and fr != s:
            msgs.append((int(fr), ROLE_AGENT if far == fr else ROLE_BOT, MSG_REPLY))
        if far is not None and far not in (fr, s):
            msgs.append((int(far), ROLE_AGENT, MSG_REPLY))
    company = ROLE_AGENT if far is not None else (ROLE_BOT if fr is not None else None)
    if not inbound and company is None:
        company = msgs[0][1]
    n = int(r["n_messages"] or 0)
    # an open thread shows only what has happened: no fill-in messages after the last event
    fill = n - len(msgs) - 1 if end is not None else 0
    t0 = max(m[0] for m in msgs)
    if fill > 0:
        t1 = int(end)
        step = (t1 - t0) / (fill + 1)
        last_role = msgs[-1][1]
        for k in range(fill):
            role = ROLE_CUSTOMER if (last_role != ROLE_CUSTOMER or company is None) else company
            msgs.append((t0 + int(step * (k + 1)), role, MSG_FOLLOW))
            last_role = role
    if end is not None:
        closer = (
            company
            if company is not None
            else (ROLE_BOT if r["handled_by"] == "bot" else ROLE_AGENT)
        )
        msgs.append((int(end), closer, MSG_CLOSE_OK if r["resolved"] else MSG_CLOSE))
    return msgs


def sms_senders(table: pa.Table) -> np.ndarray:
    """Index into ``SMS_POOL`` of the company number each SMS thread uses.

    Twilio has no thread id; like a sticky-sender number pool, a thread keeps one company
    number and two threads of one customer number that overlap in time never share it, so
    (customer number, company number) + time order recovers every thread exactly.
    """
    phones = table.column("phone_raw").to_pylist()
    starts = table.column("started_at").to_pylist()
    ends = table.column("ended_at").to_pylist()
    busy: dict[str, list[int | None]] = {}  # customer number -> end of the last thread per sender
    out = np.zeros(len(phones), np.int16)
    for i in sorted(range(len(phones)), key=lambda j: (starts[j], j)):
        digits = "".join(ch for ch in phones[i] or "" if ch.isdigit())[-11:]
        lanes = busy.setdefault(digits, [])
        free = [k for k, until in enumerate(lanes) if until is not None and until < starts[i]]
        k = free[0] if free else len(lanes)
        if not free:
            lanes.append(None)
        lanes[k] = ends[i]
        out[i] = k
    return out


def sms_pool_number(k: int) -> str:
    return f"+55114004{k:04d}"


def message_text(channel: str, r: Mapping[str, Any], i: int, role: int, kind: int) -> str:
    """Message body from templates; the opening quotes the topic code and the protocol."""
    if kind == MSG_CLOSE_OK:
        return CLOSE_RESOLVED
    if kind == MSG_CLOSE:
        return CLOSE_UNRESOLVED
    if kind == MSG_OPEN:
        topic = r["source_topic"] or "OI"
        if role == ROLE_CUSTOMER:
            text = f"{topic} Olá, preciso de ajuda com {topic.lower()}."
        else:
            text = f"{topic} Olá! Aqui é a {PAGE_NAME}, entramos em contato sobre {topic.lower()}."
        if r["quoted_protocol"]:
            text += f" Protocolo #{r['quoted_protocol']}"
        return text
    if role == ROLE_CUSTOMER:
        return ("Obrigado, aguardo.", "Pode verificar por favor?", "Certo, entendi.")[i % 3]
    if role == ROLE_BOT:
        return ("Sou o assistente virtual. Como posso ajudar?", "Um momento, estou verificando.")[
            i % 2
        ]
    return ("Olá, sou do time de atendimento. Vou verificar.", "Pronto, já verifiquei.")[i % 2]


# --------------------------------------------------------------------------------------------
# one source's data: rows, key indexes, data-level faults


@dataclass
class Page:
    rows: list[dict[str, Any]]  # rendered-ready row dicts (already at the right version)
    keys: list[int]
    has_more: bool


class SourceData:
    """A source's rows (a pyarrow table) and what is derived from them once."""

    def __init__(self, name: str, table: pa.Table, id_column: str, ord_column: str) -> None:
        self.name = name
        self.table = table
        self.n = table.num_rows
        self.ids = table.column(id_column)
        self.ord = table.column(ord_column).to_numpy().astype(np.int64)
        self._id_to_row: dict[str, int] | None = None
        self.malformed = np.zeros(self.n, np.int8)  # index into MALFORMED_KINDS[name] + 1
        self.drift = np.zeros(self.n, bool)

    def row_of(self, record_id: str) -> int | None:
        if self._id_to_row is None:
            self._id_to_row = {v: i for i, v in enumerate(self.ids.to_pylist())}
        return self._id_to_row.get(record_id)

    def rows(self, idx: np.ndarray | list[int]) -> list[dict[str, Any]]:
        return self.table.take(pa.array(np.asarray(idx, np.int64))).to_pylist()

    def apply_faults(self, seed: int, faults: Faults) -> None:
        base = self.ord.astype(np.uint64)
        kinds = MALFORMED_KINDS[self.name]
        u = mix64_np(base ^ np.uint64(salt(seed, "malformed", self.name))) >> np.uint64(11)
        hit = u.astype(np.float64) / float(1 << 53) < faults.malformed
        pick = mix64_np(base ^ np.uint64(salt(seed, "malformed-kind", self.name))) % np.uint64(
            len(kinds)
        )
        self.malformed = np.where(hit, pick.astype(np.int8) + 1, 0).astype(np.int8)
        d = mix64_np(base ^ np.uint64(salt(seed, "schema_drift", self.name))) >> np.uint64(11)
        self.drift = d.astype(np.float64) / float(1 << 53) < faults.schema_drift

    def malformed_kind_at(self, row: int) -> str | None:
        code = int(self.malformed[row])
        return MALFORMED_KINDS[self.name][code - 1] if code else None


def _col(table: pa.Table, name: str, fill: int) -> np.ndarray:
    return table.column(name).fill_null(fill).to_numpy().astype(np.int64)


def first_version(r: dict[str, Any]) -> dict[str, Any]:
    """A contact as it stood at ``first_version_at``: later events have not happened yet."""
    fva = r["first_version_at"]
    v = dict(r)
    for k in ("first_response_at", "first_agent_response_at", "ended_at"):
        if v[k] is not None and v[k] > fva:
            v[k] = None
    if v["ended_at"] is None:
        v["handle_seconds"] = None
        v["resolved"] = False
        v["abandoned"] = False
    if v["first_agent_response_at"] is None:
        v["queue_seconds"] = None
    v["updated_at"] = fva
    v["_first"] = True
    return v


# --------------------------------------------------------------------------------------------
# server state


class DemoState:
    """Everything the app serves: world, faults, clock, counters, indexes."""

    def __init__(
        self,
        world: World,
        faults: Faults | Mapping[str, Any] | str | None = None,
        credentials: Credentials | None = None,
        clock: int | None = None,
        search_result_cap: int = SEARCH_RESULT_CAP,
    ) -> None:
        if search_result_cap < 1:
            raise ValueError("search_result_cap must be at least 1")
        self.world = world
        self.creds = credentials or Credentials()
        self.now = int(world.end if clock is None else clock)
        # HubSpot's CRM search returns at most this many results per query (10,000)
        self.search_result_cap = int(search_result_cap)
        self.lock = threading.Lock()
        self.stats: dict[str, dict[str, Any]] = {}
        self.rng = random.Random(salt(world.seed, "request-faults"))
        self.seq = 0
        self._count_cache: dict[tuple, int] = {}
        contacts = world.contacts
        self.data: dict[str, SourceData] = {}
        for ch in ("voice", "sms", "email", "chat", "messenger"):
            mask = pa.compute.equal(contacts.column("channel"), ch)
            self.data[ch] = SourceData(ch, contacts.filter(mask), "source_id", "contact_idx")
        self.data["surveys"] = SourceData("surveys", world.surveys, "source_id", "survey_idx")
        crm = world.customers.filter(pa.compute.is_valid(world.customers.column("crm_id")))
        self.data["crm"] = SourceData("crm", crm, "crm_id", "customer_idx")
        self.customer_names = world.customers.column("name")
        self.customer_emails = world.customers.column("email")
        self.customer_phones = world.customers.column("phone_e164")
        self.contact_refs = pa.compute.binary_join_element_wise(
            contacts.column("channel"), contacts.column("source_id"), ":"
        )
        self._build_indexes()
        self.faults = Faults()
        self.set_faults(faults)

    # -- indexes ------------------------------------------------------------------------------

    def _contact_event_index(self, d: SourceData) -> KeyIndex:
        fva = _col(d.table, "first_version_at", 0)
        upd = np.maximum(_col(d.table, "updated_at", 0), fva)
        rows = np.arange(d.n, dtype=np.int64)
        two = upd > fva
        keys = np.concatenate([compose(fva[two], rows[two]), compose(upd, rows)])
        final = np.concatenate([np.zeros(int(two.sum()), bool), np.ones(d.n, bool)])

        def visible(keys: np.ndarray, fin: np.ndarray | None, now: int) -> np.ndarray:
            t = keys >> ROW_BITS
            r = keys & ROW_MASK
            return (t <= now) & (fin | (upd[r] > now))

        return KeyIndex(keys, final, visible)

    def _build_indexes(self) -> None:
        self.idx: dict[str, KeyIndex] = {}
        self.fva: dict[str, np.ndarray] = {}
        self.upd: dict[str, np.ndarray] = {}
        for ch in ("voice", "sms", "email", "chat", "messenger"):
            d = self.data[ch]
            self.fva[ch] = _col(d.table, "first_version_at", 0)
            self.upd[ch] = np.maximum(_col(d.table, "updated_at", 0), self.fva[ch])
        # voice: by initiation time, visible once first delivered
        d = self.data["voice"]
        fva_v = self.fva["voice"]
        self.idx["voice"] = KeyIndex(
            compose(_col(d.table, "started_at", 0), np.arange(d.n)),
            None,
            lambda k, f, now: fva_v[k & ROW_MASK] <= now,
        )
        for ch in ("email", "chat", "messenger"):
            self.idx[ch] = self._contact_event_index(self.data[ch])
        self._build_sms()
        self._build_messenger_threads()
        # surveys: first version at created_at (no comment yet), final at updated_at
        d = self.data["surveys"]
        cre = _col(d.table, "created_at", 0)
        supd = np.maximum(_col(d.table, "updated_at", 0), cre)
        self.upd["surveys"] = supd
        rows = np.arange(d.n, dtype=np.int64)
        two = supd > cre
        keys = np.concatenate([compose(cre[two], rows[two]), compose(supd, rows)])
        final = np.concatenate([np.zeros(int(two.sum()), bool), np.ones(d.n, bool)])
        self.idx["surveys"] = KeyIndex(keys, final, self._two_version_visible(supd))
        # crm: full scan by numeric id; search on lastmodifieddate (two versions)
        d = self.data["crm"]
        ccre = _col(d.table, "crm_created_at", 0)
        cupd = np.maximum(_col(d.table, "crm_updated_at", 0), ccre)
        self.fva["crm"], self.upd["crm"] = ccre, cupd
        ids = np.array(
            [int(x) if x.isdigit() else salt(x) >> 40 for x in d.ids.to_pylist()], np.int64
        )
        rows = np.arange(d.n, dtype=np.int64)
        self.idx["crm"] = KeyIndex(
            compose(ids, rows), None, lambda k, f, now: ccre[k & ROW_MASK] <= now
        )
        two = cupd > ccre
        keys = np.concatenate([compose(ccre[two], rows[two]), compose(cupd, rows)])
        final = np.concatenate([np.zeros(int(two.sum()), bool), np.ones(d.n, bool)])
        self.idx["crm_search"] = KeyIndex(keys, final, self._two_version_visible(cupd))

    @staticmethod
    def _two_version_visible(
        upd: np.ndarray,
    ) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
        def visible(keys: np.ndarray, fin: np.ndarray | None, now: int) -> np.ndarray:
            return ((keys >> ROW_BITS) <= now) & (fin | (upd[keys & ROW_MASK] > now))

        return visible

    def _threads(
        self, ch: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        d = self.data[ch]
        cols = ("started_at", "direction", "handled_by", "first_response_at")
        cols += ("first_agent_response_at", "ended_at", "n_messages", "resolved", "updated_at")
        t_all: list[int] = []
        role_all: list[int] = []
        kind_all: list[int] = []
        start = np.zeros(d.n + 1, np.int64)
        for i, r in enumerate(d.table.select(list(cols)).to_pylist()):
            for t, role, kind in build_thread(r):
                t_all.append(t)
                role_all.append(role)
                kind_all.append(kind)
            start[i + 1] = len(t_all)
        counts = np.diff(start)
        row = np.repeat(np.arange(d.n, dtype=np.int64), counts)
        return (
            np.array(t_all, np.int64),
            np.array(role_all, np.int8),
            np.array(kind_all, np.int8),
            row,
            start,
        )

    def _build_sms(self) -> None:
        t, role, kind, row, start = self._threads("sms")
        self.sms_msg = {"t": t, "role": role, "kind": kind, "row": row, "start": start}
        self.sms_sender = sms_senders(self.data["sms"].table)
        fva = self.fva["sms"]
        n = len(t)
        # key: (date_sent, message number); message rows index the flattened message arrays
        keys = compose(t, np.arange(n))

        def visible(k: np.ndarray, f: np.ndarray | None, now: int) -> np.ndarray:
            m = k & ROW_MASK
            return ((k >> ROW_BITS) <= now) & (fva[row[m]] <= now)

        self.idx["sms"] = KeyIndex(keys, None, visible)

    def _build_messenger_threads(self) -> None:
        t, role, kind, row, start = self._threads("messenger")
        self.ms_msg = {"t": t, "role": role, "kind": kind, "row": row, "start": start}

    # -- faults and clock -------------------------------------------------------------------

    def set_faults(self, faults: Faults | Mapping[str, Any] | str | None) -> Faults:
        new = Faults.parse(faults)
        with self.lock:
            for d in self.data.values():
                d.apply_faults(self.world.seed, new)
            self.faults = new
        return new

    def set_clock(self, now: int) -> None:
        with self.lock:
            self.now = int(now)
            self._count_cache.clear()

    def malformed_kind(self, source: str, record_id: str) -> str | None:
        d = self.data[source]
        row = d.row_of(record_id)
        return None if row is None else d.malformed_kind_at(row)

    def malformed_table(self, source: str) -> pa.Table:
        """(record_id, malformed_kind) for every record of a source with a defect."""
        d = self.data[source]
        rows = np.flatnonzero(d.malformed)
        kinds = MALFORMED_KINDS[source]
        return pa.table(
            {
                "record_id": d.ids.take(pa.array(rows)),
                "malformed_kind": pa.array(
                    [kinds[int(d.malformed[r]) - 1] for r in rows], pa.string()
                ),
            }
        )

    def contact_malformed(self) -> list[str | None]:
        """The defect of every contact record, aligned with ``world.contacts`` rows."""
        out: list[str | None] = [None] * self.world.contacts.num_rows
        for ch in ("voice", "sms", "email", "chat", "messenger"):
            d = self.data[ch]
            for r in np.flatnonzero(d.malformed).tolist():
                out[int(d.ord[r])] = MALFORMED_KINDS[ch][int(d.malformed[r]) - 1]
        return out

    def overlap(self, source: str, after_key: int) -> bool:
        rate = self.faults.page_overlap
        return rate > 0 and unit(self.world.seed, f"page_overlap:{source}", after_key) < rate

    # -- stats and request faults -------------------------------------------------------------

    def count(self, source: str, key: str, n: int = 1) -> None:
        s = self.stats.setdefault(source, {"requests": 0, "records": 0, "status": {}, "faults": {}})
        if key.startswith("fault:"):
            s["faults"][key[6:]] = s["faults"].get(key[6:], 0) + n
        elif key.startswith("status:"):
            s["status"][key[7:]] = s["status"].get(key[7:], 0) + n
        else:
            s[key] = s.get(key, 0) + n

    def draw_request_faults(self, source: str) -> tuple[int, str | None, bool, random.Random]:
        """Seeded draws for one vendor request: (sequence number, error fault, slow, sub-rng)."""
        with self.lock:
            self.seq += 1
            seq = self.seq
            u_rate, u_err, u_slow, u_sub = (self.rng.random() for _ in range(4))
            self.count(source, "requests")
        fault = None
        if u_rate < self.faults.rate_limit:
            fault = "rate_limit"
        elif u_err < self.faults.server_error:
            fault = "server_error"
        slow = u_slow < self.faults.slow
        return seq, fault, slow, random.Random(int(u_sub * 2**53))

    def cached_count(self, name: str, lo: int, hi: int, extra: tuple = ()) -> int:
        key = (name, lo, hi, self.now, extra)
        hit = self._count_cache.get(key)
        if hit is None:
            hit = self.idx[name].count(lo, hi, self.now)
            if len(self._count_cache) > 256:
                self._count_cache.clear()
            self._count_cache[key] = hit
        return hit


# --------------------------------------------------------------------------------------------
# responses


def jresp(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def error_response(
    source: str, kind: str, seq: int, rng: random.Random, state: DemoState, msg: str = ""
) -> Response:
    """The vendor's error shape for a kind: auth_missing, auth_wrong, rate_limit, server_error,
    bad_request, not_found."""
    ra = str(state.faults.retry_after_seconds)
    rid = hex_id(16, state.world.seed, "request", seq)
    if source == "voice":
        table = {
            "auth_missing": (
                401,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            "auth_wrong": (
                403,
                "AccessDeniedException",
                "You do not have sufficient access to perform this action.",
            ),
            "rate_limit": (429, "TooManyRequestsException", "Rate exceeded"),
            "server_error": (
                500,
                "InternalServiceException",
                "Request processing failed because of an error or failure with the service.",
            ),
            "bad_request": (400, "InvalidRequestException", msg or "The request is not valid."),
            "not_found": (
                404,
                "ResourceNotFoundException",
                msg or "The specified resource was not found.",
            ),
        }
        status, typ, message = table[kind]
        return jresp({"__type": typ, "Message": message}, status, {"x-amzn-RequestId": rid})
    if source == "sms":
        if kind in ("auth_missing", "auth_wrong"):
            body = {
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            }
            return jresp(body, 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if kind == "rate_limit":
            body = {
                "code": 20429,
                "message": "Too Many Requests",
                "more_info": "https://www.twilio.com/docs/errors/20429",
                "status": 429,
            }
            return jresp(body, 429, {"Retry-After": ra})
        if kind == "server_error":
            status = rng.choice((500, 503))
            body = {
                "code": 20500,
                "message": "Internal Server Error",
                "more_info": "https://www.twilio.com/docs/errors/20500",
                "status": status,
            }
            return jresp(body, status, {"Twilio-Request-Id": "RQ" + rid})
        status = 400 if kind == "bad_request" else 404
        body = {
            "code": 20001 if status == 400 else 20404,
            "message": msg or "The requested resource was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404",
            "status": status,
        }
        return jresp(body, status)
    if source == "email":
        if kind in ("auth_missing", "auth_wrong"):
            return jresp({"error": "Couldn't authenticate you"}, 401)
        if kind == "rate_limit":
            return jresp(
                {
                    "error": "APIRateLimitExceeded",
                    "description": "Number of allowed incremental export API requests per minute"
                    " exceeded",
                },
                429,
                {"Retry-After": ra},
            )
        if kind == "server_error":
            status = rng.choice((500, 503))
            return jresp(
                {
                    "error": "InternalError" if status == 500 else "ServiceUnavailable",
                    "description": "Please try again later",
                },
                status,
                {"X-Request-Id": rid},
            )
        if kind == "bad_request":
            return jresp({"error": "InvalidValue", "description": msg}, 400)
        return jresp({"error": "RecordNotFound", "description": "Not found"}, 404)
    if source == "chat":
        codes = {
            "auth_missing": (401, "unauthorized", "Access Token Invalid"),
            "auth_wrong": (401, "unauthorized", "Access Token Invalid"),
            "rate_limit": (
                429,
                "rate_limit_exceeded",
                "You have exceeded the rate limit. Please try again later.",
            ),
            "server_error": (rng.choice((500, 503)), "server_error", "Server Error"),
            "bad_request": (400, "parameter_invalid", msg or "Invalid parameter"),
            "not_found": (404, "not_found", msg or "Resource Not Found"),
        }
        status, code, message = codes[kind]
        body = {
            "type": "error.list",
            "request_id": rid,
            "errors": [{"code": code, "message": message}],
        }
        headers = {}
        if kind == "rate_limit":
            reset = int(time.time()) + state.faults.retry_after_seconds
            headers = {
                "X-RateLimit-Limit": "10000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
        return jresp(body, status, headers)
    if source == "messenger":
        fb = "A" + hex_id(10, state.world.seed, "fbtrace", seq)
        if kind in ("auth_missing", "auth_wrong"):
            msg = (
                "Invalid OAuth access token - Cannot parse access token"
                if kind == "auth_wrong"
                else "An active access token must be used to query information about the current"
                " user."
            )
            return jresp(
                {
                    "error": {
                        "message": msg,
                        "type": "OAuthException",
                        "code": 190,
                        "fbtrace_id": fb,
                    }
                },
                401,
            )
        if kind == "rate_limit":
            body = {
                "error": {
                    "message": "(#4) Application request limit reached",
                    "type": "OAuthException",
                    "is_transient": True,
                    "code": 4,
                    "fbtrace_id": fb,
                }
            }
            usage = orjson.dumps(
                {"call_count": 100, "total_cputime": 35, "total_time": 40}
            ).decode()
            return jresp(body, 403, {"X-App-Usage": usage})
        if kind == "server_error":
            code = rng.choice((1, 2))
            message = (
                "An unknown error occurred"
                if code == 1
                else "An unexpected error has occurred. Please retry your request later."
            )
            return jresp(
                {
                    "error": {
                        "message": message,
                        "type": "OAuthException",
                        "is_transient": True,
                        "code": code,
                        "fbtrace_id": fb,
                    }
                },
                500,
            )
        code = 100
        return jresp(
            {
                "error": {
                    "message": msg or "Unsupported get request.",
                    "type": "GraphMethodException",
                    "code": code,
                    "error_subcode": 33,
                    "fbtrace_id": fb,
                }
            },
            400,
        )
    if source == "surveys":
        if kind in ("auth_missing", "auth_wrong"):
            return jresp({"status": 401, "message": "Unauthorized"}, 401)
        if kind == "rate_limit":
            return jresp({"status": 429, "message": "Too Many Requests"}, 429, {"Retry-After": ra})
        if kind == "server_error":
            status = rng.choice((500, 503))
            return jresp(
                {
                    "status": status,
                    "message": "Internal Server Error" if status == 500 else "Service Unavailable",
                },
                status,
            )
        status = 400 if kind == "bad_request" else 404
        return jresp({"status": status, "message": msg or "Not Found"}, status)
    # crm
    tail = hex_id(12, state.world.seed, "cid", seq)
    cid = f"{rid[:8]}-{rid[8:12]}-4{rid[13:16]}-8{rid[1:4]}-{tail}"
    if kind in ("auth_missing", "auth_wrong"):
        body = {
            "status": "error",
            "message": "Authentication credentials not found. This API supports OAuth 2.0"
            " authentication and you can find more details at"
            " https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "correlationId": cid,
            "category": "INVALID_AUTHENTICATION",
        }
        return jresp(body, 401)
    if kind == "rate_limit":
        body = {
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": cid,
            "policyName": "SECONDLY",
        }
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "1000",
            "X-HubSpot-RateLimit-Secondly": "10",
            "X-HubSpot-RateLimit-Secondly-Remaining": "0",
            "Retry-After": ra,
        }
        return jresp(body, 429, headers)
    if kind == "server_error":
        status = rng.choice((500, 502))
        return jresp(
            {
                "status": "error",
                "message": "internal error",
                "correlationId": cid,
                "category": "INTERNAL_ERROR",
            },
            status,
        )
    status = 400 if kind == "bad_request" else 404
    return jresp(
        {
            "status": "error",
            "message": msg or "Not found",
            "correlationId": cid,
            "category": "VALIDATION_ERROR" if status == 400 else "OBJECT_NOT_FOUND",
        },
        status,
    )


# --------------------------------------------------------------------------------------------
# auth


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, pwd = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    return user, pwd


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _eq(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


def check_auth(source: str, request: Request, creds: Credentials) -> str | None:
    """None when authorized, else ``auth_missing`` or ``auth_wrong``."""
    if source == "voice":
        tok = _bearer(request)
        if tok is None:
            return "auth_missing"
        return None if _eq(tok, creds.voice_token.get_secret_value()) else "auth_wrong"
    if source == "sms":
        b = _basic(request)
        if b is None:
            return "auth_missing"
        ok = _eq(b[0], creds.sms_account_sid) and _eq(b[1], creds.sms_auth_token.get_secret_value())
        return None if ok else "auth_wrong"
    if source == "email":
        token = creds.email_api_token.get_secret_value()
        tok = _bearer(request)
        if tok is not None:
            return None if _eq(tok, token) else "auth_wrong"
        b = _basic(request)
        if b is None:
            return "auth_missing"
        return None if _eq(b[0], f"{creds.email_user}/token") and _eq(b[1], token) else "auth_wrong"
    if source == "chat":
        tok = _bearer(request)
        if tok is None:
            return "auth_missing"
        return None if _eq(tok, creds.chat_token.get_secret_value()) else "auth_wrong"
    if source == "messenger":
        tok = request.query_params.get("access_token") or _bearer(request)
        if not tok:
            return "auth_missing"
        return None if _eq(tok, creds.messenger_access_token.get_secret_value()) else "auth_wrong"
    if source == "surveys":
        b = _basic(request)
        if b is None:
            return "auth_missing"
        return None if _eq(b[0], creds.surveys_api_key.get_secret_value()) else "auth_wrong"
    tok = _bearer(request)
    if tok is None:
        return "auth_missing"
    return None if _eq(tok, creds.crm_token.get_secret_value()) else "auth_wrong"


# --------------------------------------------------------------------------------------------
# rendering helpers


@lru_cache(maxsize=64)
def connect_agent(aid: int, name: str) -> tuple[str, str]:
    arn = f"{CONNECT_INSTANCE_ARN}/agent/{hex_id(8, 'agent', aid)}-0000-4000-8000-{aid:012d}"
    return arn, name.lower().replace(" ", ".").translate(str.maketrans("áéíóúãõç", "aeiouaoc"))


def agent_of(seed: int, key: int) -> tuple[int, str]:
    i = mix64(salt(seed, "agent") ^ key) % len(AGENT_NAMES)
    return i, AGENT_NAMES[i]


def _versioned(
    state: DemoState, source: str, rows: list[dict[str, Any]], finals: list[bool]
) -> list[dict[str, Any]]:
    return [r if fin else first_version(r) for r, fin in zip(rows, finals, strict=True)]


def _drift(rec: dict[str, Any], ord_: int, seed: int) -> None:
    """Schema drift: the vendor started sending fields nobody knows yet."""
    rec["x_channel_experiment"] = f"exp-{mix64(salt(seed, 'drift') ^ ord_) % 97:02d}"
    rec["x_priority_score"] = round((mix64(salt(seed, "drift2") ^ ord_) % 1000) / 10, 1)


def _names(state: DemoState, rows: list[dict[str, Any]]) -> list[str]:
    idx = pa.array([r["customer_idx"] for r in rows], pa.int64())
    return state.customer_names.take(idx).to_pylist()


# --------------------------------------------------------------------------------------------
# voice: Amazon Connect contact records


def render_voice(state: DemoState, r: dict[str, Any], name: str) -> dict[str, Any]:
    seed = state.world.seed
    cid = r["source_id"]
    inbound = r["direction"] == "inbound"
    first = r.get("_first", False)
    late_acw = first and r["ended_at"] is not None  # disposition is set in after-contact work
    attrs: dict[str, str] = {}
    if r["source_topic"] is not None and not late_acw:
        attrs["disposition"] = r["source_topic"]
    if r["quoted_protocol"] is not None:
        attrs["protocol"] = r["quoted_protocol"]
    if r["crm_id"] is not None:
        attrs["crm_id"] = r["crm_id"]
    if r["ended_at"] is not None and not late_acw:
        attrs["resolved"] = "true" if r["resolved"] else "false"
    far, q, end = r["first_agent_response_at"], r["queue_seconds"], r["ended_at"]
    queue = None
    if q is not None and (far is not None or end is not None):
        enq = (far if far is not None else end) - q
        queue = {
            "ARN": f"{CONNECT_INSTANCE_ARN}/queue/0c1e2d3f-0000-4000-8000-000000000001",
            "Name": "Atendimento",
            "EnqueueTimestamp": enq,
            "DequeueTimestamp": enq + q,
            "Duration": q,
        }
    agent = None
    if far is not None:
        arn, username = connect_agent(*agent_of(seed, r["contact_idx"]))
        agent = {
            "ARN": arn,
            "Username": username,
            "ConnectedToAgentTimestamp": far,
            "AgentInteractionDuration": r["handle_seconds"],
            "AfterContactWorkEndTimestamp": None if late_acw else end,
        }
    rec: dict[str, Any] = {
        "AWSAccountId": AWS_ACCOUNT,
        "InstanceARN": CONNECT_INSTANCE_ARN,
        "ContactId": cid,
        "InitialContactId": None,
        "PreviousContactId": None,
        "Channel": "VOICE",
        "InitiationMethod": "INBOUND" if inbound else "OUTBOUND",
        "InitiationTimestamp": r["started_at"],
        "ConnectedToSystemTimestamp": r["started_at"],
        "DisconnectTimestamp": end,
        "DisconnectReason": None
        if end is None
        else ("CUSTOMER_DISCONNECT" if inbound else "AGENT_DISCONNECT"),
        "LastUpdateTimestamp": r["updated_at"],
        "CustomerEndpoint": None
        if r["phone_raw"] is None
        else {"Type": "TELEPHONE_NUMBER", "Address": r["phone_raw"]},
        "SystemEndpoint": {"Type": "TELEPHONE_NUMBER", "Address": COMPANY_PHONE},
        "Queue": queue,
        "Agent": agent,
        "Attributes": attrs,
        "Recording": None,
    }
    return rec


def malform_voice(rec: dict[str, Any], kind: str) -> None:
    if kind == "missing_field":
        del rec["InitiationTimestamp"]
    elif kind == "bad_date":
        rec["InitiationTimestamp"] = "2026-13-45T25:61:00"
    elif kind == "bad_phone":
        rec["CustomerEndpoint"] = {"Type": "TELEPHONE_NUMBER", "Address": "+55 (11) 9ABC-??"}
    elif kind == "wrong_type":
        rec["Attributes"]["resolved"] = True  # a boolean where contact attributes are strings
    elif kind == "negative_duration":
        if rec["Agent"] is not None and rec["Agent"]["AgentInteractionDuration"] is not None:
            rec["Agent"]["AgentInteractionDuration"] = (
                -abs(rec["Agent"]["AgentInteractionDuration"]) - 1
            )
        elif rec["Queue"] is not None:
            rec["Queue"]["Duration"] = -abs(rec["Queue"]["Duration"]) - 1
        else:
            rec["Agent"] = {"ConnectedToAgentTimestamp": None, "AgentInteractionDuration": -1}


# --------------------------------------------------------------------------------------------
# sms: Twilio messages


def sms_sid(source_id: str, i: int) -> str:
    return source_id if i == 0 else "SM" + hex_id(32, source_id, i)


def render_sms(
    state: DemoState, r: dict[str, Any], m: int, i: int, t: int, role: int, kind: int
) -> dict[str, Any]:
    acc = state.creds.sms_account_sid
    sid = sms_sid(r["source_id"], i)
    customer = r["phone_raw"]
    company = sms_pool_number(int(state.sms_sender[r["_row"]]))
    if role == ROLE_CUSTOMER:
        direction, frm, to, status, svc = "inbound", customer, company, "received", None
    else:
        direction = "outbound-api" if kind == MSG_OPEN else "outbound-reply"
        frm, to, status = company, customer, "delivered"
        svc = MG_BOT if role == ROLE_BOT else MG_AGENTS
    body = message_text("sms", r, i, role, kind)
    segments = 1 + len(body) // 160
    price = f"-{0.0079 * segments:.5f}" if role != ROLE_CUSTOMER else "-0.00750"
    date = rfc2822(t)
    base = f"/sms/2010-04-01/Accounts/{acc}/Messages/{sid}"
    return {
        "account_sid": acc,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": date,
        "date_sent": date,
        "date_updated": date,
        "direction": direction,
        "error_code": None,
        "error_message": None,
        "from": frm,
        "messaging_service_sid": svc,
        "num_media": "0",
        "num_segments": str(segments),
        "price": price,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
        "to": to,
        "uri": f"{base}.json",
    }


def malform_sms(rec: dict[str, Any], kind: str) -> None:
    if kind == "missing_field":
        del rec["date_sent"]
    elif kind == "bad_date":
        rec["date_sent"] = "Fri, 31 Feb 2026 25:61:00 +0000"
    elif kind == "bad_phone":
        key = "from" if rec["direction"] == "inbound" else "to"
        rec[key] = "+55 11 9XXXX-0000"
    elif kind == "wrong_type":
        rec["price"] = float(rec["price"])  # a number where Twilio sends a string


# --------------------------------------------------------------------------------------------
# email: Zendesk tickets and ticket metric sets


def _zd_id(source_id: str) -> int | str:
    return int(source_id) if source_id.isdigit() else source_id


def _user_id(seed: int, ident: str | None) -> int | None:
    if ident is None:
        return None
    return 360_000_000_000 + mix64(salt(seed, "zd-user", ident.strip().lower())) % 10**9


def email_status(r: Mapping[str, Any]) -> str:
    if r["ended_at"] is not None:
        return "solved" if r["resolved"] else "pending"
    return "new" if r["first_response_at"] is None else "open"


def render_email(
    state: DemoState, r: dict[str, Any], name: str, base_url: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    seed = state.world.seed
    tid = _zd_id(r["source_id"])
    inbound = r["direction"] == "inbound"
    customer = {"address": r["email_raw"], "name": name}
    support = {"address": SUPPORT_EMAIL, "name": "Harmonia Suporte"}
    requester = _user_id(seed, r["email_raw"] or r["phone_raw"])
    aid, _ = agent_of(seed, r["contact_idx"])
    agent_user = 361_000_000_000 + aid
    assigned = r["first_agent_response_at"] is not None
    topic = r["source_topic"]
    custom = [
        {"id": ZD_FIELD_PROTOCOL, "value": r["quoted_protocol"]},
        {"id": ZD_FIELD_PHONE, "value": r["phone_raw"]},
        {"id": ZD_FIELD_TIME_SPENT, "value": r["handle_seconds"]},
    ]
    status = email_status(r)
    subject = f"[{topic}] Atendimento" if inbound else f"Contato da Harmonia: {topic}"
    ticket = {
        "url": f"{base_url}/api/v2/tickets/{tid}.json",
        "id": tid,
        "external_id": None,
        "via": {
            "channel": "email" if inbound else "web",
            "source": {
                "from": customer if inbound else support,
                "to": support if inbound else customer,
                "rel": None,
            },
        },
        "created_at": iso_z(r["started_at"]),
        "updated_at": iso_z(r["updated_at"]),
        "generated_timestamp": r["updated_at"],
        "type": "question",
        "subject": subject,
        "raw_subject": subject,
        "description": f"Protocolo #{r['quoted_protocol']}"
        if r["quoted_protocol"]
        else "Olá, preciso de ajuda.",
        "priority": "normal",
        "status": status,
        "recipient": SUPPORT_EMAIL if inbound else None,
        "requester_id": requester,
        "submitter_id": requester if inbound else agent_user,
        "assignee_id": agent_user if assigned else None,
        "organization_id": None,
        "group_id": 360_000_000_001,
        "tags": [topic] if topic else [],
        "custom_fields": custom,
        "fields": custom,
        "satisfaction_rating": None,
        "is_public": True,
        "has_incidents": False,
        "brand_id": 360_000_000_010,
    }
    s, fr, end = r["started_at"], r["first_response_at"], r["ended_at"]
    rts = None if fr is None else fr - s
    rtm = None if rts is None else -(-rts // 60)
    frm = None if end is None else -(-(end - s) // 60)
    metric = {
        "url": f"{base_url}/api/v2/ticket_metrics/{tid}.json",
        "id": 370_000_000_000 + (tid if isinstance(tid, int) else r["contact_idx"]),
        "ticket_id": tid,
        "created_at": iso_z(s),
        "updated_at": iso_z(r["updated_at"]),
        "group_stations": 1,
        "assignee_stations": 1 if assigned else 0,
        "reopens": 0,
        "replies": 0 if fr is None else 1 + (r["contact_idx"] % 3),
        "assignee_updated_at": iso_z(r["first_agent_response_at"]) if assigned else None,
        "requester_updated_at": iso_z(s),
        "status_updated_at": iso_z(end if end is not None else (fr if fr is not None else s)),
        "initially_assigned_at": iso_z(r["first_agent_response_at"]) if assigned else None,
        "assigned_at": iso_z(r["first_agent_response_at"]) if assigned else None,
        "solved_at": iso_z(end) if status == "solved" else None,
        "latest_comment_added_at": iso_z(end if end is not None else (fr if fr is not None else s)),
        "reply_time_in_minutes": {"calendar": rtm, "business": rtm},
        "reply_time_in_seconds": {"calendar": rts},
        "first_resolution_time_in_minutes": {"calendar": frm, "business": frm},
        "full_resolution_time_in_minutes": {"calendar": frm, "business": frm},
        "agent_wait_time_in_minutes": {"calendar": 0, "business": 0},
        "requester_wait_time_in_minutes": {"calendar": rtm, "business": rtm},
        "on_hold_time_in_minutes": {"calendar": 0, "business": 0},
    }
    return ticket, metric


def malform_email(rec: dict[str, Any], kind: str) -> None:
    if kind == "missing_field":
        del rec["created_at"]
    elif kind == "bad_date":
        rec["created_at"] = "2026-02-30T25:00:00Z"
    elif kind == "bad_phone":
        rec["custom_fields"][1] = {"id": ZD_FIELD_PHONE, "value": "ligar no fixo 9x9x"}
    elif kind == "wrong_type":
        rec["tags"] = ",".join(rec["tags"])  # a string where Zendesk sends a list
    elif kind == "negative_duration":
        spent = rec["custom_fields"][2]["value"] or 0
        rec["custom_fields"][2] = {"id": ZD_FIELD_TIME_SPENT, "value": -abs(spent) - 60}
    rec["fields"] = rec["custom_fields"]


# --------------------------------------------------------------------------------------------
# chat: Intercom conversations


def render_chat(state: DemoState, r: dict[str, Any], name: str) -> dict[str, Any]:
    seed = state.world.seed
    s, fr, far, end = (
        r["started_at"],
        r["first_response_at"],
        r["first_agent_response_at"],
        r["ended_at"],
    )
    inbound = r["direction"] == "inbound"
    bot = r["handled_by"] == "bot"
    bot_reply = fr if (fr is not None and fr != far) else None
    ai = bot or bot_reply is not None
    aid, aname = agent_of(seed, r["contact_idx"])
    admin_id = str(7_000_000 + aid)
    contact = {"type": "contact", "id": r["chat_contact_id"], "external_id": None}
    user = {"type": "user", "id": r["chat_contact_id"], "name": name, "email": r["email_raw"] or ""}
    admin = {
        "type": "admin",
        "id": admin_id,
        "name": aname,
        "email": f"agent{aid}@harmonia.example",
    }
    if bot:
        resolution = (
            None if end is None else ("assumed_resolution" if r["resolved"] else "abandoned")
        )
    else:
        resolution = "routed_to_team" if ai else None
    closed = end is not None
    stats = {
        "type": "conversation_statistics",
        "time_to_assignment": None if far is None else max(0, far - s - 5),
        "time_to_admin_reply": None if far is None else far - s,
        "time_to_first_close": None if end is None else end - s,
        "time_to_last_close": None if end is None else end - s,
        "median_time_to_reply": None if far is None else far - s,
        "first_contact_reply_at": s if inbound else None,
        "first_assignment_at": None if far is None else max(s, far - 5),
        "first_admin_reply_at": far,
        "first_close_at": end,
        "last_assignment_at": None if far is None else max(s, far - 5),
        "last_assignment_admin_reply_at": far,
        "last_contact_reply_at": s if inbound else None,
        "last_admin_reply_at": far,
        "last_close_at": end,
        "last_closed_by_id": None if end is None else (INTERCOM_BOT_ID if bot else admin_id),
        "count_reopens": 0,
        "count_assignments": 0 if far is None else 1,
        "count_conversation_parts": r["n_messages"],
        "handling_time": r["handle_seconds"],
    }
    topic = r["source_topic"]
    return {
        "type": "conversation",
        "id": r["source_id"],
        "title": None,
        "created_at": s,
        "updated_at": r["updated_at"],
        "waiting_since": None if (fr is not None or not inbound or closed) else s,
        "snoozed_until": None,
        "open": not closed,
        "state": "closed" if closed else "open",
        "read": True,
        "priority": "not_priority",
        "admin_assignee_id": None if far is None else int(admin_id),
        "team_assignee_id": None if far is None else "5000001",
        "source": {
            "type": "conversation",
            "id": str(400_000_000 + r["contact_idx"]),
            "delivered_as": "customer_initiated" if inbound else "operator_initiated",
            "subject": "",
            "body": f"<p>{topic or ''}</p>",
            "author": user if inbound else admin,
            "attachments": [],
            "url": None,
            "redacted": False,
        },
        "contacts": {"type": "contact.list", "contacts": [contact]},
        "teammates": {
            "type": "admin.list",
            "admins": [] if far is None else [{"type": "admin", "id": admin_id}],
        },
        "custom_attributes": {
            "intent": topic,
            "protocol": r["quoted_protocol"],
            "phone": r["phone_raw"],
            "email": r["email_raw"],
            "resolved": bool(r["resolved"]),
            "first_bot_reply_at": bot_reply,
        },
        "tags": {
            "type": "tag.list",
            "tags": []
            if topic is None
            else [
                {
                    "type": "tag",
                    "id": str(salt(topic) % 10**7),
                    "name": topic,
                    "applied_at": s,
                    "applied_by": {"type": "admin", "id": INTERCOM_BOT_ID},
                }
            ],
        },
        "first_contact_reply": None
        if not inbound
        else {"created_at": s, "type": "conversation", "url": None},
        "sla_applied": None,
        "statistics": stats,
        "conversation_rating": None,
        "ai_agent_participated": ai,
        "ai_agent": None
        if not ai
        else {
            "source_type": "workflow",
            "source_title": "Assistente Harmonia",
            "last_answer_type": "ai_answer" if bot_reply is not None else None,
            "resolution_state": resolution,
            "rating": None,
            "rating_remark": None,
            "content_sources": {
                "type": "content_source.list",
                "total_count": 0,
                "content_sources": [],
            },
        },
        "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
    }


def malform_chat(rec: dict[str, Any], kind: str) -> None:
    if kind == "missing_field":
        del rec["created_at"]
    elif kind == "bad_date":
        rec["created_at"] = "ontem às 14h"
    elif kind == "bad_phone":
        rec["custom_attributes"]["phone"] = "meu whats é o mesmo"
    elif kind == "wrong_type":
        rec["statistics"]["count_conversation_parts"] = "muitas"
    elif kind == "negative_duration":
        rec["statistics"]["handling_time"] = -abs(rec["statistics"]["handling_time"] or 0) - 30


# --------------------------------------------------------------------------------------------
# messenger: Meta Graph conversations and messages


def _ms_messages(state: DemoState, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = state.ms_msg
    a, b = int(m["start"][row]), int(m["start"][row + 1])
    return m["t"][a:b], m["role"][a:b], m["kind"][a:b]


def ms_message_id(conv_id: str, i: int) -> str:
    return (
        "m_"
        + base64.urlsafe_b64encode(
            hashlib.blake2b(f"{conv_id}|{i}".encode(), digest_size=30).digest()
        ).decode()
    )


def render_messenger_conv(state: DemoState, r: dict[str, Any], name: str) -> dict[str, Any]:
    page_id = state.creds.messenger_page_id
    t, _, _ = _ms_messages(state, r["_row"])
    n_vis = int((t <= r["updated_at"]).sum())
    person = {"name": name, "email": r["email_raw"], "id": r["messenger_psid"]}
    if person["email"] is None:
        del person["email"]
    topic = r["source_topic"]
    return {
        "id": r["source_id"],
        "updated_time": iso_meta(r["updated_at"]),
        "link": f"/{page_id}/inbox/{r['source_id'][2:]}/",
        "message_count": n_vis,
        "unread_count": 0,
        "can_reply": True,
        "participants": {
            "data": [person, {"name": PAGE_NAME, "email": f"{page_id}@facebook.com", "id": page_id}]
        },
        "labels": {
            "data": []
            if topic is None
            else [{"id": str(salt("label", topic) % 10**15), "name": topic}]
        },
    }


#: a Graph message's fields in the order the API writes them
MSG_FIELDS = ("id", "created_time", "from", "to", "message", "tags")
#: a message's tags by the role that wrote it
_MSG_TAGS = {
    ROLE_CUSTOMER: {"data": [{"name": "inbox"}, {"name": "read"}]},
    ROLE_BOT: {"data": [{"name": "inbox"}, {"name": "read"}, {"name": "source:api"}]},
    ROLE_AGENT: {"data": [{"name": "inbox"}, {"name": "read"}, {"name": "source:web"}]},
}


def render_messenger_msgs(
    state: DemoState,
    r: dict[str, Any],
    name: str,
    positions: list[int],
    times: list[int],
    roles: list[int],
    kinds: list[int],
) -> list[dict[str, Any]]:
    """The messages at ``positions`` of conversation ``r`` (their times, roles and kinds).
    The participants and tags are built once per call and shared by the messages (they are
    only serialized, never changed), which halves the cost of a message."""
    page_id = state.creds.messenger_page_id
    person = {"name": name, "email": r["email_raw"], "id": r["messenger_psid"]}
    if person["email"] is None:
        del person["email"]
    page = {"name": PAGE_NAME, "email": f"{page_id}@facebook.com", "id": page_id}
    from_customer = (person, {"data": [page]})
    from_page = (page, {"data": [person]})
    source_id = r["source_id"]
    out = []
    for i, t, role, kind in zip(positions, times, roles, kinds, strict=True):
        frm, to = from_customer if role == ROLE_CUSTOMER else from_page
        out.append(
            {
                "id": ms_message_id(source_id, i),
                "created_time": iso_meta(t),
                "from": frm,
                "to": to,
                "message": message_text("messenger", r, i, role, kind),
                "tags": _MSG_TAGS[role],
            }
        )
    return out


@dataclass(frozen=True)
class GraphField:
    """One entry of a Graph API ``fields`` list: ``name[.limit(N)][{subfields}]``."""

    name: str
    limit: int | None = None
    sub: str | None = None  # the subfields' text, as requested (``None``: no braces)


_GRAPH_FIELD = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*)((?:\.[a-z_]+\([^()]*\))*)(?:\{(.*)\})?((?:\.[a-z_]+\([^()]*\))*)"
)
_GRAPH_MODIFIER = re.compile(r"\.([a-z_]+)\(([^()]*)\)")


def parse_graph_fields(raw: str) -> list[GraphField]:
    """Parse Graph field expansion: ``id,messages.limit(5){id,message}`` (top level only;
    the subfields stay text). Modifiers may stand before or after the braces; ``limit`` is
    the only one the demo knows."""
    items: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(raw):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
            if depth < 0:
                raise BadRequest("Syntax error: unbalanced brackets in fields")
        elif ch == "," and depth == 0:
            items.append(raw[start:i])
            start = i + 1
    if depth != 0:
        raise BadRequest("Syntax error: unbalanced brackets in fields")
    items.append(raw[start:])
    out = []
    for item in (x.strip() for x in items):
        if not item:
            continue
        m = _GRAPH_FIELD.fullmatch(item)
        if m is None:
            raise BadRequest(f"Syntax error in fields near {item[:40]!r}")
        limit = None
        for mod, arg in _GRAPH_MODIFIER.findall((m.group(2) or "") + (m.group(4) or "")):
            if mod != "limit":
                raise BadRequest(f"(#100) Unknown field modifier {mod!r} on {m.group(1)}")
            limit = _int_param(arg, 25, 1, 100, f"{m.group(1)}.limit")
        out.append(GraphField(m.group(1), limit, m.group(3)))
    return out


def ms_message_edge(
    state: DemoState, r: dict[str, Any], name: str, offset: int, n: int, wanted: list[str] | None
) -> tuple[list[dict[str, Any]], int, int]:
    """A conversation's messages as served at version ``r`` (newest first), ``n`` from
    ``offset``: the rendered records, the next offset and how many there are in all. The
    ``/messages`` edge and the inline ``messages{...}`` expansion both serve from here, so
    the two give the same bytes."""
    row = r["_row"]
    t, role, kind = _ms_messages(state, row)
    vis = np.flatnonzero(t <= r["updated_at"])[::-1]  # newest first
    chunk = vis[offset : offset + n]
    data = render_messenger_msgs(
        state, r, name, chunk.tolist(), t[chunk].tolist(), role[chunk].tolist(),
        kind[chunk].tolist(),
    )  # fmt: skip
    if wanted is not None and tuple(dict.fromkeys(("id", *wanted))) != MSG_FIELDS:
        data = [_pick_fields(m, wanted) for m in data]
    return data, offset + len(chunk), len(vis)


def _pick_fields(rec: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    if wanted is None:
        return rec
    return {k: rec[k] for k in ("id", *wanted) if k in rec}


def malform_messenger(rec: dict[str, Any], kind: str) -> None:
    if kind == "missing_field":
        rec.pop("updated_time", None)
    elif kind == "bad_date":
        rec["updated_time"] = "2026-99-99T99:99:99+0000"
    elif kind == "wrong_type":
        rec["message_count"] = str(rec.get("message_count"))


# --------------------------------------------------------------------------------------------
# surveys: Delighted responses; crm: HubSpot contacts


def survey_people(
    state: DemoState, rows: list[dict[str, Any]]
) -> list[tuple[str | None, str | None, str | None, str]]:
    """(email, phone, name, contact ref) of each survey row's customer and contact, looked up
    for a page at once (one Arrow ``take`` per column, not four per record)."""
    customers = pa.array([r["customer_idx"] for r in rows], pa.int64())
    contacts = pa.array([r["contact_idx"] for r in rows], pa.int64())
    return list(
        zip(
            state.customer_emails.take(customers).to_pylist(),
            state.customer_phones.take(customers).to_pylist(),
            state.customer_names.take(customers).to_pylist(),
            state.contact_refs.take(contacts).to_pylist(),
            strict=True,
        )
    )


def render_survey(
    state: DemoState,
    r: dict[str, Any],
    final: bool,
    people: tuple[str | None, str | None, str | None, str],
) -> dict[str, Any]:
    """A Delighted response; ``people`` is the row's entry of ``survey_people``."""
    seed = state.world.seed
    email, phone, name, ref = people
    pid = str(mix64(salt(seed, "delighted-person", email or phone or name)) % 10**9)
    upd = r["updated_at"] if final else r["created_at"]
    return {
        "id": r["source_id"],
        "person": {
            "id": pid,
            "email": email,
            "name": name,
            "phone_number": phone,
            "created_at": r["created_at"] - 60,
        },
        "survey_type": r["survey_type"],
        "score": r["score"],
        "comment": r["comment"] if final or r["updated_at"] == r["created_at"] else None,
        "permalink": f"https://app.delighted.com/r/{hex_id(20, seed, 'permalink', r['source_id'])}",
        "created_at": r["created_at"],
        "updated_at": upd,
        "person_properties": {
            "contact_ref": ref,
            "channel": ref.split(":", 1)[0],
            "Delighted Source": "Email",
        },
        "notes": [],
        "tags": [],
        "additional_answers": [],
    }


def malform_survey(rec: dict[str, Any], kind: str) -> None:
    if kind == "missing_field":
        del rec["score"]
    elif kind == "bad_date":
        rec["created_at"] = "2026-10-32"
    elif kind == "wrong_type":
        rec["score"] = str(rec["score"])
    elif kind == "score_out_of_range":
        rec["score"] = 11 if rec["survey_type"] == "nps" else 7


DEFAULT_CRM_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
)


def render_crm(r: dict[str, Any], final: bool, props: tuple[str, ...]) -> dict[str, Any]:
    first, _, last = (r["name"] or "").partition(" ")
    upd = r["crm_updated_at"] if final else r["crm_created_at"]
    values = {
        "email": r["email"],
        "phone": r["crm_phone_e164"]
        if final or r["crm_updated_at"] == r["crm_created_at"]
        else None,
        "firstname": first,
        "lastname": last,
        "createdate": iso_ms(r["crm_created_at"]),
        "lastmodifieddate": iso_ms(upd),
        "hs_object_id": r["crm_id"],
    }
    wanted = dict.fromkeys((*props, "createdate", "lastmodifieddate", "hs_object_id"))
    return {
        "id": r["crm_id"],
        "properties": {k: values.get(k) for k in wanted},
        "createdAt": iso_ms(r["crm_created_at"]),
        "updatedAt": iso_ms(upd),
        "archived": False,
    }


def malform_crm(rec: dict[str, Any], kind: str) -> None:
    p = rec["properties"]
    if kind == "missing_field":
        del rec["createdAt"]
    elif kind == "bad_date":
        rec["createdAt"] = "31/02/2026 10:00"
    elif kind == "bad_phone":
        p["phone"] = "sem telefone"
    elif kind == "wrong_type":
        rec["archived"] = "no"


# --------------------------------------------------------------------------------------------
# paging


def keyset_page(
    state: DemoState,
    source: str,
    index: str,
    lo_key: int,
    hi_key: int,
    after_key: int | None,
    n: int,
    descending: bool = False,
) -> tuple[np.ndarray, bool]:
    """Positions (in ``state.idx[index]``) of the next page after ``after_key``, and has-more.

    With the ``page_overlap`` fault the page restarts *at* ``after_key`` instead of after it,
    so the previous page's last record is served again at the top.
    """
    idx = state.idx[index]
    lo, hi = idx.bounds(lo_key, hi_key)
    if after_key is None:
        start = hi if descending else lo
    else:
        again = state.overlap(source, after_key)
        if descending:
            side = "right" if again else "left"
            start = min(hi, int(np.searchsorted(idx.keys, after_key, side)))
        else:
            side = "left" if again else "right"
            start = max(lo, int(np.searchsorted(idx.keys, after_key, side)))
    return idx.take(start, lo if descending else hi, n, state.now, descending)


def _token_key(token: str | None) -> int | None:
    if not token:
        return None
    k = decode_token(token).get("k")
    if not isinstance(k, int):
        raise BadRequest("invalid pagination token")
    return k


def _token_offset(token: str | None) -> int:
    """How many results the query had served before this token (HubSpot search ``after`` is
    that offset); tokens of endpoints without a result cap carry none."""
    if not token:
        return 0
    o = decode_token(token).get("o", 0)
    if not isinstance(o, int) or o < 0:
        raise BadRequest("invalid pagination token")
    return o


def _int_param(value: Any, default: int, lo: int, hi: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        v = int(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{name} must be an integer") from exc
    if not lo <= v <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return v


def _base(request: Request, source: str) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/{source}"


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _finish(
    state: DemoState,
    source: str,
    d: SourceData,
    rec: dict[str, Any],
    row: int,
    malform: Callable[[dict[str, Any], str], None],
) -> dict[str, Any]:
    kind = d.malformed_kind_at(row)
    if kind is not None:
        malform(rec, kind)
    if d.drift[row]:
        _drift(rec, int(d.ord[row]), state.world.seed)
    return rec


def _contact_rows(
    state: DemoState, source: str, idx_name: str, pos: np.ndarray
) -> list[dict[str, Any]]:
    """Row dicts at the version the server clock shows, with ``_row`` set."""
    idx = state.idx[idx_name]
    rows = idx.rows[pos]
    d = state.data[source]
    recs = d.rows(rows)
    if idx.final is not None:
        finals = idx.final[pos].tolist()
    else:
        finals = (state.upd[source][rows] <= state.now).tolist()
    out = _versioned(state, source, recs, finals)
    for rec, row in zip(out, rows.tolist(), strict=True):
        rec["_row"] = row
    if source == "voice":
        for rec, fin in zip(out, finals, strict=True):
            if not fin:
                rec["_first"] = True
    return out


# --------------------------------------------------------------------------------------------
# the app


def build_app(
    world: World,
    faults: Faults | Mapping[str, Any] | str | None = None,
    credentials: Credentials | None = None,
    clock: int | None = None,
    search_result_cap: int = SEARCH_RESULT_CAP,
) -> FastAPI:
    """The ASGI app serving ``world``; its :class:`DemoState` is ``app.state.demo``."""
    state = DemoState(world, faults, credentials, clock, search_result_cap)
    app = FastAPI(
        title="harmonia demo channel APIs", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.demo = state

    def vendor(source: str, router: APIRouter, method: str, path: str) -> Callable:
        def wrap(fn: Callable[[Request, random.Random], Any]) -> Callable:
            async def endpoint(request: Request) -> Response:
                seq, fault, slow, rng = state.draw_request_faults(source)
                auth = check_auth(source, request, state.creds)
                if auth is not None:
                    resp = error_response(source, auth, seq, rng, state)
                elif fault is not None:
                    with state.lock:
                        state.count(source, f"fault:{fault}")
                    resp = error_response(source, fault, seq, rng, state)
                else:
                    if slow:
                        with state.lock:
                            state.count(source, "fault:slow")
                        await asyncio.sleep(state.faults.slow_seconds)
                    try:
                        resp = await fn(request, rng)
                    except BadRequest as exc:
                        resp = error_response(source, "bad_request", seq, rng, state, str(exc))
                    except NotFound as exc:
                        resp = error_response(source, "not_found", seq, rng, state, str(exc))
                with state.lock:
                    state.count(source, f"status:{resp.status_code}")
                return resp

            router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)
            return fn

        return wrap

    def served(source: str, n: int) -> None:
        with state.lock:
            state.count(source, "records", n)

    # -- voice ------------------------------------------------------------------------------
    voice = APIRouter()

    @vendor("voice", voice, "POST", "/search-contacts")
    async def voice_search(request: Request, rng: random.Random) -> Response:
        body = await _json_body(request)
        if body.get("InstanceId") not in (None, CONNECT_INSTANCE_ID, CONNECT_INSTANCE_ARN):
            raise NotFound(f"Instance not found: {body.get('InstanceId')}")
        tr = body.get("TimeRange")
        if not isinstance(tr, dict) or tr.get("Type") != "INITIATION_TIMESTAMP":
            raise BadRequest("TimeRange with Type INITIATION_TIMESTAMP is required")
        try:
            t0, t1 = int(float(tr["StartTime"])), int(float(tr["EndTime"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest("TimeRange.StartTime and EndTime must be epoch seconds") from exc
        n = _int_param(body.get("MaxResults"), 100, 1, 100, "MaxResults")
        lo_key, hi_key = t0 << ROW_BITS, max(t0, t1) << ROW_BITS
        pos, more = keyset_page(
            state, "voice", "voice", lo_key, hi_key, _token_key(body.get("NextToken")), n
        )
        rows = _contact_rows(state, "voice", "voice", pos)
        names = _names(state, rows)
        d = state.data["voice"]
        contacts = [
            _finish(state, "voice", d, render_voice(state, r, nm), r["_row"], malform_voice)
            for r, nm in zip(rows, names, strict=True)
        ]
        out: dict[str, Any] = {"Contacts": contacts}
        if more:
            out["NextToken"] = encode_token(
                {"k": int(state.idx["voice"].keys[pos[-1]]), "r": [t0, t1]}
            )
        out["TotalCount"] = state.cached_count("voice", lo_key, hi_key)
        served("voice", len(contacts))
        return jresp(out)

    app.include_router(voice, prefix="/voice")

    # -- sms --------------------------------------------------------------------------------
    sms = APIRouter()

    def _day(value: str, name: str) -> int:
        try:
            return int(datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
        except ValueError as exc:
            raise BadRequest(f"{name} must be YYYY-MM-DD") from exc

    @vendor("sms", sms, "GET", "/2010-04-01/Accounts/{account_sid}/Messages.json")
    async def sms_list(request: Request, rng: random.Random) -> Response:
        acc = request.path_params["account_sid"]
        if acc != state.creds.sms_account_sid:
            raise NotFound(
                f"The requested resource /2010-04-01/Accounts/{acc}/Messages.json was not found"
            )
        q = request.query_params
        n = _int_param(q.get("PageSize"), 50, 1, 1000, "PageSize")
        page = _int_param(q.get("Page"), 0, 0, 10**9, "Page")
        lo_t, hi_t = 0, KEY_MAX >> ROW_BITS
        filters: dict[str, str] = {}
        for key, value in q.multi_items():
            if key in ("DateSent>", "DateSent>="):
                lo_t = max(lo_t, _day(value, key))
            elif key in ("DateSent<", "DateSent<="):
                hi_t = min(hi_t, _day(value, key) + 86400)
            elif key == "DateSent":
                lo_t, hi_t = max(lo_t, _day(value, key)), min(hi_t, _day(value, key) + 86400)
            else:
                continue
            filters[key] = value
        lo_key, hi_key = lo_t << ROW_BITS, max(lo_t, hi_t) << ROW_BITS
        page_token = q.get("PageToken") or ""
        after = _token_key(page_token[2:] if page_token.startswith("PA") else page_token)
        pos, more = keyset_page(state, "sms", "sms", lo_key, hi_key, after, n, descending=True)
        idx, m = state.idx["sms"], state.sms_msg
        msg_nums = idx.rows[pos]
        d = state.data["sms"]
        crow = m["row"][msg_nums]
        recs = d.rows(crow) if len(crow) else []
        messages = []
        for rec, num, row in zip(recs, msg_nums.tolist(), crow.tolist(), strict=True):
            rec["_row"] = row
            i = num - int(m["start"][row])
            out = render_sms(
                state, rec, num, i, int(m["t"][num]), int(m["role"][num]), int(m["kind"][num])
            )
            if i == 0:
                out = _finish(state, "sms", d, out, row, malform_sms)
            messages.append(out)
        path = f"/sms/2010-04-01/Accounts/{acc}/Messages.json"
        uri = f"{path}?{urlencode({**filters, 'PageSize': n, 'Page': page})}"
        nxt = None
        if more:
            token = "PA" + encode_token({"k": int(idx.keys[pos[-1]])})
            query = {**filters, "PageSize": n, "Page": page + 1, "PageToken": token}
            nxt = f"{path}?{urlencode(query)}"
        body = {
            "first_page_uri": f"{path}?{urlencode({**filters, 'PageSize': n, 'Page': 0})}",
            "end": page * n + max(len(messages), 1) - 1,
            "previous_page_uri": None,
            "messages": messages,
            "uri": uri,
            "page_size": n,
            "start": page * n,
            "next_page_uri": nxt,
            "page": page,
        }
        served("sms", len(messages))
        return jresp(body)

    app.include_router(sms, prefix="/sms")

    # -- email ------------------------------------------------------------------------------
    email = APIRouter()

    @vendor("email", email, "GET", "/api/v2/incremental/tickets/cursor.json")
    async def email_export(request: Request, rng: random.Random) -> Response:
        q = request.query_params
        n = _int_param(q.get("per_page"), 1000, 1, 1000, "per_page")
        include = q.get("include", "")
        if q.get("cursor"):
            cursor = q["cursor"]
            after = _token_key(cursor)
        elif q.get("start_time") is not None:
            st = _int_param(q.get("start_time"), 0, 0, KEY_MAX >> ROW_BITS, "start_time")
            if st > state.now - 60:
                raise BadRequest("Too recent start_time. Use a start_time older than 1 minute")
            after = (st << ROW_BITS) - 1
            cursor = encode_token({"k": after})
        else:
            raise BadRequest("start_time or cursor is required")
        pos, more = keyset_page(state, "email", "email", 0, KEY_MAX, after, n)
        rows = _contact_rows(state, "email", "email", pos)
        names = _names(state, rows)
        base = _base(request, "email")
        d = state.data["email"]
        tickets, metrics = [], []
        for r, nm in zip(rows, names, strict=True):
            t, mset = render_email(state, r, nm, base)
            tickets.append(_finish(state, "email", d, t, r["_row"], malform_email))
            metrics.append(mset)
        keys = state.idx["email"].keys
        after_cursor = encode_token({"k": int(keys[pos[-1]])}) if len(pos) else cursor
        before_cursor = encode_token({"k": int(keys[pos[0]]) - 1}) if len(pos) else None
        extra = f"&include={include}" if include else ""
        url = f"{base}/api/v2/incremental/tickets/cursor.json?cursor="
        body: dict[str, Any] = {"tickets": tickets}
        if "metric_sets" in include.split(","):
            body["metric_sets"] = metrics
        body |= {
            "after_url": f"{url}{after_cursor}{extra}",
            "after_cursor": after_cursor,
            "before_url": None if before_cursor is None else f"{url}{before_cursor}{extra}",
            "before_cursor": before_cursor,
            "end_of_stream": not more,
        }
        served("email", len(tickets))
        return jresp(body)

    app.include_router(email, prefix="/email")

    # -- chat -------------------------------------------------------------------------------
    chat = APIRouter()

    def _chat_range(query: Any) -> tuple[int, int]:
        """Key range for an ``updated_at`` query (single condition or AND of conditions)."""
        if not isinstance(query, dict):
            raise BadRequest("query is required")
        if query.get("operator") == "AND" and isinstance(query.get("value"), list):
            lo, hi = 0, KEY_MAX
            for sub in query["value"]:
                a, b = _chat_range(sub)
                lo, hi = max(lo, a), min(hi, b)
            return lo, hi
        if query.get("field") != "updated_at":
            raise BadRequest("only updated_at queries are supported by the demo")
        try:
            v = int(query["value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest("query value must be a unix timestamp") from exc
        op = query.get("operator")
        ranges = {
            ">": ((v + 1) << ROW_BITS, KEY_MAX),
            "<": (0, v << ROW_BITS),
            "=": (v << ROW_BITS, (v + 1) << ROW_BITS),
        }
        ranges |= {">=": (v << ROW_BITS, KEY_MAX), "<=": (0, (v + 1) << ROW_BITS)}
        if op not in ranges:
            raise BadRequest(f"unsupported operator {op!r}")
        return ranges[op]

    @vendor("chat", chat, "POST", "/conversations/search")
    async def chat_search(request: Request, rng: random.Random) -> Response:
        body = await _json_body(request)
        lo_key, hi_key = _chat_range(body.get("query"))
        pg = body.get("pagination") or {}
        n = _int_param(pg.get("per_page"), 150, 1, 150, "per_page")
        token = pg.get("starting_after")
        page = int(decode_token(token).get("p", 1)) + 1 if token else 1
        pos, more = keyset_page(state, "chat", "chat", lo_key, hi_key, _token_key(token), n)
        rows = _contact_rows(state, "chat", "chat", pos)
        names = _names(state, rows)
        d = state.data["chat"]
        convs = [
            _finish(state, "chat", d, render_chat(state, r, nm), r["_row"], malform_chat)
            for r, nm in zip(rows, names, strict=True)
        ]
        total = state.cached_count("chat", lo_key, hi_key)
        pages: dict[str, Any] = {
            "type": "pages",
            "page": page,
            "per_page": n,
            "total_pages": -(-total // n),
        }
        if more:
            nxt = encode_token({"k": int(state.idx["chat"].keys[pos[-1]]), "p": page})
            pages["next"] = {"page": page + 1, "starting_after": nxt}
        served("chat", len(convs))
        return jresp(
            {
                "type": "conversation.list",
                "conversations": convs,
                "total_count": total,
                "pages": pages,
            }
        )

    app.include_router(chat, prefix="/chat")

    # -- messenger --------------------------------------------------------------------------
    messenger = APIRouter()

    def _fields(q: Mapping[str, str], default: list[str]) -> list[GraphField]:
        raw = q.get("fields")
        return [GraphField(f) for f in default] if not raw else parse_graph_fields(raw)

    def _edge_url(request: Request, conv_id: str, sub: list[str], n: int, after: str) -> str:
        """Graph's ``paging.next`` of an expanded edge: the node's own edge URL (the
        ``access_token`` carried over, as Graph does) with the subfields and limit."""
        params = [(k, v) for k, v in request.query_params.multi_items() if k == "access_token"]
        params += [("fields", ",".join(sub)), ("limit", str(n)), ("after", after)]
        version = request.path_params["version"]
        return f"{_base(request, 'messenger')}/{version}/{conv_id}/messages?{urlencode(params)}"

    def _edge_paging(
        conv_id: str, offset: int, end: int, total: int, next_url: Callable[[str], str]
    ) -> dict[str, Any] | None:
        if end == offset:
            return None
        after = encode_token({"o": end, "c": conv_id})
        paging: dict[str, Any] = {
            "cursors": {"before": encode_token({"o": offset, "c": conv_id}), "after": after}
        }
        if end < total:
            paging["next"] = next_url(after)
        return paging

    def _next_url(request: Request, after: str) -> str:
        params = [
            (k, v) for k, v in request.query_params.multi_items() if k not in ("after", "before")
        ]
        params.append(("after", after))
        path = request.url.path[len("/messenger") :]
        return f"{_base(request, 'messenger')}{path}?{urlencode(params)}"

    @vendor("messenger", messenger, "GET", "/{version}/{node_id}/conversations")
    async def ms_conversations(request: Request, rng: random.Random) -> Response:
        if request.path_params["node_id"] != state.creds.messenger_page_id:
            node = request.path_params["node_id"]
            raise BadRequest(f"Unsupported get request. Object with ID '{node}' does not exist")
        q = request.query_params
        if q.get("platform", "messenger") != "messenger":
            raise BadRequest("the demo page only has Messenger conversations")
        n = _int_param(q.get("limit"), 25, 1, 100, "limit")
        pos, more = keyset_page(
            state,
            "messenger",
            "messenger",
            0,
            KEY_MAX,
            _token_key(q.get("after")),
            n,
            descending=True,
        )
        rows = _contact_rows(state, "messenger", "messenger", pos)
        names = _names(state, rows)
        d = state.data["messenger"]
        fields_ = _fields(q, ["updated_time"])
        wanted = [f.name for f in fields_]
        # field expansion: messages{...} inline, limited, with its own paging per conversation
        edge = next((f for f in fields_ if f.name == "messages"), None)
        sub = (
            [f.name for f in parse_graph_fields(edge.sub)]
            if edge is not None and edge.sub
            else ["created_time"]
        )
        edge_n = (edge.limit or 25) if edge is not None else 0  # Graph's default edge limit
        data = []
        inline = 0
        for r, nm in zip(rows, names, strict=True):
            rec = _finish(
                state,
                "messenger",
                d,
                render_messenger_conv(state, r, nm),
                r["_row"],
                malform_messenger,
            )
            if edge is not None:
                cid = r["source_id"]
                msgs, end, total = ms_message_edge(state, r, nm, 0, edge_n, sub)
                rec["messages"] = {"data": msgs}
                paging = _edge_paging(
                    cid, 0, end, total, lambda a, c=cid: _edge_url(request, c, sub, edge_n, a)
                )
                if paging is not None:
                    rec["messages"]["paging"] = paging
                inline += len(msgs)
            data.append(_pick_fields(rec, wanted))
        keys = state.idx["messenger"].keys
        body: dict[str, Any] = {"data": data}
        if len(pos):
            after = encode_token({"k": int(keys[pos[-1]])})
            body["paging"] = {
                "cursors": {"before": encode_token({"k": int(keys[pos[0]]) + 1}), "after": after}
            }
            if more:
                body["paging"]["next"] = _next_url(request, after)
        served("messenger", len(data) + inline)
        return jresp(body)

    @vendor("messenger", messenger, "GET", "/{version}/{node_id}/messages")
    async def ms_messages(request: Request, rng: random.Random) -> Response:
        conv_id = request.path_params["node_id"]
        d = state.data["messenger"]
        row = d.row_of(conv_id)
        if row is None or state.fva["messenger"][row] > state.now:
            raise BadRequest(f"Unsupported get request. Object with ID '{conv_id}' does not exist")
        q = request.query_params
        n = _int_param(q.get("limit"), 25, 1, 100, "limit")
        rec = d.rows([row])[0]
        final = state.upd["messenger"][row] <= state.now
        r = rec if final else first_version(rec)
        r["_row"] = row
        name = _names(state, [r])[0]
        token = q.get("after")
        offset = int(decode_token(token).get("o", 0)) if token else 0
        wanted = [f.name for f in _fields(q, ["created_time"])]
        data, end, total = ms_message_edge(state, r, name, offset, n, wanted)
        body: dict[str, Any] = {"data": data}
        paging = _edge_paging(conv_id, offset, end, total, lambda a: _next_url(request, a))
        if paging is not None:
            body["paging"] = paging
        served("messenger", len(data))
        return jresp(body)

    app.include_router(messenger, prefix="/messenger")

    # -- surveys ----------------------------------------------------------------------------
    surveys = APIRouter()
    survey_lists: dict[tuple[int, int, int], np.ndarray] = {}

    @vendor("surveys", surveys, "GET", "/v1/survey_responses.json")
    async def survey_list(request: Request, rng: random.Random) -> Response:
        q = request.query_params
        n = _int_param(q.get("per_page"), 20, 1, 100, "per_page")
        page = _int_param(q.get("page"), 1, 1, 10**9, "page")
        since = _int_param(q.get("updated_since"), 0, 0, KEY_MAX >> ROW_BITS, "updated_since")
        until = _int_param(
            q.get("updated_until"),
            KEY_MAX >> (ROW_BITS + 1),
            0,
            KEY_MAX >> ROW_BITS,
            "updated_until",
        )
        key = (since, until, state.now)
        vis = survey_lists.get(key)
        idx = state.idx["surveys"]
        if vis is None:
            lo, hi = idx.bounds(since << ROW_BITS, (until + 1) << ROW_BITS)
            vis = np.flatnonzero(idx.mask(lo, hi, state.now)) + lo
            if len(survey_lists) > 64:
                survey_lists.clear()
            survey_lists[key] = vis
        start = (page - 1) * n
        chunk = vis[start : start + n]
        if len(chunk) and page > 1 and state.overlap("surveys", start):
            chunk = vis[start - 1 : start - 1 + n]
        d = state.data["surveys"]
        rows = idx.rows[chunk]
        recs = d.rows(rows) if len(rows) else []
        people = survey_people(state, recs) if recs else []
        out = [
            _finish(
                state, "surveys", d, render_survey(state, rec, bool(fin), who), row, malform_survey
            )
            for rec, fin, row, who in zip(
                recs, idx.final[chunk].tolist(), rows.tolist(), people, strict=True
            )
        ]
        served("surveys", len(out))
        return jresp(out)

    app.include_router(surveys, prefix="/surveys")

    # -- crm --------------------------------------------------------------------------------
    crm = APIRouter()

    def _crm_records(pos: np.ndarray, index: str, props: tuple[str, ...]) -> list[dict[str, Any]]:
        idx = state.idx[index]
        d = state.data["crm"]
        rows = idx.rows[pos]
        recs = d.rows(rows) if len(rows) else []
        if idx.final is not None:
            finals = idx.final[pos].tolist()
        else:
            finals = (state.upd["crm"][rows] <= state.now).tolist()
        return [
            _finish(state, "crm", d, render_crm(rec, fin, props), row, malform_crm)
            for rec, fin, row in zip(recs, finals, rows.tolist(), strict=True)
        ]

    @vendor("crm", crm, "GET", "/crm/v3/objects/contacts")
    async def crm_list(request: Request, rng: random.Random) -> Response:
        q = request.query_params
        n = _int_param(q.get("limit"), 10, 1, 100, "limit")
        props = (
            tuple(p for raw in q.getlist("properties") for p in raw.split(",") if p)
            or DEFAULT_CRM_PROPERTIES
        )
        pos, more = keyset_page(state, "crm", "crm", 0, KEY_MAX, _token_key(q.get("after")), n)
        results = _crm_records(pos, "crm", props)
        body: dict[str, Any] = {"results": results}
        if more:
            after = encode_token({"k": int(state.idx["crm"].keys[pos[-1]])})
            params = [(k, v) for k, v in q.multi_items() if k != "after"] + [("after", after)]
            body["paging"] = {
                "next": {
                    "after": after,
                    "link": f"{_base(request, 'crm')}/crm/v3/objects/contacts?{urlencode(params)}",
                }
            }
        served("crm", len(results))
        return jresp(body)

    def _crm_ms(value: Any) -> int:
        try:
            return int(value) // 1000
        except (TypeError, ValueError):
            try:
                return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
            except ValueError as exc:
                raise BadRequest(f"invalid lastmodifieddate value {value!r}") from exc

    @vendor("crm", crm, "POST", "/crm/v3/objects/contacts/search")
    async def crm_search(request: Request, rng: random.Random) -> Response:
        body = await _json_body(request)
        n = _int_param(body.get("limit"), 10, 1, 100, "limit")
        lo_key, hi_key = 0, KEY_MAX
        groups = body.get("filterGroups") or []
        if len(groups) > 1:
            raise BadRequest("the demo supports one filter group")
        for f in groups[0].get("filters", []) if groups else []:
            if f.get("propertyName") != "lastmodifieddate":
                raise BadRequest("the demo searches on lastmodifieddate only")
            op, ms = f.get("operator"), f.get("value")
            sec = _crm_ms(ms)
            exact_ms = int(ms) if str(ms).isdigit() else sec * 1000
            lo_sec = sec if exact_ms % 1000 == 0 else sec + 1  # GTE 12:00:00.500 excludes 12:00:00
            if op == "GTE":
                lo_key = max(lo_key, lo_sec << ROW_BITS)
            elif op == "GT":
                lo_key = max(lo_key, (sec + 1) << ROW_BITS)
            elif op == "LTE":
                hi_key = min(hi_key, (sec + 1) << ROW_BITS)
            elif op == "LT":
                hi_key = min(hi_key, (lo_sec) << ROW_BITS)
            else:
                raise BadRequest(f"unsupported operator {op!r}")
        for s in body.get("sorts") or []:
            if isinstance(s, dict) and (
                s.get("propertyName") != "lastmodifieddate"
                or s.get("direction", "ASCENDING") != "ASCENDING"
            ):
                raise BadRequest("the demo sorts by lastmodifieddate ASCENDING only")
        props = tuple(body.get("properties") or DEFAULT_CRM_PROPERTIES)
        # HubSpot: one query returns at most SEARCH_RESULT_CAP results; the page reaching the
        # cap still links a next page, and asking for it is a 400 (VALIDATION_ERROR)
        cap = state.search_result_cap
        offset = _token_offset(body.get("after"))
        if offset >= cap:
            raise BadRequest(
                f"Search results are limited to {cap} per query: after={offset} is past the"
                f" last result this search can return. Narrow the search (filter on"
                f" lastmodifieddate from the last value read) and page again."
            )
        pos, more = keyset_page(
            state,
            "crm",
            "crm_search",
            lo_key,
            hi_key,
            _token_key(body.get("after")),
            min(n, cap - offset),
        )
        results = _crm_records(pos, "crm_search", props)
        out: dict[str, Any] = {
            "total": state.cached_count("crm_search", lo_key, hi_key),
            "results": results,
        }
        if more:
            key = int(state.idx["crm_search"].keys[pos[-1]])
            out["paging"] = {"next": {"after": encode_token({"k": key, "o": offset + len(pos)})}}
        served("crm", len(results))
        return jresp(out)

    app.include_router(crm, prefix="/crm")

    # -- admin (no auth, no faults) ---------------------------------------------------------
    @app.get("/_admin/health", include_in_schema=False)
    async def health() -> Response:
        return jresp(
            {
                "status": "ok",
                "seed": world.seed,
                "now": state.now,
                "start": world.start,
                "end": world.end,
            }
        )

    @app.get("/_admin/stats", include_in_schema=False)
    async def stats() -> Response:
        with state.lock:
            return jresp({"requests": state.seq, "sources": state.stats})

    @app.get("/_admin/clock", include_in_schema=False)
    async def get_clock() -> Response:
        return jresp({"now": state.now})

    @app.post("/_admin/clock", include_in_schema=False)
    async def set_clock(request: Request) -> Response:
        try:
            state.set_clock(int((await _json_body(request))["now"]))
        except (KeyError, TypeError, ValueError, BadRequest) as exc:
            return jresp({"error": f'body must be {{"now": <epoch>}}: {exc}'}, 400)
        return jresp({"now": state.now})

    @app.get("/_admin/faults", include_in_schema=False)
    async def get_faults() -> Response:
        return jresp(asdict(state.faults))

    @app.post("/_admin/faults", include_in_schema=False)
    async def set_faults(request: Request) -> Response:
        try:
            body = await _json_body(request)
            new = state.set_faults(
                body.get("faults") if isinstance(body.get("faults"), str) else body
            )
        except (ValueError, TypeError, BadRequest) as exc:
            return jresp({"error": str(exc)}, 400)
        return jresp(asdict(new))

    return app


# --------------------------------------------------------------------------------------------
# running it


class DemoServer:
    """Run the demo APIs with uvicorn in a background thread (tests, CLI, notebooks).

    ``with DemoServer(seed=42, customers=200, faults={"rate_limit": 0.05}, port=0) as srv:``
    ``srv.base_url`` is ``http://127.0.0.1:<port>`` (a source's base URL is
    ``srv.url("voice")``); ``srv.set_clock(epoch)``, ``srv.set_faults(...)``, ``srv.stats()``,
    ``srv.world``, ``srv.state.malformed_kind(source, record_id)``. ``search_result_cap``
    (default 10,000, HubSpot's) lowers the crm search's per-query result cap for tests.
    """

    def __init__(
        self,
        seed: int = 42,
        customers: int | None = None,
        contacts: int | None = None,
        days: int = WORLD_DAYS,
        faults: Faults | Mapping[str, Any] | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        world: World | None = None,
        credentials: Credentials | None = None,
        clock: int | None = None,
        search_result_cap: int = SEARCH_RESULT_CAP,
    ) -> None:
        if world is None:
            from harmonia.demo.generator import generate_world

            world = generate_world(seed=seed, customers=customers, contacts=contacts, days=days)
        self.world = world
        self.app = build_app(world, faults, credentials, clock, search_result_cap)
        self.state: DemoState = self.app.state.demo
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, source: str) -> str:
        if source not in SOURCES:
            raise KeyError(source)
        return f"{self.base_url}/{source}"

    def start(self) -> DemoServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # uvicorn writes headers and body separately; without TCP_NODELAY (inherited by the
        # accepted sockets) Nagle + delayed ACK add ~40 ms to every response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="demo-apis", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_clock(self, now: int) -> None:
        self.state.set_clock(now)

    def set_faults(self, faults: Faults | Mapping[str, Any] | str | None) -> Faults:
        return self.state.set_faults(faults)

    def stats(self) -> dict[str, Any]:
        with self.state.lock:
            return orjson.loads(
                orjson.dumps({"requests": self.state.seq, "sources": self.state.stats})
            )

    def malformed_kind(self, source: str, record_id: str) -> str | None:
        return self.state.malformed_kind(source, record_id)
