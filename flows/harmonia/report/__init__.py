"""The metric marts for people: ``harmonia export`` (Parquet files for BI tools) and
``harmonia report`` (one self-contained HTML page with inline SVG charts).

Both read the marts of ``dbt_project/models/marts/metrics`` (model spec section 6) from the
warehouse, opened read-only, after ``dbt build`` has made them.
"""

from __future__ import annotations

#: The metric marts in the warehouse's ``marts`` schema, each with its grain (its sort order).
MARTS: dict[str, tuple[str, ...]] = {
    "mart_channel_daily": ("date", "channel"),
    "mart_requests_daily": ("date", "first_channel"),
    "mart_channel_transitions": ("month", "from_channel", "to_channel"),
    "mart_topics_monthly": ("month", "topic"),
    "mart_nps_monthly": ("month", "channel"),
    "mart_reference_points": ("date", "channel", "reference_point"),
    "mart_customer_retention": ("cohort_month", "months_since"),
}
MARTS_SCHEMA = "marts"


class MartsMissing(RuntimeError):
    """The warehouse lacks metric marts: ``dbt build`` has not made them yet."""
