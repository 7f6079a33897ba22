"""The ``harmonia`` command line. Imports of heavy libraries happen inside commands so that
``harmonia --help`` stays fast."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="harmonia",
    help="Omnichannel customer-service data pipeline: channel APIs -> landing -> GX -> dbt marts.",
    no_args_is_help=True,
    add_completion=False,
)
demo_apis = typer.Typer(help="The demo channel APIs (a generated contact-center world).")
app.add_typer(demo_apis, name="demo-apis")


def _register_demo_apis() -> None:
    from harmonia.demo import cli as demo_cli

    demo_apis.command("serve")(demo_cli.serve)
    demo_apis.command("truth")(demo_cli.truth)


_register_demo_apis()

from harmonia.extract.cli import ingest as _ingest  # noqa: E402 - light: typer only

app.command(name="ingest")(_ingest)

from harmonia.validate.cli import validate as _validate  # noqa: E402 - light: typer only
from harmonia.validate.cli import write_suites as _write_suites  # noqa: E402

app.command(name="validate")(_validate)
app.command(name="write-suites")(_write_suites)

from harmonia.report.cli import export as _export  # noqa: E402 - light: typer only
from harmonia.report.cli import report as _report  # noqa: E402

app.command(name="export")(_export)
app.command(name="report")(_report)


@app.command()
def version() -> None:
    """Print harmonia's version."""
    from harmonia import __version__

    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()


def _register_pipeline() -> None:
    from harmonia.pipeline import cli as pipeline_cli

    app.command("demo")(pipeline_cli.demo)
    app.command("run")(pipeline_cli.run)
    app.add_typer(pipeline_cli.run_flow_app, name="run-flow")


_register_pipeline()


@app.command()
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
