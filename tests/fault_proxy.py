"""A fault-injecting reverse proxy on loopback, in front of the demo channel APIs.

The demo server serves every record-level defect of ``docs/demo-apis.md`` but no page-level
garbage (a truncated JSON page, an HTML error page with status 200, an empty body) and no
explicit nulls. This proxy forwards every request over real HTTP to the demo server and, per
source, can damage what comes back:

* ``truncate`` — the JSON body cut in half (status 200);
* ``html`` — an HTML error page with status 200, like a vendor's load balancer;
* ``empty`` — status 200 and no body;
* ``null`` — the first record of each page gets ``null`` in a field the models require
  (``NULL_FIELDS``); the ids damaged are kept in ``FaultProxy.nulled``.

``after`` lets the first requests of a source through untouched (a fault mid-run). The client
sees the proxy's host in every link: the ``Host`` header is forwarded, so the demo server writes
its absolute paging links (Meta, Zendesk, HubSpot) back to the proxy.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

#: (path suffix the page comes from, where the records are in it, their id, the required
#: field set to null) per source; None = the page is the bare list of records.
NULL_FIELDS: dict[str, tuple[str | tuple[str, ...], str | None, str, str]] = {
    "voice": ("/search-contacts", "Contacts", "ContactId", "InitiationTimestamp"),
    "sms": ("/Messages.json", "messages", "sid", "status"),
    "email": ("/cursor.json", "tickets", "id", "created_at"),
    "chat": ("/conversations/search", "conversations", "id", "created_at"),
    "messenger": ("/conversations", "data", "id", "participants"),
    "surveys": ("/survey_responses.json", None, "id", "score"),
    "crm": (("/objects/contacts", "/objects/contacts/search"), "results", "id", "createdAt"),
}
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>upstream hiccup</body></html>"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


@dataclass
class Rule:
    mode: str  # truncate | html | empty | null
    after: int = 0  # requests of the source passed untouched first


class FaultProxy:
    """``with FaultProxy(upstream_base_url) as proxy:`` … ``proxy.rules["sms"] = Rule("empty")``;
    ``proxy.base_url`` is what the pipeline is pointed at."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: dict[str, Rule] = {}
        self.seen: dict[str, int] = {}
        self.damaged: dict[str, int] = {}
        self.nulled: dict[str, set[str]] = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._forward(self)

            def do_POST(self) -> None:
                proxy._forward(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # request lines carry the access_token query: never print them

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(handler.command, handler.path, body=body, headers=headers)
            response = conn.getresponse()
            status, out_headers, payload = response.status, response.getheaders(), response.read()
        finally:
            conn.close()
        source = handler.path.split("/")[1]
        with self.lock:
            self.seen[source] = self.seen.get(source, 0) + 1
            rule = self.rules.get(source)
            hit = rule is not None and self.seen[source] > rule.after and status == 200
            if hit:
                self.damaged[source] = self.damaged.get(source, 0) + 1
        ctype = dict((k.lower(), v) for k, v in out_headers).get("content-type", "")
        if hit and rule is not None:
            if rule.mode == "truncate":
                payload = payload[: len(payload) // 2]
            elif rule.mode == "html":
                payload, ctype = HTML_PAGE, "text/html; charset=utf-8"
            elif rule.mode == "empty":
                payload = b""
            elif rule.mode == "null":
                payload = self._null_first_record(source, handler.path, payload)
        handler.send_response(status)
        for key, value in out_headers:
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-type":
                handler.send_header(key, value)
        if ctype:
            handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _null_first_record(self, source: str, path: str, payload: bytes) -> bytes:
        suffix, where, key, field = NULL_FIELDS[source]
        if not path.split("?")[0].endswith(suffix):
            return payload
        page = orjson.loads(payload)
        records = page if where is None else page.get(where)
        if not records:
            return payload
        records[0][field] = None
        with self.lock:
            self.nulled.setdefault(source, set()).add(str(records[0][key]))
        return orjson.dumps(page)
