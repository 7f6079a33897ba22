"""The metric marts (model spec section 6) against an independent recomputation.

Every mart is rebuilt here in pandas/numpy straight from the spec's wording, reading only the
``fct_*`` tables and the committed seed CSV, and must equal what dbt built, number for number
(floats to 1e-9 relative), nulls included. Two warehouses: hand-built facts with edge cases
(``metrics_edge_warehouse``: reporting timezone America/Sao_Paulo, empty denominators) and the
demo world through the real pipeline (``metrics_demo_warehouse``: UTC). Also: null rates are SQL
NULL (not 0, not NaN), the contracts reject a wrong type, every column is documented, the
exposures cover the marts, and the marts hold no e-mail or phone. ``fct_requests`` itself is
recomputed from ``fct_contacts`` the same way on the demo pipeline.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from harmonia.report import MARTS, MARTS_SCHEMA
from harmonia.transform import DBT_PROJECT_DIR
from metric_facts import EDGE_TIMEZONE

pytestmark = pytest.mark.slow

METRICS_DIR = DBT_PROJECT_DIR / "models" / "marts" / "metrics"
DATE_COLUMNS = {"date", "month", "cohort_month"}


# --- reading -------------------------------------------------------------------------------


def _query(warehouse: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).df()


def _facts(warehouse: Path) -> dict[str, pd.DataFrame]:
    facts = {
        name: _query(warehouse, f"select * from marts.{name}")
        for name in ("fct_contacts", "fct_requests", "fct_survey_responses")
    }
    # the seed as committed, not as dbt loaded it
    facts["reference_points"] = pd.read_csv(DBT_PROJECT_DIR / "seeds" / "reference_points.csv")
    return facts


# --- the spec in pandas --------------------------------------------------------------------


def local_day(ts: pd.Series, tz: str) -> pd.Series:
    return ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def month_start(day: pd.Series) -> pd.Series:
    return day.dt.to_period("M").dt.to_timestamp()


def seconds(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds()


def quantile(values: pd.Series, q: float) -> float:
    arr = values.dropna().to_numpy(dtype=float)
    return float(np.quantile(arr, q)) if arr.size else np.nan  # numpy default = linear


def mean(values: pd.Series) -> float:
    arr = values.dropna().to_numpy(dtype=float)
    return float(arr.mean()) if arr.size else np.nan


def rate(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else np.nan


def expect_channel_daily(f: dict[str, pd.DataFrame], tz: str) -> pd.DataFrame:
    c = f["fct_contacts"].copy()
    c["date"] = local_day(c["started_at"], tz)
    c["frt"] = seconds(c["first_response_at"], c["started_at"])
    c["agent_frt"] = seconds(c["first_agent_response_at"], c["started_at"])
    rows = []
    for (day, channel), g in c.groupby(["date", "channel"]):
        inbound = g[g["direction"] == "inbound"]
        answered = inbound[inbound["first_response_at"].notna()]
        abandoned = int(inbound["abandoned"].astype(bool).sum())
        cost = float(g["cost"].astype(float).sum())
        rows.append(
            {
                "date": day,
                "channel": channel,
                "contacts": len(g),
                "inbound_contacts": len(inbound),
                "customers": g["customer_id"].nunique(),
                "answered": len(answered),
                "unanswered_rate": 1 - rate(len(answered), len(inbound)),
                "frt_p50_seconds": quantile(answered["frt"], 0.5),
                "frt_p90_seconds": quantile(answered["frt"], 0.9),
                "frt_avg_seconds": mean(answered["frt"]),
                "agent_frt_p50_seconds": quantile(inbound["agent_frt"], 0.5),
                "asa_seconds": mean(g["queue_seconds"]),
                "abandoned_contacts": abandoned,
                "abandoned_rate": rate(abandoned, len(inbound)),
                "aht_seconds": mean(g["handle_seconds"]),
                "cost": cost,
                "cost_per_contact": rate(cost, len(g)),
            }
        )
    return pd.DataFrame(rows)


def expect_requests_daily(f: dict[str, pd.DataFrame], tz: str) -> pd.DataFrame:
    r = f["fct_requests"].copy()
    r["date"] = local_day(r["opened_at"], tz)
    rows = []
    for (day, channel), g in r.groupby(["date", "first_channel"]):
        n = len(g)
        fcr = int(g["fcr"].astype(bool).sum())
        cross = int(g["cross_channel"].astype(bool).sum())
        resolved = g[g["resolved"].astype(bool)]
        cost = float(g["cost"].astype(float).sum())
        rows.append(
            {
                "date": day,
                "first_channel": channel,
                "requests": n,
                "fcr_requests": fcr,
                "fcr_rate": rate(fcr, n),
                "contacts_per_request": mean(g["contacts"]),
                "cross_channel_requests": cross,
                "cross_channel_rate": rate(cross, n),
                "resolved_requests": len(resolved),
                "resolved_rate": rate(len(resolved), n),
                "resolution_p50_seconds": quantile(resolved["resolution_seconds"], 0.5),
                "cost": cost,
                "cost_per_request": rate(cost, n),
                "avoidable_cost": float(g["avoidable_cost"].astype(float).sum()),
            }
        )
    return pd.DataFrame(rows)


def expect_channel_transitions(f: dict[str, pd.DataFrame], tz: str) -> pd.DataFrame:
    c = f["fct_contacts"].copy()
    c["month"] = month_start(local_day(c["started_at"], tz))
    pairs: dict[tuple, list[float]] = {}
    for _, g in c.groupby("request_id"):
        ordered = list(g.sort_values(["started_at", "contact_id"]).itertuples())
        for earlier, later in itertools.pairwise(ordered):
            key = (later.month, earlier.channel, later.channel)
            gap = (later.started_at - earlier.started_at).total_seconds()
            pairs.setdefault(key, []).append(gap)
    return pd.DataFrame(
        [
            {
                "month": month,
                "from_channel": a,
                "to_channel": b,
                "transitions": len(gaps),
                "median_gap_seconds": float(np.quantile(gaps, 0.5)),
            }
            for (month, a, b), gaps in pairs.items()
        ]
    )


def expect_topics_monthly(f: dict[str, pd.DataFrame], tz: str) -> pd.DataFrame:
    r = f["fct_requests"].copy()
    r["month"] = month_start(local_day(r["opened_at"], tz))
    per_month = r.groupby("month").size()
    rows = []
    for (month, topic), g in r.groupby(["month", "topic"]):
        fcr = int(g["fcr"].astype(bool).sum())
        rows.append(
            {
                "month": month,
                "topic": topic,
                "requests": len(g),
                "contacts": int(g["contacts"].sum()),
                "share_of_requests": len(g) / per_month[month],
                "fcr_requests": fcr,
                "fcr_rate": rate(fcr, len(g)),
                "cost": float(g["cost"].astype(float).sum()),
            }
        )
    return pd.DataFrame(rows)


def expect_nps_monthly(f: dict[str, pd.DataFrame], tz: str) -> pd.DataFrame:
    s = f["fct_survey_responses"].copy()
    s["month"] = month_start(local_day(s["answered_at"], tz))
    s["channel"] = s["channel"].astype(object).where(s["channel"].notna(), "unknown")
    score = s["score"].astype(float)
    s["is_nps"] = (s["survey_type"] == "nps") & score.between(0, 10)
    s["is_csat"] = (s["survey_type"] == "csat") & score.between(1, 5)
    s["score_f"] = score
    s = s[s["is_nps"] | s["is_csat"]]
    rows = []
    for (month, channel), g in pd.concat([s, s.assign(channel="all")]).groupby(
        ["month", "channel"]
    ):
        nps, csat = g[g["is_nps"]]["score_f"], g[g["is_csat"]]["score_f"]
        promoters, detractors = int((nps >= 9).sum()), int((nps <= 6).sum())
        satisfied = int((csat >= 4).sum())
        rows.append(
            {
                "month": month,
                "channel": channel,
                "responses": len(nps),
                "promoters": promoters,
                "passives": int(((nps >= 7) & (nps <= 8)).sum()),
                "detractors": detractors,
                "nps": rate(100 * (promoters - detractors), len(nps)),
                "csat_responses": len(csat),
                "csat_satisfied": satisfied,
                "csat": rate(satisfied, len(csat)),
            }
        )
    return pd.DataFrame(rows)


def expect_reference_points(f: dict[str, pd.DataFrame], tz: str) -> pd.DataFrame:
    c = f["fct_contacts"].copy()
    c["date"] = local_day(c["started_at"], tz)
    c["frt"] = seconds(c["first_response_at"], c["started_at"])
    r = f["fct_requests"].copy()
    r["date"] = local_day(r["opened_at"], tz)
    contacts_by_day = dict(tuple(c.groupby(["date", "channel"])))
    requests_by_day = dict(tuple(r.groupby(["date", "first_channel"])))
    empty_requests = r.iloc[0:0]
    rows = []
    for day, channel in contacts_by_day:
        for point in f["reference_points"][
            f["reference_points"]["channel"] == channel
        ].itertuples():
            target = float(point.target_seconds)
            if point.metric == "first_response":
                items = contacts_by_day[(day, channel)]
                items = items[items["direction"] == "inbound"]
                met = int((items["frt"].notna() & (items["frt"] <= target)).sum())
            else:
                items = requests_by_day.get((day, channel), empty_requests)
                within = items["resolution_seconds"].astype(float) <= target
                met = int((items["resolved"].astype(bool) & within).sum())
            rows.append(
                {
                    "date": day,
                    "channel": channel,
                    "reference_point": point.metric,
                    "target_seconds": int(point.target_seconds),
                    "eligible": len(items),
                    "met": met,
                    "attainment": rate(met, len(items)),
                }
            )
    return pd.DataFrame(rows)


def expect_customer_retention(f: dict[str, pd.DataFrame], tz: str) -> pd.DataFrame:
    c = f["fct_contacts"].copy()
    c["month"] = month_start(local_day(c["started_at"], tz))
    months = {cust: set(g["month"]) for cust, g in c.groupby("customer_id")}
    cohort = {cust: min(ms) for cust, ms in months.items()}
    last = c["month"].max()
    rows = []
    for cohort_month in sorted(set(cohort.values())):
        members = [cust for cust, m in cohort.items() if m == cohort_month]
        horizon = (last.year - cohort_month.year) * 12 + last.month - cohort_month.month
        for k in range(horizon + 1):
            target = cohort_month + pd.DateOffset(months=k)
            active = sum(1 for cust in members if target in months[cust])
            rows.append(
                {
                    "cohort_month": cohort_month,
                    "months_since": k,
                    "cohort_customers": len(members),
                    "active_customers": active,
                    "retention_rate": rate(active, len(members)),
                }
            )
    return pd.DataFrame(rows)


EXPECTED: dict[str, Callable[[dict[str, pd.DataFrame], str], pd.DataFrame]] = {
    "mart_channel_daily": expect_channel_daily,
    "mart_requests_daily": expect_requests_daily,
    "mart_channel_transitions": expect_channel_transitions,
    "mart_topics_monthly": expect_topics_monthly,
    "mart_nps_monthly": expect_nps_monthly,
    "mart_reference_points": expect_reference_points,
    "mart_customer_retention": expect_customer_retention,
}


# --- comparing -----------------------------------------------------------------------------


def assert_same(mart: str, actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    grain = list(MARTS[mart])
    assert list(expected.columns) == list(actual.columns), "columns differ from the spec"
    assert len(expected) > 0, "the recomputation found nothing: the test would prove nothing"
    actual, expected = actual.copy(), expected.copy()
    for frame in (actual, expected):
        for column in DATE_COLUMNS & set(frame.columns):
            frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
    actual = actual.sort_values(grain).reset_index(drop=True)
    expected = expected.sort_values(grain).reset_index(drop=True)
    assert len(actual) == len(expected), f"{mart}: {len(actual)} rows, expected {len(expected)}"
    for column in expected.columns:
        a, e = actual[column], expected[column]
        if column in grain:
            assert a.astype(str).tolist() == e.astype(str).tolist(), f"{mart}.{column}"
        else:
            np.testing.assert_allclose(
                a.to_numpy(dtype=float, na_value=np.nan),
                e.to_numpy(dtype=float, na_value=np.nan),
                rtol=1e-9,
                atol=1e-9,
                equal_nan=True,
                err_msg=f"{mart}.{column}",
            )


def _mart(warehouse: Path, mart: str) -> pd.DataFrame:
    return _query(warehouse, f"select * from {MARTS_SCHEMA}.{mart}")


@pytest.mark.parametrize("mart", list(EXPECTED))
def test_mart_equals_an_independent_recompute_on_edge_facts(
    metrics_edge_warehouse: Path, mart: str
) -> None:
    facts = _facts(metrics_edge_warehouse)
    expected = EXPECTED[mart](facts, EDGE_TIMEZONE)
    assert_same(mart, _mart(metrics_edge_warehouse, mart), expected)


@pytest.mark.parametrize("mart", list(EXPECTED))
def test_mart_equals_an_independent_recompute_on_the_demo_pipeline(
    metrics_demo_warehouse: Path, mart: str
) -> None:
    facts = _facts(metrics_demo_warehouse)
    assert len(facts["fct_contacts"]) > 200
    expected = EXPECTED[mart](facts, "UTC")
    assert_same(mart, _mart(metrics_demo_warehouse, mart), expected)


def expect_requests(f: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """fct_requests (model spec section 4) from fct_contacts and fct_survey_responses: each
    request described by its contacts in (started_at, contact_id) order."""
    stages = pd.read_csv(DBT_PROJECT_DIR / "seeds" / "topics.csv")
    stage_of = dict(zip(stages["topic"], stages["journey_stage"], strict=True))
    answered = f["fct_survey_responses"].groupby("request_id")["answered_at"].min()
    c = f["fct_contacts"].sort_values(["request_id", "started_at", "contact_id"])
    rows = []
    for request_id, g in c.groupby("request_id", sort=False):
        resolved = g["resolved"].fillna(False).astype(bool)
        any_resolved = bool(resolved.any())
        inbound = g[g["direction"] == "inbound"]
        mapped = g.loc[g["topic"] != "unmapped", "topic"]
        customers = g["customer_id"].dropna()
        costs = g["cost"].astype(float)
        first_inbound = inbound.iloc[0] if len(inbound) else None
        resolved_at = g.loc[resolved, "ended_at"].iloc[0] if any_resolved else pd.NaT
        opened_at = g["started_at"].min()
        topic = mapped.iloc[0] if len(mapped) else "unmapped"
        channels = g["channel"].nunique()
        rows.append(
            {
                "request_id": request_id,
                "customer_id": customers.iloc[0] if len(customers) else None,
                "topic": topic,
                "journey_stage": stage_of.get(topic),
                "opened_at": opened_at,
                "first_channel": g["channel"].iloc[0],
                "last_channel": g["channel"].iloc[-1],
                "contacts": len(g),
                "channels": channels,
                "cross_channel": channels > 1,
                # the first inbound contact's, unanswered included: not the next answer
                "first_response_seconds": np.nan
                if first_inbound is None or pd.isna(first_inbound["first_response_at"])
                else (
                    first_inbound["first_response_at"] - first_inbound["started_at"]
                ).total_seconds(),
                "resolved": any_resolved,
                "resolved_at": resolved_at,
                "resolution_seconds": np.nan
                if pd.isna(resolved_at)
                else (resolved_at - opened_at).total_seconds(),
                "fcr": len(g) == 1 and any_resolved,
                "cost": costs.sum(),
                "avoidable_cost": costs.iloc[1:].sum(),
                "followed_up_at": answered.get(request_id, pd.NaT),
            }
        )
    return pd.DataFrame(rows)


def test_fct_requests_equals_an_independent_recompute_on_the_demo_pipeline(
    metrics_demo_warehouse: Path,
) -> None:
    facts = _facts(metrics_demo_warehouse)
    expected = expect_requests(facts).sort_values("request_id").reset_index(drop=True)
    actual = facts["fct_requests"].sort_values("request_id").reset_index(drop=True)
    assert list(actual.columns) == list(expected.columns)
    assert len(actual) == len(expected) > 100
    for column in expected.columns:
        a, e = actual[column], expected[column]
        if column.endswith(("_seconds", "cost")):
            np.testing.assert_allclose(
                a.to_numpy(dtype=float, na_value=np.nan),
                e.to_numpy(dtype=float, na_value=np.nan),
                rtol=1e-9,
                equal_nan=True,
                err_msg=f"fct_requests.{column}",
            )
        else:
            assert a.astype(str).tolist() == e.astype(str).tolist(), f"fct_requests.{column}"


# --- the rules the recomputation cannot see ------------------------------------------------


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_empty_denominators_give_sql_null(metrics_edge_warehouse: Path) -> None:
    w = metrics_edge_warehouse
    # an SMS day with outbound contacts only
    assert _rows(
        w,
        "select contacts, inbound_contacts, unanswered_rate, abandoned_rate, frt_p50_seconds, "
        "cost_per_contact is not null from marts.mart_channel_daily "
        "where date = '2026-05-02' and channel = 'sms'",
    ) == [(2, 0, None, None, None, True)]
    # e-mails nobody answered: a rate of 1, percentiles of nothing
    assert _rows(
        w,
        "select inbound_contacts, answered, unanswered_rate, frt_p50_seconds, frt_avg_seconds "
        "from marts.mart_channel_daily where date = '2026-05-03' and channel = 'email'",
    ) == [(2, 0, 1.0, None, None)]
    assert _rows(
        w,
        "select reference_point, eligible, met, attainment from marts.mart_reference_points "
        "where (date = '2026-05-02' and channel = 'sms') "
        "or (date = '2026-05-05' and channel = 'voice') order by date, reference_point",
    ) == [
        ("first_response", 0, 0, None),
        ("resolution", 2, 1, 0.5),
        ("first_response", 1, 0, 0.0),
        ("resolution", 0, 0, None),
    ]
    assert _rows(
        w,
        "select month, channel, responses, nps, csat_responses, csat from marts.mart_nps_monthly "
        "where month >= '2026-06-01' order by month, channel",
    ) == [
        (pd.Timestamp("2026-06-01").date(), "all", 2, 0.0, 0, None),
        (pd.Timestamp("2026-06-01").date(), "voice", 2, 0.0, 0, None),
        (pd.Timestamp("2026-07-01").date(), "all", 0, None, 2, 0.5),
        (pd.Timestamp("2026-07-01").date(), "sms", 0, None, 1, 1.0),
        (pd.Timestamp("2026-07-01").date(), "unknown", 0, None, 1, 0.0),
    ]


@pytest.mark.parametrize("which", ["edge", "demo"])
def test_no_mart_holds_nan_or_infinity(which: str, request: pytest.FixtureRequest) -> None:
    warehouse = request.getfixturevalue(f"metrics_{which}_warehouse")
    for mart in MARTS:
        columns = _rows(
            warehouse,
            "select column_name from information_schema.columns "
            f"where table_schema = 'marts' and table_name = '{mart}' and data_type = 'DOUBLE'",
        )
        for (column,) in columns:
            bad = _rows(
                warehouse,
                f"select count(*) from marts.{mart} where not isfinite({column})",
            )
            assert bad == [(0,)], f"{mart}.{column} holds NaN or infinity"


def test_reporting_timezone_moves_day_and_month(metrics_edge_warehouse: Path) -> None:
    # the chat contact at 2026-05-01 02:30 UTC is 23:30 on 30 April in Sao Paulo, answered in
    # exactly its 60 s target: counted on 30 April, in April, and as met
    assert _rows(
        metrics_edge_warehouse,
        "select contacts, frt_p50_seconds from marts.mart_channel_daily "
        "where date = '2026-04-30' and channel = 'chat'",
    ) == [(1, 60.0)]
    assert _rows(
        metrics_edge_warehouse,
        "select count(*) from marts.mart_channel_daily where date = '2026-05-01'",
    ) == [(0,)]
    assert _rows(
        metrics_edge_warehouse,
        "select eligible, met from marts.mart_reference_points "
        "where date = '2026-04-30' and channel = 'chat' and reference_point = 'first_response'",
    ) == [(1, 1)]


def test_retention_has_rows_for_months_without_activity(metrics_edge_warehouse: Path) -> None:
    rows = _rows(
        metrics_edge_warehouse,
        "select cohort_month, count(*), min(months_since), max(months_since) "
        "from marts.mart_customer_retention group by cohort_month order by cohort_month",
    )
    last = pd.Timestamp(rows[-1][0])
    for cohort_month, count, first, horizon in rows:
        expected = (last.year - cohort_month.year) * 12 + last.month - cohort_month.month
        assert (count, first, horizon) == (horizon + 1, 0, expected)
    assert _rows(
        metrics_edge_warehouse,
        "select count(*) from marts.mart_customer_retention where months_since = 0 "
        "and active_customers <> cohort_customers",
    ) == [(0,)]


def test_a_contract_rejects_a_wrong_data_type(metrics_edge_warehouse: Path, tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(
        DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(metrics_edge_warehouse, warehouse)
    dbt = Path(sys.executable).with_name("dbt")
    command = [
        str(dbt), "run", "--project-dir", str(project), "--profiles-dir", str(project),
        "--select", "mart_channel_daily",
        "--vars", json.dumps({"reporting_timezone": EDGE_TIMEZONE}),
    ]  # fmt: skip
    env = {
        **os.environ,
        "HARMONIA_WAREHOUSE": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "0",
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    # the copy as it is builds: any failure below comes from the one change
    ok = run()
    assert ok.returncode == 0, ok.stdout + ok.stderr

    models_yml = project / "models" / "marts" / "metrics" / "_metrics__models.yml"
    text = models_yml.read_text()
    right = (
        "      - name: contacts\n"
        "        description: Number of contacts started that day on the channel (inbound and "
        "outbound).\n        data_type: bigint\n"
    )
    assert text.count(right) == 1
    models_yml.write_text(text.replace(right, right.replace("bigint", "varchar")))

    failed = run()
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output
    assert "This model has an enforced contract that failed" in output
    assert "data type mismatch" in output
    assert "contacts" in output


# --- documentation, exposures, PII ---------------------------------------------------------


def _models_yml() -> dict:
    return yaml.safe_load((METRICS_DIR / "_metrics__models.yml").read_text())


def test_marts_are_documented_typed_and_contracted(metrics_edge_warehouse: Path) -> None:
    models = {m["name"]: m for m in _models_yml()["models"]}
    sql_files = {p.stem for p in METRICS_DIR.glob("*.sql")}
    assert set(models) == sql_files == set(MARTS)
    for name, model in models.items():
        assert model["config"]["contract"] == {"enforced": True}, name
        assert len(model["description"]) > 40, name
        built = [c for (c,) in _rows(
            metrics_edge_warehouse,
            "select column_name from information_schema.columns where table_schema = 'marts' "
            f"and table_name = '{name}' order by ordinal_position",
        )]  # fmt: skip
        assert [c["name"] for c in model["columns"]] == built, name
        for column in model["columns"]:
            assert column.get("data_type"), f"{name}.{column['name']} has no data_type"
            assert len(column.get("description", "")) >= 12, f"{name}.{column['name']}"
        grain_tests = [t for t in model["data_tests"] if "unique_combination" in t]
        assert grain_tests[0]["unique_combination"]["arguments"]["columns"] == list(MARTS[name])


def test_exposures_declare_the_dashboards_and_the_report() -> None:
    exposures = yaml.safe_load((DBT_PROJECT_DIR / "models" / "_exposures.yml").read_text())
    by_name = {e["name"]: e for e in exposures["exposures"]}
    report = by_name["harmonia_html_report"]
    assert {f"ref('{m}')" for m in MARTS} == set(report["depends_on"])
    dashboards = [e for e in exposures["exposures"] if e["type"] == "dashboard"]
    covered = {ref for e in dashboards for ref in e["depends_on"]}
    assert {f"ref('{m}')" for m in MARTS} == covered


def test_marts_hold_no_email_or_phone(metrics_demo_warehouse: Path) -> None:
    identifiers = {
        value
        for (value,) in _rows(
            metrics_demo_warehouse,
            "select unnest(list_concat(emails, phones)) from marts.dim_customers",
        )
    }
    assert len(identifiers) > 50
    for mart in MARTS:
        columns = _rows(
            metrics_demo_warehouse,
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = 'marts' and table_name = '{mart}'",
        )
        for column, data_type in columns:
            assert "mail" not in column and "phone" not in column, f"{mart}.{column}"
            if data_type == "VARCHAR":
                values = {v for (v,) in _rows(
                    metrics_demo_warehouse, f"select distinct {column} from marts.{mart}"
                )}  # fmt: skip
                assert not values & identifiers, f"{mart}.{column}"
                assert not any("@" in str(v) for v in values), f"{mart}.{column}"
