"""Amazon Connect for real: AWS Signature Version 4 and a configurable instance id.

The signature is checked against AWS's own published example (IAM ListUsers, 2015-08-30);
the switch from the demo's Bearer token to SigV4 is checked over real HTTP against the demo
APIs, which — like any server that expects another scheme — refuse it, by name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from harmonia.demo.server import DemoServer
from harmonia.extract.paginators import SigV4Auth
from harmonia.extract.sources import SOURCES
from harmonia.pipeline.ingest import IngestFailed, ingest
from harmonia.settings import Credentials

AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def test_sigv4_matches_the_aws_documented_example() -> None:
    auth = SigV4Auth(
        "AKIDEXAMPLE",
        AWS_EXAMPLE_SECRET,
        "us-east-1",
        "iam",
        clock=lambda: datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    prepared = requests.Request(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    ).prepare()
    signed = auth(prepared)
    assert signed.headers["x-amz-date"] == "20150830T123600Z"
    assert signed.headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


def test_sigv4_signature_changes_with_the_body() -> None:
    auth = SigV4Auth("AKID", "secret", "us-east-1", "connect")
    one = auth(requests.Request("POST", "https://x.test/search-contacts", json={"a": 1}).prepare())
    two = auth(requests.Request("POST", "https://x.test/search-contacts", json={"a": 2}).prepare())
    assert one.headers["Authorization"] != two.headers["Authorization"]


def test_voice_instance_id_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARMONIA_VOICE_INSTANCE_ID", "11111111-2222-3333-4444-555555555555")
    body = SOURCES["voice"].endpoints[0].body
    rendered = SOURCES["voice"].render_body(body, Credentials())
    assert rendered["InstanceId"] == "11111111-2222-3333-4444-555555555555"
    assert body["InstanceId"] == "{voice_instance_id}", "the config itself must stay a template"


def test_sigv4_mode_is_refused_by_name_without_leaking_the_key(
    make_demo_server: Callable[..., DemoServer],
    prefect_harness: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = make_demo_server(customers=40)
    monkeypatch.setenv("HARMONIA_VOICE_AUTH", "sigv4")
    monkeypatch.setenv("HARMONIA_VOICE_AWS_ACCESS_KEY_ID", "AKIDHARMONIATEST")
    monkeypatch.setenv("HARMONIA_VOICE_AWS_SECRET_ACCESS_KEY", "sigv4-secret-never-printed")
    with pytest.raises(IngestFailed) as err:
        ingest(sources=["voice"], base_url=srv.base_url, warehouse=tmp_path / "w.duckdb")
    message = str(err.value)
    assert "voice: authentication refused" in message
    assert "HARMONIA_VOICE_AWS_SECRET_ACCESS_KEY" in message
    assert "sigv4-secret-never-printed" not in message
    assert srv.stats()["sources"]["voice"]["requests"] == 1
