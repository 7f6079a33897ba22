"""``harmonia bench``: the pipeline benchmark's command line (heavy imports inside)."""

from __future__ import annotations

import typer


def bench(
    contacts: int = typer.Option(100_000, help="world size (1000000 for the issue's target)"),
    repeat: int = typer.Option(3, min=1, help="runs per stage; the table shows medians"),
    out: str = typer.Option("var/bench/bench.json", help="where the JSON result goes"),
    stages: str = typer.Option(
        "extract,validate,dbt,report,incremental,floor",
        help="comma-separated; a stage brings the ones it needs",
    ),
    seed: int = typer.Option(42),
    profile: bool = typer.Option(False, help="cProfile one extract run: top 10 cumulative"),
    with_dlt: bool = typer.Option(False, help="compare with dlt rest_api (not implemented yet)"),
) -> None:
    """Benchmark the pipeline per stage against the demo APIs (server in its own process)."""
    from pathlib import Path

    from harmonia.bench.run import BenchOptions, print_result, run_bench

    if with_dlt:
        typer.echo("--with-dlt: not implemented yet (the dlt comparison is a later task).")
        raise typer.Exit(2)
    options = BenchOptions(
        contacts=contacts,
        repeat=repeat,
        seed=seed,
        stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
        out=Path(out),
        profile=profile,
    )
    print_result(run_bench(options, say=typer.echo))
    typer.echo(f"written: {out}")
