"""``harmonia bench``: the pipeline benchmark's command line (heavy imports inside)."""

from __future__ import annotations

import typer

from harmonia.demo import WORLD_DAYS  # a constant: the package's __init__ imports nothing


def bench(
    contacts: int = typer.Option(100_000, help="world size (1000000 for the issue's target)"),
    repeat: int = typer.Option(
        3,
        min=1,
        help="runs per stage; the table shows medians (history mode: increments per size, "
        "each from the same history)",
    ),
    out: str = typer.Option("var/bench/bench.json", help="where the JSON result goes"),
    stages: str = typer.Option(
        "extract,validate,dbt,report,incremental,floor",
        help="comma-separated; a stage brings the ones it needs",
    ),
    seed: int = typer.Option(42),
    profile: bool = typer.Option(False, help="cProfile one extract run: top 10 cumulative"),
    profiler: str = typer.Option(
        "cprofile",
        help="with --profile: cprofile (top 10 printed) or py-spy (every thread, sampled from "
        "outside; speedscope file next to --out; bench extra)",
    ),
    with_dlt: bool = typer.Option(
        False, help="extract+land per source side by side with dlt rest_api (bench extra)"
    ),
    history: str = typer.Option(
        "",
        help="history mode: comma-separated history sizes (e.g. 1000000,5000000); times an "
        "incremental run over each history instead of the stage benchmark",
    ),
    keep: str = typer.Option(
        "",
        help="keep the last run's working directory (warehouse, GX and dbt files) here, for "
        "inspection or for timing one stage again (history mode: one per size, DIR/h<size>); "
        "empty = delete it (history mode keeps a failed size's directory anyway and says where)",
    ),
    save_history: str = typer.Option(
        "",
        help="history mode: copy each size's loaded history (before the increment) to "
        "DIR/h<size>, with a manifest, for --history-from",
    ),
    history_from: str = typer.Option(
        "",
        help="history mode: start each size from DIR/h<size> (saved by --save-history for the "
        "same seed, size and share) instead of loading the history; only the increment is run",
    ),
    increment_share: float = typer.Option(
        0.01,
        min=0.0001,
        max=0.5,
        help="history mode: contacts new or updated, as a share of the smallest history "
        "(the same number of contacts over every history)",
    ),
    history_days: int = typer.Option(
        WORLD_DAYS, min=1, help="history mode: days the smallest history spans (the world's window)"
    ),
    same_daily_volume: bool = typer.Option(
        False,
        help="history mode: larger histories span proportionally more days (the same "
        "contacts per day as the smallest), instead of the same days at a higher volume",
    ),
) -> None:
    """Benchmark the pipeline per stage against the demo APIs (server in its own process)."""
    from pathlib import Path

    from harmonia.bench.run import BenchOptions, print_result, run_bench

    if history:
        from harmonia.bench.history import HistoryOptions, print_history, run_history

        target = Path(out if out != "var/bench/bench.json" else "var/bench/history.json")
        sizes = tuple(int(s.replace("_", "")) for s in history.split(",") if s.strip())
        result = run_history(
            HistoryOptions(
                sizes=sizes,
                increment_share=increment_share,
                seed=seed,
                out=target,
                keep=Path(keep) if keep else None,
                save_history=Path(save_history) if save_history else None,
                history_from=Path(history_from) if history_from else None,
                days=history_days,
                same_daily_volume=same_daily_volume,
                repeat=repeat,
            ),
            say=typer.echo,
        )
        print_history(result)
        typer.echo(f"written: {target}")
        return

    if profiler not in ("cprofile", "py-spy"):
        typer.echo(f"--profiler: cprofile or py-spy, not {profiler!r}")
        raise typer.Exit(2)
    if with_dlt:
        import importlib.util

        if importlib.util.find_spec("dlt") is None:
            typer.echo("--with-dlt needs dlt: pip install -c .ci/constraints.txt -e '.[bench]'")
            raise typer.Exit(2)
    options = BenchOptions(
        contacts=contacts,
        repeat=repeat,
        seed=seed,
        stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
        out=Path(out),
        profile=profile,
        profiler=profiler,
        with_dlt=with_dlt,
        keep=Path(keep) if keep else None,
    )
    print_result(run_bench(options, say=typer.echo))
    typer.echo(f"written: {out}")
