"""``harmonia bench`` at a tiny size: every stage is measured and reported, the floor ratio
and the targets are there. No timing thresholds: speed belongs in the numbers, not here."""

from __future__ import annotations

import json
from pathlib import Path

from harmonia.bench.run import ALL_STAGES, BenchOptions, run_bench


def test_bench_reports_every_stage(prefect_harness: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run_bench(BenchOptions(contacts=300, repeat=1, out=out, workdir=tmp_path), say=lambda _: None)
    result = json.loads(out.read_text())

    stages = result["stages"]
    assert set(stages) == {"generate", *ALL_STAGES}
    for name, row in stages.items():
        assert row["records"] > 0, name
        assert row["records_per_s"] > 0, name
        assert row["peak_rss_mib"] > 0, name
    # the floor reads the same pages the extractor landed
    assert stages["floor"]["records"] == stages["extract"]["records"]
    assert stages["floor"]["ratio"] > 0
    assert stages["incremental"]["ratio"] > 0
    targets = {t["target"]: t for t in result["targets"]}
    assert targets["extract+land over the floor"]["status"] in ("met", "not met")
    assert targets["1M contacts end to end"]["status"] == "not measured"
    assert targets["extract+land vs dlt rest_api"]["note"].endswith("not implemented yet")
