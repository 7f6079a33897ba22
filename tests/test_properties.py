"""Property-based tests (hypothesis) of the pure parsers the pipeline trusts with vendor input:
timestamp and phone parsing in validation, and the redaction of secrets from request URLs and
log lines in extraction; and of the demo APIs' time formats. Fast; no server, no warehouse."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import phonenumbers
from harmonia import phones
from harmonia.dbt_plugins import to_e164
from harmonia.demo.server import iso_meta, iso_ms, iso_z, rfc2822
from harmonia.extract.http import is_secret_param, redact_url
from harmonia.phones import read_phone
from harmonia.validate.flatten import parse_timestamp, phone_parseable
from hypothesis import given
from hypothesis import strategies as st

EPOCH_MAX = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
FORMATS = ("epoch", "epoch_ms", "iso", "rfc2822")

# -- timestamps ------------------------------------------------------------------------------


@given(t=st.integers(0, int(EPOCH_MAX)) | st.floats(0, EPOCH_MAX))
def test_the_demo_apis_write_times_as_datetime_and_email_utils_do(t: float) -> None:
    moment = datetime.fromtimestamp(t, UTC)
    assert rfc2822(t) == format_datetime(moment).replace("-0000", "+0000")
    assert iso_z(t) == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert iso_ms(t) == moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert iso_meta(t) == moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


vendor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)
in_range = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3)), timezone(timedelta(hours=5))]),
)


@given(value=vendor_values, fmt=st.sampled_from(FORMATS))
def test_parse_timestamp_never_raises_and_stays_in_range(value: object, fmt: str) -> None:
    got = parse_timestamp(value, fmt)
    assert got is None or (isinstance(got, float) and 0 <= got < EPOCH_MAX)


@given(seconds=st.floats(min_value=0, max_value=EPOCH_MAX, exclude_max=True))
def test_epoch_seconds_round_trip(seconds: float) -> None:
    assert parse_timestamp(seconds, "epoch") == seconds
    assert parse_timestamp(int(seconds), "epoch") == int(seconds)
    # an epoch sent as text is a type error, not something to guess at
    assert parse_timestamp(str(seconds), "epoch") is None


@given(value=st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_epoch_out_of_range_is_rejected(value: float) -> None:
    got = parse_timestamp(value, "epoch")
    if not (math.isfinite(value) and 0 <= value < EPOCH_MAX):
        assert got is None
    assert parse_timestamp(True, "epoch") is None


@given(moment=in_range)
def test_iso_and_rfc2822_round_trip(moment: datetime) -> None:
    assert parse_timestamp(moment.isoformat(), "iso") == moment.timestamp()
    # a naive ISO time is UTC
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    assert parse_timestamp(naive.isoformat(), "iso") == moment.timestamp()
    whole = moment.replace(microsecond=0)
    assert parse_timestamp(format_datetime(whole), "rfc2822") == whole.timestamp()


# -- phones ----------------------------------------------------------------------------------

br_mobile = st.tuples(st.integers(11, 99), st.from_regex(r"\A9[0-9]{8}\Z"))


@given(value=st.text())
def test_phone_parseable_never_raises(value: str) -> None:
    assert phone_parseable(value, "BR") in (True, False)


@given(number=br_mobile)
def test_brazilian_mobile_parses_in_every_usual_writing(number: tuple[int, str]) -> None:
    ddd, n = number
    for written in (
        f"+55{ddd}{n}",
        f"+55 {ddd} {n[:5]} {n[5:]}",
        f"({ddd}) {n[:5]}-{n[5:]}",
        f"0{ddd}{n}",
    ):
        assert phone_parseable(written, "BR"), written


phone_texts = st.one_of(
    st.text(alphabet="+0123456789 ()-.x", max_size=20),
    br_mobile.map(lambda t: f"+55{t[0]}{t[1]}"),
    st.from_regex(r"\A\+[1-9][0-9]{5,14}\Z"),
    st.text(max_size=12),
)


@given(value=phone_texts, region=st.sampled_from(["BR", "US", "PT", "br"]))
def test_one_cached_parse_answers_validation_and_staging_as_their_own_parses_did(
    value: str, region: str
) -> None:
    try:
        number = phonenumbers.parse(value, region)
        possible = phonenumbers.is_possible_number(number)
        valid = phonenumbers.is_valid_number(number)
    except phonenumbers.NumberParseException:
        number, possible, valid = None, False, False
    e164 = (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if valid else None
    )
    assert phone_parseable(value, region) == possible
    upper = region.upper()
    try:
        staged = phonenumbers.parse(value, upper)
        want = (
            phonenumbers.format_number(staged, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(staged)
            else None
        )
    except phonenumbers.NumberParseException:
        want = None
    assert to_e164(value, region) == want
    if region == upper:
        assert read_phone(value, region) == (possible, e164)


def test_staging_reuses_the_parse_validation_made() -> None:
    value = "+55 11 91234-5678"
    phones.cache_clear()
    assert phone_parseable(value, "BR")
    before = phones.cache_info()
    assert to_e164(value, "br") == "+5511912345678"
    after = phones.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


def test_the_phone_cache_starts_over_at_its_bound_and_still_answers(monkeypatch) -> None:
    monkeypatch.setattr(phones, "MAX_CACHED", 2)
    phones.cache_clear()
    values = ["+5511912345678", "(11) 91234-5679", "not a phone", "+5511912345678"]
    answers = [read_phone(v, "BR") for v in values]
    assert answers == [
        (True, "+5511912345678"),
        (True, "+5511912345679"),
        (False, None),
        (True, "+5511912345678"),
    ]
    info = phones.cache_info()
    assert info.currsize <= 2
    # the third value emptied the full cache, so the first one was parsed again
    assert (info.hits, info.misses) == (0, 4)


# -- redaction -------------------------------------------------------------------------------

SECRET_NAMES = (
    "access_token",
    "token",
    "key",
    "api_key",
    "apikey",
    "signature",
    "sig",
    "secret",
    "password",
    "auth",
)
# the vendors' own paging / filter parameters, which must survive untouched
PLAIN_NAMES = (
    "limit",
    "after",
    "per_page",
    "start_time",
    "updated_since",
    "fields",
    "PageToken",
    "NextToken",
    "nextPageToken",
    "DateSent>",
    "page",
    "sort_by",
)


# words before "token" that make a paging cursor (``PageToken``), not a credential
PAGING_WORDS = ("page", "next", "continuation", "sync", "paging")


@st.composite
def secret_names(draw: st.DrawFn) -> str:
    """A secret parameter name as vendors write it: snake_case in any case with any prefixes
    (``fb_exchange_token``, ``API_KEY``), or the same words in camelCase, PascalCase or
    kebab-case (``accessToken``, ``ClientSecret``, ``x-api-key``, ``X-Amz-Signature``)."""
    name = draw(st.sampled_from(SECRET_NAMES))
    prefixes = draw(st.lists(st.from_regex(r"\A[a-z][a-z0-9]{0,7}\Z"), max_size=2))
    style = draw(st.sampled_from(("snake", "camel", "pascal", "kebab")))
    if style == "snake":
        name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
        return "".join(f"{p}_" for p in prefixes) + name
    words = [*prefixes, *name.split("_")]
    if name == "token" and len(words) > 1 and words[-2] in PAGING_WORDS:
        words[-2] += "x"  # "pageToken" is a paging cursor: see test_paging_cursors_are_kept
    if style == "kebab":
        return "-".join(w.capitalize() if draw(st.booleans()) else w for w in words)
    head = words[0] if style == "camel" else words[0].capitalize()
    return head + "".join(w.capitalize() for w in words[1:])


# distinctive values: long enough that they cannot occur in the rest of the URL by chance
secret_values = st.from_regex(r"\A[A-Za-z0-9\-._~]{12,40}\Z")
plain_params = st.tuples(st.sampled_from(PLAIN_NAMES), st.text(max_size=20))


@st.composite
def queries(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(query pairs in order, the secret pairs among them)."""
    secrets = draw(st.lists(st.tuples(secret_names(), secret_values), min_size=1, max_size=4))
    plain = draw(st.lists(plain_params, max_size=4))
    pairs = draw(st.permutations(secrets + plain))
    return pairs, secrets


@given(query=queries(), password=secret_values)
def test_secrets_never_survive_url_redaction(
    query: tuple[list[tuple[str, str]], list[tuple[str, str]]], password: str
) -> None:
    pairs, secrets = query
    url = f"https://user:{password}@api.example:8443/v1/things?{urlencode(pairs)}"

    redacted = redact_url(url)

    parts = urlsplit(redacted)
    assert parts.username is None and parts.password is None
    assert password not in redacted
    for _, value in secrets:
        assert value not in redacted
    # every plain parameter is kept, in order, exactly; every secret one says REDACTED
    secret_keys = {k for k, _ in secrets}
    expected = [(k, "REDACTED" if k in secret_keys else v) for k, v in pairs]
    assert parse_qsl(parts.query, keep_blank_values=True) == expected
    assert parts.hostname == "api.example" and parts.port == 8443


@given(query=queries())
def test_secrets_never_survive_in_http_log_lines(
    query: tuple[list[tuple[str, str]], list[tuple[str, str]]],
) -> None:
    """urllib3 logs every request line at DEBUG; the filter on its logger scrubs it."""
    pairs, secrets = query
    line = f'http://127.0.0.1:8000 "GET /v1/things?{urlencode(pairs)} HTTP/1.1" 200 512'
    for name in ("urllib3.connectionpool", "requests", "harmonia.extract.http"):
        record = logging.LogRecord(name, logging.DEBUG, __file__, 1, "%s", (line,), None)
        assert logging.getLogger(name).filter(record)
        message = record.getMessage()
        for key, value in secrets:
            assert value not in message, (name, key)


def test_camel_and_kebab_case_secret_names_are_secrets() -> None:
    names = ("accessToken", "apiKey", "clientSecret", "APIKey", "authToken", "x-api-key")
    names += ("X-Amz-Signature", "X-Amz-Security-Token", "access_token", "fb_exchange_token")
    for name in names:
        assert is_secret_param(name), name
        url = redact_url(f"https://api.example/v1?{name}=s3cr3t-value&limit=5")
        assert "s3cr3t-value" not in url and url.endswith("=REDACTED&limit=5"), url


def test_paging_cursors_are_kept() -> None:
    """Twilio's ``PageToken`` and Connect's ``NextToken`` are positions, not credentials."""
    for name in ("PageToken", "NextToken", "nextPageToken", "pageToken", "limit", "monkey"):
        assert not is_secret_param(name), name
        assert redact_url(f"https://api.example/v1?{name}=PA123") == (
            f"https://api.example/v1?{name}=PA123"
        )
