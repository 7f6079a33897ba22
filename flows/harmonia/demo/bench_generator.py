"""Benchmark of the world generator: wall time and peak RSS per world size.

Run ``python -m harmonia.demo.bench_generator [contacts ...]``; each size runs in a fresh
process so that peak RSS belongs to that size alone.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


def run_one(contacts: int) -> str:
    """Generate one world in this process; return a one-line report."""
    from harmonia.demo.generator import generate_world

    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    world = generate_world(seed=42, contacts=contacts)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time too: on a shared machine wall time also measures the neighbours
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_mb = after.ru_maxrss / 1024  # KiB on Linux
    return (
        f"contacts={contacts:>9,} generated={world.contacts.num_rows:>9,} "
        f"customers={world.customers.num_rows:>8,} requests={world.requests.num_rows:>8,} "
        f"surveys={world.surveys.num_rows:>7,} time={elapsed:6.2f}s cpu={cpu:6.2f}s "
        f"peak_rss={peak_mb:7.0f}MB"
    )


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(run_one(int(argv[1])))
        return
    sizes = [int(a) for a in argv] or list(DEFAULT_SIZES)
    for size in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "harmonia.demo.bench_generator", "--one", str(size)],
            check=True,
            capture_output=True,
            text=True,
        )
        print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
