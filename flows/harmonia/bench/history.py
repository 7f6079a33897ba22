"""Incremental runs over a large history: ``harmonia bench --history 20000,100000``.

The issue asks how an incremental run (≈1 % new and updated contacts) scales with the size of
the history already in the warehouse: 1M contacts of history against 5M, time ratio ≤ 1.3×,
peak RSS ≤ 2 GB. For each history size, with the demo server in its own process:

1. the server computes the *history clock*: the instant by which all but the increment's
   contacts had their last change (so moving the clock from there to the end of the world
   makes exactly those new or updated). The increment is the same number of contacts over
   every history — ``--increment-share`` of the *smallest* size (the issue's "1 % of 1M, and
   the same increment with 5M of history") — so the ratio shows what the history costs;
2. **history**: at that clock, a fresh warehouse gets a full run — extract+land over HTTP,
   validate, dbt — in a **fresh process** (``harmonia.bench.stages``), each stage timed and
   its resident set sampled, the peak judged against the 2 GB target at 5M. Its own process,
   so a size's load carries nothing an earlier size left in this one (the loads used to run
   here one after another, and the 5M load's RSS was this process's ``ru_maxrss``, which
   counted the 1M size's run too);
3. **increment**: clock to the end of the world, then the real incremental pipeline
   (extract over HTTP, validate, dbt, report) in a **fresh process**
   (``harmonia.bench.stages``), as a scheduled run would start: nothing the history load
   left in this process (DuckDB's buffers, Python's arenas) counts. It is timed per stage and
   its resident set is *sampled* (``/proc/self/status`` VmRSS every 50 ms) during the stages;
   its lifetime peak (``VmHWM``, imports included) is reported too.

``--repeat N`` runs N increments per size, each from the same history (the working directory
is put back from a copy between them), and reports their medians; the dbt stage carries where
dbt spent its time (``harmonia.bench.run._dbt_detail``). The median increment's total at the
largest size over the one at the smallest is the scaling ratio;
the 1.3× target is judged only for 1M against 5M. The history here is extracted over HTTP (a
full run), which is exact but slow: on the 2-core box a 1M history takes about 8 minutes
(extract, validate, dbt) and a 5M one about 50, with 4.8 GB in the demo server
(``docs/performance.md``, "Third round").

So a history can be loaded once and reused: ``--save-history DIR`` copies each size's working
directory to ``DIR/h<size>`` right after the history load (before the increment touches it)
with a manifest, ``history.json`` (seed, size, increment share, clocks, the load's numbers,
and what made it: when, the commit, DuckDB's caps);
``--history-from DIR`` starts each size from that copy instead of loading it again, after
checking that the manifest was made for the same world (seed, size, increment share). Only
the increment is then measured; the history's numbers are the saved ones.
"""

from __future__ import annotations

import bisect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from harmonia.bench.run import (
    PIPELINE_STAGES,
    StageRun,
    _Dirs,
    _prefect_warmup,
    _Server,
)
from harmonia.demo import WORLD_DAYS
from harmonia.settings import REPO_ROOT, get_settings, validate_memory_limit

TARGET_SCALING_RATIO = 1.3
TARGET_PEAK_RSS_MIB = 2048.0
TARGET_SIZES = (1_000_000, 5_000_000)


@dataclass
class HistoryOptions:
    sizes: tuple[int, ...] = (20_000, 100_000)
    increment_share: float = 0.01
    seed: int = 42
    out: Path | None = None
    workdir: Path | None = None
    keep: Path | None = None  # each size's working directory is moved to keep/h<size>
    save_history: Path | None = None  # each size's loaded history is copied to DIR/h<size>
    history_from: Path | None = None  # each size's history is copied from DIR/h<size>
    # the span of the smallest history; with same_daily_volume the larger ones span more days
    # at the same contacts per day (a bigger history is a longer one), else the same days
    # (a bigger history is a busier one: the voice and SMS lookbacks re-read more per run)
    days: int = WORLD_DAYS
    same_daily_volume: bool = False
    # increments per size, each from the same history (restored from a copy between them);
    # the result reports their medians
    repeat: int = 1


def history_days(size: int, options: HistoryOptions) -> int:
    """The number of days the world of the history of ``size`` contacts spans."""
    if not options.same_daily_volume:
        return options.days
    return max(1, round(options.days * size / min(options.sizes)))


MANIFEST = "history.json"


def status_mib(field: str) -> float:
    """A memory figure of this process from ``/proc/self/status`` (VmRSS, VmHWM, ...), MiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Peak resident set size of this process while running (VmRSS, MiB)."""

    def __init__(self, every_s: float = 0.05) -> None:
        self.every_s = every_s
        self.peak_mib = 0.0
        self.start_mib = 0.0
        self.samples: list[tuple[float, float]] = []
        self._t0 = time.perf_counter()
        self._unix_t0 = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def current_mib() -> float:
        return status_mib("VmRSS")

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.current_mib()
            self.samples.append((time.perf_counter() - self._t0, now))
            self.peak_mib = max(self.peak_mib, now)
            self._stop.wait(self.every_s)

    def _span(self, start: float, end: float) -> tuple[int, int]:
        """Indexes ``[lo, hi)`` of the samples taken from ``start`` to ``end`` (seconds since
        the sampler started, both ends included). Samples come in time order, so this is a
        bisection, not a scan: a 5M load's dbt detail asks it for each of ~230 nodes."""
        lo = bisect.bisect_left(self.samples, start, key=itemgetter(0))
        return lo, bisect.bisect_right(self.samples, end, lo=lo, key=itemgetter(0))

    def peaks(self, seconds: list[tuple[str, float]]) -> dict[str, float]:
        """Peak per consecutive span (``name``, seconds), from the samples' timeline."""
        out: dict[str, float] = {}
        start = 0.0
        for name, length in seconds:
            lo, hi = self._span(start, start + length)
            out[name] = round(max((mib for _, mib in self.samples[lo:hi]), default=0.0), 1)
            start += length
        return out

    def peak_between(self, start_unix: float, end_unix: float) -> tuple[float, float] | None:
        """``(peak, first)``: the highest sample taken between two Unix times (a dbt node's
        execute step, say) and the last one taken at or before the start; None when no sample
        fell inside (a span shorter than the sampling interval)."""
        start = start_unix - self._unix_t0
        lo, hi = self._span(start, end_unix - self._unix_t0)
        if lo == hi:
            return None
        peak = max(mib for _, mib in self.samples[lo:hi])
        at_start = bisect.bisect_right(self.samples, start, key=itemgetter(0)) - 1
        first = self.samples[at_start if at_start >= 0 else lo][1]
        return round(peak, 1), round(first, 1)

    def __enter__(self) -> RssSampler:
        self._t0 = time.perf_counter()
        self._unix_t0 = time.time()
        self.start_mib = round(self.current_mib(), 1)
        self.peak_mib = self.start_mib
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = round(max(self.peak_mib, self.current_mib()), 1)


def _one_size(
    size: int, options: HistoryOptions, root: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    from harmonia.validate.context import EXPECTATIONS_DIR

    # the same increment (in contacts) over every history: the share is of the smallest
    share = options.increment_share * min(options.sizes) / size
    days = history_days(size, options)
    say(f"history {size:,}: starting the demo server ({days} days) ...")
    server = _Server(options.seed, size, increment_share=share, days=days)
    info = server.info
    say(
        f"history {size:,}: {info['contacts']:,} contacts; increment: "
        f"{info['increment_new']:,} new + {info['increment_updated']:,} updated"
    )
    dirs = _Dirs(root / f"h{size}")
    pristine = root / f"h{size}.history"
    world = {"seed": options.seed, "size": size, "increment_share": share, "days": days}
    repeats: list[_Increment] = []
    done = False
    try:
        if options.history_from is not None:
            hist, load_peak, saved_by = _saved_history(
                options.history_from / dirs.root.name, world, info, dirs.root
            )
            say(
                f"history {size:,}: copied from {options.history_from / dirs.root.name} "
                f"({_saved_by_text(saved_by)})"
            )
        else:
            saved_by = None
            dirs.root.mkdir(parents=True)
            shutil.copytree(EXPECTATIONS_DIR, dirs.root / "expectations")
            server.set_clock(info["history_clock"])
            hist, load_peak = _load_in_fresh_process(server.base_url, dirs.root)
            say(
                f"history {size:,}: "
                + ", ".join(f"{k} {v.seconds:.1f}s ({v.records:,})" for k, v in hist.items())
                + f"; RSS peak per stage {_stage_peaks(hist)} MiB"
            )
            say(f"history {size:,}: {dbt_summary(hist['dbt'].extra)}")
            if options.save_history is not None:
                _save_history(
                    dirs.root, options.save_history / dirs.root.name, world, info, hist, load_peak
                )
        # what the repeats after the first start from: the saved copy of this history when
        # there is one (--history-from, --save-history), else a copy of it made now
        saved = options.history_from or options.save_history
        if options.repeat > 1 and saved is None:
            shutil.copytree(dirs.root, pristine)
        server.set_clock(info["end"])
        for i in range(options.repeat):
            if i > 0:
                shutil.rmtree(dirs.root)
                if saved is not None:
                    _saved_history(saved / dirs.root.name, world, info, dirs.root)
                else:
                    shutil.copytree(pristine, dirs.root)
                say(f"increment {size:,}: history restored for repeat {i + 1}/{options.repeat}")
            # a copied history is gigabytes of dirty page cache (~2.3 GB after an 11 GB copy
            # at 5M), which DuckDB's first checkpoint would write back on the clock: flush it
            # first, as a scheduled run finds its warehouse long on disk (measured back to
            # back at 5M it changed nothing visible: docs/performance.md, twentieth round)
            _flush_to_disk()
            child = _stages_in_fresh_process(server.base_url, dirs.root, "increment")
            inc = {name: StageRun(**run) for name, run in child["stages"].items()}
            (n_rows,) = _landed_rows(dirs.warehouse)
            repeats.append(_Increment(inc, child, n_rows))
            say(
                f"increment {size:,}: "
                + ", ".join(f"{k} {v.seconds:.1f}s" for k, v in inc.items())
                + f"; RSS {child['start_rss_mib']:,.0f} MiB at start, "
                + f"{child['peak_rss_mib']:,.0f} MiB peak "
                + f"(per stage: {child['peak_rss_mib_per_stage']})"
            )
            say(f"increment {size:,}: {dbt_summary(inc['dbt'].extra)}")
        done = True
    finally:
        tail = server.stop()
        shutil.rmtree(pristine, ignore_errors=True)
        _put_away(dirs.root, options, done, say)
    return {
        "history_contacts": info["contacts"],
        "history_days": days,
        "history_span_days": round((info["end"] - info["start"]) / 86400, 3),
        "history_clock": info["history_clock"],
        "history_load": "full extract over HTTP at the history clock"
        + (
            f" (saved, copied from {options.history_from / dirs.root.name})"
            if options.history_from is not None
            else ""
        ),
        # what saved the history this run copied (--history-from): when, which commit, which
        # DuckDB caps; null when loaded by this run or saved before manifests recorded it
        "history_saved_by": saved_by,
        # the load's own process (harmonia.bench.stages): its resident set's peak per stage,
        # sampled; null from a history saved before the load had its own process
        "history": {
            name: {
                "seconds": round(r.seconds, 3),
                "records": r.records,
                "peak_rss_mib": round(r.peak_rss_mib, 1) if load_peak is not None else None,
            }
            for name, r in hist.items()
        },
        # where the load's dbt build spent its time, and the nodes it was largest during
        # (harmonia.bench.run._dbt_detail; a history saved before that lacks the latter)
        "history_dbt_detail": hist["dbt"].extra,
        "increment_new_contacts": info["increment_new"],
        "increment_updated_contacts": info["increment_updated"],
        **_increment_summary(repeats),
        "history_peak_rss_mib": _history_peak(hist, load_peak),
        # that process's lifetime peak (VmHWM: imports and Prefect's start-up included)
        "history_process_peak_rss_mib": load_peak,
        "server_peak_rss_mib": round(tail.get("server_peak_rss_mib", 0.0), 1),
        "generate_s": round(info["generate_s"], 3),
    }


@dataclass
class _Increment:
    """One increment over a history: its stages, what its process reported, the rows landed."""

    stages: dict[str, StageRun]
    child: dict[str, Any]
    landing_rows_after: int

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.stages.values())


def _increment_summary(repeats: list[_Increment]) -> dict[str, Any]:
    """The increments over one history as the result reports them: per stage and in total the
    median seconds, every repeat's seconds, the details (extract per source, dbt per node) of
    the repeat nearest the median, and the highest resident set of any repeat."""
    total = statistics.median(r.seconds for r in repeats)
    typical = min(repeats, key=lambda r: abs(r.seconds - total))
    stages = list(typical.stages)
    per_stage_rss = [r.child["peak_rss_mib_per_stage"] for r in repeats]
    return {
        "increment": {
            name: {
                "seconds": round(statistics.median(r.stages[name].seconds for r in repeats), 3),
                "records": typical.stages[name].records,
            }
            for name in stages
        },
        "increment_extract_detail": typical.stages["extract"].extra,
        # where the increment's dbt build spent its time (harmonia.bench.run._dbt_detail)
        "increment_dbt_detail": typical.stages["dbt"].extra,
        "increment_s": round(total, 3),
        "increment_runs": [
            {
                **{name: round(run.seconds, 3) for name, run in r.stages.items()},
                "total_s": round(r.seconds, 3),
                "landed": r.stages["extract"].extra["landed"],
                "peak_rss_mib": r.child["peak_rss_mib"],
            }
            for r in repeats
        ],
        "landing_rows_after": typical.landing_rows_after,
        "increment_peak_rss_mib": max(r.child["peak_rss_mib"] for r in repeats),
        "increment_start_rss_mib": max(r.child["start_rss_mib"] for r in repeats),
        "increment_peak_rss_mib_per_stage": {
            name: max(rss.get(name, 0.0) for rss in per_stage_rss) for name in stages
        },
        "process_peak_rss_mib": max(r.child["process_peak_rss_mib"] for r in repeats),
    }


def _put_away(root: Path, options: HistoryOptions, done: bool, say: Callable[[str], None]) -> None:
    """A size's working directory after its run: moved to ``--keep`` when given, else deleted,
    except after a failure. A failed run's directory is kept beside the temporary ones
    (``--workdir``, else the system's) and its path said: what failed is in its logs, and at
    5M the history in it took most of an hour to load (the eleventh round lost one that way)."""
    if not root.exists():
        return
    if options.keep is not None:
        dest = options.keep / root.name
    elif not done:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = options.workdir if options.workdir is not None else Path(tempfile.gettempdir())
        dest = base / f"harmonia-history-failed-{root.name}-{stamp}"
    else:
        shutil.rmtree(root, ignore_errors=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(root, dest)
    if not done:
        size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
        say(
            f"{root.name}: the run failed; its working directory ({size / 2**30:.2f} GiB: "
            f"warehouse, dbt and GX logs) is kept at {dest}; delete it when done"
        )


def _save_history(
    root: Path,
    dest: Path,
    world: dict[str, Any],
    info: dict[str, Any],
    hist: dict[str, StageRun],
    load_peak: float,
) -> None:
    """Copy a loaded history (before its increment) to ``dest`` with its manifest."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(root, dest)
    manifest = {
        "world": world,
        "saved_by": _provenance(),
        "history_clock": info["history_clock"],
        "end": info["end"],
        "history": {name: asdict(run) for name, run in hist.items()},
        "load_process_peak_rss_mib": load_peak,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _provenance() -> dict[str, Any]:
    """What a saved history's numbers were taken with: when, the commit (and whether the
    checkout had uncommitted changes), harmonia's version and DuckDB's caps. A later run that
    reuses the history reports the load's numbers as these, not its own."""
    from harmonia import __version__

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "uncommitted_changes": None if status is None else bool(status),
        "harmonia": __version__,
        "duckdb_memory_limit": get_settings().duckdb_memory_limit,
        "validate_duckdb_memory_limit": validate_memory_limit(),
    }


def _saved_by_text(saved_by: dict[str, Any] | None) -> str:
    """A saved history's provenance in a few words, for the log line and the load's note."""
    if saved_by is None:
        return "saved before manifests recorded their code and caps"
    commit = (saved_by["commit"] or "unknown commit")[:10]
    if saved_by["uncommitted_changes"]:
        commit += " with uncommitted changes"
    return (
        f"saved {saved_by['saved_at']} at {commit}, DuckDB cap "
        f"{saved_by['duckdb_memory_limit']} (validate {saved_by['validate_duckdb_memory_limit']})"
    )


def _flush_to_disk() -> None:
    if hasattr(os, "sync"):  # not on Windows
        os.sync()


def dbt_summary(detail: dict[str, Any]) -> str:
    """One line of a dbt stage's detail: dbt's elapsed seconds, the thread seconds of its
    models and tests, its slowest nodes, and the nodes it was largest during (when sampled)."""
    kinds = detail["per_type"]
    parts = [
        f"{kind}s {row['seconds']:.1f}s ({row['nodes']})"
        for kind, row in kinds.items()
        if kind in ("model", "test")
    ]
    slowest = ", ".join(f"{n['node']} {n['seconds']:.2f}s" for n in detail["slowest"][:5])
    line = f"dbt {detail['elapsed_s']:.1f}s elapsed; {'; '.join(parts)}; slowest: {slowest}"
    if detail.get("peak_rss_nodes"):
        largest = ", ".join(
            f"{n['node']} {n['peak_rss_mib']:,.0f} MiB" for n in detail["peak_rss_nodes"][:3]
        )
        line += f"; highest RSS during: {largest}"
    return line


def _saved_history(
    src: Path, world: dict[str, Any], info: dict[str, Any], root: Path
) -> tuple[dict[str, StageRun], float | None, dict[str, Any] | None]:
    """Copy a saved history into ``root``, ready for an increment; its numbers, after checking
    it is this world's: per stage, its load process's lifetime peak RSS (None when saved
    before the load ran in a process of its own, whose per-stage RSS was then the benchmark
    process's ``ru_maxrss``, carrying whatever ran before it) and what saved it
    (``_provenance``; None when saved before manifests recorded it)."""
    from harmonia.transform import dbt_parse

    manifest_path = src / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{src}: no saved history there ({MANIFEST} missing; make one with --save-history)"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    # histories saved before the days option existed all span 30 days
    manifest["world"] = {"days": 30, **manifest["world"]}
    if manifest["world"] != world or manifest["history_clock"] != info["history_clock"]:
        raise ValueError(
            f"{src} holds the history of {manifest['world']} at clock "
            f"{manifest['history_clock']}, not of {world} at {info['history_clock']}"
        )
    shutil.copytree(src, root)
    (root / MANIFEST).unlink()
    # dbt's saved parse names the warehouse path it was made for, so the copy's would send the
    # increment's build through a full parse (~3 s more than a scheduled run over a warehouse
    # that stays put, or than a history loaded in this run): parse once here, untimed
    dbt_parse(_Dirs(root).warehouse, target_path=root / "target")
    hist = {name: StageRun(**run) for name, run in manifest["history"].items()}
    return hist, manifest.get("load_process_peak_rss_mib"), manifest.get("saved_by")


def _history_peak(hist: dict[str, StageRun], load_peak: float | None) -> float | None:
    """The load's peak resident set over its stages (sampled in its own process), or None
    when the history's numbers predate that process (``_saved_history``)."""
    return None if load_peak is None else max(run.peak_rss_mib for run in hist.values())


def _stage_peaks(hist: dict[str, StageRun]) -> str:
    """The load's peak RSS per stage as printed: "1,662 / 2,375 / 2,349"."""
    return " / ".join(f"{run.peak_rss_mib:,.0f}" for run in hist.values())


#: what each run over a history is made of: the load builds it, an increment runs on top
RUN_STAGES = {"load": ("extract", "validate", "dbt"), "increment": PIPELINE_STAGES}


def _stages_in_fresh_process(base_url: str, root: Path, run: str) -> dict[str, Any]:
    """The load or an increment (``RUN_STAGES``) in a new interpreter
    (``harmonia.bench.stages``), as a scheduled run; what that process reported."""
    out = root / f"{run}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harmonia.bench.stages",
            base_url,
            str(root),
            str(out),
            ",".join(RUN_STAGES[run]),
        ],
        check=True,
    )
    return json.loads(out.read_text(encoding="utf-8"))


def _load_in_fresh_process(base_url: str, root: Path) -> tuple[dict[str, StageRun], float]:
    """A history's full run (``RUN_STAGES["load"]``) in its own process: per stage its seconds,
    records and the peak of that process's resident set sampled during the stage; and the
    process's lifetime peak (``VmHWM``)."""
    child = _stages_in_fresh_process(base_url, root, "load")
    hist = {
        # not the child's ru_maxrss: across the fork it carries this process's high-water mark
        name: StageRun(**{**run, "peak_rss_mib": child["peak_rss_mib_per_stage"][name]})
        for name, run in child["stages"].items()
    }
    return hist, child["process_peak_rss_mib"]


def _landed_rows(warehouse: Path) -> tuple[int]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select count(*) from landing.records").fetchone()  # type: ignore[return-value]


def run_history(options: HistoryOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Each history size in turn; returns (and writes to ``options.out``) the result."""
    sizes = sorted(options.sizes)
    tmp = tempfile.TemporaryDirectory(prefix="harmonia-history-", dir=options.workdir)
    try:
        warmup_s = _prefect_warmup()
        say(f"prefect warm-up: {warmup_s:.1f}s (not counted)")
        runs = [_one_size(size, options, Path(tmp.name), say) for size in sizes]
    finally:
        tmp.cleanup()
    small, large = runs[0], runs[-1]
    ratio = (
        round(large["increment_s"] / small["increment_s"], 3)
        if len(runs) > 1 and small["increment_s"] > 0
        else None
    )
    at_target = tuple(sizes[:1] + sizes[-1:]) == TARGET_SIZES
    peak = max(r["increment_peak_rss_mib"] for r in runs)
    at_5m = sizes[-1] >= TARGET_SIZES[1]
    load_peak = large["history_peak_rss_mib"]
    result = {
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "sizes": sizes,
            "increment_share": options.increment_share,
            "days_of_smallest_history": options.days,
            "same_daily_volume": options.same_daily_volume,
            "seed": options.seed,
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "history_load": "full extract over HTTP (not bulk-loaded)",
            "history_load_process": "fresh process (python -m harmonia.bench.stages)",
            "increment_process": "fresh process (python -m harmonia.bench.stages)",
            # increments per size, each from the same history; seconds are their medians
            "repeat": options.repeat,
            # RSS depends on them: DuckDB caches up to this much (HARMONIA_DUCKDB_MEMORY_LIMIT,
            # and HARMONIA_VALIDATE_DUCKDB_MEMORY_LIMIT while validating)
            "duckdb_memory_limit": get_settings().duckdb_memory_limit,
            "validate_duckdb_memory_limit": validate_memory_limit(),
        },
        "runs": runs,
        "scaling_ratio": ratio,
        "targets": [
            {
                "target": "increment time, 5M history over 1M",
                "wanted": f"<= {TARGET_SCALING_RATIO}x",
                "measured": ratio,
                "status": ("met" if ratio <= TARGET_SCALING_RATIO else "not met")
                if at_target and ratio is not None
                else "not measured",
                "note": ""
                if at_target
                else f"measured {sizes[-1]:,} over {sizes[0]:,}: indicative only",
            },
            {
                "target": "increment peak RSS at 5M history",
                "wanted": f"<= {TARGET_PEAK_RSS_MIB:.0f} MiB",
                "measured": peak,
                "status": ("met" if peak <= TARGET_PEAK_RSS_MIB else "not met")
                if at_5m
                else "not measured",
                "note": "" if at_5m else f"largest: {sizes[-1]:,}",
            },
            {
                "target": "history load peak RSS at 5M (extract, validate, dbt in one process)",
                "wanted": f"<= {TARGET_PEAK_RSS_MIB:.0f} MiB",
                "measured": load_peak,
                "status": ("met" if load_peak <= TARGET_PEAK_RSS_MIB else "not met")
                if at_5m and load_peak is not None
                else "not measured",
                "note": _load_note(
                    sizes[-1], at_5m, load_peak, options.history_from, runs[-1]["history_saved_by"]
                ),
            },
        ],
    }
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _load_note(
    size: int,
    at_5m: bool,
    load_peak: float | None,
    saved: Path | None,
    saved_by: dict[str, Any] | None = None,
) -> str:
    """The load-RSS target's note. From --history-from the load is the saved history's, taken
    by whatever code and DuckDB caps saved it, not by this run: the note says so, and names
    them when the manifest recorded them."""
    if not at_5m:
        return f"largest: {size:,}"
    if load_peak is None:
        return "saved before the load had a process of its own"
    if saved is not None:
        return f"the load saved in {saved}, not this run's ({_saved_by_text(saved_by)})"
    return ""


def print_history(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    meta = result["meta"]
    table = Table(
        title=f"incremental run over a history ({meta['history_load']}), "
        f"increment {meta['increment_share']:.1%} of the smallest history, the same over each; "
        f"median of {meta['repeat']} increment(s) per history"
    )
    cols = (
        "history (days)",
        "history s (extract/validate/dbt)",
        "history peak MiB",
        "new+upd",
        "inc extract s (records)",
        "inc validate s",
        "inc dbt s",
        "inc report s",
        "increment s",
        "increments s",
        "inc RSS start/peak MiB",
        "inc process peak MiB",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for r in result["runs"]:
        h, i = r["history"], r["increment"]
        table.add_row(
            f"{r['history_contacts']:,} ({r['history_days']} d)",
            " / ".join(f"{h[s]['seconds']:.1f}" for s in ("extract", "validate", "dbt")),
            "–" if r["history_peak_rss_mib"] is None else f"{r['history_peak_rss_mib']:,.0f}",
            f"{r['increment_new_contacts']:,}+{r['increment_updated_contacts']:,}",
            f"{i['extract']['seconds']:.1f} ({i['extract']['records']:,})",
            f"{i['validate']['seconds']:.1f}",
            f"{i['dbt']['seconds']:.1f}",
            f"{i['report']['seconds']:.1f}",
            f"{r['increment_s']:.1f}",
            " ".join(f"{x['total_s']:.1f}" for x in r["increment_runs"]),
            f"{r['increment_start_rss_mib']:,.0f} / {r['increment_peak_rss_mib']:,.0f}",
            f"{r['process_peak_rss_mib']:,.0f}",
        )
    console.print(table)
    if result["scaling_ratio"] is not None:
        sizes = meta["sizes"]
        console.print(
            f"increment at {sizes[-1]:,} over {sizes[0]:,} history: {result['scaling_ratio']}x"
        )
    for t in result["targets"]:
        console.print(
            f"{t['target']}: wanted {t['wanted']}, measured {t['measured']} → {t['status']}"
            + (f" ({t['note']})" if t["note"] else "")
        )
