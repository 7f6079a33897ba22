"""The pieces validation is built from, checked directly: the flattener's parsing decisions and
the committed suites (reproducible from the field specs, and up to date with them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from harmonia.validate.context import EXPECTATIONS_DIR, open_context
from harmonia.validate.definitions import CHECKS, SURVEYS_RESPONSES, VOICE_CONTACTS
from harmonia.validate.flatten import (
    email_parseable,
    flatten,
    parse_timestamp,
    phone_parseable,
)
from harmonia.validate.suites import ROW_LEVEL, build_suite, write_suites


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (1_700_000_000, "epoch", 1_700_000_000.0),
        ("1700000000", "epoch", None),  # a string where the vendor sends a number
        (True, "epoch", None),
        ("2026-13-45T25:61:00", "epoch", None),
        ("2024-05-01T12:00:00Z", "iso8601", 1_714_564_800.0),
        ("2024-05-01T12:00:00+0000", "iso8601", 1_714_564_800.0),
        ("2024-05-01T12:00:00.000Z", "iso8601", 1_714_564_800.0),
        ("2026-02-30T25:00:00Z", "iso8601", None),
        ("31/02/2026 10:00", "iso8601", None),
        ("Wed, 01 May 2024 12:00:00 +0000", "rfc2822", 1_714_564_800.0),
        ("Fri, 31 Feb 2026 25:61:00 +0000", "rfc2822", None),
    ],
)
def test_timestamps_parse_strictly_in_the_vendor_format(value, fmt, expected):
    assert parse_timestamp(value, fmt) == expected


def test_phones_are_judged_by_phonenumbers_with_a_default_region():
    assert phone_parseable("(11) 98765-4321", "BR")
    assert phone_parseable("+55 11 98765 4321", "BR")
    assert not phone_parseable("(11) 98765-4321", "US")  # no country code, wrong region
    assert not phone_parseable("+55 11 9XXXX-0000", "BR")
    assert not phone_parseable("sem telefone", "BR")


def test_emails_are_usable_once_trimmed():
    assert email_parseable("  Ana.Lima@Example.COM ")
    assert not email_parseable("ana lima@example.com")
    assert not email_parseable("ana@example")
    assert not email_parseable("@example.com")


def test_flatten_marks_defects_without_touching_unknown_fields():
    good = {"ContactId": "c1", "Channel": "VOICE", "InitiationMethod": "INBOUND",
            "InitiationTimestamp": 100, "LastUpdateTimestamp": 200, "x_new": {"a": 1},
            "Agent": {"ConnectedToAgentTimestamp": 150, "AgentInteractionDuration": 30},
            "Attributes": {"resolved": "true"}}  # fmt: skip
    bad = dict(good, ContactId="c2", InitiationTimestamp="2026-13-45T25:61:00",
               Attributes={"resolved": True})  # fmt: skip
    frame = flatten(VOICE_CONTACTS, [("c1", "200", orjson.dumps(good)),
                                     ("c2", "200", orjson.dumps(bad))])  # fmt: skip
    first, second = frame.iloc[0], frame.iloc[1]
    assert first.initiated_at__ts == 100 and first.initiated_at__parseable
    assert frame.type_mismatches.isna().tolist() == [True, False]
    assert not second.initiated_at__parseable
    assert second.initiated_at == "2026-13-45T25:61:00"
    assert second.type_mismatches == "InitiationTimestamp: string; Attributes.resolved: bool"
    assert "x_new" not in frame.columns


def test_suites_use_only_row_level_expectations():
    for check in CHECKS.values():
        for expectation in build_suite(check).expectations:
            assert expectation.expectation_type in ROW_LEVEL
    ranges = [e for e in build_suite(SURVEYS_RESPONSES).expectations
              if getattr(e, "row_condition", None)]  # fmt: skip
    assert len(ranges) == 2  # NPS 0–10, CSAT 1–5


def test_committed_suites_are_reproducible_and_up_to_date(tmp_path: Path):
    suites = tmp_path / "expectations"
    shutil.copytree(EXPECTATIONS_DIR, suites)
    committed = {p.name: p.read_bytes() for p in EXPECTATIONS_DIR.glob("*.json")}
    context = open_context(tmp_path / "gx", suites)
    written = write_suites(context)
    assert {p.name for p in written} == {f"{name}.json" for name in CHECKS} == set(committed)
    regenerated = {p.name: p.read_bytes() for p in suites.glob("*.json")}
    assert regenerated == committed, "run `harmonia write-suites` and commit expectations/"
