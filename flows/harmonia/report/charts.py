"""Small inline-SVG chart builders for the HTML report: line charts over dates, stacked bars,
and a heatmap. Pure Python, no plotting library and no JavaScript, so the page they end up in
opens anywhere without a server or a network. Every chart is an ``<svg>`` with a
``data-chart`` name (what tests and readers look for), a ``viewBox`` so it scales with the page,
and ``<title>`` elements on marks for the browser's native hover tooltips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape

CHANNEL_COLORS = {
    "voice": "#1f77b4",
    "sms": "#ff7f0e",
    "email": "#2ca02c",
    "chat": "#9467bd",
    "messenger": "#d62728",
    "all": "#222222",
    "unknown": "#8c8c8c",
}
_FALLBACK_COLORS = ("#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#8c564b")

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
AXIS_COLOR = "#6b7280"
GRID_COLOR = "#e5e7eb"


def color_for(name: str, index: int = 0) -> str:
    """The fixed color of a channel (so a channel looks the same in every chart)."""
    return CHANNEL_COLORS.get(name, _FALLBACK_COLORS[index % len(_FALLBACK_COLORS)])


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values from at or below ``lo`` to at or above ``hi``, about ``count`` steps."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw_step = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    steps = round((end - start) / step)
    return [round(start + i * step, 10) for i in range(steps + 1)]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg_open(name: str, label: str, width: int, height: int) -> str:
    return (
        f'<svg data-chart="{escape(name)}" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" style="{FONT};max-width:{width}px">'
        f"<title>{escape(label)}</title>"
    )


def _empty(name: str, label: str, width: int, height: int) -> str:
    return (
        _svg_open(name, label, width, height)
        + f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f9fafb"/>'
        + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13" '
        f'fill="{AXIS_COLOR}">no data</text></svg>'
    )


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are ``(day, value)``; a ``None`` value breaks the line."""

    name: str
    points: Sequence[tuple[date, float | None]]
    color: str
    dashed: bool = False
    bold: bool = False


@dataclass
class _Frame:
    width: int
    height: int
    left: int = 56
    right: int = 14
    top: int = 12
    bottom: int = 28
    parts: list[str] = field(default_factory=list)

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    def y_axis(self, ticks: Sequence[float], y_of: Callable[[float], float], fmt: str) -> None:
        for tick in ticks:
            y = y_of(tick)
            self.parts.append(
                f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{y:.1f}" '
                f'y2="{y:.1f}" stroke="{GRID_COLOR}" stroke-width="1"/>'
                f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                f'fill="{AXIS_COLOR}">{escape(fmt.format(tick))}</text>'
            )


def _date_ticks(first: date, last: date, max_ticks: int) -> list[date]:
    days = (last - first).days
    if days <= 0:
        return [first]
    step = max(1, math.ceil(days / (max_ticks - 1)))
    ticks = [date.fromordinal(first.toordinal() + i) for i in range(0, days + 1, step)]
    return ticks


def line_chart(
    name: str,
    label: str,
    series: Sequence[Series],
    *,
    y_format: str = "{:,.0f}",
    x_format: str = "%d %b",
    width: int = 560,
    height: int = 220,
    y_min: float | None = None,
    y_max: float | None = None,
    markers: bool = False,
    value_format: str | None = None,
    periodic: bool = False,
) -> str:
    """Lines over dates sharing one y axis. ``y_format`` formats the axis ticks,
    ``value_format`` (default ``y_format``) the hover tooltip of each point. ``periodic``
    (weekly or monthly points) puts the x ticks on the points' own dates."""
    value_format = value_format or y_format
    values = [v for s in series for _, v in s.points if v is not None and math.isfinite(v)]
    days = [d for s in series for d, v in s.points if v is not None]
    if not values:
        return _empty(name, label, width, height)
    frame = _Frame(width, height)
    lo = min(values) if y_min is None else y_min
    hi = max(values) if y_max is None else y_max
    ticks = nice_ticks(lo, hi)
    t_lo, t_hi = ticks[0], ticks[-1]
    first, last = min(days), max(days)
    span = max((last - first).days, 1)

    def x_of(day: date) -> float:
        if first == last:
            return frame.left + frame.plot_w / 2
        return frame.left + (day - first).days / span * frame.plot_w

    def y_of(value: float) -> float:
        return frame.top + (t_hi - value) / (t_hi - t_lo) * frame.plot_h

    frame.y_axis(ticks, y_of, y_format)
    max_ticks = 7 if width >= 450 else 4
    if periodic:
        own = sorted(set(days))
        x_ticks = own[:: max(1, math.ceil(len(own) / max_ticks))]
    else:
        x_ticks = _date_ticks(first, last, max_ticks)
    for tick in x_ticks:
        x = x_of(tick)
        # a centred label on the last day would be clipped by the chart's right edge
        anchor = "middle"
        if x > width - frame.right - 24:
            x, anchor = float(width - 2), "end"
        frame.parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="{anchor}" font-size="11" '
            f'fill="{AXIS_COLOR}">{escape(tick.strftime(x_format))}</text>'
        )
    for s in series:
        segments: list[list[tuple[float, float]]] = [[]]
        marks: list[str] = []
        for day, value in sorted(s.points, key=lambda p: p[0]):
            if value is None or not math.isfinite(value):
                segments.append([])
                continue
            x, y = x_of(day), y_of(value)
            segments[-1].append((x, y))
            tip = f"{s.name} {day.strftime(x_format)}: {value_format.format(value)}"
            radius = 3.2 if markers else 2.2
            opacity = 1 if markers else 0
            marks.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{s.color}" '
                f'fill-opacity="{opacity}"><title>{escape(tip)}</title></circle>'
            )
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        for seg in segments:
            if len(seg) >= 2:
                d = " ".join(
                    f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(seg)
                )
                frame.parts.append(
                    f'<path d="{d}" fill="none" stroke="{s.color}" '
                    f'stroke-width="{3 if s.bold else 1.8}"{dash}/>'
                )
            elif len(seg) == 1 and not markers:
                x, y = seg[0]
                frame.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{s.color}"/>')
        frame.parts.extend(marks)
    axis_y = y_of(t_lo)
    frame.parts.append(
        f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{axis_y:.1f}" '
        f'y2="{axis_y:.1f}" stroke="{AXIS_COLOR}" stroke-width="1"/>'
    )
    return _svg_open(name, label, width, height) + "".join(frame.parts) + "</svg>"


@dataclass(frozen=True)
class Stack:
    """One layer of a stacked bar chart, one value per category."""

    name: str
    values: Sequence[float]
    color: str


def stacked_bars(
    name: str,
    label: str,
    categories: Sequence[str],
    stacks: Sequence[Stack],
    *,
    y_format: str = "{:,.0f}",
    value_format: str | None = None,
    width: int = 1120,
    height: int = 260,
    max_labels: int = 16,
) -> str:
    """Vertical bars, one per category, with the stacks piled in the given order."""
    value_format = value_format or y_format
    totals = [sum(s.values[i] for s in stacks) for i in range(len(categories))]
    if not categories or max(totals, default=0) <= 0:
        return _empty(name, label, width, height)
    frame = _Frame(width, height)
    ticks = nice_ticks(0, max(totals))
    t_hi = ticks[-1]

    def y_of(value: float) -> float:
        return frame.top + (t_hi - value) / t_hi * frame.plot_h

    frame.y_axis(ticks, y_of, y_format)
    band = frame.plot_w / len(categories)
    bar = max(band * 0.78, 1.0)
    label_every = max(1, math.ceil(len(categories) / max_labels))
    for i, category in enumerate(categories):
        x = frame.left + i * band + (band - bar) / 2
        base = 0.0
        for s in stacks:
            value = s.values[i]
            if value <= 0:
                continue
            y_top, y_bottom = y_of(base + value), y_of(base)
            tip = f"{category} · {s.name}: {value_format.format(value)}"
            frame.parts.append(
                f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar:.1f}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{s.color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            base += value
        if i % label_every == 0:
            frame.parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                f'font-size="11" fill="{AXIS_COLOR}">{escape(category)}</text>'
            )
    axis_y = y_of(0)
    frame.parts.append(
        f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{axis_y:.1f}" '
        f'y2="{axis_y:.1f}" stroke="{AXIS_COLOR}" stroke-width="1"/>'
    )
    return _svg_open(name, label, width, height) + "".join(frame.parts) + "</svg>"


def _blend(share: float) -> str:
    # white to a deep blue; share in [0, 1]
    lo, hi = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    name: str,
    label: str,
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    cell_format: str = "{:,.0f}",
    tooltip: Callable[[str, str, float], str] | None = None,
    row_title: str = "",
    col_title: str = "",
    cell: int = 72,
) -> str:
    """A matrix of colored cells (darker = larger), each with its value written in it."""
    flat = [v for row in values for v in row if v is not None]
    left, top = 110, 54
    width = left + cell * len(cols) + 16
    height = top + cell * len(rows) + 16
    if not flat:
        return _empty(name, label, max(width, 300), max(height, 160))
    hi = max(flat) or 1.0
    parts: list[str] = []
    if col_title:
        parts.append(
            f'<text x="{left + cell * len(cols) / 2:.1f}" y="16" text-anchor="middle" '
            f'font-size="12" font-weight="600" fill="#374151">{escape(col_title)}</text>'
        )
    if row_title:
        parts.append(
            f'<text x="14" y="{top - 12}" font-size="12" font-weight="600" '
            f'fill="#374151">{escape(row_title)}</text>'
        )
    for j, col in enumerate(cols):
        parts.append(
            f'<text x="{left + j * cell + cell / 2:.1f}" y="{top - 10}" text-anchor="middle" '
            f'font-size="12" fill="{AXIS_COLOR}">{escape(col)}</text>'
        )
    for i, row in enumerate(rows):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 10}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="12" fill="{AXIS_COLOR}">{escape(row)}</text>'
        )
        for j, col in enumerate(cols):
            value = values[i][j]
            x = left + j * cell
            share = 0.0 if value is None else value / hi
            fill = "#f3f4f6" if value is None else _blend(share)
            ink = "#ffffff" if share > 0.55 else "#111827"
            text = "–" if value is None else cell_format.format(value)
            tip = "" if value is None or tooltip is None else tooltip(row, col, value)
            parts.append(
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell - 2}" height="{cell - 2}" '
                f'rx="3" fill="{fill}"><title>{escape(tip or text)}</title></rect>'
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 5:.1f}" text-anchor="middle" '
                f'font-size="14" fill="{ink}" pointer-events="none">{escape(text)}</text>'
            )
    return _svg_open(name, label, width, height) + "".join(parts) + "</svg>"


def legend(items: Sequence[tuple[str, str, bool]]) -> str:
    """HTML legend: ``(name, color, dashed)`` per entry."""
    entries = []
    for entry_name, color, dashed in items:
        style = f"border-top:3px {'dashed' if dashed else 'solid'} {color}"
        entries.append(
            f'<span class="key"><span class="swatch" style="{style}"></span>'
            f"{escape(entry_name)}</span>"
        )
    return f'<div class="legend">{"".join(entries)}</div>'


def format_number(value: float | None, fmt: str = "{:,.0f}") -> str:
    """``fmt`` of a value, or an en dash for a missing one (a rate with no denominator)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def format_duration(seconds: float | None) -> str:
    """Seconds as a short human duration: 42 s, 3.5 min, 4.2 h, 1.3 d."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{_num(seconds)} s"
    if seconds < 2 * 3600:
        return f"{_num(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"{_num(seconds / 3600)} h"
    return f"{_num(seconds / 86400)} d"
