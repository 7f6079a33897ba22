"""``harmonia demo-apis serve|truth``: run the demo channel APIs, or write a world's ground truth.

Heavy imports (numpy, pyarrow, fastapi, the generator) happen inside the commands so that
``harmonia --help`` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

#: env var names of each source's credentials (values are never printed)
CREDENTIAL_ENV = {
    "voice": ("HARMONIA_VOICE_TOKEN",),
    "sms": ("HARMONIA_SMS_ACCOUNT_SID", "HARMONIA_SMS_AUTH_TOKEN"),
    "email": ("HARMONIA_EMAIL_USER", "HARMONIA_EMAIL_API_TOKEN"),
    "chat": ("HARMONIA_CHAT_TOKEN",),
    "messenger": ("HARMONIA_MESSENGER_PAGE_ID", "HARMONIA_MESSENGER_ACCESS_TOKEN"),
    "surveys": ("HARMONIA_SURVEYS_API_KEY",),
    "crm": ("HARMONIA_CRM_TOKEN",),
}


def _size(
    customers: int | None, contacts: int | None, default: int
) -> tuple[int | None, int | None]:
    if customers is not None and contacts is not None:
        raise typer.BadParameter("give --customers or --contacts, not both")
    if customers is None and contacts is None:
        return default, None
    return customers, contacts


def serve(
    seed: int | None = typer.Option(None, help="world seed (default: HARMONIA_DEMO_SEED)"),
    customers: int | None = typer.Option(None, help="world size in customers"),
    contacts: int | None = typer.Option(None, help="world size in contacts (approximate)"),
    days: int = typer.Option(30, help="days the world covers"),
    host: str | None = typer.Option(None, help="bind address (default: HARMONIA_DEMO_HOST)"),
    port: int | None = typer.Option(
        None, help="port, 0 = any free one (default: HARMONIA_DEMO_PORT)"
    ),
    faults: str = typer.Option("", help="fault rates, e.g. rate_limit=0.05,malformed=0.01"),
) -> None:
    """Serve the seven demo channel APIs until interrupted."""
    from harmonia.demo.server import DemoServer, Faults
    from harmonia.settings import get_settings

    settings = get_settings()
    customers, contacts = _size(customers, contacts, settings.demo_customers)
    try:
        parsed = Faults.parse(faults or None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    srv = DemoServer(
        seed=settings.demo_seed if seed is None else seed,
        customers=customers,
        contacts=contacts,
        days=days,
        faults=parsed,
        host=host or settings.demo_host,
        port=settings.demo_port if port is None else port,
    )
    with srv:
        w = srv.world
        typer.echo(
            f"demo channel APIs on {srv.base_url} (seed {w.seed}, {w.contacts.num_rows} contacts)"
        )
        for source in CREDENTIAL_ENV:
            envs = ", ".join(CREDENTIAL_ENV[source])
            typer.echo(f"  {source:<10} {srv.url(source):<40} credentials: {envs}")
        typer.echo(f"  admin      {srv.base_url}/_admin/(health|stats|clock|faults)")
        typer.echo(
            "Credentials default to the demo values in harmonia.settings.Credentials. Ctrl-C stops."
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            typer.echo("stopping")


def truth(
    out: Path = typer.Option(..., help="directory for the ground-truth parquet files"),  # noqa: B008
    seed: int | None = typer.Option(None, help="world seed (default: HARMONIA_DEMO_SEED)"),
    customers: int | None = typer.Option(None, help="world size in customers"),
    contacts: int | None = typer.Option(None, help="world size in contacts (approximate)"),
    days: int = typer.Option(30, help="days the world covers"),
    faults: str = typer.Option(
        "", help="the server's fault rates (malformed kinds depend on them)"
    ),
) -> None:
    """Write the world's ground truth: contacts (with malformed kind), customers, requests,
    surveys."""
    from harmonia.demo.generator import generate_world
    from harmonia.demo.server import DemoState, Faults
    from harmonia.demo.truth import write_truth
    from harmonia.settings import get_settings

    settings = get_settings()
    customers, contacts = _size(customers, contacts, settings.demo_customers)
    world = generate_world(
        seed=settings.demo_seed if seed is None else seed,
        customers=customers,
        contacts=contacts,
        days=days,
    )
    state = DemoState(world, Faults.parse(faults or None))
    for path in write_truth(world, out, malformed=state.contact_malformed()):
        typer.echo(str(path))
