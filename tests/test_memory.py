"""``harmonia.memory.release_unused_memory`` gives freed pages back: a fresh interpreter fills
Arrow's pool or the C heap with small blocks, drops them, and its resident set falls only after
the release."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# 2,000 arrays of 100 KiB: below glibc's mmap threshold, so they come from the heap (numpy
# buffers) or from Arrow's pool (built from Python ints), and freeing them keeps the pages
_SCRIPT = """
import gc, json, sys
import numpy as np, pyarrow as pa
from harmonia.bench.history import status_mib
from harmonia.memory import release_unused_memory

def rss_mib():
    return status_mib("VmRSS")

if sys.argv[1] == "pool":
    held = [pa.array(list(range(i, i + 12_800))) for i in range(2_000)]
else:
    held = [pa.array(np.full(12_800, i, dtype=np.int64)) for i in range(2_000)]
full = rss_mib()
del held
gc.collect()
freed = rss_mib()
release_unused_memory()
print(json.dumps({"full": full, "freed": freed, "released": rss_mib()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("where", ["pool", "heap"])
def test_release_returns_freed_pages(where: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, where], capture_output=True, text=True, check=True
    )
    rss = json.loads(out.stdout)
    # ~200 MiB were held; dropping them alone leaves nearly all of it resident
    assert rss["full"] - rss["freed"] < 50, rss
    assert rss["freed"] - rss["released"] > 150, rss
