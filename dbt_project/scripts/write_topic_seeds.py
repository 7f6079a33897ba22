"""Write the committed topic seeds (``seeds/topic_map.csv``, ``seeds/topics.csv``) from the
demo generator, so the dbt lookups and the generated world name topics the same way.

Run from the repo root: ``.venv/bin/python dbt_project/scripts/write_topic_seeds.py``.
The CSVs stay committed; re-run this only when the generator's topic lists change.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harmonia.demo.generator import topic_map_rows, topics_rows

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def _as_tuple(row: Mapping[str, Any] | Sequence[Any], columns: Sequence[str]) -> tuple[Any, ...]:
    if isinstance(row, Mapping):
        return tuple(row[c] for c in columns)
    return tuple(row)


def write_seed(name: str, columns: Sequence[str], rows: Iterable[Any]) -> Path:
    path = SEEDS / f"{name}.csv"
    body = sorted({_as_tuple(r, columns) for r in rows})
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(body)
    return path


def main() -> None:
    for path in (
        write_seed("topic_map", ("channel", "source_topic", "topic"), topic_map_rows()),
        write_seed("topics", ("topic", "journey_stage"), topics_rows()),
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
