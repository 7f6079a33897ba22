"""dbt-duckdb plugin: registers harmonia's identifier-normalizing UDFs on every dbt connection.

Phones are parsed with the ``phonenumbers`` library (libphonenumber's metadata), never with a
hand-written regex: ``normalize_phone(raw, region)`` returns E.164 or NULL when the value does
not parse or is not a valid number, so nothing is guessed. The profile enables it with::

    plugins:
      - module: harmonia.dbt_plugins

Views that call ``normalize_phone`` are only queryable on a connection where the function is
registered; other Python readers can call :func:`register_udfs` on their own connection.
"""

from __future__ import annotations

import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection
from duckdb.sqltypes import VARCHAR

from harmonia.phones import read_phone


def to_e164(raw: str, region: str) -> str | None:
    """E.164 form of ``raw`` read in ``region`` (alpha-2); None if not a valid number. One
    cached parse per value and process, shared with validation (``harmonia.phones``)."""
    return read_phone(raw, region.upper())[1]


def normalize_email(raw: str | None) -> str | None:
    """Trimmed, lower-cased e-mail, or None when it is empty or has no single ``@``."""
    if raw is None:
        return None
    value = raw.strip().lower()
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@"):
        return None
    return value


def _normalize_phone_arrow(raw: pa.Array, region: pa.Array) -> pa.Array:
    # Vectorized over a DuckDB chunk; the cache makes repeated raw values (one customer's
    # phone on many contacts, or a value validation read already) cost one parse.
    out = [
        None if r is None or g is None else to_e164(r, g)
        for r, g in zip(raw.to_pylist(), region.to_pylist(), strict=True)
    ]
    return pa.array(out, type=pa.string())


def _normalize_email_arrow(raw: pa.Array) -> pa.Array:
    return pa.array([normalize_email(r) for r in raw.to_pylist()], type=pa.string())


def register_udfs(conn: DuckDBPyConnection) -> None:
    """Register ``normalize_phone(raw, region)`` and ``normalize_email(raw)`` on ``conn``."""
    conn.create_function(
        "normalize_phone",
        _normalize_phone_arrow,
        [VARCHAR, VARCHAR],
        VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    conn.create_function(
        "normalize_email",
        _normalize_email_arrow,
        [VARCHAR],
        VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )


class Plugin(BasePlugin):
    """dbt-duckdb entry point (``plugins: [{module: harmonia.dbt_plugins}]``)."""

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register_udfs(conn)
