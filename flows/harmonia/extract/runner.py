"""Run one source: page through its endpoints, land every page with the state it advances.

This is the plain-Python core that the Prefect flow (``harmonia.pipeline.ingest``) runs once
per source, in its own thread. It knows nothing of Prefect: progress goes to an optional
listener, counters come back in a ``SourceResult``.

Parent → child endpoints (Meta conversations → messages): for each conversations page, the
messages of every conversation on it whose (id, updated_time) is not landed yet are read (a
few conversations at once), and land in the same transaction as the conversations page. A
landed conversation version therefore implies its messages are landed, which is what lets a
later run skip it without a request.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from harmonia.extract.http import HttpPolicy, SourceHTTP
from harmonia.extract.landing import Landing, PageBatch, PageRows, key_records
from harmonia.extract.paginators import PageRequest, dig, set_path
from harmonia.extract.sources import Endpoint, RecordSpec, SourceConfig
from harmonia.extract.state import Window, read_state
from harmonia.settings import Credentials


@dataclass(frozen=True)
class RunOptions:
    full_refresh: bool = False
    since: datetime | None = None
    until: datetime | None = None
    policy: HttpPolicy | None = None


@dataclass
class PageEvent:
    """Told to the progress listener after each landed page."""

    source: str
    entity: str
    page_number: int
    records: int
    landed: int
    duplicates: int


@dataclass
class EntityCounts:
    pages: int = 0
    records: int = 0
    landed: int = 0
    duplicates: int = 0


@dataclass
class SourceResult:
    """What one source's run did. ``error`` is secret-free."""

    source: str
    status: str = "running"
    pages: int = 0
    records: int = 0
    landed: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    duration_s: float = 0.0
    http_s: float = 0.0  # summed over threads: waiting for and parsing responses
    landing_s: float = 0.0  # summed over threads: keying, serializing, committing pages
    entities: dict[str, EntityCounts] = field(default_factory=dict)
    error: str | None = None

    def add(self, entity: str, records: int, landed: int, duplicates: int, page: bool) -> None:
        """Count one batch; ``page`` is false for a sideload batch of a page already counted."""
        counts = self.entities.setdefault(entity, EntityCounts())
        counts.pages += 1
        counts.records += records
        counts.landed += landed
        counts.duplicates += duplicates
        self.pages += int(page)
        self.records += records
        self.landed += landed
        self.duplicates += duplicates


Listener = Callable[[PageEvent], None]


class _SourceRun:
    def __init__(
        self,
        cfg: SourceConfig,
        landing: Landing,
        credentials: Credentials,
        run_id: str,
        options: RunOptions,
        listener: Listener | None,
    ) -> None:
        self.cfg = cfg
        self.landing = landing
        self.conn: duckdb.DuckDBPyConnection = landing.cursor()
        self.credentials = credentials
        self.run_id = run_id
        self.options = options
        self.listener = listener
        self.result = SourceResult(cfg.name)
        self.http = SourceHTTP(
            cfg.name,
            cfg.build_auth(credentials),
            secrets=cfg.secrets(credentials),
            credential_env=cfg.effective_auth(credentials).env_vars(),
            policy=options.policy or HttpPolicy(timeout=cfg.timeout),
        )
        self.page_numbers: dict[str, int] = {}
        self.children = {ep.parent: ep for ep in cfg.endpoints if ep.parent}
        self._counts_lock = threading.Lock()
        workers = max((ep.concurrency for ep in self.children.values()), default=0)
        # child endpoints (one request per parent record) are latency-bound: read a few
        # parents' children at once over the source's pooled session
        self._pool = ThreadPoolExecutor(workers, f"{cfg.name}-children") if workers else None

    def run(self) -> SourceResult:
        started = time.monotonic()
        try:
            for endpoint in self.cfg.endpoints:
                if endpoint.parent is None:
                    self._read(endpoint, self.cfg.url(endpoint.path, self.credentials))
            self.result.status = "ok"
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self.result.requests = self.http.stats.requests
            self.result.retries = self.http.stats.retries
            self.result.duration_s = round(time.monotonic() - started, 3)
            self.result.http_s = round(self.result.http_s, 3)
            self.result.landing_s = round(self.result.landing_s, 3)
            self.http.close()
            self.conn.close()
        return self.result

    # -- one endpoint ----------------------------------------------------------------------

    def _read(self, endpoint: Endpoint, url: str, sink: list[PageBatch] | None = None) -> None:
        """Page through one endpoint. Each page is landed with the state it advances — or,
        for a child endpoint, handed to ``sink`` to land with its parent's page."""
        request = PageRequest(
            endpoint.method,
            url,
            params=copy.deepcopy(endpoint.params),
            json=self.cfg.render_body(endpoint.body, self.credentials),
        )
        window = self._window(endpoint)
        if window is not None:
            self._apply_window(endpoint, window, request)
        paginator = endpoint.new_paginator()
        paginator.init_request(request)
        child = self.children.get(endpoint.entity)
        while True:
            fetch_started = time.perf_counter()
            response, data = self.http.fetch(
                request, validate=lambda body: _shape_problem(endpoint.records, body)
            )
            extracted_at = datetime.now(UTC)
            keying_started = time.perf_counter()
            paginator.update_state(response, data)
            with self._counts_lock:
                page_number = self.page_numbers.get(endpoint.name, 0) + 1
                self.page_numbers[endpoint.name] = page_number

            batches: list[PageBatch] = []
            stop = False
            request_url = self.http.safe_url(response.url)
            for n, spec in enumerate(endpoint.records):
                records = _records(spec, data)
                if n == 0 and window is not None:
                    records, stop = _in_window(window, records)
                rows = key_records(
                    self.cfg.name, spec.entity, records, spec.primary_key, spec.version_field
                )
                batches.append(PageBatch(rows, page_number, request_url, extracted_at, n == 0))
            keyed = time.perf_counter() - keying_started
            with self._counts_lock:
                self.result.http_s += keying_started - fetch_started
                self.result.landing_s += keyed
            if sink is not None:
                sink.extend(batches)
            else:
                children: list[PageBatch] = []
                if child is not None:
                    self._read_children(child, batches[0].rows, children)
                last = stop or not paginator.has_next_page
                state = None
                if window is not None and (last or window.spec.commit == "per_page"):
                    resume = dig(data, window.spec.resume_path) if window.spec.resume_path else None
                    cursor = window.state(resume if isinstance(resume, str) else None)
                    if cursor is not None:
                        state = {(self.cfg.name, endpoint.entity): cursor}
                # children first in the batch list: same transaction, so order is cosmetic
                self._land([*children, *batches], state)
            if stop or not paginator.has_next_page:
                return
            paginator.update_request(request)

    def _land(
        self, batches: list[PageBatch], state: dict[tuple[str, str], dict[str, Any]] | None
    ) -> None:
        started = time.perf_counter()
        results = self.landing.land(batches, run_id=self.run_id, state=state, conn=self.conn)
        with self._counts_lock:
            self.result.landing_s += time.perf_counter() - started
            for r in results:
                self.result.add(r.entity, r.records, r.landed, r.duplicates, r.first_of_page)
        if self.listener is not None:
            for b, r in zip(batches, results, strict=True):
                self.listener(
                    PageEvent(
                        self.cfg.name, r.entity, b.page_number, r.records, r.landed, r.duplicates
                    )
                )

    def _window(self, endpoint: Endpoint) -> Window | None:
        if endpoint.incremental is None:
            return None
        state = None
        if not self.options.full_refresh:
            state = read_state(self.conn, self.cfg.name, endpoint.entity)
        return Window.plan(
            endpoint.incremental,
            state,
            full_refresh=self.options.full_refresh,
            since=self.options.since,
            until=self.options.until,
        )

    @staticmethod
    def _apply_window(endpoint: Endpoint, window: Window, request: PageRequest) -> None:
        spec = window.spec
        if window.resume_cursor and spec.resume_param:
            request.params[spec.resume_param] = window.resume_cursor
            return
        values = [(spec.param, window.server_start())]
        if spec.end_param is not None:
            values.append((spec.end_param, window.server_end()))
        for param, value in values:
            if param is None or value is None:
                continue
            if spec.send == "query":
                request.params[param] = value
            elif spec.send == "body":
                request.json = request.json if request.json is not None else {}
                set_path(request.json, param, value)

    # -- parent → child -------------------------------------------------------------------

    def _read_children(self, child: Endpoint, parents: PageRows, sink: list[PageBatch]) -> None:
        """Read the children of every parent on the page whose version is not landed yet.

        A landed parent version implies its children are landed: they commit in the same
        transaction. So a later run skips those parents without a request.
        """
        if not parents.received:
            return
        keys = list(
            zip(
                parents.table.column("record_id").to_pylist(),
                parents.table.column("record_version").to_pylist(),
                strict=True,
            )
        )
        landed: set[tuple[str, str]] = set()
        if not self.options.full_refresh:
            landed = _landed_among(self.conn, self.cfg.name, parents.entity, keys)
        urls = [
            self.cfg.url(child.path, self.credentials, parent_id=record_id)
            for record_id, version in dict.fromkeys(keys)
            if (record_id, version) not in landed and not record_id.startswith("~")
        ]
        assert self._pool is not None
        sinks: list[list[PageBatch]] = [[] for _ in urls]
        futures = [
            self._pool.submit(self._read, child, url, part)
            for url, part in zip(urls, sinks, strict=True)
        ]
        for future in futures:
            future.result()  # the first failure fails the parent page: nothing of it lands
        for part in sinks:
            sink.extend(part)


def _landed_among(
    conn: duckdb.DuckDBPyConnection, source: str, entity: str, keys: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    ids = sorted({k[0] for k in keys})
    rows = conn.execute(
        "select record_id, record_version from landing.records "
        "where source = ? and entity = ? and record_id in (select unnest(?::varchar[]))",
        [source, entity, ids],
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


def _records(spec: RecordSpec, data: Any) -> list[Any]:
    found = dig(data, spec.path)
    return found if isinstance(found, list) else []


def _shape_problem(specs: tuple[RecordSpec, ...], body: Any) -> str | None:
    """Why a parsed 200 body is not a page of this endpoint, or None if it is."""
    for spec in specs:
        found = dig(body, spec.path)
        if found is None and not spec.required:
            continue
        if not isinstance(found, list):
            where = f"'{spec.path}'" if spec.path else "the body"
            return f"expected a list of {spec.entity} at {where}, got {type(found).__name__}"
    return None


def _in_window(window: Window, records: list[Any]) -> tuple[list[Any], bool]:
    """Records inside the window; ``True`` when a newest-first stream has passed its start."""
    kept = []
    stop = False
    for record in records:
        value, where = window.position(record)
        if where == "before":
            stop = window.spec.order == "desc"
            continue
        window.observe(value)
        if where == "in":
            kept.append(record)
    return kept, stop


def run_source(
    cfg: SourceConfig,
    landing: Landing,
    credentials: Credentials,
    run_id: str,
    options: RunOptions | None = None,
    listener: Listener | None = None,
) -> SourceResult:
    """Extract one source into the landing zone; raises ``ExtractError`` on failure."""
    return _SourceRun(cfg, landing, credentials, run_id, options or RunOptions(), listener).run()
