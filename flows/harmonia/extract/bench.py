"""Benchmark: records per second of a full ingest against the demo APIs on loopback.

    .venv/bin/python -m harmonia.extract.bench --contacts 100000 [--flow] [--faults ...]

Starts a ``DemoServer`` whose world has about ``--contacts`` contacts, lands every source into
a fresh DuckDB file in a temporary directory, and prints per-source and total records/s.
Without ``--flow`` the sources run on plain threads (the extraction alone); with ``--flow``
through the Prefect ``ingest`` flow (adds Prefect's own overhead: ephemeral API, task runs).
Numbers belong here, not in tests.

Measured 2026-11-23 on the 2-core build box (load average ~5 from parallel work), server in
its own process with ``--nodelay``: 99,206 contacts → 316,933 records (7 sources, 206 MiB
DuckDB) in 199 s = 1,592 records/s; the quiet incremental run after it: 2.5 s, 17
requests, 0 landed. Without ``--nodelay`` the demo server's ~40 ms per response (Nagle +
delayed ACK) dominates: 10k contacts took 47 s instead of 17 s.

After Messenger field expansion and batched landing (issue #8), same box, load average 7–9:
100k contacts → 316,764 records in 101 s = 3,127 records/s with 1,267 requests (was about
17,200) and 116 commits (was one per page, 1,267); 20k: 258 requests, 21 commits.

2026-12-05 (session 16, records landed as text, zstd, the page read ahead), quiet box: 200k
contacts → 640,200 records in 21-25 s (25.7 s before), 2,529 requests, ~130 commits.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path


def _serve(seed: int, contacts: int, faults: str, nodelay: bool, conn: Connection) -> None:
    """The demo server in its own process: it must not share the client's GIL."""
    import socket

    from harmonia.demo.server import DemoServer

    with DemoServer(seed=seed, contacts=contacts, faults=faults or None, port=0) as srv:
        if nodelay:
            # The demo server writes headers and body separately without TCP_NODELAY:
            # Nagle + delayed ACK add ~40 ms per response. Accepted sockets inherit this.
            assert srv._sock is not None
            srv._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        w = srv.world
        conn.send((srv.base_url, w.contacts.num_rows, w.surveys.num_rows))
        conn.recv()  # until the client is done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--faults", default="", help='e.g. "rate_limit=0.05,server_error=0.05"')
    parser.add_argument("--flow", action="store_true", help="run through the Prefect flow")
    parser.add_argument("--incremental", action="store_true", help="time a second run too")
    parser.add_argument("--nodelay", action="store_true", help="TCP_NODELAY on the demo server")
    args = parser.parse_args()

    from harmonia.extract.landing import Landing
    from harmonia.extract.runner import run_source
    from harmonia.extract.sources import resolve_sources
    from harmonia.settings import Credentials

    here, there = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(args.seed, args.contacts, args.faults, args.nodelay, there)
    )
    server.start()
    base_url, n_contacts, n_surveys = here.recv()
    print(f"world: {n_contacts} contacts, {n_surveys} surveys; server {base_url}", flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warehouse = Path(tmp) / "warehouse.duckdb"
            for label in ["initial", "incremental"] if args.incremental else ["initial"]:
                started = time.perf_counter()
                if args.flow:
                    from harmonia.pipeline.ingest import ingest

                    results = ingest(base_url=base_url, warehouse=warehouse).sources
                else:
                    configs = resolve_sources(None, base_url)
                    run_id = str(uuid.uuid4())
                    with Landing(warehouse) as landing, ThreadPoolExecutor(len(configs)) as pool:
                        futures = [
                            pool.submit(run_source, cfg, landing, Credentials(), run_id)
                            for cfg in configs
                        ]
                        results = [f.result() for f in futures]
                elapsed = time.perf_counter() - started
                _report(label, elapsed, results)
                size = warehouse.stat().st_size / 2**20
                print(f"warehouse file: {size:.0f} MiB", flush=True)
    finally:
        here.send("stop")
        server.join(timeout=30)


def _report(label: str, elapsed: float, results: list) -> None:
    total = sum(r.records for r in results)
    landing = sum(r.landing_s for r in results)
    print(
        f"\n{label} run: {total} records in {elapsed:.2f}s = {total / elapsed:,.0f} rec/s "
        f"(landing: {landing:.1f}s in total = {total / max(landing, 1e-9):,.0f} rec/s; "
        f"{sum(r.requests for r in results)} requests, {sum(r.commits for r in results)} commits)"
    )
    print(
        f"{'source':<10} {'pages':>6} {'records':>8} {'landed':>8} {'dup':>6} "
        f"{'req':>6} {'retry':>5} {'commit':>6} {'secs':>6} {'http_s':>7} {'land_s':>7} "
        f"{'rec/s':>8}"
    )
    for r in results:
        rate = r.records / r.duration_s if r.duration_s else 0.0
        print(
            f"{r.source:<10} {r.pages:>6} {r.records:>8} {r.landed:>8} "
            f"{r.duplicates:>6} {r.requests:>6} {r.retries:>5} {r.commits:>6} {r.duration_s:>6.1f} "
            f"{r.http_s:>7.1f} {r.landing_s:>7.1f} {rate:>8,.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
