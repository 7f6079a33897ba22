"""The page decoder against ``orjson``: records land as the text the vendor sent, keyed exactly as
when the page was parsed whole and each record written back with orjson.

``PageDecoder`` keeps records as JSON text and reads only a few fields of each. The run used to
``orjson.loads`` the page and ``orjson.dumps`` every record; for a body orjson writes (the demo
APIs', compact), both must give the same record ids, versions, digests and text, and the same
values to the paginators and the window — for odd records too: not objects, keys missing,
null, nested, a list where a scalar belongs, an edge that is null or not an object. Hypothesis
then throws arbitrary JSON pages at both. What differs on purpose is tested as such: a body that
is not UTF-8 is still garbage, and a number past the double range inside a record no longer
fails the page (it lands; validation judges it).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from harmonia.extract.landing import key_raw_records, key_records
from harmonia.extract.pages import DECODE_ERRORS, PageDecoder, without_field
from harmonia.extract.paginators import dig
from hypothesis import given, settings
from hypothesis import strategies as st

ODD_RECORDS: list[Any] = [
    {"id": "a1", "updated_at": 1793296750, "note": "plain"},
    {"id": 17, "updated_at": 1793296750.5, "nested": {"deep": [1, {"x": None}]}},
    {"id": "a2"},  # no version: keyed by its digest
    {"updated_at": "2026-11-30T10:00:00Z"},  # no id
    {"id": None, "updated_at": None},
    {"id": {"not": "a scalar"}, "updated_at": [1, 2]},
    {"id": True, "updated_at": False},
    {"id": "ç☃\u2028", "updated_at": "Sun, 30 Nov 2026 10:00:00 +0000", "text": '"q" \\ /'},
    {"id": "dup", "updated_at": 1, "tags": [], "empty": {}},
    "a string where a record belongs",
    42,
    None,
    [1, "two"],
    {},
]


def _old(body: bytes, path: str | None, pk: str, version: str) -> tuple[Any, list[tuple]]:
    data = orjson.loads(body)
    records = dig(data, path)
    records = records if isinstance(records, list) else []
    rows = key_records("src", "things", records, pk, version).table.to_pylist()
    return data, [tuple(r.values()) for r in rows]


def _new(body: bytes, path: str | None, pk: str, version: str) -> tuple[Any, list[tuple]]:
    page = PageDecoder([path], [pk, version]).decode(body)
    records = dig(page.data, path)
    records = records if isinstance(records, list) else []
    raws = page.raws.get(path, [])
    rows = key_raw_records("src", "things", raws, records, pk, version).table.to_pylist()
    return page.data, [tuple(r.values()) for r in rows]


@pytest.mark.parametrize("path", ["items", None, "result.items"])
def test_odd_records_key_and_land_as_orjson_had_them(path: str | None) -> None:
    page: Any = ODD_RECORDS
    for part in reversed(path.split(".") if path else []):
        page = {part: page, "paging": {"next": "https://vendor.test/p2", "cursors": [1, None]}}
    body = orjson.dumps(page)

    old_data, old_rows = _old(body, path, "id", "updated_at")
    new_data, new_rows = _new(body, path, "id", "updated_at")

    assert new_rows == old_rows
    assert len(new_rows) == len(ODD_RECORDS)
    assert sum(r[0].startswith("~sha1:") for r in new_rows) == 8  # no usable id
    assert sum(r[1].startswith("~sha1:") for r in new_rows) == 8  # no usable version
    # everything but the records reads as orjson read it; the records hold the fields read
    if path is not None:
        assert dig(new_data, "paging" if "." not in path else "result.paging") == dig(
            old_data, "paging" if "." not in path else "result.paging"
        )
    records = dig(new_data, path)
    assert records[0] == {"id": "a1", "updated_at": 1793296750}
    assert records[9:13] == ODD_RECORDS[9:13]  # not objects: the whole value


def test_a_records_value_that_is_not_a_list_is_read_as_it_is() -> None:
    body = orjson.dumps({"items": {"oops": 1}, "next": None})
    page = PageDecoder(["items"], ["id"]).decode(body)
    assert page.data == {"items": {"oops": 1}, "next": None}
    assert page.raws == {}


def test_garbage_stays_garbage() -> None:
    decoder = PageDecoder(["items"], ["id"])
    for body in (
        b'{"items": [{"id": "a", "name": "\xff"}]}',  # not UTF-8, in a field never read
        b'{"items": [{"id": "a",}]}',  # trailing comma
        b'{"items": [{"id": NaN}]}',
        b'{"items": [{"id": "\\ud800"}]}',  # a lone surrogate
        b'{"items": [{"id": "a"}',  # cut off
        b'{"items": [], "next": 1e400}',  # past the double range outside the records
    ):
        with pytest.raises(DECODE_ERRORS):
            decoder.decode(body)
        with pytest.raises(ValueError):  # orjson refused all of them too
            orjson.loads(body)


def test_a_number_past_the_double_range_inside_a_record_lands_as_sent() -> None:
    body = b'{"items": [{"id": "a", "v": 1, "amount": 1e400}, {"id": 1e400, "v": 2}]}'
    decoder = PageDecoder(["items"], ["id", "v"])
    page = decoder.decode(body)
    records = page.data["items"]
    assert records[0] == {"id": "a", "v": 1}
    assert records[1] is None  # its key does not decode: keyed by its content
    rows = key_raw_records("s", "e", page.raws["items"], records, "id", "v").table.to_pylist()
    assert rows[0]["record_id"] == "a"
    assert rows[0]["raw_json"] == '{"id": "a", "v": 1, "amount": 1e400}'
    assert rows[1]["record_id"].startswith("~sha1:")


def test_edges_stay_text_until_asked_for_and_null_reads_as_none() -> None:
    conversations = [
        {"id": "c1", "updated_time": "t1", "messages": {"data": [{"id": "m1"}], "paging": {}}},
        {"id": "c2", "updated_time": "t2", "messages": None},
        {"id": "c3", "updated_time": "t3"},
        {"id": "c4", "updated_time": "t4", "messages": "odd"},
    ]
    body = orjson.dumps({"data": conversations})
    page = PageDecoder(["data"], ["id", "updated_time"], edges=["messages"]).decode(body)
    edges = [r["messages"] for r in page.data["data"]]
    assert bytes(edges[0]) == orjson.dumps(conversations[0]["messages"])
    assert edges[1] is None and edges[2] is None
    assert bytes(edges[3]) == b'"odd"'
    raw = page.raws["data"][0]
    assert orjson.loads(without_field(raw, "messages")) == {"id": "c1", "updated_time": "t1"}
    assert without_field(raw, "messages") == orjson.dumps({"id": "c1", "updated_time": "t1"})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "v", "x", "ü", ""]) | st.text(), children, max_size=4
        )
    ),
    max_leaves=20,
)
records = st.lists(
    st.dictionaries(st.sampled_from(["id", "v", "x", "y"]), json_values, max_size=4) | json_values,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(records=records, extra=json_values)
def test_any_page_keys_and_lands_as_orjson_had_it(records: list[Any], extra: Any) -> None:
    body = orjson.dumps({"items": records, "extra": extra})
    old_data, old_rows = _old(body, "items", "id", "v")
    new_data, new_rows = _new(body, "items", "id", "v")
    assert new_rows == old_rows
    assert new_data["extra"] == old_data["extra"]
