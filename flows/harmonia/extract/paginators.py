"""Paginators and auth for the extraction sources: small classes with one contract each.

A paginator drives one endpoint's page requests (dlt ``rest_api``'s contract, not its code):

* ``init_request(request)``: shape the first request (e.g. page=1);
* ``update_state(response, data)``: read the next-page token from the page just received;
* ``update_request(request)``: put that token into the next request;
* ``has_next_page``: whether there is one.

Sources name a paginator by kind (see ``PAGINATORS``) plus its fields, so a new vendor is a
config entry and, at most, one small class here. Auth classes are ``requests`` auth hooks
built from a source's auth spec and the typed credentials.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from harmonia.extract.state import format_cursor, to_epoch


@dataclass
class PageRequest:
    """One page's request, mutated by the paginator between pages."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None


def dig(obj: Any, path: str | None) -> Any:
    """Follow a dotted path (``"pages.next.starting_after"``) into nested dicts; None if absent."""
    if not path:
        return obj
    for part in path.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path (digits index lists) in a nested body; ``None`` removes the leaf.
    The caller owns ``obj``: request bodies are deep-copied from the config first."""
    *parents, leaf = path.split(".")
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value


class PaginationError(Exception):
    """A paginator cannot go on without losing records. The runner fails the source with it
    (a ``ClientError``: sending the same requests again cannot help)."""


class BasePaginator:
    """The contract. Subclasses keep their own next-page token."""

    def __init__(self) -> None:
        self._has_next_page = True

    @property
    def has_next_page(self) -> bool:
        return self._has_next_page

    def init_request(self, request: PageRequest) -> None:
        """Shape the first request; most paginators need nothing."""

    def update_state(self, response: requests.Response, data: Any) -> None:
        raise NotImplementedError

    def update_request(self, request: PageRequest) -> None:
        raise NotImplementedError

    def record_fields(self) -> tuple[str, ...]:
        """Dotted paths this paginator reads in each record of a page (most read none)."""
        return ()


class SinglePagePaginator(BasePaginator):
    """An endpoint that answers in one page."""

    def update_state(self, response: requests.Response, data: Any) -> None:
        self._has_next_page = False

    def update_request(self, request: PageRequest) -> None:
        return None


class CursorPaginator(BasePaginator):
    """A token read from the body (``cursor_path``) sent back as a query or JSON-body field.

    Covers Amazon Connect (``NextToken`` in the POST body), Intercom
    (``pages.next.starting_after`` → body ``pagination.starting_after``) and HubSpot
    (``paging.next.after`` → ``after``; its search: ``CappedSearchPaginator``). The stream ends
    when the token is absent.
    """

    def __init__(self, cursor_path: str, param: str, location: str = "query") -> None:
        super().__init__()
        if location not in ("query", "body"):
            raise ValueError(f"cursor location must be query or body, not {location!r}")
        self.cursor_path = cursor_path
        self.param = param
        self.location = location
        self.cursor: Any = None

    def update_state(self, response: requests.Response, data: Any) -> None:
        self.cursor = dig(data, self.cursor_path)
        self._has_next_page = self.cursor not in (None, "")

    def update_request(self, request: PageRequest) -> None:
        if self.location == "query":
            request.params[self.param] = self.cursor
        else:
            request.json = dict(request.json or {})
            set_path(request.json, self.param, self.cursor)


class CappedSearchPaginator(CursorPaginator):
    """A search that serves at most ``result_cap`` results per query, sorted ascending on the
    property at ``sort_path`` in each record (HubSpot CRM search: 10,000 results; asking for a
    page past them is an HTTP 400).

    Pages follow the cursor while the next page stays inside the cap. When it would not, the
    search is sent again without the cursor and with its range filter (``restart_param``, a
    body path, e.g. ``lastmodifieddate GTE``) set to the sort value of the last record read:
    the records sharing that value come again (key + version dedupe drops them) and the scan
    goes on past the cap — what Airbyte's and Estuary's HubSpot connectors do. The offset of
    the next page is the numeric cursor (HubSpot's ``after``) or, for an opaque one, the
    results this query has served.

    If a whole query's results share one sort value (more than ``result_cap`` records
    modified in the same millisecond) a restart would read the same results forever: that
    raises ``PaginationError`` instead, after the pages read so far have landed.
    """

    def __init__(
        self,
        cursor_path: str,
        param: str,
        location: str = "body",
        *,
        sort_path: str,
        restart_param: str,
        restart_format: str = "epoch_ms",
        result_cap: int = 10_000,
        records_path: str = "results",
        limit_param: str = "limit",
    ) -> None:
        super().__init__(cursor_path, param, location)
        if location != "body":
            raise ValueError("a capped search sends its cursor and filter in the JSON body")
        if result_cap < 1:
            raise ValueError("result_cap must be at least 1")
        self.sort_path = sort_path
        self.restart_param = restart_param
        self.restart_format = restart_format
        self.result_cap = result_cap
        self.records_path = records_path
        self.limit_param = limit_param
        self.limit = 10  # HubSpot's default page size, unless the body sets one
        self.served = 0  # results the current query has served
        self.last: float | None = None  # sort value (epoch s) of the last record read
        self.restart = False
        self.restarts = 0  # searches sent again from the last value (for tests and logs)

    def record_fields(self) -> tuple[str, ...]:
        return (self.sort_path,)

    def init_request(self, request: PageRequest) -> None:
        limit = dig(request.json or {}, self.limit_param)
        if isinstance(limit, int) and limit > 0:
            self.limit = limit

    def update_state(self, response: requests.Response, data: Any) -> None:
        super().update_state(response, data)
        records = dig(data, self.records_path)
        records = records if isinstance(records, list) else []
        self.served += len(records)
        for record in reversed(records):
            value = to_epoch(dig(record, self.sort_path)) if isinstance(record, dict) else None
            if value is not None:
                self.last = value
                break
        cursor = str(self.cursor)
        offset = int(cursor) if cursor.isdigit() else self.served
        self.restart = self._has_next_page and offset + self.limit > self.result_cap

    def update_request(self, request: PageRequest) -> None:
        if not self.restart:
            super().update_request(request)
            return
        current = to_epoch(dig(request.json or {}, self.restart_param))
        value = None if self.last is None else format_cursor(self.last, self.restart_format)
        if value is None or (current is not None and (to_epoch(value) or 0.0) <= current):
            at = "" if self.last is None else " " + _iso_ms(self.last)
            raise PaginationError(
                f"more than {self.result_cap} search results share {self.sort_path}{at}: "
                f"the search cannot page past its {self.result_cap}-result cap there "
                "(searching again from that value returns the same results); "
                "nothing after it was read"
            )
        request.json = copy.deepcopy(request.json or {})
        set_path(request.json, self.param, None)
        set_path(request.json, self.restart_param, value)
        self.served = 0
        self.restart = False
        self.restarts += 1


def _iso_ms(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class EndOfStreamCursorPaginator(CursorPaginator):
    """Zendesk cursor export: ``cursor=after_cursor`` until ``end_of_stream`` is true.

    The first request carries the start (``start_time``); later ones only the cursor, so the
    start parameters are dropped once a cursor exists. The last ``after_cursor`` stays
    readable after the end: it is the state a later incremental run resumes from.
    """

    def __init__(
        self,
        cursor_path: str = "after_cursor",
        param: str = "cursor",
        end_path: str = "end_of_stream",
        drop_params: tuple[str, ...] = ("start_time",),
    ) -> None:
        super().__init__(cursor_path, param, "query")
        self.end_path = end_path
        self.drop_params = drop_params

    def update_state(self, response: requests.Response, data: Any) -> None:
        cursor = dig(data, self.cursor_path)
        if cursor:
            self.cursor = cursor
        self._has_next_page = not dig(data, self.end_path) and bool(cursor)

    def update_request(self, request: PageRequest) -> None:
        for name in self.drop_params:
            request.params.pop(name, None)
        super().update_request(request)


class NextURLPaginator(BasePaginator):
    """Follow a next-page link from the body: absolute (Meta ``paging.next``) or
    host-relative (Twilio ``next_page_uri``). The link carries every query parameter, so the
    request's own params are dropped; it ends when the link is absent or null."""

    def __init__(self, next_path: str) -> None:
        super().__init__()
        self.next_path = next_path
        self.next_url: str | None = None

    def update_state(self, response: requests.Response, data: Any) -> None:
        link = dig(data, self.next_path)
        self.next_url = urljoin(response.url, link) if link else None
        self._has_next_page = self.next_url is not None

    def update_request(self, request: PageRequest) -> None:
        assert self.next_url is not None
        request.url = self.next_url
        request.params = {}


class PageNumberPaginator(BasePaginator):
    """``page=N`` from ``base_page``; the stream ends on an empty page (Delighted: a bare array).

    A short page is not an end: a server may cap ``per_page`` below what was asked.
    """

    def __init__(self, param: str = "page", base_page: int = 1) -> None:
        super().__init__()
        self.param = param
        self.page = base_page

    def init_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page

    def update_state(self, response: requests.Response, data: Any) -> None:
        records = data if isinstance(data, list) else None
        self._has_next_page = bool(records)
        self.page += 1

    def update_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page


PAGINATORS: dict[str, type[BasePaginator]] = {
    "single_page": SinglePagePaginator,
    "cursor": CursorPaginator,
    "capped_search": CappedSearchPaginator,
    "end_of_stream_cursor": EndOfStreamCursorPaginator,
    "next_url": NextURLPaginator,
    "page_number": PageNumberPaginator,
}


def make_paginator(kind: str, options: dict[str, Any]) -> BasePaginator:
    try:
        cls = PAGINATORS[kind]
    except KeyError:
        raise ValueError(f"unknown paginator kind {kind!r}; known: {sorted(PAGINATORS)}") from None
    return cls(**options)


# --- auth --------------------------------------------------------------------------------


class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>`` plus optional fixed headers (Intercom-Version)."""

    def __init__(self, token: str, extra_headers: dict[str, str] | None = None) -> None:
        self.token = token
        self.extra_headers = extra_headers or {}

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        r.headers.update(self.extra_headers)
        return r


class BasicAuth(AuthBase):
    """HTTP Basic; Twilio (sid:token), Delighted (key:empty)."""

    def __init__(self, username: str, password: str = "") -> None:
        self.username = username
        self.password = password

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = f"{self.username}:{self.password}".encode()
        r.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        return r


class ZendeskTokenAuth(BasicAuth):
    """Zendesk API token: Basic ``{email}/token:{api_token}``."""

    def __init__(self, email: str, token: str) -> None:
        super().__init__(f"{email}/token", token)


class QueryParamAuth(AuthBase):
    """A token in the query string (Meta ``access_token``). Links the vendor returns may
    already carry it; then it is not added twice."""

    def __init__(self, param: str, token: str) -> None:
        self.param = param
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(r.url or "")
        if not any(k == self.param for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            extra = urlencode({self.param: self.token})
            query = f"{parts.query}&{extra}" if parts.query else extra
            r.url = urlunsplit(parts._replace(query=query))
        return r


class SigV4Auth(AuthBase):
    """AWS Signature Version 4 (real Amazon Connect). Signs method, path, query, the ``host``,
    ``x-amz-date`` (and ``x-amz-security-token``) headers and the body's SHA-256."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        region: str,
        service: str,
        session_token: str = "",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service
        self.session_token = session_token
        self.clock = clock or (lambda: datetime.now(UTC))

    @staticmethod
    def signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
        key = ("AWS4" + secret_key).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        stamp = self.clock().strftime("%Y%m%dT%H%M%SZ")
        parts = urlsplit(r.url or "")
        r.headers["x-amz-date"] = stamp
        if self.session_token:
            r.headers["x-amz-security-token"] = self.session_token
        body = r.body or b""
        payload = hashlib.sha256(body.encode() if isinstance(body, str) else body).hexdigest()
        query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True))
        )
        headers = {k.lower(): " ".join(str(v).split()) for k, v in r.headers.items()}
        headers["host"] = parts.netloc
        signed = sorted(
            h for h in headers if h in ("host", "content-type") or h.startswith("x-amz-")
        )
        canonical = "\n".join(
            [
                r.method or "GET",
                quote(parts.path or "/", safe="/-_.~"),
                query,
                "".join(f"{h}:{headers[h]}\n" for h in signed),
                ";".join(signed),
                payload,
            ]
        )
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self.signing_key(self.secret_key, stamp[:8], self.region, self.service)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        r.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}"
        )
        return r


AUTHS: dict[str, type[AuthBase]] = {
    "bearer": BearerAuth,
    "basic": BasicAuth,
    "zendesk_token": ZendeskTokenAuth,
    "query_param": QueryParamAuth,
    "sigv4": SigV4Auth,
}
