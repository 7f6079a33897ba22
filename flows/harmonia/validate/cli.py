"""``harmonia validate`` and ``harmonia write-suites``: the validation commands.

Registered on the typer app in ``harmonia.cli``. Only typer is imported at module level so
``harmonia --help`` stays fast; Prefect, GX and DuckDB load when a command runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

#: ``engine.MAX_RECORDS_PER_SLICE``, repeated so that ``--help`` does not import the engine
MAX_RECORDS_PER_SLICE = 100_000


def validate(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="A source to validate (repeatable); default: all."),
    ] = None,
    replay_quarantine: Annotated[
        bool,
        typer.Option(
            "--replay-quarantine",
            help="Re-validate quarantined rows with the current suites; passing rows move to raw.",
        ),
    ] = False,
    max_failure_share: Annotated[
        float,
        typer.Option(help="Fail the run when a source entity's failing share exceeds this (0-1)."),
    ] = 0.05,
    phone_region: Annotated[
        str, typer.Option(help="Default region for phone numbers without a country code.")
    ] = "BR",
    max_records_per_slice: Annotated[
        int,
        typer.Option(
            min=1,
            help="Validate and commit a source's pending batches in slices of whole batches "
            "holding at most this many records (bounds memory).",
        ),
    ] = MAX_RECORDS_PER_SLICE,
) -> None:
    """Validate pending landing batches with the GX suites: valid rows to raw, failing rows to
    quarantine, and the data-quality record (dq.*) plus Data Docs."""
    from harmonia.validate.engine import DataQualityError, ReconciliationError
    from harmonia.validate.flow import validate as validate_flow

    try:
        result = validate_flow(
            sources=source,
            replay_quarantine=replay_quarantine,
            max_failure_share=max_failure_share,
            phone_region=phone_region,
            max_records_per_slice=max_records_per_slice,
        )
    except (DataQualityError, ReconciliationError) as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(result.summary)


def write_suites() -> None:
    """Regenerate the committed GX suites (expectations/*.json) from the field specs."""
    from harmonia.validate.suites import write_suites as write

    for path in write():
        typer.echo(str(path))
