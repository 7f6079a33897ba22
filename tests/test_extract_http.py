"""The extraction HTTP layer against a real loopback server that misbehaves on purpose.

The demo APIs do not serve garbage bodies or hour-long Retry-After headers, so this file
runs a small stdlib HTTP server that answers a scripted sequence per path: HTML with 200,
truncated JSON, empty bodies, 429 with Retry-After, 401. Paginators and redaction are pure
functions and are checked directly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests
from harmonia.extract.http import (
    AuthError,
    GarbageResponseError,
    HttpPolicy,
    RetryBudgetExhausted,
    SourceHTTP,
    redact_url,
)
from harmonia.extract.paginators import (
    BearerAuth,
    CursorPaginator,
    EndOfStreamCursorPaginator,
    NextURLPaginator,
    PageNumberPaginator,
    PageRequest,
    QueryParamAuth,
)
from harmonia.extract.state import to_epoch
from hypothesis import example, given, settings
from hypothesis import strategies as st

SECRET = "tok-3f9a-UNIQUE-SECRET"
FAST = HttpPolicy(timeout=(2, 5), backoff_base=0.01, backoff_max=0.05, max_attempts=5)


class _Scripted(BaseHTTPRequestHandler):
    script: ClassVar[dict[str, list[tuple[int, dict[str, str], bytes]]]] = {}
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        self.seen.append(self.path)
        path = self.path.split("?")[0]
        queue = self.script.get(path) or [(200, {}, b'{"items": []}')]
        status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[_Scripted]]]:
    class Handler(_Scripted):
        script: ClassVar[dict[str, list[tuple[int, dict[str, str], bytes]]]] = {}
        seen: ClassVar[list[str]] = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Handler
    finally:
        server.shutdown()
        server.server_close()


def _client(policy: HttpPolicy = FAST) -> SourceHTTP:
    return SourceHTTP(
        "voice",
        BearerAuth(SECRET),
        secrets=[SECRET],
        credential_env=["HARMONIA_VOICE_TOKEN"],
        policy=policy,
    )


def test_retries_429_and_5xx_then_succeeds(scripted) -> None:
    base, handler = scripted
    handler.script["/p"] = [
        (429, {"Retry-After": "0"}, b'{"m":"slow down"}'),
        (503, {}, b"busy"),
        (500, {}, b"{}"),
        (200, {}, b'{"items": [1, 2]}'),
    ]
    with _client() as http:
        _, data = http.fetch(PageRequest("GET", f"{base}/p"))
    assert data == {"items": [1, 2]}
    assert http.stats.retries == 3
    assert http.stats.retry_reasons["HTTP 429"] == 1


def test_html_with_200_is_retried_then_fails_naming_source_and_url(scripted) -> None:
    base, handler = scripted
    handler.script["/p"] = [(200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><h1>oops</h1>")]
    with _client() as http, pytest.raises(GarbageResponseError) as err:
        http.fetch(PageRequest("GET", f"{base}/p", params={"access_token": SECRET, "a": "1"}))
    message = str(err.value)
    assert message.startswith("voice:")
    assert "not JSON (text/html" in message
    assert "/p?access_token=REDACTED&a=1" in message
    assert SECRET not in message
    assert http.stats.retries == FAST.garbage_attempts - 1


@pytest.mark.parametrize(
    ("body", "what"), [(b'{"items": [1, 2', "truncated"), (b"", "empty body"), (b"  ", "empty")]
)
def test_truncated_and_empty_bodies_are_garbage(scripted, body: bytes, what: str) -> None:
    base, handler = scripted
    handler.script["/p"] = [(200, {"Content-Type": "application/json"}, body)]
    with _client() as http, pytest.raises(GarbageResponseError, match=what):
        http.fetch(PageRequest("GET", f"{base}/p"))


def test_garbage_then_good_body_recovers(scripted) -> None:
    base, handler = scripted
    handler.script["/p"] = [(200, {}, b"<html>"), (200, {}, b'{"ok": true}')]
    with _client() as http:
        assert http.fetch(PageRequest("GET", f"{base}/p"))[1] == {"ok": True}


def test_wrong_shape_counts_as_garbage(scripted) -> None:
    base, handler = scripted
    handler.script["/p"] = [(200, {}, b'{"error": "maintenance"}'), (200, {}, b'{"items": []}')]
    with _client() as http:
        _, data = http.fetch(
            PageRequest("GET", f"{base}/p"),
            validate=lambda d: None if isinstance(d.get("items"), list) else "no items",
        )
    assert data == {"items": []}
    assert http.stats.retry_reasons["garbage: no items"] == 1


def test_auth_failure_is_not_retried_and_names_env_var(scripted) -> None:
    base, handler = scripted
    handler.script["/p"] = [(403, {}, b'{"__type":"AccessDeniedException","Message":"no"}')]
    with _client() as http, pytest.raises(AuthError) as err:
        http.fetch(PageRequest("GET", f"{base}/p"))
    assert "HARMONIA_VOICE_TOKEN" in str(err.value)
    assert "AccessDeniedException" in str(err.value)
    assert SECRET not in str(err.value)
    assert len(handler.seen) == 1


def test_meta_throttling_403_is_retried(scripted) -> None:
    base, handler = scripted
    handler.script["/p"] = [
        (403, {}, b'{"error":{"message":"(#4) Application request limit reached","code":4}}'),
        (200, {}, b'{"data": []}'),
    ]
    with _client() as http:
        assert http.fetch(PageRequest("GET", f"{base}/p"))[1] == {"data": []}
    assert http.stats.retries == 1


def test_attempt_limit_and_long_retry_after_end_with_clear_errors(scripted) -> None:
    base, handler = scripted
    handler.script["/p"] = [(500, {}, b"{}")]
    with _client() as http, pytest.raises(RetryBudgetExhausted, match="gave up after 5 attempts"):
        http.fetch(PageRequest("GET", f"{base}/p"))
    handler.script["/q"] = [(429, {"Retry-After": "3600"}, b"{}")]
    with _client() as http, pytest.raises(RetryBudgetExhausted, match="asks to wait 3600s"):
        http.fetch(PageRequest("GET", f"{base}/q"))
    budget = HttpPolicy(backoff_base=0.2, backoff_max=0.2, retry_budget_seconds=0.3)
    handler.script["/r"] = [(503, {}, b"{}")]
    with _client(budget) as http, pytest.raises(RetryBudgetExhausted, match="budget of 0s"):
        http.fetch(PageRequest("GET", f"{base}/r"))


def test_connection_refused_is_retried_then_exhausted() -> None:
    with _client() as http, pytest.raises(RetryBudgetExhausted, match="ConnectionError"):
        http.fetch(PageRequest("GET", "http://127.0.0.1:9/nothing"))
    assert http.stats.retries == FAST.max_attempts - 1


def test_redact_url_removes_secrets_and_userinfo() -> None:
    url = "https://u:pw@graph.example/v19.0/1/messages?access_token=abc&limit=5&api_key=k&after=x"
    assert redact_url(url) == (
        "https://graph.example/v19.0/1/messages"
        "?access_token=REDACTED&limit=5&api_key=REDACTED&after=x"
    )
    assert "sig" not in redact_url("http://h/p?signature=zz").split("=", 1)[1]


def test_query_param_auth_is_not_added_twice() -> None:
    auth = QueryParamAuth("access_token", SECRET)
    prepared = requests.Request("GET", f"http://h/p?after=1&access_token={SECRET}").prepare()
    assert auth(prepared).url.count("access_token") == 1
    prepared = requests.Request("GET", "http://h/p?after=1").prepare()
    assert auth(prepared).url == f"http://h/p?after=1&access_token={SECRET}"


class _Resp:
    """Only ``url`` is read by the paginators; a real Response needs a real request."""

    def __init__(self, url: str) -> None:
        self.url = url


def test_paginators_follow_their_vendor_shapes() -> None:
    body = PageRequest("POST", "http://h/search", json={"query": {}, "pagination": {}})
    p = CursorPaginator("pages.next.starting_after", "pagination.starting_after", "body")
    p.update_state(_Resp("http://h/search"), {"pages": {"next": {"starting_after": "c2"}}})
    p.update_request(body)
    assert p.has_next_page and body.json == {"query": {}, "pagination": {"starting_after": "c2"}}
    p.update_state(_Resp("http://h/search"), {"pages": {}})
    assert not p.has_next_page

    req = PageRequest("GET", "http://h/sms/Messages.json", params={"PageSize": 5})
    n = NextURLPaginator("next_page_uri")
    n.update_state(_Resp(req.url), {"next_page_uri": "/sms/Messages.json?Page=1&PageToken=x"})
    n.update_request(req)
    assert req.url == "http://h/sms/Messages.json?Page=1&PageToken=x" and req.params == {}
    n.update_state(_Resp(req.url), {"next_page_uri": None})
    assert not n.has_next_page

    z = EndOfStreamCursorPaginator()
    req = PageRequest("GET", "http://h/t", params={"start_time": 0, "include": "metric_sets"})
    z.update_state(_Resp(req.url), {"after_cursor": "a1", "end_of_stream": False})
    z.update_request(req)
    assert req.params == {"include": "metric_sets", "cursor": "a1"}
    z.update_state(_Resp(req.url), {"after_cursor": "a2", "end_of_stream": True})
    assert not z.has_next_page and z.cursor == "a2"

    pn = PageNumberPaginator()
    req = PageRequest("GET", "http://h/r", params={"per_page": 2})
    pn.init_request(req)
    assert req.params["page"] == 1
    pn.update_state(_Resp(req.url), [{"id": 1}])  # short page: not the end
    pn.update_request(req)
    assert pn.has_next_page and req.params["page"] == 2
    pn.update_state(_Resp(req.url), [])
    assert not pn.has_next_page


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        (1714000000, 1714000000.0),
        (1714000000123, 1714000000.123),
        ("1714000000", 1714000000.0),
        ("2024-04-24T23:06:40Z", 1714000000.0),
        ("2024-04-24T23:06:40.000Z", 1714000000.0),
        ("2024-04-24T23:06:40+0000", 1714000000.0),
        ("Wed, 24 Apr 2024 23:06:40 +0000", 1714000000.0),
        ("not a date", None),
        (None, None),
        (True, None),
    ],
)
def test_to_epoch_reads_every_vendor_format(value: object, epoch: float | None) -> None:
    assert to_epoch(value) == epoch


def _to_epoch_every_reading_in_turn(value: object) -> float | None:
    """``to_epoch`` as it was written first: float, then ISO 8601, then RFC 2822, each tried
    until one does not raise. ``to_epoch`` skips the readings that cannot succeed."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1000 if value > 1e11 else float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return _to_epoch_every_reading_in_turn(float(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


_DATE_TEXTS = st.one_of(
    st.text(alphabet="0123456789-+.:TZ eEinfaINFA_WedApr,١٢", max_size=32),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1900, 1, 1)).map(lambda d: format_datetime(d)),
    st.floats(allow_nan=True).map(str),
    st.text(max_size=12),
)


@settings(max_examples=500, deadline=None)
@given(_DATE_TEXTS)
@example("١٢٣")  # float() reads every script's digits
@example("1_000")
@example("-Infinity")
@example("nan")
@example("1.5e-7")  # a '-' at position 4 that is not a date
@example("2026-11-30")
@example("20261130T100000Z")
@example("Wed, 24 Apr 2024 23:06:40 -0000")
@example("Wed, 31 Feb 2024 23:06:40 +0000")
def test_to_epoch_reads_any_text_as_trying_every_reading_would(text: str) -> None:
    expected = _to_epoch_every_reading_in_turn(text)
    got = to_epoch(text)
    assert got == expected or (got != got and expected != expected)  # NaN reads as NaN
