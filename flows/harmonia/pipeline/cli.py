"""``harmonia demo`` (the README's main job) and ``harmonia run``: the whole pipeline from the
command line. Heavy imports stay inside the commands so ``harmonia --help`` is fast."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer


def _prefect_defaults() -> None:
    """Without a Prefect server, Prefect starts a temporary local API; on a busy 2-core machine
    its default 20 s start-up budget is too tight, so give it more unless the user chose."""
    import os

    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _print_result(result) -> None:
    typer.echo("")
    typer.echo("harmonia: done. Outputs:")
    for name, path in result.outputs.items():
        typer.echo(f"  {name:<12} {path}")
    typer.echo("Stage seconds: " + ", ".join(f"{k} {v}" for k, v in result.seconds.items()))
    if result.headline:
        typer.echo(
            "Headline: "
            + ", ".join(
                f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in result.headline.items()
            )
        )


def run(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only these sources.")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Ignore saved state.")
    ] = False,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Root URL of the channel APIs.")
    ] = None,
    no_transform: Annotated[
        bool, typer.Option("--no-transform", help="Stop after validation.")
    ] = False,
) -> None:
    """Run the pipeline (ingest → validate → dbt → docs) against the configured sources."""
    _prefect_defaults()
    from harmonia.pipeline.main import StageFailed, pipeline

    try:
        result = pipeline(
            sources=source or None,
            full_refresh=full_refresh,
            base_url=base_url,
            transform=not no_transform,
        )
    except StageFailed as exc:
        typer.secho(f"harmonia: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    _print_result(result)


def demo(
    seed: Annotated[
        int | None, typer.Option(help="Seed of the demo world (default: settings).")
    ] = None,
    customers: Annotated[int | None, typer.Option(help="Customers in the demo world.")] = None,
    contacts: Annotated[
        int | None, typer.Option(help="Contacts in the demo world (instead of customers).")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Where outputs go (default: ./var).")] = None,
) -> None:
    """The main job on the embedded default: start the demo channel APIs on loopback, then
    run the whole pipeline against them into the DuckDB warehouse."""
    import os

    if home is not None:
        os.environ["HARMONIA_HOME"] = str(home.resolve())
    _prefect_defaults()
    from harmonia.demo.server import DemoServer
    from harmonia.pipeline.main import StageFailed, pipeline
    from harmonia.settings import get_settings

    settings = get_settings()
    size = (
        {"contacts": contacts} if contacts else {"customers": customers or settings.demo_customers}
    )
    seed = settings.demo_seed if seed is None else seed
    typer.echo(f"harmonia demo: generating the demo world (seed {seed}, {size}) ...")
    with DemoServer(seed=seed, port=0, **size) as srv:
        typer.echo(f"demo channel APIs on {srv.base_url}")
        try:
            result = pipeline(base_url=srv.base_url)
        except StageFailed as exc:
            typer.secho(f"harmonia: {exc}", fg="red", err=True)
            raise typer.Exit(1) from exc
    _print_result(result)


# --------------------------------------------------------------------------------------------
# ``harmonia run-flow incremental|nightly|backfill``: the deployments' flows without a server

run_flow_app = typer.Typer(
    help="Run a deployment's flow (incremental, nightly, backfill) locally, without a server.",
    no_args_is_help=True,
)

SourceOption = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help="Only this source (repeatable); default: all."),
]
BaseUrlOption = Annotated[
    str | None, typer.Option("--base-url", help="Root URL of the (demo) channel APIs.")
]
LockWaitOption = Annotated[
    float | None,
    typer.Option(
        "--lock-wait",
        help="Seconds to wait for another run holding the warehouse (0: fail fast).",
    ),
]


def _run_flow(name: str, **params: object) -> None:
    _prefect_defaults()
    from harmonia.pipeline.main import StageFailed
    from harmonia.pipeline.scheduled import FLOWS

    params = {k: v for k, v in params.items() if v is not None}
    try:
        result = FLOWS[name](**params)
    except StageFailed as exc:
        typer.secho(f"harmonia {name}: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    except Exception as exc:  # a parameter Prefect refused, a bad window
        typer.secho(f"harmonia {name}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    _print_result(result)


@run_flow_app.command("incremental")
def run_incremental(
    source: SourceOption = None,
    base_url: BaseUrlOption = None,
    lock_wait: LockWaitOption = None,
) -> None:
    """Ingest what is new since each watermark, then validate it (every 15 min when deployed)."""
    _run_flow("incremental", sources=source or None, base_url=base_url, lock_wait_seconds=lock_wait)


@run_flow_app.command("nightly")
def run_nightly(
    source: SourceOption = None,
    base_url: BaseUrlOption = None,
    full_refresh: Annotated[
        bool,
        typer.Option("--full-refresh", help="Re-read every source and rebuild dbt's models."),
    ] = False,
    lock_wait: LockWaitOption = None,
) -> None:
    """Catch-up ingest + validate, dbt build, dbt docs, Parquet export, HTML report."""
    _run_flow(
        "nightly",
        sources=source or None,
        base_url=base_url,
        full_refresh=full_refresh,
        lock_wait_seconds=lock_wait,
    )


@run_flow_app.command("backfill")
def run_backfill(
    since: Annotated[datetime, typer.Option(help="Window start (ISO date/time; naive means UTC).")],
    until: Annotated[
        datetime | None, typer.Option(help="Window end (default: now); watermarks stay.")
    ] = None,
    source: SourceOption = None,
    base_url: BaseUrlOption = None,
    transform: Annotated[
        bool, typer.Option("--transform", help="Run dbt build after validating.")
    ] = False,
    lock_wait: LockWaitOption = None,
) -> None:
    """Re-read a date window of the chosen sources and validate it (state untouched)."""
    _run_flow(
        "backfill",
        since=since,
        until=until,
        sources=source or None,
        base_url=base_url,
        transform=transform,
        lock_wait_seconds=lock_wait,
    )
