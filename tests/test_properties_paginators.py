"""Property-based tests (hypothesis) of the paginators: for any collection and page size, each
paginator, driven the way the runner drives it, reads every record exactly once and stops.

The vendors' paging rules are written here as small pure functions of the request (cursor in
the query or body, next links absolute or host-relative, page numbers until an empty page,
Zendesk's end flag, HubSpot's search with its result cap). The HTTP side of the same
paginators is covered against the demo APIs in ``tests/test_extract_*.py``; these tests
explore the edges those worlds rarely hit: empty collections, one-record pages, a page size
larger than the collection, ties at HubSpot's cap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from harmonia.extract.paginators import (
    CappedSearchPaginator,
    CursorPaginator,
    EndOfStreamCursorPaginator,
    NextURLPaginator,
    PageNumberPaginator,
    PageRequest,
    PaginationError,
    dig,
)
from harmonia.extract.state import to_epoch
from hypothesis import given
from hypothesis import strategies as st

BASE = "https://vendor.example/api/items"
ids = st.lists(st.integers(0, 10**6), unique=True, max_size=60).map(
    lambda xs: [f"r{x}" for x in xs]
)
page_sizes = st.integers(1, 25)

Api = Callable[[PageRequest], Any]


def drive(paginator: Any, api: Api, records_path: str | None, request: PageRequest) -> list:
    """Page like ``harmonia.extract.runner`` does; returns every record read, in order."""
    paginator.init_request(request)
    seen: list = []
    for _ in range(1000):
        data = api(request)
        response = requests.Response()
        response.url = request.url + ("?" + urlencode(request.params) if request.params else "")
        page = dig(data, records_path) if records_path else data
        seen.extend(page or [])
        paginator.update_state(response, data)
        if not paginator.has_next_page:
            return seen
        paginator.update_request(request)
    raise AssertionError("the paginator never stopped")


@given(records=ids, size=page_sizes, location=st.sampled_from(["query", "body"]))
def test_cursor_reads_everything_once(records: list[str], size: int, location: str) -> None:
    def api(request: PageRequest) -> dict:
        box = request.params if location == "query" else (request.json or {})
        start = int(box.get("after") or 0)
        nxt = start + size if start + size < len(records) else None
        return {"results": records[start : start + size], "paging": {"next": {"after": nxt}}}

    paginator = CursorPaginator("paging.next.after", "after", location)
    request = PageRequest("POST", BASE, json={} if location == "body" else None)
    assert drive(paginator, api, "results", request) == records


@given(records=ids, size=page_sizes, relative=st.booleans())
def test_next_url_reads_everything_once(records: list[str], size: int, relative: bool) -> None:
    def api(request: PageRequest) -> dict:
        query = dict(parse_qsl(urlsplit(request.url).query)) | request.params
        start = int(query.get("offset", 0))
        link = None
        if start + size < len(records):
            path = f"/api/items?{urlencode({'offset': start + size, 'PageSize': size})}"
            link = path if relative else "https://vendor.example" + path
        return {"data": records[start : start + size], "paging": {"next": link}}

    paginator = NextURLPaginator("paging.next")
    request = PageRequest("GET", BASE, params={"PageSize": size})
    assert drive(paginator, api, "data", request) == records


@given(records=ids, size=page_sizes, base=st.sampled_from([0, 1]))
def test_page_number_reads_everything_once(records: list[str], size: int, base: int) -> None:
    def api(request: PageRequest) -> list:
        n = int(request.params["page"]) - base
        return records[n * size : (n + 1) * size]  # a bare array; empty past the end

    request = PageRequest("GET", BASE)
    assert drive(PageNumberPaginator("page", base), api, None, request) == records


@given(records=ids, size=page_sizes)
def test_end_of_stream_cursor_reads_everything_once_and_keeps_the_last_cursor(
    records: list[str], size: int
) -> None:
    def api(request: PageRequest) -> dict:
        assert ("start_time" in request.params) != ("cursor" in request.params)
        start = int(request.params.get("cursor") or 0)
        end = min(start + size, len(records))
        return {
            "tickets": records[start:end],
            "after_cursor": str(end),
            "end_of_stream": end >= len(records),
        }

    paginator = EndOfStreamCursorPaginator()
    request = PageRequest("GET", BASE, params={"start_time": 0})
    assert drive(paginator, api, "tickets", request) == records
    # the state a later incremental run resumes from: the end of what was read
    assert paginator.cursor == str(len(records))


# -- HubSpot search: at most `cap` results per query, sorted ascending ------------------------

T0 = 1_790_000_000_000  # epoch ms


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def hubspot(contacts: list[tuple[str, int]], cap: int) -> Api:
    """A search over ``contacts`` (id, lastmodifieddate ms), ``lastmodifieddate GTE`` the
    filter, sorted by it (then id); the page past the cap is HubSpot's 400."""

    def api(request: PageRequest) -> dict:
        body = request.json or {}
        since = to_epoch(dig(body, "filterGroups.0.filters.0.value")) or 0.0
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
        if after >= cap:
            raise AssertionError(f"HTTP 400: paging past the {cap}-result cap")
        hits = sorted((ms, cid) for cid, ms in contacts if ms / 1000 >= since)
        page = hits[after : min(after + limit, cap)]
        more = after + len(page) < len(hits)
        return {
            "results": [
                {"id": cid, "properties": {"lastmodifieddate": _iso_ms(ms)}} for ms, cid in page
            ],
            "paging": {"next": {"after": str(after + len(page))}} if more else None,
        }

    return api


def capped(cap: int) -> CappedSearchPaginator:
    return CappedSearchPaginator(
        "paging.next.after",
        "after",
        "body",
        sort_path="properties.lastmodifieddate",
        restart_param="filterGroups.0.filters.0.value",
        result_cap=cap,
    )


def search_request(limit: int) -> PageRequest:
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": 0}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "limit": limit,
    }
    return PageRequest("POST", BASE, json=body)


@given(
    # seconds between consecutive changes: 0 makes ties
    gaps=st.lists(st.integers(0, 3), min_size=0, max_size=80),
    limit=st.integers(1, 12),
    cap=st.integers(1, 40),
)
def test_capped_search_reads_everything_or_says_where_it_cannot(
    gaps: list[int], limit: int, cap: int
) -> None:
    contacts, ms = [], T0
    for n, gap in enumerate(gaps):
        ms += gap * 1000
        contacts.append((f"c{n}", ms))
    paginator = capped(cap)
    try:
        read = drive(paginator, hubspot(contacts, cap), "results", search_request(limit))
    except PaginationError as exc:
        # only when a whole query's results (what it serves before the cap) share one
        # timestamp: searching again from it would serve the same results forever
        per_query = cap if limit > cap else limit * (cap // limit)
        biggest_tie = max(sum(1 for _, t in contacts if t == m) for _, m in contacts)
        assert biggest_tie >= per_query, exc
        assert "share properties.lastmodifieddate" in str(exc)
        return
    assert {r["id"] for r in read} == {cid for cid, _ in contacts}
    # repeats only come from restarts at the boundary value (landing drops them by key)
    assert len(read) - len(contacts) <= paginator.restarts * cap


def test_capped_search_ties_over_the_cap_fail_clearly() -> None:
    contacts = [(f"c{n}", T0) for n in range(30)]
    with pytest.raises(PaginationError, match="more than 10 search results share"):
        drive(capped(10), hubspot(contacts, 10), "results", search_request(5))
