"""Phone numbers read once per process, for validation and for dbt staging alike.

Validation asks whether a value is a possible number (``validate.flatten.phone_parseable``);
staging asks for its E.164 form when it is a valid one (``dbt_plugins.to_e164``, the
``normalize_phone`` UDF). Both are ``phonenumbers.parse`` of the same value, ~20 µs each
(libphonenumber's rules, never a hand-written regex). One cached parse answers both, so a
value costs one parse per process: across validation slices and sources (a customer's phone
is on their calls, texts, tickets and CRM record: 1,038,154 checks of 668,048 distinct values
at 1M contacts), and again in ``dbt build`` when it runs in the same process (``harmonia run``,
the nightly flow, the bench).
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=1_000_000)
def read_phone(raw: str, region: str) -> tuple[bool, str | None]:
    """``raw`` read as a phone number in ``region`` (alpha-2, as given): whether it parses
    into a possible number, and its E.164 form if it is a valid one (else None)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return False, None
    possible = phonenumbers.is_possible_number(number)
    if not phonenumbers.is_valid_number(number):
        return possible, None
    return possible, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
