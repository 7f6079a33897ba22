"""``harmonia export`` and ``harmonia report``: the metric marts as Parquet files and as one
HTML page. Registered on the typer app in ``harmonia.cli``; only typer is imported at module
level so ``harmonia --help`` stays fast (DuckDB and pandas load when a command runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

WarehouseOption = Annotated[
    Path | None,
    typer.Option(help="Warehouse file (default: $HARMONIA_HOME/warehouse.duckdb)."),
]


def export(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Directory for <mart>.parquet (default: $HARMONIA_HOME/exports)."
        ),
    ] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Write every metric mart to a Parquet file for BI tools."""
    from harmonia.report import MartsMissing
    from harmonia.report.export import export_marts
    from harmonia.settings import get_settings

    settings = get_settings()
    out_dir = out or settings.home / "exports"
    try:
        written = export_marts(warehouse or settings.warehouse_path, out_dir)
    except MartsMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for item in written:
        typer.echo(f"{item.mart:<26} {item.rows:>8} rows  {item.path}")


def report(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="HTML file (default: $HARMONIA_HOME/reports/harmonia-report.html)."
        ),
    ] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Write a self-contained HTML report of the key metrics (opens without a server)."""
    from harmonia.report import MartsMissing
    from harmonia.report.render import build_report
    from harmonia.settings import get_settings

    settings = get_settings()
    out_path = out or settings.reports_dir / "harmonia-report.html"
    try:
        path = build_report(warehouse or settings.warehouse_path, out_path)
    except MartsMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(str(path))
