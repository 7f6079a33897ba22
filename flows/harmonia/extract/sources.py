"""The extraction sources as data: one declarative config per channel API.

A source says where its API lives (base URL), how it authenticates (auth kind and which
``harmonia.settings.Credentials`` fields hold the user and the secret), and per endpoint: the
method and path, the paginator kind and its fields, where the records sit in the body (and
what is sideloaded next to them), the primary key and version field, and the incremental
cursor: which record field it reads, how it is sent to the server, the lookback, and when the
watermark may be committed (see ``harmonia.extract.state``).

The seven demo sources ship configured with base URL ``<demo_base_url>/<source>``; pointing a
source at the real vendor is a base-URL override plus real credentials. Adding an eighth
source is one more ``SourceConfig`` here and, at most, one paginator or auth class.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal

from harmonia.extract.paginators import (
    AUTHS,
    BasePaginator,
    BasicAuth,
    BearerAuth,
    QueryParamAuth,
    SigV4Auth,
    ZendeskTokenAuth,
    make_paginator,
)
from harmonia.settings import Credentials

CursorFormat = Literal["epoch", "epoch_ms", "date"]
CommitMode = Literal["per_page", "end_of_stream"]


@dataclass(frozen=True)
class AuthSpec:
    """How a source authenticates. ``credential_field``/``user_field`` name ``Credentials`` fields
    (never values)."""

    kind: Literal["bearer", "basic", "zendesk_token", "query_param", "sigv4"]
    credential_field: str
    user_field: str | None = None
    param: str | None = None  # query_param: the parameter's name
    service: str | None = None  # sigv4: the AWS service name (e.g. "connect")
    headers: dict[str, str] = field(default_factory=dict)  # fixed extra headers

    def env_vars(self) -> list[str]:
        """The environment variables a person should check when auth fails."""
        names = (
            [self.user_field, self.credential_field] if self.user_field else [self.credential_field]
        )
        return [f"HARMONIA_{n.upper()}" for n in names]


@dataclass(frozen=True)
class RecordSpec:
    """Records of one entity in a page body: where, and how they are keyed and versioned.

    ``path`` is a dotted path to the list (None: the body is a bare array). A sideload nested
    in each primary record — Graph API field expansion, ``data[*].messages.data[*]`` — is an
    *edge*: ``<primary list>[*].<edge>.<list>[*]``. Its records are taken from the primary
    records the run keeps (in the window, version not landed yet), the edge is removed from
    the primary record before it lands (the primary record lands as the API serves it
    without expansion; its edge's records land as their own), and ``next_path`` (relative to
    the edge: ``paging.next``) is followed for the edges that have more than fit inline.
    The path is JSONPath-like so that DuckDB's ``json_extract`` reads it too.
    """

    entity: str
    path: str | None
    primary_key: str
    version_field: str
    required: bool = True  # a sideload may be absent from a page
    next_path: str | None = None  # edges only: the link to the rest of one edge's list

    def __post_init__(self) -> None:
        if self.path is not None and "[*]" in self.path:
            self.edge  # noqa: B018 - validates the shape at import time
        elif self.next_path is not None:
            raise ValueError(f"{self.entity}: next_path is for edges (paths with [*]) only")

    @property
    def edge(self) -> tuple[str, str, str] | None:
        """``(primary list path, edge path in a primary record, list key in the edge)`` for
        a nested sideload, else None."""
        if self.path is None or "[*]" not in self.path:
            return None
        parents, _, rest = self.path.partition("[*].")
        edge, _, items = rest.removesuffix("[*]").rpartition(".")
        if not rest.endswith("[*]") or "[*]" in rest[:-3] or not parents or not edge or "." in edge:
            raise ValueError(
                f"{self.entity}: an edge path is <list>[*].<edge>.<list>[*], not {self.path!r}"
            )
        return parents, edge, items


@dataclass(frozen=True)
class Incremental:
    """The incremental cursor of an endpoint.

    ``cursor_field`` is read from each record and its maximum becomes the watermark. The
    start sent to the server is ``watermark - lookback`` (closed: boundary rows come again and
    key+version dedupe drops them); ``strict`` servers (``>``) get one unit less.
    ``send``: ``query``/``body`` put it into ``param`` (a dotted path for bodies), ``client``
    means the server cannot filter and the records arrive ``order``-sorted so that reading
    stops at the first one older than the start.
    ``commit``: ``per_page`` when the records arrive sorted ascending by the cursor (or a
    resumable vendor cursor exists), so a page's watermark never skips unread data;
    ``end_of_stream`` otherwise: the watermark is committed with the last page only.
    """

    cursor_field: str
    send: Literal["query", "body", "client"]
    param: str | None = None
    format: CursorFormat = "epoch"
    strict: bool = False
    lookback: timedelta = timedelta(0)
    end_param: str | None = None  # where the API takes an upper bound (backfill ``until``)
    commit: CommitMode = "end_of_stream"
    order: Literal["asc", "desc", "any"] = "any"
    initial: int = 0  # the start of a first (or full-refresh) run, epoch seconds
    # a vendor cursor kept in state and resumed from (Zendesk after_cursor → ?cursor=)
    resume_path: str | None = None
    resume_param: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a source. A child endpoint (``parent`` set) is read once per parent
    record, with ``{parent_id}`` in its path: that record's primary key."""

    name: str
    path: str
    records: tuple[RecordSpec, ...]
    paginator: str
    paginator_options: dict[str, Any] = field(default_factory=dict)
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    incremental: Incremental | None = None
    parent: str | None = None
    concurrency: int = 4  # child endpoints / edge follow-ups: parents read at once

    def __post_init__(self) -> None:
        for spec in self.records[1:]:
            edge = spec.edge
            if edge is not None and edge[0] != self.records[0].path:
                raise ValueError(
                    f"{self.name}: edge {spec.path!r} must hang off {self.records[0].path!r}"
                )

    @property
    def entity(self) -> str:
        return self.records[0].entity

    def new_paginator(self) -> BasePaginator:
        return make_paginator(self.paginator, dict(self.paginator_options))


@dataclass(frozen=True)
class SourceConfig:
    """A source: where it lives, how it authenticates, what it serves."""

    name: str
    auth: AuthSpec
    endpoints: tuple[Endpoint, ...]
    base_url: str | None = None  # None: the demo APIs, ``<demo_base_url>/<name>``
    path_vars: dict[str, str] = field(default_factory=dict)  # {placeholder: Credentials field}
    timeout: tuple[float, float] = (5.0, 60.0)  # (connect, read) seconds

    def with_base_url(self, base_url: str) -> SourceConfig:
        return replace(self, base_url=base_url.rstrip("/"))

    def effective_auth(self, credentials: Credentials) -> AuthSpec:
        """The auth to use: Amazon Connect switches from the demo's Bearer token to SigV4
        when ``HARMONIA_VOICE_AUTH=sigv4`` (the real service)."""
        if self.name == "voice" and credentials.voice_auth == "sigv4":
            return VOICE_SIGV4
        return self.auth

    def secrets(self, credentials: Credentials) -> list[str]:
        """Every secret value this source sends: what redaction must scrub."""
        spec = self.effective_auth(credentials)
        fields = [spec.credential_field]
        if spec.kind == "sigv4":
            fields.append("voice_aws_session_token")
        values = [getattr(credentials, f) for f in fields]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]

    def build_auth(self, credentials: Credentials) -> Any:
        spec = self.effective_auth(credentials)
        value = getattr(credentials, spec.credential_field)
        if value is None:
            names = " and ".join(spec.env_vars())
            raise ValueError(f"{self.name}: no credentials configured; set {names}")
        secret = value.get_secret_value()
        user = getattr(credentials, spec.user_field) if spec.user_field else None
        if spec.kind == "bearer":
            return BearerAuth(secret, spec.headers)
        if spec.kind == "basic":
            return BasicAuth(user if user is not None else secret, secret if user else "")
        if spec.kind == "zendesk_token":
            return ZendeskTokenAuth(str(user), secret)
        if spec.kind == "query_param":
            return QueryParamAuth(spec.param or "access_token", secret)
        if spec.kind == "sigv4":
            return SigV4Auth(
                str(user),
                secret,
                credentials.voice_aws_region,
                spec.service or "connect",
                token.get_secret_value() if (token := credentials.voice_aws_session_token) else "",
            )
        raise ValueError(f"{self.name}: unknown auth kind {spec.kind!r}; known: {sorted(AUTHS)}")

    def render_body(self, body: Any, credentials: Credentials) -> Any:
        """A deep copy of a request body with ``"{placeholder}"`` string values (``path_vars``)
        replaced by their ``Credentials`` values (e.g. the Connect instance id)."""
        if isinstance(body, dict):
            return {k: self.render_body(v, credentials) for k, v in body.items()}
        if isinstance(body, list):
            return [self.render_body(v, credentials) for v in body]
        if isinstance(body, str) and body.startswith("{") and body.endswith("}"):
            name = body[1:-1]
            if name in self.path_vars:
                return getattr(credentials, self.path_vars[name])
        return body

    def url(self, path: str, credentials: Credentials, **extra: str) -> str:
        values = {k: getattr(credentials, v) for k, v in self.path_vars.items()} | extra
        if self.base_url is None:
            raise ValueError(f"{self.name}: no base URL configured")
        return self.base_url + path.format(**values)


# --- the seven demo sources ----------------------------------------------------------------
# Vendor shapes: ../shared/reference/channel-apis.md; demo wire contract: docs/demo-apis.md.

# Real Amazon Connect signs requests with SigV4 (HARMONIA_VOICE_AUTH=sigv4).
VOICE_SIGV4 = AuthSpec(
    kind="sigv4",
    user_field="voice_aws_access_key_id",
    credential_field="voice_aws_secret_access_key",
    service="connect",
)

VOICE = SourceConfig(
    name="voice",
    auth=AuthSpec(kind="bearer", credential_field="voice_token"),
    path_vars={"voice_instance_id": "voice_instance_id"},
    endpoints=(
        Endpoint(
            name="contacts",
            method="POST",
            path="/search-contacts",
            body={
                # HARMONIA_VOICE_INSTANCE_ID (default: the demo's instance)
                "InstanceId": "{voice_instance_id}",
                "TimeRange": {"Type": "INITIATION_TIMESTAMP"},
                "MaxResults": 100,
            },
            records=(RecordSpec("contacts", "Contacts", "ContactId", "LastUpdateTimestamp"),),
            paginator="cursor",
            paginator_options={
                "cursor_path": "NextToken",
                "param": "NextToken",
                "location": "body",
            },
            # Contact records are filtered on initiation, but are updated for up to 24 h after
            # it (disconnect, after-call work): re-read a day. No sort order is promised.
            incremental=Incremental(
                cursor_field="InitiationTimestamp",
                send="body",
                param="TimeRange.StartTime",
                end_param="TimeRange.EndTime",
                lookback=timedelta(hours=24),
            ),
        ),
    ),
)

SMS = SourceConfig(
    name="sms",
    auth=AuthSpec(kind="basic", user_field="sms_account_sid", credential_field="sms_auth_token"),
    path_vars={"account_sid": "sms_account_sid"},
    endpoints=(
        Endpoint(
            name="messages",
            path="/2010-04-01/Accounts/{account_sid}/Messages.json",
            params={"PageSize": 1000},
            records=(RecordSpec("messages", "messages", "sid", "date_updated"),),
            paginator="next_url",
            paginator_options={"next_path": "next_page_uri"},
            # Whole UTC days, newest first: the day of the watermark is read again (overlap
            # deduped on sid+date_updated) and a day of lookback catches status updates.
            incremental=Incremental(
                cursor_field="date_sent",
                send="query",
                param="DateSent>",
                format="date",
                lookback=timedelta(hours=24),
            ),
        ),
    ),
)

EMAIL = SourceConfig(
    name="email",
    auth=AuthSpec(
        kind="zendesk_token", user_field="email_user", credential_field="email_api_token"
    ),
    endpoints=(
        Endpoint(
            name="tickets",
            path="/api/v2/incremental/tickets/cursor.json",
            params={"include": "metric_sets"},
            records=(
                RecordSpec("tickets", "tickets", "id", "updated_at"),
                RecordSpec("metric_sets", "metric_sets", "id", "updated_at", required=False),
            ),
            paginator="end_of_stream_cursor",
            # The export is ordered by generated_timestamp and its after_cursor points just
            # past the page it came with: safe to commit with every page and resume from.
            incremental=Incremental(
                cursor_field="generated_timestamp",
                send="query",
                param="start_time",
                commit="per_page",
                order="asc",
                resume_path="after_cursor",
                resume_param="cursor",
            ),
        ),
    ),
)

CHAT = SourceConfig(
    name="chat",
    auth=AuthSpec(
        kind="bearer", credential_field="chat_token", headers={"Intercom-Version": "2.11"}
    ),
    endpoints=(
        Endpoint(
            name="conversations",
            method="POST",
            path="/conversations/search",
            body={
                "query": {"field": "updated_at", "operator": ">"},
                "pagination": {"per_page": 150},
            },
            records=(RecordSpec("conversations", "conversations", "id", "updated_at"),),
            paginator="cursor",
            paginator_options={
                "cursor_path": "pages.next.starting_after",
                "param": "pagination.starting_after",
                "location": "body",
            },
            incremental=Incremental(
                cursor_field="updated_at", send="body", param="query.value", strict=True
            ),
        ),
    ),
)

#: Message fields asked for (Graph returns only ``id`` and ``created_time`` by default).
MESSENGER_MESSAGE_FIELDS = "id,created_time,from,to,message,tags"

MESSENGER = SourceConfig(
    name="messenger",
    auth=AuthSpec(
        kind="query_param", param="access_token", credential_field="messenger_access_token"
    ),
    path_vars={"page_id": "messenger_page_id"},
    endpoints=(
        Endpoint(
            name="conversations",
            path="/v19.0/{page_id}/conversations",
            params={
                "platform": "messenger",
                # Field expansion: each conversation's newest 100 messages come inline, so a
                # page of conversations is one request instead of 1 + one per conversation;
                # a longer conversation's edge has paging.next, followed for it alone.
                "fields": (
                    "id,updated_time,link,message_count,unread_count,can_reply,participants,"
                    f"labels,messages.limit(100){{{MESSENGER_MESSAGE_FIELDS}}}"
                ),
                "limit": 100,
            },
            records=(
                RecordSpec("conversations", "data", "id", "updated_time"),
                RecordSpec(
                    "messages",
                    "data[*].messages.data[*]",
                    "id",
                    "created_time",
                    required=False,
                    next_path="paging.next",
                ),
            ),
            paginator="next_url",
            paginator_options={"next_path": "paging.next"},
            # No server-side filter: newest updated_time first, stop at the first one older
            # than the watermark. The order is descending, so only the end commits it.
            incremental=Incremental(cursor_field="updated_time", send="client", order="desc"),
        ),
    ),
)

#: The same source without field expansion: conversations, then one request per
#: conversation for its messages (parent → child endpoint). For a Graph app or API version
#: that refuses the expansion; it lands the same records (``tests/test_extract_ingest.py``).
MESSENGER_PER_CONVERSATION = replace(
    MESSENGER,
    endpoints=(
        replace(
            MESSENGER.endpoints[0],
            params=MESSENGER.endpoints[0].params
            | {
                "fields": "id,updated_time,link,message_count,unread_count,can_reply,"
                "participants,labels"
            },
            records=MESSENGER.endpoints[0].records[:1],
        ),
        Endpoint(
            name="messages",
            parent="conversations",
            path="/v19.0/{parent_id}/messages",
            params={"fields": MESSENGER_MESSAGE_FIELDS, "limit": 100},
            records=(RecordSpec("messages", "data", "id", "created_time"),),
            paginator="next_url",
            paginator_options={"next_path": "paging.next"},
        ),
    ),
)

SURVEYS = SourceConfig(
    name="surveys",
    auth=AuthSpec(kind="basic", credential_field="surveys_api_key"),
    endpoints=(
        Endpoint(
            name="responses",
            path="/v1/survey_responses.json",
            params={"per_page": 100},
            records=(RecordSpec("responses", None, "id", "updated_at"),),
            paginator="page_number",
            # Oldest *created* first, filtered on updated: not sorted by the cursor.
            incremental=Incremental(cursor_field="updated_at", send="query", param="updated_since"),
        ),
    ),
)

CRM = SourceConfig(
    name="crm",
    auth=AuthSpec(kind="bearer", credential_field="crm_token"),
    endpoints=(
        Endpoint(
            name="contacts",
            method="POST",
            path="/crm/v3/objects/contacts/search",
            body={
                "filterGroups": [
                    {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE"}]}
                ],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "properties": [
                    "email",
                    "phone",
                    "firstname",
                    "lastname",
                    "createdate",
                    "lastmodifieddate",
                ],
                "limit": 100,
            },
            records=(RecordSpec("contacts", "results", "id", "updatedAt"),),
            # HubSpot serves at most 10,000 results per search (the page past them is a 400):
            # at the cap the search is sent again from the last lastmodifieddate read.
            paginator="capped_search",
            paginator_options={
                "cursor_path": "paging.next.after",
                "param": "after",
                "location": "body",
                "result_cap": 10_000,
                "sort_path": "properties.lastmodifieddate",
                "restart_param": "filterGroups.0.filters.0.value",
                "restart_format": "epoch_ms",
            },
            # Sorted ascending on the cursor: every page's maximum is a safe watermark.
            incremental=Incremental(
                cursor_field="updatedAt",
                send="body",
                param="filterGroups.0.filters.0.value",
                format="epoch_ms",
                commit="per_page",
                order="asc",
            ),
        ),
    ),
)

SOURCES: dict[str, SourceConfig] = {
    s.name: s for s in (VOICE, SMS, EMAIL, CHAT, MESSENGER, SURVEYS, CRM)
}


def resolve_sources(
    names: list[str] | None = None,
    demo_base_url: str | None = None,
    base_urls: dict[str, str] | None = None,
) -> list[SourceConfig]:
    """The configs to run, each with its base URL: an explicit override, else the demo APIs."""
    if demo_base_url is None:
        from harmonia.settings import get_settings

        demo_base_url = get_settings().demo_base_url
    chosen = names or list(SOURCES)
    unknown = [n for n in chosen if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; known: {list(SOURCES)}")
    overrides = base_urls or {}
    resolved = []
    for name in chosen:
        cfg = SOURCES[name]
        url = overrides.get(name) or cfg.base_url or f"{demo_base_url.rstrip('/')}/{name}"
        resolved.append(cfg.with_base_url(url))
    return resolved
