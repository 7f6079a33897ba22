"""The Great Expectations file context: committed suites in ``expectations/``, output in var/.

The context's own configuration lives in the git-ignored output folder
(``Settings.gx_output_dir``, i.e. ``$HARMONIA_HOME/gx``) and is rewritten by this module on any
open that finds it different from the code (apart from the data source GX adds to it), so it
cannot drift. It points the expectations store at the repository's
``expectations/`` folder (committed, reviewable JSON, one file per suite) and keeps everything
a run produces — validation results, Data Docs, validation definitions, the pandas data source
— under the output folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harmonia.settings import REPO_ROOT

if TYPE_CHECKING:
    from great_expectations.data_context import FileDataContext

#: where the committed suites live
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
DATA_DOCS_SITE = "local_site"

_CONFIG = """\
# Written by harmonia.validate.context: do not edit (edit the code).
config_version: 4
analytics_enabled: false
progress_bars:
  globally: false
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: {expectations_dir}
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validations/
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validation_definitions/
expectations_store_name: expectations_store
validation_results_store_name: validation_results_store
checkpoint_store_name: checkpoint_store
data_docs_sites:
  {site}:
    class_name: SiteBuilder
    show_how_to_buttons: false
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: data_docs/{site}/
    site_index_builder:
      class_name: DefaultSiteIndexBuilder
"""


def open_context(gx_dir: Path, expectations_dir: Path | None = None) -> FileDataContext:
    """Open (creating if needed) the file context rooted at ``gx_dir``.

    ``expectations_dir`` defaults to the repository's ``expectations/``; tests point it at a
    copy so that they can change a suite without touching the committed one.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    _no_batch_fingerprint()

    gx_dir = Path(gx_dir).resolve()
    exp_dir = Path(expectations_dir or EXPECTATIONS_DIR).resolve()
    gx_dir.mkdir(parents=True, exist_ok=True)
    exp_dir.mkdir(parents=True, exist_ok=True)
    config = _CONFIG.format(expectations_dir=exp_dir.as_posix(), site=DATA_DOCS_SITE)
    yml = gx_dir / "great_expectations.yml"
    current = yml.exists() and _config_is_current(yml.read_text(), config)
    key = (gx_dir, exp_dir)
    if current and key in _OPENED:
        # Re-reading the file costs ~0.1 s per open once it holds the data source; a task per
        # source re-opens it. GX resolves stored definitions through its "current project",
        # so this context becomes current again, as a fresh open would make it.
        from great_expectations.data_context.data_context.context_factory import (
            project_manager,
        )

        project_manager.set_project(_OPENED[key])
        return _OPENED[key]
    if not current:
        # drops the pandas data source (runs add it back when they find it missing) and
        # resets a hand-edited store path
        yml.write_text(config)
    context = gx.get_context(mode="file", context_root_dir=str(gx_dir))
    _OPENED[key] = context  # type: ignore[assignment]
    return context  # type: ignore[return-value]


def _no_batch_fingerprint() -> None:
    """Skip the fingerprint GX's pandas engine takes of every batch under 1 GB: an MD5 over
    ``pandas.util.hash_pandas_object`` of the whole frame, kept as a batch marker
    (``pandas_data_fingerprint``) and read by nothing, here or in GX. It was 6 % of
    ``harmonia validate`` at 1M contacts under py-spy; timed without it, 92.5-93.8 -> 90.5-91.2
    s. Validation results are the same without it; a batch is named in ``dq.*`` by its run and
    landing batches. GX reads the threshold at each batch; a GX without it (renamed) just keeps
    fingerprinting."""
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


#: contexts opened in this process, by (gx_dir, expectations_dir)
_OPENED: dict[tuple[Path, Path], FileDataContext] = {}


#: keys GX itself adds when it saves the file (the data source the runs register, defaults)
_GX_WRITTEN_KEYS = frozenset(
    {"fluent_datasources", "plugins_directory", "config_variables_file_path", "data_context_id"}
)


def _config_is_current(text: str, config: str) -> bool:
    """Whether the file says what ``config`` says, apart from what GX adds when it saves it.

    GX rewrites the file when the runs register the pandas data source and its assets
    (``fluent_datasources``, with their ids); keeping them lets the next run reuse its
    validation definitions instead of re-adding everything (see ``engine._stored_definition``).
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster
    try:
        have = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return False
    want = yaml.load(config, Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(have, dict):
        return False
    extra = set(have) - set(want)
    return extra <= _GX_WRITTEN_KEYS and all(have.get(k) == v for k, v in want.items())


def data_docs_index(gx_dir: Path) -> Path:
    """The Data Docs site's index page (it exists once docs have been built)."""
    return Path(gx_dir).resolve() / "data_docs" / DATA_DOCS_SITE / "index.html"
