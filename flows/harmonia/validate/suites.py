"""Expectation suites, generated from the field specs and committed as JSON in ``expectations/``.

``build_suite(check)`` turns a ``RecordCheck`` into a GX 1.x ``ExpectationSuite``;
``write_suites()`` (``harmonia write-suites`` or ``python -m harmonia.validate.suites``) writes
every suite through the file context with ``suites.add_or_update`` — never ``suites.add`` on an
existing context — so unchanged expectations keep their ids and re-running it changes no byte.

Only row-level expectations are used (column map, column pair map, multicolumn map): every
failure names the exact rows (by ``record_id`` + ``record_version``) that go to quarantine.
Each expectation's ``meta.sample_columns`` names the flattened columns whose values are shown
as samples in ``dq.dq_expectation_results`` (the value as sent, not a derived flag).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonia.validate.fields import RecordCheck
from harmonia.validate.flatten import TYPE_COLUMN, all_fields

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations import Expectation

#: expectation types whose failures are attributable to rows
ROW_LEVEL = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
        "expect_compound_columns_to_be_unique",
        "expect_select_column_values_to_be_unique_within_record",
        "expect_multicolumn_sum_to_equal",
    }
)


def _expectations(check: RecordCheck) -> list[Expectation]:
    import great_expectations.expectations as gxe

    what = f"{check.source} {check.entity}"
    out: list[Expectation] = [
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["record_id", "record_version"],
            description=f"{what}: primary key + version unique within the batch",
            meta={"sample_columns": ["record_id", "record_version"]},
        ),
        # One expectation for every field's JSON type (the flattener lists the mismatches,
        # e.g. "statistics.count_conversation_parts: string"): the accepted types are here.
        gxe.ExpectColumnValuesToBeNull(
            column=TYPE_COLUMN,
            description=f"{what}: every field has the JSON type the models expect",
            meta={
                "sample_columns": [TYPE_COLUMN],
                "accepted_types": {
                    f.path: sorted({*f.accepted_types, "missing", "null"})
                    for f in all_fields(check)
                },
            },
        ),
    ]
    for f in all_fields(check):
        show = {"sample_columns": [f.name]}
        if f.why:
            show["why"] = f.why
        if f.required:
            out.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=f.name, description=f"{what}: {f.path} is required", meta=show
                )
            )
        if f.kind == "enum":
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=f.name,
                    value_set=list(f.values),
                    description=f"{what}: {f.path} is one of the known values",
                    meta=show,
                )
            )
        if f.kind in ("timestamp", "phone", "email"):
            label = {
                "timestamp": "a parseable timestamp",
                "phone": "a parseable phone number",
                "email": "a parseable e-mail address",
            }[f.kind]
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=f"{f.name}__parseable",
                    value_set=[True],
                    description=f"{what}: {f.path} is {label}",
                    meta=show,
                )
            )
        if f.kind in ("number", "integer") and (f.min_value is not None or f.max_value is not None):
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=f"{f.name}__num",
                    min_value=f.min_value,
                    max_value=f.max_value,
                    description=f"{what}: {f.path} within [{f.min_value}, {f.max_value}]",
                    meta=show,
                )
            )
    for order in check.orders:
        a, b = check.field(order.later), check.field(order.earlier)
        out.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=f"{a.name}__ts",
                column_B=f"{b.name}__ts",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description=f"{what}: {b.path} <= {a.path}",
                meta={"sample_columns": [b.name, a.name]},
            )
        )
    for rng in check.ranges:
        f, (cond_field, cond_value) = check.field(rng.field), rng.when
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=f"{f.name}__num",
                min_value=rng.min_value,
                max_value=rng.max_value,
                row_condition=f"{cond_field}=={cond_value!r}",
                condition_parser="pandas",
                description=(
                    f"{what}: {f.path} within [{rng.min_value}, {rng.max_value}] "
                    f"when {cond_field} = {cond_value}"
                ),
                meta={"sample_columns": [cond_field, f.name]},
            )
        )
    for e in out:
        assert e.expectation_type in ROW_LEVEL, e.expectation_type
    return out


def build_suite(check: RecordCheck) -> ExpectationSuite:
    """The suite for one source entity (not yet attached to any context)."""
    import great_expectations as gx

    return gx.ExpectationSuite(
        name=check.suite_name,
        expectations=_expectations(check),
        meta={
            "source": check.source,
            "entity": check.entity,
            "primary_key": check.primary_key,
            "description": check.description,
            "generated_by": "harmonia.validate.suites (edit the field specs, then re-run)",
        },
    )


def expectation_columns(config: dict[str, Any]) -> str:
    """The column(s) an expectation is about, as written in ``dq_expectation_results``."""
    kwargs = config.get("kwargs", {})
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    return ""


def write_suites(
    context: AbstractDataContext | None = None, checks: list[RecordCheck] | None = None
) -> list[Path]:
    """Write (add or update) every suite; returns the JSON files of the expectations store."""
    from harmonia.validate.context import EXPECTATIONS_DIR, open_context
    from harmonia.validate.definitions import CHECKS

    if context is None:
        from harmonia.settings import get_settings

        context = open_context(get_settings().gx_output_dir)
    written = []
    for check in checks if checks is not None else list(CHECKS.values()):
        suite = build_suite(check)
        _keep_ids(context, suite)
        context.suites.add_or_update(suite)
        written.append(check.suite_name)
    base = _store_dir(context) or EXPECTATIONS_DIR
    return [base / f"{name}.json" for name in written]


def _keep_ids(context: AbstractDataContext, suite: ExpectationSuite) -> None:
    """Give unchanged expectations (and the suite) their stored ids, so a re-run is a no-op.

    ``suites.add_or_update`` means to do this, but in GX 1.24 it compares expectations
    including their (not yet assigned) id, so nothing ever matches and every id changes.
    """
    from great_expectations.exceptions import DataContextError

    try:
        existing = context.suites.get(suite.name)
    except DataContextError:
        return
    stored = {_identity(e): e.id for e in existing.expectations}
    for expectation in suite.expectations:
        expectation.id = stored.get(_identity(expectation))
    suite.id = existing.id


def _identity(expectation: Expectation) -> str:
    config = expectation.configuration.to_json_dict()
    config.pop("id", None)
    return json.dumps(config, sort_keys=True, default=str)


def _store_dir(context: AbstractDataContext) -> Path | None:
    backend = context.stores[context.expectations_store_name].store_backend
    directory = getattr(backend, "full_base_directory", None)
    return Path(directory) if directory else None


def suite_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def main() -> None:  # pragma: no cover - thin wrapper, exercised through the CLI
    for path in write_suites():
        print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
