"""``python -m harmonia.pipeline.deploy [options of prefect deploy]``: deploy
``deployments/prefect.yaml`` (default ``--all``) from the repository root.

It is ``prefect --no-prompt deploy --prefect-file deployments/prefect.yaml …`` plus one
compatibility fix. With the pinned Prefect 3.8.8 and FastAPI 0.154, every deploy path
(``prefect deploy``, ``flow.deploy``) ends by asking the server for the pool's online workers
and sends ``"limit": null, "offset": null``; that FastAPI rejects the nulls (HTTP 422), so the
first deployment is created and the command then fails — with ``--all``, before the other
deployments. The fix sends the server's defaults instead (offset 0, limit 200 =
``PREFECT_SERVER_API_DEFAULT_LIMIT``), in this process only. Drop it once Prefect sends
integers (check: plain ``prefect deploy --all`` exits 0 against a server).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

from harmonia.settings import REPO_ROOT

PREFECT_FILE = "deployments/prefect.yaml"
_DEFAULT_LIMIT = 200


def _send_integer_paging() -> None:
    from prefect.client.orchestration._work_pools.client import (
        WorkPoolAsyncClient,
        WorkPoolClient,
    )

    for cls in (WorkPoolAsyncClient, WorkPoolClient):
        original = cls.read_workers_for_work_pool
        if getattr(original, "_harmonia_fixed", False):
            continue

        def fixed(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if kwargs.get("offset") is None:
                kwargs["offset"] = 0
            if kwargs.get("limit") is None:
                kwargs["limit"] = _DEFAULT_LIMIT
            return _original(self, *args, **kwargs)  # a coroutine for the async client

        functools.update_wrapper(fixed, original)
        fixed._harmonia_fixed = True  # type: ignore[attr-defined]
        cls.read_workers_for_work_pool = fixed  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """Run ``prefect deploy`` on ``deployments/prefect.yaml``; returns its exit code."""
    args = list(sys.argv[1:] if argv is None else argv) or ["--all"]
    os.chdir(REPO_ROOT)  # the entrypoints in prefect.yaml are relative to the repository root
    _send_integer_paging()
    from prefect.cli import app

    try:
        sys.argv = ["prefect", "--no-prompt", "deploy", "--prefect-file", PREFECT_FILE, *args]
        app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
