"""``harmonia export`` and ``harmonia report`` through the real command line, on real marts.

The export must hold exactly the marts' rows and types; the report must be one self-contained
page (no script, no external URL) that holds every chart with real marks and the same totals as
the marts, and whose every chart is well-formed SVG (``make screenshot`` renders it in a browser).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import pytest
from harmonia.report import MARTS
from harmonia.report.render import SECTIONS, chart_names, load_marts, render_html

pytestmark = pytest.mark.slow

HARMONIA = Path(sys.executable).with_name("harmonia")


def _harmonia(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HARMONIA), *args], capture_output=True, text=True, timeout=300, check=False
    )


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


class _Links(HTMLParser):
    """Every tag name and every URL-bearing attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "xlink:href", "action", "poster", "data"} and value:
                self.urls.append(value)


@pytest.fixture(scope="module")
def report_page(metrics_demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "nested" / "report.html"
    done = _harmonia("report", "--warehouse", str(metrics_demo_warehouse), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == str(out)
    return out


def test_report_is_self_contained(report_page: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(page)
    external = [u for u in parser.urls if re.match(r"^\s*(https?:)?//", u, re.IGNORECASE)]
    assert external == []
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "iframe" not in parser.tags and "img" not in parser.tags
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", page), "CSS loads a URL"
    assert "@import" not in page


def test_report_holds_every_chart_with_marks(report_page: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    expected = {
        "volume": ["volume"],
        "frt": ["frt-voice", "frt-sms", "frt-email", "frt-chat", "frt-messenger"],
        "fcr": ["fcr", "contacts-per-request"],
        "transitions": ["transitions", "transitions-share"],
        "nps": ["nps", "csat"],
        "cost": ["cost-per-request"],
    }
    assert list(SECTIONS) == list(expected)
    for section, charts in expected.items():
        body = page.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
        assert chart_names(body) == charts, section
        assert "no data" not in body, f"section {section} shows an empty chart"
        assert re.search(r"<(path|rect|circle) ", body), f"section {section} draws nothing"
    volume = page.split('data-chart="volume"', 1)[1].split("</svg>", 1)[0]
    assert volume.count("<rect") > 50, "the volume chart has no bars"
    heat = page.split('data-chart="transitions"', 1)[1].split("</svg>", 1)[0]
    assert heat.count("<rect") == 25, "the switch matrix is not 5 x 5"


def test_report_numbers_are_the_marts(report_page: Path, metrics_demo_warehouse: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    [(contacts, requests)] = _rows(
        metrics_demo_warehouse,
        "select (select sum(contacts) from marts.mart_channel_daily), "
        "(select sum(requests) from marts.mart_requests_daily)",
    )
    assert _rows(metrics_demo_warehouse, "select count(*) from marts.fct_contacts") == [(contacts,)]
    assert f'<div class="label">Contacts</div><div class="value">{contacts:,}</div>' in page
    assert f'<div class="label">Requests</div><div class="value">{requests:,}</div>' in page
    [(voice,)] = _rows(
        metrics_demo_warehouse,
        "select sum(contacts) from marts.mart_channel_daily where channel = 'voice'",
    )
    row = page.split("</span>voice</td>", 1)[1].split("</tr>", 1)[0]
    assert row.startswith(f"<td>{voice:,}</td>")


def test_every_chart_is_well_formed_svg_with_its_marks(report_page: Path) -> None:
    # A strict XML parse: an unclosed tag or a bad attribute that a browser would paper over
    # (or drop the chart for) fails here. The browser screenshot is `make screenshot`.
    page = report_page.read_text(encoding="utf-8")
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    assert len(svgs) == len(chart_names(page)) >= 13
    for markup in svgs:
        root = ElementTree.fromstring(markup)  # noqa: S314 -- our own page, not untrusted input
        name = root.get("data-chart")
        assert root.tag.endswith("svg") and name, markup[:80]
        _, _, width, height = (float(v) for v in root.get("viewBox", "0 0 0 0").split())
        assert width > 0 and height > 0, name
        marks = [el for el in root.iter() if el.tag.split("}")[-1] in {"rect", "path", "circle"}]
        assert marks, f"chart {name} draws nothing"
        for el in root.iter():
            if el.tag.split("}")[-1] == "text":
                assert "nan" not in (el.text or "").lower().split(), f"chart {name}: {el.text}"


def test_report_of_empty_marts_still_renders(metrics_edge_warehouse: Path) -> None:
    empty = {mart: frame.iloc[0:0] for mart, frame in load_marts(metrics_edge_warehouse).items()}
    page = render_html(empty)
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count("no data") >= 6


def test_report_and_export_fail_clearly_without_marts(tmp_path: Path) -> None:
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    for command in (["report", "--out", str(tmp_path / "r.html")],
                    ["export", "--out", str(tmp_path / "x")]):  # fmt: skip
        done = _harmonia(*command, "--warehouse", str(bare))
        assert done.returncode == 1
        assert "mart_channel_daily" in done.stderr and "dbt build" in done.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "x").exists()


def test_export_writes_every_mart_to_parquet(metrics_edge_warehouse: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(metrics_edge_warehouse, warehouse)
    out = tmp_path / "exports"
    done = _harmonia("export", "--out", str(out), "--warehouse", str(warehouse))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{m}.parquet" for m in MARTS)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for mart, grain in MARTS.items():
            path = str(out / f"{mart}.parquet")
            table_types = con.execute(f"describe marts.{mart}").fetchall()
            file_types = con.execute("describe select * from read_parquet(?)", [path]).fetchall()
            assert [r[:2] for r in file_types] == [r[:2] for r in table_types], mart
            order = ", ".join(grain)
            in_table = con.execute(f"select * from marts.{mart} order by {order}").fetchall()
            in_file = con.execute("select * from read_parquet(?)", [path]).fetchall()
            assert in_file == in_table, mart
            assert in_file, f"{mart} exported no rows"
    assert "mart_channel_daily" in done.stdout


def test_cli_help_does_not_load_the_report() -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys, harmonia.cli; "
         "print(sorted(m for m in sys.modules if m.startswith('harmonia.report')))"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "['harmonia.report', 'harmonia.report.cli']"
