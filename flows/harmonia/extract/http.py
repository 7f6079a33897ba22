"""HTTP for the extraction sources: one ``requests.Session`` per source, retried politely.

* connection reuse (one pooled session per source) and (connect, read) timeouts;
* 429, 5xx, connection errors and timeouts are retried with exponential backoff and jitter,
  honouring ``Retry-After`` (seconds or HTTP date) and ``X-RateLimit-Reset`` (unix seconds);
  Meta's throttling arrives as 403/400 with error code 4, 17, 32 or 613 and is retried too;
* 401/403 otherwise fail at once, naming the source and the env vars to check, never a secret;
* a 200 whose body is not JSON (an HTML error page, a truncated body, nothing) is retried a
  few times, then fails naming the source, the secret-free URL and what was wrong;
* each request has an attempt limit and each source a total retry-sleep budget, so a dead
  vendor ends the run with a clear error instead of an endless wait;
* retries are counted per source and reason (``SourceHTTP.stats``).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from harmonia.extract.pages import DECODE_ERRORS
from harmonia.extract.paginators import PageRequest

log = logging.getLogger("harmonia.extract.http")

#: Query parameters whose values are secrets wherever they appear (snake_case, any case).
SECRET_PARAMS = re.compile(
    r"(^|_)(access_token|token|key|api_key|apikey|signature|sig|secret|password|auth)$",
    re.IGNORECASE,
)
#: Word boundaries of camelCase / PascalCase / kebab-case names (``clientSecret``,
#: ``APIKey``, ``x-api-key``, ``X-Amz-Signature``), turned into ``_`` before SECRET_PARAMS.
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|[-.]")
#: Paging cursors named like tokens (Twilio ``PageToken``, Connect ``NextToken``): positions
#: in a listing, not credentials, and useful to whoever audits a request log.
_PAGING_TOKEN = re.compile(r"(^|_)(page|next|next_page|continuation|sync|paging)_token$")
#: Meta Graph throttling codes: app, user, page and custom-level request limits.
META_THROTTLE_CODES = frozenset({4, 17, 32, 613})
#: A query parameter inside free text (log lines that quote a URL); its value is replaced when
#: ``is_secret_param`` says its name is a secret's.
_PARAM_IN_TEXT = re.compile(r"([?&])([^=&\s\"']+)=([^&\s\"']+)")


def is_secret_param(name: str) -> bool:
    """Whether a query parameter called ``name`` carries a secret: a snake_case secret name in
    any case (``access_token``, ``fb_exchange_token``, ``API_KEY``), or the same words in
    camelCase / kebab-case (``accessToken``, ``apiKey``, ``clientSecret``, ``x-api-key``) —
    except paging cursors written that way (``PageToken``, ``NextToken``)."""
    if SECRET_PARAMS.search(name):
        return True
    words = _CAMEL_BOUNDARY.sub("_", name).lower()
    return bool(SECRET_PARAMS.search(words)) and not _PAGING_TOKEN.search(words)


def _redact_param_in_text(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    if is_secret_param(unquote_plus(name)):
        value = "REDACTED"
    return f"{sep}{name}={value}"


def redact_params_in_text(text: str) -> str:
    """``text`` with the value of every secret-looking ``name=value`` query pair replaced."""
    return _PARAM_IN_TEXT.sub(_redact_param_in_text, text)


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _RedactingFilter(logging.Filter):
    """Scrubs secret query values from log records of the HTTP stack: urllib3 logs every
    request line at DEBUG, and Meta's access_token travels in the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = redact_params_in_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


for _name in ("urllib3.connectionpool", "requests", "harmonia.extract.http"):
    logging.getLogger(_name).addFilter(_RedactingFilter())


class ExtractError(Exception):
    """An extraction failure of one source. The message is free of secrets."""

    retryable = True

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class AuthError(ExtractError):
    """Credentials were refused: retrying cannot help."""

    retryable = False


class ClientError(ExtractError):
    """A 4xx other than auth and throttling: the request is wrong, retrying cannot help."""

    retryable = False


class RetryBudgetExhausted(ExtractError):
    """The vendor kept failing past the attempt limit or the retry-time budget."""


class GarbageResponseError(ExtractError):
    """A successful status with a body that is not the JSON the API promises."""


def redact_url(url: str) -> str:
    """The URL without user info and with every secret-looking query value replaced."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = [
        (k, "REDACTED" if is_secret_param(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe=",:")))


@dataclass
class HttpPolicy:
    """Retry and timeout policy. Defaults suit real vendors; tests may shorten the backoff."""

    timeout: tuple[float, float] = (5.0, 60.0)
    max_attempts: int = 8  # per request, first try included
    retry_budget_seconds: float = 300.0  # total sleeping per source per run
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_header_delay: float = 120.0  # a Retry-After beyond this is treated as a hard failure
    garbage_attempts: int = 3  # 200s with an unusable body before giving up
    # connections kept per source: the page read ahead plus the children read at once (4)
    pool_size: int = 6


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    slept_seconds: float = 0.0
    retry_reasons: Counter[str] = field(default_factory=Counter)


class SourceHTTP:
    """A source's HTTP client: its session, auth, policy, redaction and counters."""

    def __init__(
        self,
        source: str,
        auth: requests.auth.AuthBase,
        *,
        secrets: list[str],
        credential_env: list[str],
        policy: HttpPolicy | None = None,
    ) -> None:
        self.source = source
        self.policy = policy or HttpPolicy()
        self.credential_env = credential_env
        self._secrets = [s for s in secrets if s]
        self.stats = HttpStats()
        self._lock = threading.Lock()
        self._rng = random.Random()
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers.update({"Accept": "application/json", "User-Agent": "harmonia/0.1"})
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.policy.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SourceHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- redaction ----------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Text with every secret of this source replaced (error bodies may echo them)."""
        for secret in self._secrets:
            text = text.replace(secret, "REDACTED")
        return text

    def safe_url(self, url: str) -> str:
        return self.scrub(redact_url(url))

    # -- the request loop ---------------------------------------------------------------

    def fetch(
        self,
        request: PageRequest,
        validate: Callable[[Any], str | None] | None = None,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> tuple[requests.Response, Any]:
        """Send ``request`` until it yields parsed JSON, or raise an ``ExtractError``.

        ``decode`` parses the body (``extract.pages.PageDecoder.decode`` for pages whose
        records land as text); a body it refuses with one of ``DECODE_ERRORS`` is garbage, and
        so is one that ``validate`` says is not a page of the endpoint (it returns why, or
        None if it is).
        """
        attempt = 0
        garbage = 0
        while True:
            attempt += 1
            reason, delay = self._try_once(request, validate, decode)
            if isinstance(reason, tuple):
                return reason
            if reason.startswith("garbage"):
                garbage += 1
                if garbage >= self.policy.garbage_attempts:
                    raise GarbageResponseError(
                        self.source,
                        f"unusable response from {self.safe_url(self._last_url)} after "
                        f"{garbage} attempts: {reason.removeprefix('garbage: ')}",
                    )
            self._sleep_or_give_up(request, attempt, reason, delay)

    def _try_once(
        self,
        request: PageRequest,
        validate: Callable[[Any], str | None] | None,
        decode: Callable[[bytes], Any],
    ) -> tuple[Any, float | None]:
        """One attempt: ``((response, data), None)`` on success, else ``(reason, delay)``."""
        self._last_url = request.url
        with self._lock:
            self.stats.requests += 1
        try:
            response = self.session.request(
                request.method,
                request.url,
                params=request.params or None,
                json=request.json,
                timeout=self.policy.timeout,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            return f"{type(exc).__name__}", None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            return "garbage: body cut off in transfer", None
        self._last_url = response.url
        status = response.status_code
        if 200 <= status < 300:
            problem, data = _parse_json(response, decode)
            if problem is None and validate is not None:
                problem = validate(data)
            if problem is None:
                return (response, data), None
            return f"garbage: {problem} (HTTP {status})", None
        if status in RETRY_STATUSES:
            return f"HTTP {status}", _header_delay(response)
        if status in (400, 403) and _meta_throttled(response):
            return f"HTTP {status} throttled", _header_delay(response)
        detail = self.scrub(_error_detail(response))
        if status in (401, 403):
            raise AuthError(
                self.source,
                f"authentication refused (HTTP {status}{detail}) at "
                f"{self.safe_url(response.url)}; check {' and '.join(self.credential_env)}",
            )
        raise ClientError(self.source, f"HTTP {status}{detail} from {self.safe_url(response.url)}")

    def _sleep_or_give_up(
        self, request: PageRequest, attempt: int, reason: str, header_delay: float | None
    ) -> None:
        policy = self.policy
        if header_delay is not None and header_delay > policy.max_header_delay:
            raise RetryBudgetExhausted(
                self.source,
                f"{reason}: the server asks to wait {header_delay:.0f}s "
                f"(more than {policy.max_header_delay:.0f}s) at {self.safe_url(self._last_url)}",
            )
        if attempt >= policy.max_attempts:
            raise RetryBudgetExhausted(
                self.source,
                f"gave up after {attempt} attempts at {self.safe_url(self._last_url)}; "
                f"last error: {reason}",
            )
        backoff = min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
        # "equal jitter": at least half the backoff, so retries of many clients spread out
        delay = backoff / 2 + self._rng.uniform(0, backoff / 2)
        if header_delay is not None:
            delay = header_delay + self._rng.uniform(0, 0.1 * max(header_delay, 1.0))
        with self._lock:
            if self.stats.slept_seconds + delay > policy.retry_budget_seconds:
                raise RetryBudgetExhausted(
                    self.source,
                    f"retry budget of {policy.retry_budget_seconds:.0f}s spent "
                    f"({self.stats.retries} retries); last error: {reason} "
                    f"at {self.safe_url(self._last_url)}",
                )
            self.stats.retries += 1
            self.stats.slept_seconds += delay
            self.stats.retry_reasons[reason.split(" (")[0]] += 1
        log.info(
            "%s: %s at %s; retry %d in %.2fs",
            self.source,
            reason,
            self.safe_url(self._last_url),
            attempt,
            delay,
        )
        time.sleep(delay)


def _parse_json(
    response: requests.Response, decode: Callable[[bytes], Any]
) -> tuple[str | None, Any]:
    body = response.content
    if not body or not body.strip():
        return "empty body", None
    try:
        # the runner holds the cyclic collector paused for the whole source run
        # (harmonia.gcpause), so the pages in flight are never walked
        return None, decode(body)
    except DECODE_ERRORS:
        pass
    ctype = response.headers.get("Content-Type", "?").split(";")[0]
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        return f"truncated or invalid JSON ({len(body)} bytes, {ctype})", None
    return f"not JSON ({ctype}, starts {body.lstrip()[:15]!r})", None


def _header_delay(response: requests.Response) -> float | None:
    """Seconds to wait as the server asks: ``Retry-After`` (seconds or date) or a unix
    ``X-RateLimit-Reset``. None when the server says nothing usable."""
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            # A reset in the past (clock skew) means: go now, with backoff jitter only.
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return None


def _meta_throttled(response: requests.Response) -> bool:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") in META_THROTTLE_CODES


def _error_detail(response: requests.Response) -> str:
    """A short vendor error text for messages: the code/message fields, not the whole body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        body = error
    elif isinstance(body.get("errors"), list) and body["errors"]:
        body = body["errors"][0] if isinstance(body["errors"][0], dict) else body
    parts = [
        str(body[k])
        for k in ("__type", "code", "category", "error", "message", "Message", "description")
        if isinstance(body.get(k), str | int) and not isinstance(body.get(k), bool)
    ]
    return (": " + " ".join(parts))[:200] if parts else ""
