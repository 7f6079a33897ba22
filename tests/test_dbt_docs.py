"""Every dbt model and every column it builds is documented, and PII columns are tagged.

The project is parsed with real dbt (``dbt parse`` into a temporary target path) and its
manifest is compared, model by model, with the columns the models actually build in the demo
warehouse (``metrics_demo_warehouse``: the real pipeline on the demo world, read from
``information_schema.columns``). A built column without a description, a documented column the
model does not build, a model without a description and a PII-looking column without
``tags: ['pii']`` are all reported together, so one run lists everything to fix.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt.cli.main import dbtRunner
from harmonia.transform import DBT_PROJECT_DIR

pytestmark = pytest.mark.slow

# Column names that hold personal data wherever they appear: e-mails, phones, names, free text
# and the vendors' per-person ids. Columns whose PII is in the value, not the name
# (identifier_value, identifier_key, customer_label), are tagged by hand in the yml.
PII_NAME = re.compile(
    r"(^|_)(emails?|phones?)(_raw)?$|^(first|last)_name$|^(body|message|comment)$"
    r"|psid$|^chat_contact_id$|^crm_(contact_)?id$|^person_id$|^sender_id$"
)
# the company's own long code (stg_sms__messages), not a person's number
NOT_PII = {"company_phone"}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The manifest of a fresh ``dbt parse`` of the project (nothing read from its target/)."""
    root = tmp_path_factory.mktemp("dbt-docs")
    target = root / "target"
    with pytest.MonkeyPatch.context() as env:
        # the profile needs a path; parse never opens it
        env.setenv("HARMONIA_WAREHOUSE", str(root / "unused.duckdb"))
        result = dbtRunner().invoke(
            [
                "parse",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(target),
                "--no-partial-parse",
            ]
        )
    assert result.success, f"dbt parse failed: {result.exception}"
    return json.loads((target / "manifest.json").read_text())


def _models(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["package_name"] == "harmonia"
        and node["config"]["materialized"] != "ephemeral"
    ]


def _tags(column: dict[str, Any]) -> set[str]:
    return set(column.get("tags") or []) | set((column.get("config") or {}).get("tags") or [])


def _built_columns(warehouse: Path, schema: str, table: str) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
    return [name for (name,) in rows]


def test_every_model_and_column_is_documented(
    manifest: dict[str, Any], metrics_demo_warehouse: Path
) -> None:
    models = _models(manifest)
    folders = {node["original_file_path"].split("/")[1] for node in models}
    assert {"staging", "intermediate", "marts", "dq"} <= folders, folders
    problems: list[str] = []
    documented_columns = 0
    for node in sorted(models, key=lambda n: n["name"]):
        name = node["name"]
        if not node["description"].strip():
            problems.append(f"{name}: model has no description")
        built = _built_columns(metrics_demo_warehouse, node["schema"], node["alias"])
        if not built:
            problems.append(f"{name}: not built in {node['schema']}.{node['alias']}")
            continue
        documented = {key.lower(): column for key, column in node["columns"].items()}
        for column in built:
            description = (documented.get(column.lower()) or {}).get("description", "")
            if not description.strip():
                problems.append(f"{name}.{column}: built but has no description")
            else:
                documented_columns += 1
        for column in sorted(set(documented) - {c.lower() for c in built}):
            problems.append(f"{name}.{column}: documented but the model does not build it")
    assert not problems, f"{len(problems)} documentation gap(s):\n" + "\n".join(problems)
    # every layer has real columns, not just keys (a guard against an empty comparison)
    assert documented_columns > 300, documented_columns


def test_pii_columns_carry_the_pii_tag(manifest: dict[str, Any]) -> None:
    problems = [
        f"{node['name']}.{column}"
        for node in _models(manifest)
        for column, spec in node["columns"].items()
        if PII_NAME.search(column) and column not in NOT_PII and "pii" not in _tags(spec)
    ]
    assert not problems, "PII-looking columns without tags: ['pii']:\n" + "\n".join(problems)
    tagged = {
        (node["name"], column)
        for node in _models(manifest)
        for column, spec in node["columns"].items()
        if "pii" in _tags(spec)
    }
    assert ("dim_customers", "emails") in tagged and ("stg_crm__contacts", "last_name") in tagged


def test_bi_facing_marts_hold_no_pii_tagged_column(manifest: dict[str, Any]) -> None:
    # docs/bi.md tells BI tools to read marts.mart_* and marts.fct_*; none may carry PII
    exposed = [
        f"{node['name']}.{column}"
        for node in _models(manifest)
        if node["schema"] == "marts" and node["name"].startswith(("mart_", "fct_"))
        for column, spec in node["columns"].items()
        if "pii" in _tags(spec)
    ]
    assert not exposed, exposed
