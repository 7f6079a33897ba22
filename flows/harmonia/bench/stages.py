"""The pipeline's stages in a fresh process: the history benchmark's load and its increments.

``python -m harmonia.bench.stages BASE_URL ROOT OUT_JSON [STAGES]`` runs the given stages
(comma-separated, the first ones of extract, validate, dbt, report; default all four) over
the warehouse in ``ROOT`` against the demo server at ``BASE_URL``, the way a scheduled run
starts: a new interpreter, nothing cached from earlier work. The history benchmark runs each
history's load (extract, validate, dbt into an empty ``ROOT``) and each increment over it (all
four stages) this way, so no run's memory carries what another left in the benchmark's own
process. Prefect's API is started before the clock runs. Writes per-stage seconds and
records, the resident set sampled during the stages (start, peak, peak per stage) and the
process's lifetime peak (``VmHWM``: imports and Prefect start-up included; not ``ru_maxrss``,
which on Linux keeps the forking parent's high-water mark across exec) to ``OUT_JSON``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path


def main(argv: list[str]) -> None:
    from harmonia.bench.history import RssSampler, status_mib
    from harmonia.bench.run import PIPELINE_STAGES, _Dirs, _pipeline_stages, _prefect_warmup

    base_url, root, out, *rest = argv
    wanted = tuple(rest[0].split(",")) if rest else PIPELINE_STAGES
    if not wanted or wanted != PIPELINE_STAGES[: len(wanted)]:
        raise SystemExit(
            f"stages {','.join(wanted)}: the first stages of {','.join(PIPELINE_STAGES)}, in "
            "order (each needs the ones before it)"
        )
    warmup_s = _prefect_warmup()
    with RssSampler() as rss:
        stages = _pipeline_stages(base_url, _Dirs(Path(root)), wanted, rss=rss)
    result = {
        "stages": {name: asdict(run) for name, run in stages.items()},
        "prefect_warmup_s": round(warmup_s, 3),
        "start_rss_mib": rss.start_mib,
        "peak_rss_mib": rss.peak_mib,
        "peak_rss_mib_per_stage": rss.peaks([(k, v.seconds) for k, v in stages.items()]),
        # VmHWM is only refreshed on some kernel paths (unmaps, exit), so it can trail a sample
        "process_peak_rss_mib": round(max(status_mib("VmHWM"), rss.peak_mib), 1),
    }
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
