"""The ``harmonia`` command line. Every command module imports only typer at module level;
heavy libraries load inside the commands, so ``harmonia --help`` stays fast."""

from __future__ import annotations

import typer

from harmonia.bench import cli as bench_cli
from harmonia.demo import cli as demo_cli
from harmonia.extract import cli as extract_cli
from harmonia.pipeline import cli as pipeline_cli
from harmonia.report import cli as report_cli
from harmonia.validate import cli as validate_cli

app = typer.Typer(
    name="harmonia",
    help="Omnichannel customer-service data pipeline: channel APIs -> landing -> GX -> dbt marts.",
    no_args_is_help=True,
    add_completion=False,
)
demo_apis = typer.Typer(help="The demo channel APIs (a generated contact-center world).")

# the main job and the deployments' flows
app.command("demo")(pipeline_cli.demo)
app.command("run")(pipeline_cli.run)
app.add_typer(pipeline_cli.run_flow_app, name="run-flow")
# the stages one at a time
app.command("ingest")(extract_cli.ingest)
app.command("validate")(validate_cli.validate)
app.command("write-suites")(validate_cli.write_suites)
app.command("export")(report_cli.export)
app.command("report")(report_cli.report)
app.command("bench")(bench_cli.bench)
# the demo channel APIs
demo_apis.command("serve")(demo_cli.serve)
demo_apis.command("truth")(demo_cli.truth)
app.add_typer(demo_apis, name="demo-apis")


@app.command()
def version() -> None:
    """Print harmonia's version."""
    from harmonia import __version__

    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
