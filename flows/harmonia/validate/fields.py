"""What a record must look like, as data: the field specs every suite and flattener is built from.

A ``RecordCheck`` describes one source entity (``voice`` × ``contacts`` …): where each field
sits in the raw JSON, its kind (id, string, enum, timestamp, number, phone, e-mail …), whether
it is required, its allowed values or range, and which timestamps must be ordered. From that
one description ``harmonia.validate.flatten`` derives the checkable columns of a pandas batch
and ``harmonia.validate.suites`` derives the Great Expectations suite, so the two never drift
apart. The raw JSON itself is never altered.

Flattened columns per field ``f`` (the names an auditor sees in Data Docs):

* ``f``            — the value as sent, as text (``None`` when absent or JSON null);
* ``f__ts``        — timestamps: epoch seconds (NaN when absent or unparseable);
* ``f__parseable`` — timestamps, phones, e-mails: False only when a value is present and does
                     not parse (absence is the ``required`` check's business);
* ``f__num``       — numbers: the numeric value (NaN when absent or not a number).

Plus one column per record, ``type_mismatches``: the fields whose JSON type (missing, null,
string, ``numeric_string`` for a string holding a number, number, bool, object, array) is not
one the field accepts, as ``"path: type; ..."`` — null when every type is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "id",
    "string",
    "enum",
    "timestamp",
    "number",
    "integer",
    "phone",
    "email",
    "bool",
    "array",
    "object",
]
TsFormat = Literal["epoch", "epoch_ms", "iso8601", "rfc2822"]

#: the JSON types a present value of each kind may carry (``missing``/``null`` are always
#: accepted by the type check: absence is the ``required`` check's business)
DEFAULT_TYPES: dict[str, tuple[str, ...]] = {
    "id": ("string", "number"),
    "string": ("string",),
    "enum": ("string",),
    "timestamp": ("string", "number"),
    "number": ("number",),
    "integer": ("number",),
    "phone": ("string",),
    "email": ("string",),
    "bool": ("bool",),
    "array": ("array",),
    "object": ("object",),
}


@dataclass(frozen=True)
class Field:
    """One checkable field of a record.

    ``path`` is a dotted path into the raw JSON (``"Agent.ConnectedToAgentTimestamp"``);
    a segment ``[key=value].name`` picks the ``name`` of the list element whose ``key`` equals
    ``value`` (e.g. ``custom_fields[id=360001].value``).
    """

    name: str
    path: str
    kind: Kind
    required: bool = False
    values: tuple[str, ...] = ()  # enum: the allowed values
    min_value: float | None = None  # numbers: inclusive bounds
    max_value: float | None = None
    ts_format: TsFormat = "iso8601"
    types: tuple[str, ...] = ()  # JSON types accepted; default from DEFAULT_TYPES
    why: str = ""  # what the models rely on this field for (goes into the suite's meta)

    @property
    def accepted_types(self) -> tuple[str, ...]:
        """JSON types a present value may have (absence is the ``required`` check's business)."""
        if self.types:
            base = self.types
        elif self.kind == "timestamp":
            base = ("number",) if self.ts_format in ("epoch", "epoch_ms") else ("string",)
        else:
            base = DEFAULT_TYPES[self.kind]
        # a string that happens to hold digits (an id, a phone) is still a string
        return (*base, "numeric_string") if "string" in base else base


@dataclass(frozen=True)
class Order:
    """``earlier`` <= ``later`` whenever both timestamps are present."""

    earlier: str
    later: str


@dataclass(frozen=True)
class Range:
    """``field`` within [min_value, max_value] on the rows where field ``when[0]`` equals
    ``when[1]`` (e.g. a survey score: 0–10 for NPS, 1–5 for CSAT)."""

    field: str
    min_value: float | None
    max_value: float | None
    when: tuple[str, str]


@dataclass(frozen=True)
class RecordCheck:
    """Everything checked about one source entity's records."""

    source: str
    entity: str
    primary_key: str  # path of the vendor's id in the raw JSON
    fields: tuple[Field, ...]
    orders: tuple[Order, ...] = ()
    ranges: tuple[Range, ...] = ()
    description: str = ""

    @property
    def suite_name(self) -> str:
        return f"{self.source}_{self.entity}"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.suite_name}: no field {name!r}")
