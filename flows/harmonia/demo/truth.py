"""Ground truth of a generated world, as Parquet files a test or an auditor can join against
the warehouse: which customer and which request every served contact really belongs to.

``contacts.parquet`` is keyed by the warehouse's ``contact_id`` (``<channel>:<source id>``);
``customers.parquet``, ``requests.parquet`` and ``surveys.parquet`` are the world's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harmonia.demo.schema import World

TRUTH_FILES = ("contacts.parquet", "customers.parquet", "requests.parquet", "surveys.parquet")


def contacts_truth(
    world: World, malformed: Sequence[str | None] | pa.Array | None = None
) -> pa.Table:
    """One row per contact: contact_id, customer_idx, request_idx, channel, topic (canonical,
    the request's), source_topic, and ``malformed`` (the defect the server injected into the
    record, aligned with ``world.contacts`` rows; null when none or not given)."""
    c = world.contacts
    req = world.requests
    # request_idx is 0..n-1 in row order, so the request's topic is a positional take
    topic = pc.take(req.column("topic"), c.column("request_idx"))
    contact_id = pc.binary_join_element_wise(c.column("channel"), c.column("source_id"), ":")
    if malformed is None:
        bad = pa.nulls(c.num_rows, pa.string())
    else:
        bad = pa.array(malformed, pa.string())
        if len(bad) != c.num_rows:
            raise ValueError("malformed must have one entry per contact")
    return pa.table(
        {
            "contact_id": contact_id,
            "customer_idx": c.column("customer_idx"),
            "request_idx": c.column("request_idx"),
            "channel": c.column("channel"),
            "topic": topic,
            "source_topic": c.column("source_topic"),
            "malformed": bad,
        }
    )


def write_truth(
    world: World,
    out_dir: str | Path,
    malformed: Sequence[str | None] | pa.Array | None = None,
) -> list[Path]:
    """Write the four truth files into ``out_dir`` (created if needed); return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "contacts.parquet": contacts_truth(world, malformed),
        "customers.parquet": world.customers,
        "requests.parquet": world.requests,
        "surveys.parquet": world.surveys,
    }
    paths = []
    for name, table in tables.items():
        path = out / name
        pq.write_table(table, path)
        paths.append(path)
    return paths
