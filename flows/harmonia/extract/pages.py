"""Page bodies decoded for landing: each record kept as the JSON text the vendor sent.

A page is read for two things: its records, which land as received, and a few fields the run
acts on (the paging cursor, each record's key and version, the incremental cursor, Graph's
inline edges). Parsing the whole body into Python objects (``orjson.loads``) and writing each
record back as JSON (``orjson.dumps``) made the extract client spend most of its time building,
serializing and freeing objects it never looked at (``docs/performance.md``, fifteenth round).

``PageDecoder`` walks the body with msgspec instead:

* every list of records becomes ``msgspec.Raw`` slices of the body — the record's bytes as
  sent, never turned into Python objects — and, in a second pass over the same bytes, one small
  ``dict`` per record with only the top-level fields the run reads (the rest is skipped in C);
* everything else in the body (paging, cursors, ``end_of_stream``) is decoded as usual.

The result's ``data`` has the shape ``orjson.loads`` gives, with each records list holding those
small dicts, so the paginators, the shape check and the incremental window read it unchanged.
``raws`` holds the records' text, position for position.

What is garbage stays garbage: a body that is not UTF-8 or not well-formed JSON raises, and
``SourceHTTP`` retries it as before. Inside a record msgspec checks the structure, not every
value: a number past the double range (``1e400``) lands as sent and validation judges the
record (orjson refused the whole page for it). A record that is not an object, or whose key
fields do not decode, is read whole; where even that fails it is keyed by its content
(``landing.key_raw_records``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ANY = msgspec.json.Decoder()
_NULL = msgspec.Raw(b"null")

#: what a page decoder raises for a body that is not JSON (``SourceHTTP`` retries those)
DECODE_ERRORS = (ValueError, msgspec.MsgspecError)


@dataclass
class DecodedPage:
    """A page: ``data`` as ``orjson.loads`` would give it, but each records list holding only
    the fields read of each record; ``raws[path]`` the records' JSON text in the same order."""

    data: Any
    # slices of the body (msgspec.Raw: bytes-like, no copy)
    raws: dict[str | None, list[msgspec.Raw]] = field(default_factory=dict)


class PageDecoder:
    """Decodes the bodies of one endpoint: its record lists at ``paths`` (dotted, ``None`` for
    a bare array) kept as text, with ``fields`` (top-level names) read from each record;
    ``edges`` are fields left as raw JSON text (Graph's inline ``messages``) for the run to
    decode only for the records that need them."""

    def __init__(
        self, paths: Iterable[str | None], fields: Iterable[str], edges: Iterable[str] = ()
    ) -> None:
        self.paths = tuple(dict.fromkeys(paths))
        edges = tuple(dict.fromkeys(edges))
        self.names = (*dict.fromkeys(f for f in fields if f not in edges), *edges)
        # attribute names are positional: a JSON name need not be a Python identifier
        attrs = [f"f{i}" for i in range(len(self.names))]
        kinds = [Any] * (len(self.names) - len(edges)) + [msgspec.Raw] * len(edges)
        self._struct = msgspec.defstruct(
            "Sparse",
            [(a, t, None) for a, t in zip(attrs, kinds, strict=True)],
            rename=dict(zip(attrs, self.names, strict=True)),
            gc=False,
        )
        self._one = msgspec.json.Decoder(self._struct)
        self._many = msgspec.json.Decoder(list[self._struct])
        self._edge_names = frozenset(edges)
        # the records lists, as nested {key: {...}} of path parts; a leaf is the full path
        self._tree: dict[str, Any] = {}
        for path in self.paths:
            if path is None:
                continue
            node = self._tree
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = path

    def decode(self, body: bytes) -> DecodedPage:
        """The page in ``body``; raises one of ``DECODE_ERRORS`` when it is not JSON."""
        body = bytes(body)
        body.decode("utf-8")  # strict: msgspec does not look inside the strings it skips
        page = DecodedPage(None)
        if None in self.paths:
            page.data = self._records(body, None, page)
        else:
            page.data = self._node(body, self._tree, page)
        return page

    # -- the body -------------------------------------------------------------------------

    def _node(self, raw: bytes | msgspec.Raw, tree: dict[str, Any], page: DecodedPage) -> Any:
        """The JSON value ``raw``, with the records lists under ``tree`` kept as text."""
        try:
            members = _TOP.decode(raw)
        except msgspec.ValidationError:  # not an object: nothing of ours below it
            return _ANY.decode(raw)
        out: dict[str, Any] = {}
        for key, value in members.items():
            below = tree.get(key)
            if below is None:
                out[key] = _ANY.decode(value)
            elif isinstance(below, str):
                out[key] = self._records(value, below, page)
            else:
                out[key] = self._node(value, below, page)
        return out

    def _records(self, raw: bytes | msgspec.Raw, path: str | None, page: DecodedPage) -> Any:
        """A records list: its items' fields, and their text in ``page.raws[path]``; a value
        that is not a list is decoded as it is (the shape check reports it)."""
        try:
            items = _LIST.decode(raw)
        except msgspec.ValidationError:
            return _ANY.decode(raw)
        page.raws[path] = items
        try:
            return [self._as_dict(s) for s in self._many.decode(raw)]
        except msgspec.ValidationError:  # a record that is not an object, or odd key fields
            return [self.record(item) for item in items]

    # -- one record -----------------------------------------------------------------------

    def record(self, raw: bytes | msgspec.Raw) -> Any:
        """One record's fields: a dict of the names read (None where absent); the whole value
        of a record that is not an object; None where a field read holds a number past the
        double range (the record is then keyed by its content)."""
        try:
            return self._as_dict(self._one.decode(raw))
        except msgspec.ValidationError:
            pass
        try:
            return _ANY.decode(raw)
        except msgspec.ValidationError:
            return None

    def _as_dict(self, sparse: Any) -> dict[str, Any]:
        values = msgspec.structs.astuple(sparse)
        out = dict(zip(self.names, values, strict=True))
        for name in self._edge_names:
            if out[name] == _NULL:
                out[name] = None  # "edge": null reads as no edge, as dict.get would
        return out


def without_field(raw: bytes | msgspec.Raw, name: str) -> bytes:
    """A record's JSON text without its top-level member ``name``, the rest as sent."""
    members = _TOP.decode(raw)
    members.pop(name, None)
    return msgspec.json.encode(members)
