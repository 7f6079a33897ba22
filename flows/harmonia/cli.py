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


@app.command()
def version() -> None:
    """Print harmonia's version."""
    from harmonia import __version__

    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
