"""dlt ``rest_api`` side by side with harmonia's extract+land: ``harmonia bench --with-dlt``.

For each of the seven sources, the dlt ``RESTAPIConfig`` is derived from the source's own
``SourceConfig`` (``harmonia.extract.sources``): the same base URL, auth, method, path, query
parameters and JSON body as harmonia's first (full) run sends, the same paginator expressed in
dlt's terms, the same record paths. Both sides then read the same pages and records; the
comparison checks that per entity and reports it.

How each source maps (and where dlt ``rest_api`` needs help, said in ``notes``):

* voice (Connect ``POST`` search, ``NextToken`` in the body): dlt ``cursor`` paginator with
  ``cursor_body_path``; bearer auth. Real Connect signs with SigV4, which ``rest_api`` has no
  auth for: the demo's bearer token is what is compared.
* sms (Twilio ``next_page_uri``, host-relative): ``json_link`` (dlt joins relative links).
* email (Zendesk cursor export): ``rest_api`` has no paginator that stops on a true end flag
  (``end_of_stream``; its ``has_more_path`` wants the opposite polarity), so a ten-line
  subclass of dlt's cursor paginator stops on it. The sideloaded ``metric_sets`` sit next to
  ``tickets``: one resource selects the whole page and dlt's normalizer splits both lists into
  nested tables, so each page is read once (two resources would read every page twice).
* chat (Intercom ``POST`` search): ``cursor`` with ``cursor_body_path``; bearer + a header.
* messenger: ``json_link`` on ``paging.next``; messages either as a child resource
  (``{resources.conversations.id}`` in the path, one request per conversation) or, when the
  source inlines them by Graph field expansion, as dlt's nested table of the conversation.
* surveys (Delighted, bare array, ``page`` until empty): ``page_number``, base page 1.
* crm (HubSpot ``POST`` search, ``after`` in the body): ``cursor`` with ``cursor_body_path``;
  harmonia restarts the search at HubSpot's 10,000-result cap, which rest_api cannot express
  (the demo worlds compared stay under it per search).

Incremental: harmonia's first run sends its cursor start (0) and, for Connect, an end; the
dlt configs send the same values as static parameters rather than using dlt's ``incremental``
(the demo's malformed records — missing cursors, a date string where an epoch is — make dlt's
cursor tracking raise unless configured around it, and leaving it out only makes dlt faster).
``write_disposition`` is ``append`` (no merge/dedupe staging: again dlt's fastest choice), every
resource ``parallelized``, and the loader writes ``jsonl`` files (``LOADER_FILE_FORMAT``).
Time = ``pipeline.run`` (extract, normalize, load) per source.

A source dlt fails to load is retried in the next format of ``LOADER_FILE_FORMATS`` (its failure,
scrubbed of the source's secrets, goes to the row's ``notes``); one no format loads gets an
``error`` and is left out of the totals. The benchmark carries on either way. (At 100k contacts
dlt's DuckDB ``jsonl`` loader rejects a chat key first seen past ``read_json``'s sample.)
"""

from __future__ import annotations

import copy
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonia.bench.run import first_request
from harmonia.extract.http import redact_params_in_text
from harmonia.extract.sources import Endpoint, RecordSpec, SourceConfig


@dataclass
class DltPlan:
    """A source's dlt config plus where each harmonia entity's records land in dlt's tables."""

    source: str
    config: dict[str, Any]
    tables: dict[str, str]  # harmonia entity -> dlt table
    notes: list[str] = field(default_factory=list)


def _snake(name: str) -> str:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(name)


def _end_flag_cursor_paginator(cursor_path: str, param: str, end_path: str) -> Any:
    """dlt's JSON cursor paginator that also stops when ``end_path`` is true (Zendesk)."""
    from dlt.common import jsonpath
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

    class EndFlagCursorPaginator(JSONResponseCursorPaginator):
        def update_state(self, response: Any, data: Any = None) -> None:
            super().update_state(response, data)
            if any(jsonpath.find_values(end_path, response.json())):
                self._has_next_page = False

    return EndFlagCursorPaginator(cursor_path=cursor_path, cursor_param=param)


def _paginator(endpoint: Endpoint) -> Any:
    opts = dict(endpoint.paginator_options)
    kind = endpoint.paginator
    if kind in ("cursor", "capped_search"):
        # capped_search is HubSpot's search cursor plus a restart at its 10,000-result cap;
        # rest_api has no restart, so dlt pages the plain cursor (equal below the cap)
        where = "cursor_body_path" if opts.get("location") == "body" else "cursor_param"
        return {"type": "cursor", "cursor_path": opts["cursor_path"], where: opts["param"]}
    if kind == "next_url":
        return {"type": "json_link", "next_url_path": opts["next_path"]}
    if kind == "page_number":
        return {
            "type": "page_number",
            "base_page": opts.get("base_page", 1),
            "page_param": opts.get("param", "page"),
            "total_path": None,
            "stop_after_empty_page": True,
        }
    if kind == "end_of_stream_cursor":
        return _end_flag_cursor_paginator(
            opts.get("cursor_path", "after_cursor"),
            opts.get("param", "cursor"),
            opts.get("end_path", "end_of_stream"),
        )
    if kind == "single_page":
        return {"type": "single_page"}
    raise NotImplementedError(f"no dlt paginator mapped for {kind!r}")


def _auth(cfg: SourceConfig, credentials: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """dlt auth config and fixed headers for a source (as ``SourceConfig.build_auth``)."""
    spec = cfg.effective_auth(credentials)
    secret = getattr(credentials, spec.credential_field).get_secret_value()
    user = getattr(credentials, spec.user_field) if spec.user_field else None
    if spec.kind == "bearer":
        auth = {"type": "bearer", "token": secret}
    elif spec.kind == "basic":
        auth = {
            "type": "http_basic",
            "username": user if user is not None else secret,
            "password": secret if user else "",
        }
    elif spec.kind == "zendesk_token":
        auth = {"type": "http_basic", "username": f"{user}/token", "password": secret}
    elif spec.kind == "query_param":
        auth = {
            "type": "api_key",
            "name": spec.param or "access_token",
            "api_key": secret,
            "location": "query",
        }
    else:  # sigv4: rest_api has no AWS signing; a custom AuthConfigBase would be needed
        raise NotImplementedError(f"{cfg.name}: dlt rest_api has no {spec.kind} auth")
    return auth, dict(spec.headers)


def _nested_table(resource: str, path: str) -> str:
    return "__".join([_snake(resource), *(_snake(p) for p in path.split(".") if p != "*")])


def plan_source(cfg: SourceConfig, credentials: Any) -> DltPlan:
    """The dlt ``RESTAPIConfig`` for one source, derived from its ``SourceConfig``."""
    assert cfg.base_url is not None
    auth, headers = _auth(cfg, credentials)
    by_name = {ep.name: ep for ep in cfg.endpoints}
    resources: list[dict[str, Any]] = []
    tables: dict[str, str] = {}
    notes: list[str] = []
    for endpoint in cfg.endpoints:
        primary, *sideloads = endpoint.records
        if endpoint.parent is None:
            url = cfg.url(endpoint.path, credentials)
            request = first_request(cfg, endpoint, credentials, url)
            path = request.url.removeprefix(cfg.base_url)
            params: dict[str, Any] = dict(request.params)
            body = request.json
        else:
            parent = by_name[endpoint.parent]
            ref = "{resources." + parent.name + "." + parent.records[0].primary_key + "}"
            path = cfg.url(endpoint.path, credentials, parent_id=ref).removeprefix(cfg.base_url)
            params, body = dict(endpoint.params), None
            notes.append(f"{endpoint.name}: child resource, one request per {parent.name} record")
        selector, selected = _selector(endpoint.name, primary, sideloads)
        if sideloads and selector == "$":
            notes.append(
                f"{endpoint.name}: sideloads {[s.entity for s in sideloads]} next to "
                f"{primary.entity}: the whole page is the row, dlt nests each list"
            )
        elif sideloads:
            notes.append(
                f"{endpoint.name}: {[s.entity for s in sideloads]} inline per record (field "
                "expansion): dlt nested tables"
            )
            if any(getattr(s, "next_path", None) for s in sideloads):
                notes.append(
                    f"{endpoint.name}: rest_api cannot follow an inline list's own paging "
                    "(records past the first inline page are missed: see the counts)"
                )
        if endpoint.paginator == "end_of_stream_cursor":
            notes.append(f"{endpoint.name}: custom paginator (stop on end_of_stream)")
        ep_cfg: dict[str, Any] = {
            "path": path,
            "method": endpoint.method,
            "paginator": _paginator(endpoint),
            "data_selector": selector,
        }
        if params:
            ep_cfg["params"] = {k: _escape(v) for k, v in params.items()}
        if body is not None:
            ep_cfg["json"] = _escape(body)
        resources.append({"name": _snake(endpoint.name), "endpoint": ep_cfg})
        tables.update(selected)
    config: dict[str, Any] = {
        "client": {"base_url": cfg.base_url + "/", "auth": auth}
        | ({"headers": headers} if headers else {}),
        "resource_defaults": {"write_disposition": "append", "parallelized": True},
        "resources": resources,
    }
    return DltPlan(cfg.name, config, tables, notes)


def _escape(value: Any) -> Any:
    """dlt formats ``{...}`` in params and bodies as placeholders: double literal braces
    (Graph field expansion ``messages{id,...}``) so they reach the server as they are."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def _selector(
    resource: str, primary: RecordSpec, sideloads: list[RecordSpec]
) -> tuple[str, dict[str, str]]:
    """The data selector of an endpoint's resource and each entity's dlt table.

    A sideload nested in each primary record (an *edge*, ``data[*].messages.data[*]``) lands
    in dlt's nested table of the resource; sideloads next to the primary list make the whole
    page the row, each list a nested table of it."""
    base = primary.path
    edges = [(s, getattr(s, "edge", None)) for s in sideloads]
    if all(e is not None and e[0] == base for _, e in edges):
        out = {primary.entity: _snake(resource)}
        for s, e in edges:
            assert e is not None
            out[s.entity] = _nested_table(resource, f"{e[1]}.{e[2]}")
        return base or "$", out
    out = {s.entity: _nested_table(resource, s.path or "") for s in (primary, *sideloads)}
    return "$", out


# --------------------------------------------------------------------------------------------
# running it


@dataclass
class SideBySide:
    source: str
    harmonia_s: float
    harmonia_records: dict[str, int]
    harmonia_requests: int
    harmonia_runner_s: float
    dlt_s: float
    dlt_records: dict[str, int]
    dlt_steps: dict[str, float]
    notes: list[str]
    error: str | None = None
    loader_file_format: str | None = None

    def as_dict(self) -> dict[str, Any]:
        h = sum(self.harmonia_records.values())
        d = sum(self.dlt_records.values())
        return {
            "source": self.source,
            "harmonia_s": round(self.harmonia_s, 3),
            "harmonia_records": self.harmonia_records,
            "harmonia_records_per_s": round(h / self.harmonia_s, 1) if self.harmonia_s else None,
            "harmonia_requests": self.harmonia_requests,
            "harmonia_runner_s": round(self.harmonia_runner_s, 3),
            "dlt_s": round(self.dlt_s, 3),
            "dlt_records": self.dlt_records,
            "dlt_records_per_s": round(d / self.dlt_s, 1) if self.dlt_s else None,
            "dlt_steps_s": {k: round(v, 3) for k, v in self.dlt_steps.items()},
            "records_match": self.harmonia_records == self.dlt_records,
            "throughput_ratio": (
                round((h / self.harmonia_s) / (d / self.dlt_s), 2)
                if self.harmonia_s and self.dlt_s and d
                else None
            ),
            "notes": self.notes,
            "error": self.error,
            "loader_file_format": self.loader_file_format,
        }


#: dlt's loader file format for duckdb: its default ``insert_values`` (SQL INSERT text) was
#: 3-5x slower than ``parquet`` or ``jsonl`` at 20k contacts (2026-11-23); ``jsonl`` was the
#: fastest of the three, so dlt gets it
LOADER_FILE_FORMAT = "jsonl"
#: tried in order for each source until one loads: ``parquet`` types its columns from dlt's own
#: schema, so a key first seen late cannot fail it the way DuckDB's ``read_json`` can
LOADER_FILE_FORMATS = (LOADER_FILE_FORMAT, "parquet")


def _dlt_env() -> None:
    # no telemetry calls from a benchmark, and dlt's own files stay in the bench's workdir. dlt
    # logs a failed job's traceback at ERROR, request URLs included (Messenger's carries its
    # access_token): the compare reports each failure itself, scrubbed, so dlt stays quiet
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")


def run_dlt_source(
    plan: DltPlan, workdir: Path, loader_file_format: str = LOADER_FILE_FORMAT
) -> tuple[float, dict[str, int], dict[str, float]]:
    """Load one source with dlt into ``workdir/dlt.duckdb`` (dataset = the source's name);
    returns seconds for ``pipeline.run``, rows per harmonia entity, dlt's step times."""
    _dlt_env()
    import dlt
    import duckdb
    from dlt.sources.rest_api import rest_api_source

    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "dlt.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{plan.source}",
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name=plan.source,
        pipelines_dir=str(workdir / "dlt-pipelines"),
        dev_mode=False,
    )
    pipeline.drop()  # a fresh pipeline: no state from an earlier repeat
    started = time.perf_counter()
    source = rest_api_source(copy.deepcopy(plan.config), name=plan.source)
    pipeline.run(source, loader_file_format=loader_file_format)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    steps: dict[str, float] = {}
    trace = pipeline.last_trace
    for step in trace.steps if trace else []:
        if step.finished_at and step.started_at:
            steps[step.step] = (step.finished_at - step.started_at).total_seconds()
    counts: dict[str, int] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [plan.source],
            ).fetchall()
        }
        for entity, table in plan.tables.items():
            if table in present:
                (n,) = con.execute(f'select count(*) from "{plan.source}"."{table}"').fetchone()  # type: ignore[misc]
            else:
                n = 0  # dlt creates no table for a list that was empty on every page
            counts[entity] = int(n)
    return seconds, counts, steps


_SAFE = re.compile(r"^[a-z0-9_]+$")
_ERROR_CHARS = 400


def failure_text(exc: BaseException, secrets: list[str]) -> str:
    """One line about a failed dlt load, without ``secrets`` (the source's, from
    ``SourceConfig.secrets``), at most 400 chars. dlt wraps the cause (``PipelineStepFailed``):
    the innermost exception names it."""
    inner = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = f"{type(inner).__name__}: {inner}"
    for secret in secrets:
        text = text.replace(secret, "REDACTED")
    text = redact_params_in_text(" ".join(text.split()))
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def compare(
    base_url: str,
    workdir: Path,
    run_harmonia: Callable[[str, Path], tuple[float, dict[str, int], int, float]],
    sources: list[str] | None = None,
    say: Callable[[str], None] = print,
    formats: tuple[str, ...] = LOADER_FILE_FORMATS,
) -> list[SideBySide]:
    """Per source: harmonia's extract+land alone (``run_harmonia(source, warehouse)``), then
    dlt's load of the same pages, in the first of ``formats`` that loads; the server's clock
    must not move in between."""
    from harmonia.extract.sources import resolve_sources
    from harmonia.settings import Credentials

    credentials = Credentials()
    out: list[SideBySide] = []
    for cfg in resolve_sources(sources, base_url):
        assert _SAFE.match(cfg.name), cfg.name
        h_dir = workdir / f"harmonia-{cfg.name}"
        d_dir = workdir / f"dlt-{cfg.name}"
        h_dir.mkdir(parents=True, exist_ok=True)
        d_dir.mkdir(parents=True, exist_ok=True)
        h_s, h_records, h_requests, h_runner_s = run_harmonia(cfg.name, h_dir / "warehouse.duckdb")
        try:
            plan = plan_source(cfg, credentials)
        except NotImplementedError as exc:
            out.append(
                SideBySide(
                    cfg.name, h_s, h_records, h_requests, h_runner_s, 0, {}, {}, [], str(exc)
                )
            )
            say(f"dlt {cfg.name}: not expressible: {exc}")
            continue
        notes = list(plan.notes)
        for fmt in formats:
            try:
                d_s, d_records, steps = run_dlt_source(plan, d_dir / fmt, fmt)
            except Exception as exc:  # dlt's failure is the measurement's, not the bench's
                text = failure_text(exc, cfg.secrets(credentials))
                notes.append(f"dlt with {fmt} failed: {text}")
                say(f"dlt {cfg.name}: {notes[-1]}")
                continue
            row = SideBySide(
                cfg.name,
                h_s,
                h_records,
                h_requests,
                h_runner_s,
                d_s,
                d_records,
                steps,
                notes,
                loader_file_format=fmt,
            )
            break
        else:  # no format loaded
            error = f"dlt failed in every loader format ({', '.join(formats)})"
            row = SideBySide(
                cfg.name, h_s, h_records, h_requests, h_runner_s, 0, {}, {}, notes, error
            )
        out.append(row)
        say(
            f"{cfg.name}: harmonia {h_s:.1f}s {sum(h_records.values()):,} records; "
            + (
                f"dlt: {row.error}"
                if row.error
                else f"dlt {row.dlt_s:.1f}s {sum(row.dlt_records.values()):,} records"
                + ("" if h_records == row.dlt_records else "  MISMATCH")
                + ("" if row.loader_file_format == formats[0] else f" ({row.loader_file_format})")
            )
        )
    return out
