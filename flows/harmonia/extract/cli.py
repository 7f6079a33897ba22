"""``harmonia ingest``: run the ingest flow from the command line, with live progress.

Registered on the typer app in ``harmonia.cli``. Only typer is imported at module level so
``harmonia --help`` stays fast; Prefect, DuckDB and rich load when the command runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from harmonia.extract.runner import PageEvent


def ingest(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="A source to ingest (repeatable); default: all."),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Ignore the saved state and re-read everything.")
    ] = False,
    since: Annotated[
        datetime | None,
        typer.Option(help="Backfill start (ISO date/time, UTC); replaces the saved start."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(help="Backfill end (ISO date/time, UTC); a bounded run keeps the state."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Root of the demo APIs (each source under /<source>)."),
    ] = None,
) -> None:
    """Pull the channel APIs into the landing zone (incremental unless --full-refresh)."""
    from datetime import UTC

    from harmonia.extract.sources import SOURCES
    from harmonia.pipeline.ingest import PROGRESS_LISTENERS, IngestFailed, ingest

    since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until and until.tzinfo is None else until
    names = source or list(SOURCES)
    display = _Display(names)
    PROGRESS_LISTENERS.append(display.on_page)
    try:
        with display:
            summary = ingest(
                sources=names,
                full_refresh=full_refresh,
                since=since,
                until=until,
                base_url=base_url,
            )
    except IngestFailed as exc:
        display.print_summary(exc.summary.rows())
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        PROGRESS_LISTENERS.remove(display.on_page)
    display.print_summary(summary.rows())


class _Display:
    """A rich live table per source on a terminal; a plain summary elsewhere."""

    def __init__(self, names: list[str]) -> None:
        from rich.console import Console

        self.console = Console()
        self.live = self.console.is_terminal
        self.counts = {n: {"pages": 0, "records": 0, "landed": 0, "duplicates": 0} for n in names}
        self._progress = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> _Display:
        if self.live:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[source]:<10}"),
                TextColumn("{task.fields[line]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            for name in self.counts:
                self._tasks[name] = self._progress.add_task(
                    name, total=None, source=name, line="waiting"
                )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_page(self, event: PageEvent) -> None:
        c = self.counts.setdefault(
            event.source, {"pages": 0, "records": 0, "landed": 0, "duplicates": 0}
        )
        c["pages"] += 1
        c["records"] += event.records
        c["landed"] += event.landed
        c["duplicates"] += event.duplicates
        if self._progress is not None and event.source in self._tasks:
            line = (
                f"{c['pages']} pages  {c['records']} records  "
                f"{c['landed']} landed  {c['duplicates']} dup"
            )
            self._progress.update(self._tasks[event.source], line=line)

    def print_summary(self, rows: list[dict[str, object]]) -> None:
        from rich.table import Table

        table = Table(title="ingest")
        columns = ["source", "status", "pages", "records", "landed", "duplicates", "retries"]
        for col in [*columns, "duration_s"]:
            table.add_column(col, justify="left" if col in ("source", "status") else "right")
        for row in rows:
            table.add_row(*(str(row[c]) for c in [*columns, "duration_s"]))
        self.console.print(table)
