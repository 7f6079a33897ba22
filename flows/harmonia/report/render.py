"""``harmonia report``: one self-contained HTML page of the metric marts for a manager.

Reads the seven marts (model spec section 6) from the warehouse, read-only, and writes a page
with key metrics per channel and over time: volume by channel and day, first-response time
percentiles, FCR and contacts per request, the channel-switch matrix as a heatmap, the NPS
trend and cost per request. Charts are inline SVG built in Python (``charts``); the page has
no script and no external URL, so it opens from a file, offline, without a server.

Totals over the period are recomputed from the marts' counts (sums of numerators over sums of
denominators), never by averaging daily rates; percentiles cannot be combined that way, so
they appear only per day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path

import duckdb
import pandas as pd

from harmonia.report import MARTS, MARTS_SCHEMA, MartsMissing
from harmonia.report.charts import (
    Series,
    Stack,
    color_for,
    format_duration,
    format_number,
    heatmap,
    legend,
    line_chart,
    stacked_bars,
)
from harmonia.report.export import missing_marts

CHANNELS = ("voice", "sms", "email", "chat", "messenger")

#: The report's chart sections, in page order: ``id`` -> heading. Every one holds at least one
#: ``<svg data-chart="<id>...">``.
SECTIONS: dict[str, str] = {
    "volume": "Contacts by channel and day",
    "frt": "First-response time per channel (daily p50 and p90)",
    "fcr": "First-contact resolution and contacts per request (weekly)",
    "transitions": "Channel switches within a request",
    "nps": "NPS and CSAT by month",
    "cost": "Cost per request (weekly)",
}


def load_marts(warehouse_path: Path | str) -> dict[str, pd.DataFrame]:
    """Every mart as a DataFrame in grain order; raises :class:`MartsMissing` when one is not
    built."""
    warehouse_path = Path(warehouse_path)
    if not warehouse_path.exists():
        raise MartsMissing(f"no warehouse at {warehouse_path}: run the pipeline first")
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        missing = missing_marts(con)
        if missing:
            raise MartsMissing(
                f"{warehouse_path} lacks {', '.join(missing)}: run `dbt build` first"
            )
        return {
            mart: con.execute(
                f"select * from {MARTS_SCHEMA}.{mart} order by {', '.join(grain)}"
            ).df()
            for mart, grain in MARTS.items()
        }


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else float(numerator) / float(denominator)


def _pct(value: float | None) -> str:
    return format_number(None if value is None else 100 * value, "{:.1f}%")


def _opt(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _day(value: object) -> date:
    return pd.Timestamp(value).date()  # type: ignore[arg-type]


def _channels_in(*columns: Iterable[str]) -> list[str]:
    seen = {c for column in columns for c in column}
    ordered = [c for c in CHANNELS if c in seen]
    return ordered + sorted(seen - set(ordered))


def _week(column: pd.Series) -> pd.Series:
    days = pd.to_datetime(column)
    return (days - pd.to_timedelta(days.dt.weekday, unit="D")).dt.date


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    note: str = ""


def _kpis(m: dict[str, pd.DataFrame]) -> list[Kpi]:
    daily, req, topics, nps = (
        m["mart_channel_daily"],
        m["mart_requests_daily"],
        m["mart_topics_monthly"],
        m["mart_nps_monthly"],
    )
    nps_all = nps[nps["channel"] == "all"]
    requests = float(req["requests"].sum())
    return [
        Kpi("Contacts", format_number(daily["contacts"].sum()), "all channels"),
        Kpi("Requests", format_number(requests), "unified across channels"),
        Kpi(
            "Unanswered",
            _pct(
                _ratio(
                    daily["inbound_contacts"].sum() - daily["answered"].sum(),
                    daily["inbound_contacts"].sum(),
                )
            ),
            "of inbound contacts",
        ),
        Kpi("FCR", _pct(_ratio(req["fcr_requests"].sum(), requests)), "resolved at 1st contact"),
        Kpi(
            "Contacts per request",
            format_number(_ratio(topics["contacts"].sum(), topics["requests"].sum()), "{:.2f}"),
        ),
        Kpi(
            "Cross-channel",
            _pct(_ratio(req["cross_channel_requests"].sum(), requests)),
            "requests on 2+ channels",
        ),
        Kpi(
            "Cost per request",
            format_number(_ratio(req["cost"].sum(), requests), "{:,.2f}"),
            f"avoidable {_pct(_ratio(req['avoidable_cost'].sum(), req['cost'].sum()))}",
        ),
        Kpi(
            "NPS",
            format_number(
                _ratio(
                    100 * (nps_all["promoters"].sum() - nps_all["detractors"].sum()),
                    nps_all["responses"].sum(),
                ),
                "{:+.0f}",
            ),
            f"{format_number(nps_all['responses'].sum())} answers",
        ),
        Kpi(
            "CSAT",
            _pct(_ratio(nps_all["csat_satisfied"].sum(), nps_all["csat_responses"].sum())),
            "answers 4-5 of 5",
        ),
    ]


def _channel_table(m: dict[str, pd.DataFrame]) -> str:
    daily = m["mart_channel_daily"].groupby("channel").sum(numeric_only=True)
    req = m["mart_requests_daily"].assign(
        request_contacts=lambda f: f["contacts_per_request"] * f["requests"]
    )
    req = req.groupby("first_channel").sum(numeric_only=True)
    ref = (
        m["mart_reference_points"]
        .groupby(["channel", "reference_point"])[["eligible", "met"]]
        .sum()
    )
    nps = m["mart_nps_monthly"].groupby("channel").sum(numeric_only=True)
    header = (
        "<tr><th>channel</th><th>contacts</th><th>inbound</th><th>unanswered</th>"
        "<th>abandoned</th><th>first response in target</th><th>requests opened</th>"
        "<th>FCR</th><th>contacts / request</th><th>cross-channel</th>"
        "<th>resolved in target</th><th>cost / contact</th><th>cost / request</th>"
        "<th>NPS</th><th>CSAT</th></tr>"
    )

    def get(frame: pd.DataFrame, key: object, column: str) -> float:
        return float(frame.loc[key, column]) if key in frame.index else 0.0

    def attainment(channel: str, point: str) -> str:
        key = (channel, point)
        return _pct(_ratio(get(ref, key, "met"), get(ref, key, "eligible")))

    rows = []
    for channel in _channels_in(daily.index, req.index):
        contacts, inbound = get(daily, channel, "contacts"), get(daily, channel, "inbound_contacts")
        requests = get(req, channel, "requests")
        nps_value = _ratio(
            100 * (get(nps, channel, "promoters") - get(nps, channel, "detractors")),
            get(nps, channel, "responses"),
        )
        cells = [
            f'<td class="name"><span class="dot" style="background:{color_for(channel)}">'
            f"</span>{escape(channel)}</td>",
            format_number(contacts),
            format_number(inbound),
            _pct(_ratio(inbound - get(daily, channel, "answered"), inbound)),
            _pct(_ratio(get(daily, channel, "abandoned_contacts"), inbound)),
            attainment(channel, "first_response"),
            format_number(requests),
            _pct(_ratio(get(req, channel, "fcr_requests"), requests)),
            format_number(_ratio(get(req, channel, "request_contacts"), requests), "{:.2f}"),
            _pct(_ratio(get(req, channel, "cross_channel_requests"), requests)),
            attainment(channel, "resolution"),
            format_number(_ratio(get(daily, channel, "cost"), contacts), "{:,.2f}"),
            format_number(_ratio(get(req, channel, "cost"), requests), "{:,.2f}"),
            format_number(nps_value, "{:+.0f}"),
            _pct(_ratio(get(nps, channel, "csat_satisfied"), get(nps, channel, "csat_responses"))),
        ]
        rows.append(
            "<tr>" + cells[0] + "".join(f"<td>{escape(c)}</td>" for c in cells[1:]) + "</tr>"
        )
    return f'<table class="metrics">{header}{"".join(rows)}</table>'


def _volume_chart(daily: pd.DataFrame) -> str:
    if daily.empty:
        return stacked_bars("volume", SECTIONS["volume"], [], [])
    pivot = daily.pivot_table(
        index="date", columns="channel", values="contacts", aggfunc="sum", fill_value=0
    )
    first, last = _day(pivot.index.min()), _day(pivot.index.max())
    days = [date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)]
    pivot.index = [_day(d) for d in pivot.index]
    pivot = pivot.reindex(days, fill_value=0)
    channels = _channels_in(pivot.columns)
    stacks = [
        Stack(c, [float(v) for v in pivot[c]], color_for(c, i)) for i, c in enumerate(channels)
    ]
    chart = stacked_bars(
        "volume",
        SECTIONS["volume"],
        [d.strftime("%d %b") for d in days],
        stacks,
        max_labels=14,
    )
    return legend([(c, color_for(c, i), False) for i, c in enumerate(channels)]) + chart


def _duration_unit(max_seconds: float) -> tuple[float, str]:
    if max_seconds < 180:
        return 1.0, "seconds"
    if max_seconds < 3 * 3600:
        return 60.0, "minutes"
    return 3600.0, "hours"


def _frt_charts(daily: pd.DataFrame) -> str:
    panels = []
    for i, channel in enumerate(_channels_in(daily["channel"])):
        rows = daily[daily["channel"] == channel]
        top = rows[["frt_p50_seconds", "frt_p90_seconds"]].max().max()
        divisor, unit = _duration_unit(float(top) if pd.notna(top) else 0.0)
        color = color_for(channel, i)

        def points(column: str, rows: pd.DataFrame = rows, divisor: float = divisor) -> list:
            return [
                (_day(d), None if pd.isna(v) else float(v) / divisor)
                for d, v in zip(rows["date"], rows[column], strict=True)
            ]

        chart = line_chart(
            f"frt-{channel}",
            f"First-response time, {channel}",
            [
                Series("p50", points("frt_p50_seconds"), color),
                Series("p90", points("frt_p90_seconds"), color, dashed=True),
            ],
            y_format="{:,.0f}" if divisor == 1.0 else "{:,.1f}",
            value_format="{:,.1f} " + unit,
            width=360,
            height=180,
            y_min=0,
        )
        panels.append(
            f'<figure class="panel"><figcaption>{escape(channel)} '
            f'<span class="unit">({unit})</span></figcaption>{chart}</figure>'
        )
    if not panels:
        panels.append(line_chart("frt", SECTIONS["frt"], []))
    key = legend([("p50 (median)", "#374151", False), ("p90", "#374151", True)])
    return key + f'<div class="grid3">{"".join(panels)}</div>'


def _weekly_requests(req: pd.DataFrame) -> pd.DataFrame:
    frame = req.assign(
        week=_week(req["date"]),
        request_contacts=req["contacts_per_request"] * req["requests"],
    )
    weekly = frame.groupby("week").sum(numeric_only=True).sort_index()
    weekly["fcr_rate"] = weekly["fcr_requests"] / weekly["requests"].where(weekly["requests"] > 0)
    weekly["resolved_rate"] = weekly["resolved_requests"] / weekly["requests"].where(
        weekly["requests"] > 0
    )
    weekly["contacts_per_request"] = weekly["request_contacts"] / weekly["requests"].where(
        weekly["requests"] > 0
    )
    weekly["cost_per_request"] = weekly["cost"] / weekly["requests"].where(weekly["requests"] > 0)
    weekly["avoidable_per_request"] = weekly["avoidable_cost"] / weekly["requests"].where(
        weekly["requests"] > 0
    )
    return weekly


def _series(weekly: pd.DataFrame, column: str, scale: float = 1.0) -> list:
    return [
        (week, None if pd.isna(v) else float(v) * scale)
        for week, v in zip(weekly.index, weekly[column], strict=True)
    ]


def _fcr_charts(req: pd.DataFrame) -> str:
    weekly = _weekly_requests(req) if not req.empty else pd.DataFrame()
    if weekly.empty:
        rates, effort = [], []
    else:
        rates = [
            Series("FCR", _series(weekly, "fcr_rate", 100), "#0f766e"),
            Series("resolved", _series(weekly, "resolved_rate", 100), "#0f766e", dashed=True),
        ]
        effort = [
            Series("contacts per request", _series(weekly, "contacts_per_request"), "#7c3aed")
        ]
    left = line_chart(
        "fcr",
        "FCR and resolved rate by week opened",
        rates,
        y_format="{:.0f}%",
        value_format="{:.1f}%",
        y_min=0,
        y_max=100,
        markers=True,
        periodic=True,
        x_format="wk %d %b",
    )
    right = line_chart(
        "contacts-per-request",
        "Contacts per request by week opened",
        effort,
        y_format="{:.2f}",
        y_min=1,
        markers=True,
        periodic=True,
        x_format="wk %d %b",
    )
    note = (
        "<p class='note'>Requests by the week (Monday) they were opened, all first channels. "
        "The latest weeks can still gain contacts and resolutions.</p>"
    )
    return note + (
        '<div class="grid2"><figure class="panel"><figcaption>FCR and resolved rate (% of '
        "requests opened that week)</figcaption>"
        + legend([("FCR", "#0f766e", False), ("resolved", "#0f766e", True)])
        + left
        + '</figure><figure class="panel"><figcaption>Contacts per request</figcaption>'
        + legend([("contacts per request", "#7c3aed", False)])
        + right
        + "</figure></div>"
    )


def _transitions_chart(transitions: pd.DataFrame) -> str:
    totals = transitions.groupby(["from_channel", "to_channel"])["transitions"].sum()
    channels = _channels_in(transitions["from_channel"], transitions["to_channel"])
    matrix: list[list[float | None]] = [
        [float(totals[(a, b)]) if (a, b) in totals.index else None for b in channels]
        for a in channels
    ]
    row_sums = {a: sum(v or 0 for v in row) for a, row in zip(channels, matrix, strict=True)}

    def tip(row: str, col: str, value: float) -> str:
        share = _pct(_ratio(value, row_sums[row]))
        return f"{row} → {col}: {value:,.0f} consecutive pairs ({share} of pairs from {row})"

    first = transitions["month"].min() if not transitions.empty else None
    last = transitions["month"].max() if not transitions.empty else None
    period = "" if first is None else f"{_day(first):%b %Y} – {_day(last):%b %Y}"
    chart = heatmap(
        "transitions",
        "Channel-switch matrix: consecutive contacts of one request",
        channels,
        channels,
        matrix,
        tooltip=tip,
        row_title="from ↓",
        col_title="to →",
    )
    shares: list[list[float | None]] = [
        [None if v is None else 100 * v / row_sums[a] for v in row]
        for a, row in zip(channels, matrix, strict=True)
    ]
    share_chart = heatmap(
        "transitions-share",
        "Where the next contact goes: share of the pairs from each channel",
        channels,
        channels,
        shares,
        cell_format="{:.0f}%",
        tooltip=lambda row, col, value: f"{value:.1f}% of the pairs from {row} go to {col}",
        row_title="from ↓",
        col_title="to →",
    )
    note = (
        f"<p class='note'>Pairs of consecutive contacts of one request, {escape(period)}; the "
        "diagonal is a repeat contact on the same channel. Left: number of pairs; right: share "
        "of the pairs from the row's channel. Darker = more.</p>"
    )
    chart = (
        '<div class="grid2"><figure class="panel heat"><figcaption>Pairs</figcaption>'
        f"{chart}</figure>"
        '<figure class="panel heat"><figcaption>Share of the row</figcaption>'
        f"{share_chart}</figure></div>"
    )
    return chart + note


def _nps_charts(nps: pd.DataFrame) -> str:
    channels = [c for c in ("all", *CHANNELS, "unknown") if c in set(nps["channel"])]

    def series(column: str, scale: float = 1.0) -> list[Series]:
        out = []
        for i, channel in enumerate(channels):
            rows = nps[nps["channel"] == channel]
            points = [
                (_day(mo), None if pd.isna(v) else float(v) * scale)
                for mo, v in zip(rows["month"], rows[column], strict=True)
            ]
            is_all = channel == "all"
            out.append(Series(channel, points, color_for(channel, i), not is_all, is_all))
        return out

    left = line_chart(
        "nps",
        "NPS by month of the answer",
        series("nps"),
        y_format="{:+.0f}",
        markers=True,
        periodic=True,
        x_format="%b %Y",
    )
    right = line_chart(
        "csat",
        "CSAT (share of answers 4-5) by month",
        series("csat", 100),
        y_format="{:.0f}%",
        value_format="{:.1f}%",
        y_min=0,
        y_max=100,
        markers=True,
        periodic=True,
        x_format="%b %Y",
    )
    key = legend([(c, color_for(c, i), c != "all") for i, c in enumerate(channels)])
    return (
        key + '<div class="grid2"><figure class="panel"><figcaption>NPS = 100 × (promoters − '
        "detractors) / answers</figcaption>"
        + left
        + '</figure><figure class="panel"><figcaption>CSAT</figcaption>'
        + right
        + "</figure></div>"
    )


def _cost_chart(req: pd.DataFrame) -> str:
    weekly = _weekly_requests(req) if not req.empty else pd.DataFrame()
    series = (
        []
        if weekly.empty
        else [
            Series("cost per request", _series(weekly, "cost_per_request"), "#b45309"),
            Series(
                "avoidable cost per request",
                _series(weekly, "avoidable_per_request"),
                "#b45309",
                dashed=True,
            ),
        ]
    )
    chart = line_chart(
        "cost-per-request",
        "Cost per request by week opened",
        series,
        y_format="{:,.2f}",
        y_min=0,
        markers=True,
        periodic=True,
        x_format="wk %d %b",
        width=1120,
        height=240,
    )
    key = legend(
        [
            ("cost per request", "#b45309", False),
            ("avoidable (contacts after the first)", "#b45309", True),
        ]
    )
    return key + chart


def _reference_table(ref: pd.DataFrame) -> str:
    if ref.empty:
        return ""
    totals = (
        ref.groupby(["channel", "reference_point"])
        .agg(
            target_seconds=("target_seconds", "max"),
            eligible=("eligible", "sum"),
            met=("met", "sum"),
        )
        .reset_index()
    )
    rows = []
    for channel in _channels_in(totals["channel"]):
        for _, r in totals[totals["channel"] == channel].iterrows():
            rows.append(
                f"<tr><td>{escape(channel)}</td><td>{escape(r['reference_point'])}</td>"
                f"<td>{escape(format_duration(float(r['target_seconds'])))}</td>"
                f"<td>{format_number(r['eligible'])}</td><td>{format_number(r['met'])}</td>"
                f"<td>{_pct(_ratio(r['met'], r['eligible']))}</td></tr>"
            )
    return (
        '<table class="metrics compact"><tr><th>channel</th><th>reference point</th>'
        "<th>target</th><th>eligible</th><th>met</th><th>attainment</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _topics_table(topics: pd.DataFrame, limit: int = 12) -> str:
    if topics.empty:
        return ""
    totals = topics.groupby("topic").sum(numeric_only=True)
    totals = totals.sort_values("requests", ascending=False).head(limit)
    all_requests = float(topics["requests"].sum())
    rows = "".join(
        f"<tr><td>{escape(str(topic))}</td><td>{format_number(r['requests'])}</td>"
        f"<td>{_pct(_ratio(r['requests'], all_requests))}</td>"
        f"<td>{format_number(_ratio(r['contacts'], r['requests']), '{:.2f}')}</td>"
        f"<td>{_pct(_ratio(r['fcr_requests'], r['requests']))}</td>"
        f"<td>{format_number(r['cost'], '{:,.2f}')}</td></tr>"
        for topic, r in totals.iterrows()
    )
    return (
        '<table class="metrics compact"><tr><th>topic</th><th>requests</th><th>share</th>'
        "<th>contacts / request</th><th>FCR</th><th>cost</th></tr>" + rows + "</table>"
    )


def _retention_table(retention: pd.DataFrame) -> str:
    if retention.empty:
        return ""
    horizon = int(retention["months_since"].max())
    head = "".join(f"<th>+{k}</th>" for k in range(horizon + 1))
    rows = []
    for cohort, group in retention.groupby("cohort_month", sort=True):
        by_k = dict(zip(group["months_since"], group["retention_rate"], strict=True))
        cells = "".join(f"<td>{_pct(_opt(by_k.get(k)))}</td>" for k in range(horizon + 1))
        size = format_number(group["cohort_customers"].iloc[0])
        rows.append(f"<tr><td>{_day(cohort):%b %Y}</td><td>{size}</td>{cells}</tr>")
    return (
        '<table class="metrics compact"><tr><th>cohort</th><th>customers</th>'
        f"{head}</tr>{''.join(rows)}</table>"
    )


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;
 font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:14px}
main{max-width:1200px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 10px}
.sub{color:#4b5563;margin:0 0 18px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:16px 20px;
 margin:0 0 18px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(104px,1fr));gap:10px;
 margin:0 0 18px}
.kpi{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:10px 12px}
.kpi .label{color:#4b5563;font-size:12px}
.kpi .value{font-size:22px;font-weight:650;margin:2px 0}
.kpi .note{color:#6b7280;font-size:11px}
table.metrics{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
table.metrics th{font-weight:600;color:#374151;font-size:12px;text-align:right;
 border-bottom:1px solid #d1d5db;padding:6px 8px;vertical-align:bottom}
table.metrics td{text-align:right;padding:6px 8px;border-bottom:1px solid #f3f4f6}
table.metrics th:first-child,table.metrics td:first-child{text-align:left}
table.compact{width:auto}
.name{white-space:nowrap}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.grid3{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px}
figure{margin:0}
figcaption{font-size:13px;color:#374151;margin:0 0 4px;font-weight:600}
.unit{color:#6b7280;font-weight:400}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:0 0 8px;font-size:12px;color:#374151}
.key{display:inline-flex;align-items:center;gap:6px}
.swatch{display:inline-block;width:22px;height:0}
.heat{overflow-x:auto}
.note{color:#6b7280;font-size:12px;margin:8px 0 0}
footer{color:#6b7280;font-size:12px}
"""


def render_html(
    marts: dict[str, pd.DataFrame],
    *,
    generated_at: datetime | None = None,
    source: str = "",
) -> str:
    """The report page for the given marts (as :func:`load_marts` returns them)."""
    generated_at = generated_at or datetime.now(UTC)
    daily, req = marts["mart_channel_daily"], marts["mart_requests_daily"]
    if daily.empty:
        period = "no contacts yet"
    else:
        first, last = _day(daily["date"].min()), _day(daily["date"].max())
        period = f"{first:%d %b %Y} – {last:%d %b %Y}"
    kpis = "".join(
        f'<div class="kpi"><div class="label">{escape(k.label)}</div>'
        f'<div class="value">{escape(k.value)}</div><div class="note">{escape(k.note)}</div></div>'
        for k in _kpis(marts)
    )
    bodies = {
        "volume": _volume_chart(daily),
        "frt": _frt_charts(daily),
        "fcr": _fcr_charts(req),
        "transitions": _transitions_chart(marts["mart_channel_transitions"]),
        "nps": _nps_charts(marts["mart_nps_monthly"]),
        "cost": _cost_chart(req),
    }
    sections = "".join(
        f'<section id="{key}"><h2>{escape(SECTIONS[key])}</h2>{bodies[key]}</section>'
        for key in SECTIONS
    )
    where = f" from <code>{escape(source)}</code>" if source else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>harmonia — customer service report</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>Customer service report</h1>
<p class="sub">{escape(period)} · all channels ·
generated {generated_at:%Y-%m-%d %H:%M} UTC{where}</p>
<div class="kpis">{kpis}</div>
<section id="channels"><h2>Key metrics per channel (whole period)</h2>{_channel_table(marts)}
<p class="note">Contacts by the channel they came in on; requests by the channel of their first
contact. Rates are totals over the period (sum of numerators / sum of denominators); – means
nothing to measure.</p></section>
{sections}
<section id="details"><div class="cols">
<div><h2>Service-level targets</h2>{_reference_table(marts["mart_reference_points"])}</div>
<div><h2>Top topics</h2>{_topics_table(marts["mart_topics_monthly"])}</div>
</div>
<h2 style="margin-top:16px">Customer retention by first-contact month</h2>
{_retention_table(marts["mart_customer_retention"])}
</section>
<footer>Definitions: the column descriptions of the dbt marts
(dbt_project/models/marts/metrics/_metrics__models.yml, model spec section 6).</footer>
</main>
</body>
</html>
"""


def build_report(
    warehouse_path: Path | str,
    out_path: Path | str,
    *,
    generated_at: datetime | None = None,
) -> Path:
    """Write the report of the warehouse's marts to ``out_path``; returns the path."""
    out_path = Path(out_path)
    page = render_html(
        load_marts(warehouse_path), generated_at=generated_at, source=Path(warehouse_path).name
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path


def chart_names(page: str) -> Sequence[str]:
    """The ``data-chart`` names of the SVG charts in a rendered page, in page order."""
    return re.findall(r'<svg data-chart="([^"]+)"', page)
