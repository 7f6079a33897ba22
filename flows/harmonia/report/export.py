"""Write every metric mart to a Parquet file (``<out>/<mart>.parquet``) for BI tools that read
files rather than the warehouse, with DuckDB's own ``COPY ... TO ... (FORMAT parquet)``.

Rows are written in grain order so that two exports of the same warehouse are the same files
row for row. The warehouse is opened read-only: an export never takes the writer's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from harmonia.report import MARTS, MARTS_SCHEMA, MartsMissing


@dataclass(frozen=True)
class ExportedMart:
    """One mart written to ``path`` with ``rows`` rows."""

    mart: str
    path: Path
    rows: int


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def missing_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the metric marts that the warehouse does not hold."""
    present = {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = ?",
            [MARTS_SCHEMA],
        ).fetchall()
    }
    return [mart for mart in MARTS if mart not in present]


def export_marts(warehouse_path: Path | str, out_dir: Path | str) -> list[ExportedMart]:
    """Write each mart of :data:`harmonia.report.MARTS` to ``out_dir/<mart>.parquet``.

    Raises :class:`MartsMissing` (and writes nothing) when a mart has not been built.
    """
    warehouse_path = Path(warehouse_path)
    if not warehouse_path.exists():
        raise MartsMissing(f"no warehouse at {warehouse_path}: run the pipeline first")
    out_dir = Path(out_dir)
    exported: list[ExportedMart] = []
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        missing = missing_marts(con)
        if missing:
            raise MartsMissing(
                f"{warehouse_path} lacks {', '.join(missing)}: run `dbt build` (harmonia "
                "transform) first"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        for mart, grain in MARTS.items():
            path = out_dir / f"{mart}.parquet"
            con.execute(
                f"copy (select * from {MARTS_SCHEMA}.{mart} order by {', '.join(grain)}) "
                f"to {_sql_literal(str(path))} (format parquet)"
            )
            (rows,) = con.execute(f"select count(*) from {MARTS_SCHEMA}.{mart}").fetchone() or (0,)
            exported.append(ExportedMart(mart=mart, path=path, rows=int(rows)))
    return exported
