"""Run one source: page through its endpoints, land the pages with the state they advance.

This is the plain-Python core that the Prefect flow (``harmonia.pipeline.ingest``) runs once
per source, in its own thread. It knows nothing of Prefect: progress goes to an optional
listener, counters come back in a ``SourceResult``.

Landing is batched: pages are buffered per source and committed together — one transaction
for up to ``RunOptions.flush_records`` records or ``flush_seconds`` of buffering, at the end
of every endpoint, and before a failure propagates — with the newest state of the buffered
pages in the same transaction. A commit costs tens of milliseconds whatever its size, and
all sources share one writer, so one commit per page was the extract stage's bottleneck.
State therefore never runs ahead of the data: a crash loses only uncommitted pages, which the
next run reads again from the committed state.

Nested records (Meta conversations → messages): with Graph field expansion the messages come
inline in each conversation (an *edge*, see ``RecordSpec``); only a conversation with more
messages than the inline limit costs further requests (its edge's ``paging.next``). Without
expansion, a child endpoint is read once per parent record. Either way, the messages of a
conversation version not landed yet land in the same transaction as the conversations page,
so a landed conversation version implies its messages are landed, which lets a later run skip
it without a request.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import duckdb

from harmonia.extract.http import (
    ClientError,
    ExtractError,
    GarbageResponseError,
    HttpPolicy,
    SourceHTTP,
)
from harmonia.extract.landing import Landing, PageBatch, PageRows, key_raw_records
from harmonia.extract.pages import DECODE_ERRORS, DecodedPage, PageDecoder, without_field
from harmonia.extract.paginators import PageRequest, PaginationError, dig, set_path
from harmonia.extract.sources import Endpoint, RecordSpec, SourceConfig
from harmonia.extract.state import Window, read_state
from harmonia.gcpause import gc_paused
from harmonia.settings import Credentials


@dataclass(frozen=True)
class RunOptions:
    full_refresh: bool = False
    since: datetime | None = None
    until: datetime | None = None
    policy: HttpPolicy | None = None
    # landing: commit once this many records are buffered, or when the oldest buffered page
    # has waited this long (checked as pages arrive); 1 record = a commit per page
    flush_records: int = 5000
    flush_seconds: float = 2.0


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
    commits: int = 0  # landing transactions
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
        self._decoders: dict[str, PageDecoder] = {}
        self.children = {ep.parent: ep for ep in cfg.endpoints if ep.parent}
        self._counts_lock = threading.Lock()
        self._pending: list[PageBatch] = []
        # parent keys landed or taken by this run, per entity (see _fresh_parents)
        self._parents_known: dict[str, set[tuple[str, str]]] = {}
        self._pending_state: dict[tuple[str, str], dict[str, Any]] = {}
        self._pending_records = 0
        self._pending_since = 0.0
        fan_out = [*self.children.values()] + [
            ep for ep in cfg.endpoints if any(r.next_path for r in ep.records[1:])
        ]
        workers = max((ep.concurrency for ep in fan_out), default=0)
        # child endpoints (one request per parent record) are latency-bound: read a few
        # parents' children at once over the source's pooled session
        self._pool = ThreadPoolExecutor(workers, f"{cfg.name}-children") if workers else None
        self._ahead = ThreadPoolExecutor(1, f"{cfg.name}-next-page")

    def run(self) -> SourceResult:
        started = time.monotonic()
        try:
            # pages are parsed, keyed and landed with the cyclic collector paused: they hold
            # no cycles, and a collection would walk every page in flight (harmonia.gcpause)
            with gc_paused():
                for endpoint in self.cfg.endpoints:
                    if endpoint.parent is None:
                        self._read(endpoint, self.cfg.url(endpoint.path, self.credentials))
                        self._flush()
            self.result.status = "ok"
        except ExtractError:
            # the pages read before the vendor failed are good: keep them (and their state)
            self._flush()
            raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._ahead.shutdown(wait=True, cancel_futures=True)
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
        """Page through one endpoint. Each page is buffered for landing with the state it
        advances (``_land``) — or, for a child endpoint or an edge's follow-up pages, handed
        to ``sink`` to land with its parent's page."""
        window = self._window(endpoint)
        request = first_request(self.cfg, endpoint, self.credentials, url, window)
        paginator = endpoint.new_paginator()
        paginator.init_request(request)
        decoder = self._decoder(endpoint, paginator)
        child = self.children.get(endpoint.entity)
        # a top-level endpoint asks for its next page before it keys and lands this one, so
        # the vendor serves the next while this one is written (children read several at once)
        ahead = self._ahead if sink is None else None
        upcoming: Future[tuple[Any, DecodedPage, datetime]] | None = None
        while True:
            fetch_started = time.perf_counter()
            if upcoming is not None:
                response, page, extracted_at = upcoming.result()
            else:
                response, page, extracted_at = self._fetch(request, endpoint, decoder)
            upcoming = None
            data = page.data
            keying_started = time.perf_counter()
            paginator.update_state(response, data)
            with self._counts_lock:
                page_number = self.page_numbers.get(endpoint.name, 0) + 1
                self.page_numbers[endpoint.name] = page_number

            request_url = self.http.safe_url(response.url)
            primary, *sideloads = endpoint.records
            records, raws = _records(primary.path, page)
            stop = False
            if window is not None:
                kept, stop = _in_window(window, records)
                if len(kept) < len(records):
                    records, raws = [records[i] for i in kept], [raws[i] for i in kept]
            last = stop or not paginator.has_next_page
            unpageable = None
            if not last:
                try:
                    paginator.update_request(request)
                except PaginationError as exc:
                    unpageable = exc  # raised once this page is buffered
                else:
                    if ahead is not None:
                        upcoming = ahead.submit(self._fetch, request, endpoint, decoder)
            edges = [spec for spec in sideloads if spec.edge is not None]
            raws, inline = _detach(records, raws, edges)
            rows = key_raw_records(
                self.cfg.name,
                primary.entity,
                raws,
                records,
                primary.primary_key,
                primary.version_field,
            )
            batches = [PageBatch(rows, page_number, request_url, extracted_at)]
            for spec in sideloads:
                if spec.edge is not None:
                    continue
                side, side_raws = _records(spec.path, page)
                side_rows = key_raw_records(
                    self.cfg.name,
                    spec.entity,
                    side_raws,
                    side,
                    spec.primary_key,
                    spec.version_field,
                )
                batches.append(PageBatch(side_rows, page_number, request_url, extracted_at, False))
            keyed = time.perf_counter() - keying_started
            with self._counts_lock:
                self.result.http_s += keying_started - fetch_started
                self.result.landing_s += keyed
            if sink is not None:
                sink.extend(batches)
            else:
                nested: list[PageBatch] = []
                fresh = self._fresh_parents(rows) if edges or child is not None else []
                for spec in edges:
                    nested += self._read_edge(spec, endpoint, inline[spec], rows, fresh, batches[0])
                if child is not None:
                    self._read_children(child, rows, fresh, nested)
                state = None
                if window is not None and (last or window.spec.commit == "per_page"):
                    resume = dig(data, window.spec.resume_path) if window.spec.resume_path else None
                    cursor = window.state(resume if isinstance(resume, str) else None)
                    if cursor is not None:
                        state = {(self.cfg.name, endpoint.entity): cursor}
                # nested pages first in the batch list: same transaction, so order is cosmetic
                self._land([*nested, *batches], state)
            if unpageable is not None:
                # after this page is buffered: ``run`` commits what was read, then fails
                raise ClientError(self.cfg.name, f"{endpoint.name}: {unpageable}") from unpageable
            if last:
                return

    def _fetch(
        self, request: PageRequest, endpoint: Endpoint, decoder: PageDecoder
    ) -> tuple[Any, DecodedPage, datetime]:
        """One page of ``endpoint``: the response, the decoded page, when it arrived."""
        response, page = self.http.fetch(
            request,
            validate=lambda body: _shape_problem(endpoint.records, body.data),
            decode=decoder.decode,
        )
        return response, page, datetime.now(UTC)

    def _decoder(self, endpoint: Endpoint, paginator: Any) -> PageDecoder:
        """The endpoint's page decoder: its record lists kept as text, and of each record the
        fields this run reads (key, version, incremental cursor, what the paginator reads, the
        inline edges)."""
        decoder = self._decoders.get(endpoint.name)
        if decoder is None:
            paths = [spec.path for spec in endpoint.records if spec.edge is None]
            fields = [
                f
                for s in endpoint.records
                if s.edge is None
                for f in (s.primary_key, s.version_field)
            ]
            if endpoint.incremental is not None:
                fields.append(endpoint.incremental.cursor_field)
            fields += paginator.record_fields()
            edges = [spec.edge[1] for spec in endpoint.records if spec.edge is not None]
            decoder = PageDecoder(paths, [f.split(".")[0] for f in fields], edges)
            self._decoders[endpoint.name] = decoder
        return decoder

    def _land(
        self, batches: list[PageBatch], state: dict[tuple[str, str], dict[str, Any]] | None
    ) -> None:
        """Buffer a page (its batches and the state it advances); commit when due."""
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.extend(batches)
        self._pending_state.update(state or {})
        self._pending_records += sum(b.rows.received for b in batches)
        if (
            self._pending_records >= self.options.flush_records
            or time.monotonic() - self._pending_since >= self.options.flush_seconds
        ):
            self._flush()

    def _flush(self) -> None:
        """Commit the buffered pages and the newest state they advance in ONE transaction.

        The state buffered is the one of the last page that carried state: it covers exactly
        the pages committed with it (or earlier ones), never a page still unread.
        """
        if not self._pending:
            return
        batches, state = self._pending, self._pending_state or None
        self._pending, self._pending_state, self._pending_records = [], {}, 0
        started = time.perf_counter()
        results = self.landing.land(batches, run_id=self.run_id, state=state, conn=self.conn)
        with self._counts_lock:
            self.result.landing_s += time.perf_counter() - started
            self.result.commits += 1
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

    # -- parent → child, and edges -------------------------------------------------------

    def _fresh_parents(self, parents: PageRows) -> list[int]:
        """Positions of the page's parent records whose version is not landed yet.

        A landed parent version implies its children are landed: they commit in the same
        transaction. So a later run skips those parents without a request.
        """
        if not parents.received:
            return []
        keys = list(
            zip(
                parents.table.column("record_id").to_pylist(),
                parents.table.column("record_version").to_pylist(),
                strict=True,
            )
        )
        known = self._parents_known.get(parents.entity)
        if known is None:
            # one scan per run, not one per page: a lookup per page scanned landing.records
            # every time, which made a 1M-contact first run quadratic
            known = (
                set()
                if self.options.full_refresh
                else _landed(self.conn, self.cfg.name, parents.entity)
            )
            self._parents_known[parents.entity] = known
        fresh = []
        for n, key in enumerate(keys):
            if key in known or key[0].startswith("~"):
                continue  # "~": no usable id (malformed), nothing to ask for
            # taken now: its children go into the same buffer and commit with it (or the run
            # fails and this set goes with it), so a repeat later in the run is skipped too
            known.add(key)
            fresh.append(n)
        return fresh

    def _read_children(
        self, child: Endpoint, parents: PageRows, fresh: list[int], sink: list[PageBatch]
    ) -> None:
        """Read the children (one endpoint request per parent) of the fresh parents."""
        if not fresh:
            return
        ids = parents.table.column("record_id").to_pylist()
        urls = [self.cfg.url(child.path, self.credentials, parent_id=ids[n]) for n in fresh]
        self._fan_out(child, urls, sink)

    def _read_edge(
        self,
        spec: RecordSpec,
        endpoint: Endpoint,
        inline: list[tuple[Any, Any]],
        parents: PageRows,
        fresh: list[int],
        page: PageBatch,
    ) -> list[PageBatch]:
        """The fresh parents' records of one edge: those inline and, for an edge with more,
        the pages its ``next_path`` leads to.

        The inline records of each parent are one batch (a sideload of the parents' page)
        whose ``request_url`` is the page's with the fragment ``#/<parent id>/<edge>``: Graph's
        address of the edge the records belong to (``/{conversation-id}/messages``), which is
        how a message is tied to its conversation downstream, exactly as the request URL of a
        ``/{conversation-id}/messages`` page ties it.
        """
        assert spec.edge is not None
        _, edge_name, items_key = spec.edge
        ids = parents.table.column("record_id").to_pylist()
        decoder = self._decoders.get(f"edge {spec.path}")
        if decoder is None:
            fields = [spec.primary_key.split(".")[0], spec.version_field.split(".")[0]]
            decoder = self._decoders[f"edge {spec.path}"] = PageDecoder([items_key], fields)
        records: list[Any] = []
        raws: list[Any] = []
        owners: list[tuple[str, int]] = []  # (parent id, its number of inline records)
        follow: list[str] = []
        for n in fresh:
            raw = inline[n][1] if n < len(inline) else None
            if raw is None:
                continue  # the parent has no such edge: nothing inline
            try:
                container = decoder.decode(raw)
            except DECODE_ERRORS as exc:
                raise GarbageResponseError(
                    self.cfg.name,
                    f"unusable {edge_name} of {ids[n]} in {page.request_url}: {exc}",
                ) from exc
            if not isinstance(container.data, dict):
                continue  # a malformed edge: nothing inline
            found, found_raws = _records(items_key, container)
            records += found
            raws += found_raws
            owners.append((ids[n], len(found)))
            link = dig(container.data, spec.next_path) if spec.next_path else None
            if isinstance(link, str) and link:
                follow.append(link)
        rows = key_raw_records(
            self.cfg.name, spec.entity, raws, records, spec.primary_key, spec.version_field
        )
        out: list[PageBatch] = []
        offset = 0
        for parent_id, count in owners:
            if count:
                part = PageRows(rows.source, rows.entity, rows.table.slice(offset, count))
                url = f"{page.request_url}#/{quote(parent_id, safe='')}/{edge_name}"
                out.append(PageBatch(part, page.page_number, url, page.extracted_at, False))
            offset += count
        if follow:
            rest = Endpoint(
                name=f"{endpoint.name}.{spec.entity}",
                path="",
                records=(RecordSpec(spec.entity, items_key, spec.primary_key, spec.version_field),),
                paginator="next_url",
                paginator_options={"next_path": spec.next_path},
            )
            self._fan_out(rest, follow, out)
        return out

    def _fan_out(self, endpoint: Endpoint, urls: list[str], sink: list[PageBatch]) -> None:
        """Read ``endpoint`` from each URL (a few at once); their pages go to ``sink`` in URL
        order. The first failure fails the parent page: nothing of it lands."""
        assert self._pool is not None
        sinks: list[list[PageBatch]] = [[] for _ in urls]
        futures = [
            self._pool.submit(self._read, endpoint, url, part)
            for url, part in zip(urls, sinks, strict=True)
        ]
        for future in futures:
            future.result()
        for part in sinks:
            sink.extend(part)


def first_request(
    cfg: SourceConfig, endpoint: Endpoint, credentials: Credentials, url: str, window: Window | None
) -> PageRequest:
    """An endpoint's first page request: its parameters and rendered body, with the window's
    bounds where it has one (the bench's floor and dlt comparison send the same)."""
    request = PageRequest(
        endpoint.method,
        url,
        params=copy.deepcopy(endpoint.params),
        json=cfg.render_body(endpoint.body, credentials),
    )
    if window is not None:
        _SourceRun._apply_window(endpoint, window, request)
    return request


def _landed(conn: duckdb.DuckDBPyConnection, source: str, entity: str) -> set[tuple[str, str]]:
    """Every (record_id, record_version) of ``source``/``entity`` already landed."""
    rows = conn.execute(
        "select record_id, record_version from landing.records where source = ? and entity = ?",
        [source, entity],
    ).fetchall()
    return {(record_id, version) for record_id, version in rows}


def _records(path: str | None, page: DecodedPage) -> tuple[list[Any], list[Any]]:
    """The records at ``path`` in a page (the fields read of each) and their JSON text."""
    found = dig(page.data, path)
    if not isinstance(found, list):
        return [], []
    return found, page.raws[path]


def _detach(
    records: list[Any], raws: list[Any], edges: list[RecordSpec]
) -> tuple[list[Any], dict[RecordSpec, list[tuple[Any, Any]]]]:
    """The primary records' text without their edges, and per edge spec the (record, edge
    text) pairs in record order. A record's text is rewritten only when it carries an edge."""
    inline: dict[RecordSpec, list[tuple[Any, Any]]] = {spec: [] for spec in edges}
    if not edges:
        return raws, inline
    out = []
    for record, raw in zip(records, raws, strict=True):
        for spec in edges:
            assert spec.edge is not None
            container = record.get(spec.edge[1]) if isinstance(record, dict) else None
            inline[spec].append((record, container))
            if container is not None:
                raw = without_field(raw, spec.edge[1])
        out.append(raw)
    return out, inline


def _shape_problem(specs: tuple[RecordSpec, ...], body: Any) -> str | None:
    """Why a parsed 200 body is not a page of this endpoint, or None if it is."""
    for spec in specs:
        if spec.edge is not None:
            continue  # inside the primary records: absent or odd edges are the records' own
        found = dig(body, spec.path)
        if found is None and not spec.required:
            continue
        if not isinstance(found, list):
            where = f"'{spec.path}'" if spec.path else "the body"
            return f"expected a list of {spec.entity} at {where}, got {type(found).__name__}"
    return None


def _in_window(window: Window, records: list[Any]) -> tuple[list[int], bool]:
    """Positions of the records inside the window; ``True`` when a newest-first stream has
    passed its start."""
    kept = []
    stop = False
    for n, record in enumerate(records):
        value, where = window.position(record)
        if where == "before":
            stop = window.spec.order == "desc"
            continue
        window.observe(value)
        if where == "in":
            kept.append(n)
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
