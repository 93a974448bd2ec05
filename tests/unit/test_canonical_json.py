"""The fast canonical form is RFC 8785 exactly: for any JSON value (and any record shape),
``canonical_json`` gives the bytes ``rfc8785.dumps`` gives, or raises what it raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.records import canonical_json

MANY = settings(max_examples=2000, deadline=None)

# Any text, with lone surrogates (json.loads makes them from "\ud800") and characters on
# both sides of where UTF-16 and code-point order differ (U+E000-U+FFFF vs astral).
TEXT = st.text(st.one_of(st.characters(), st.sampled_from("\ud800\udfff\ue000\uffff\U0001f600"
                                                            "\x00\x1f\x7f\u2028\"\\/")))
SCALARS = st.one_of(st.none(), st.booleans(), TEXT,
                    st.integers(), st.integers(-(2**53) - 2, 2**53 + 2),
                    st.floats(allow_nan=True, allow_infinity=True))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(TEXT, inner, max_size=5)), max_leaves=30)

RECORDS = st.fixed_dictionaries(
    {"record_id": TEXT, "citizen": TEXT, "behaviour": st.sampled_from(["CYCLING", "METRO"]),
     "quantity": st.integers(-10, 2**60), "occurred_at": st.one_of(st.integers(0, 2**40), TEXT)},
    optional={"ended_at": st.integers(0, 2**40), "details": st.dictionaries(TEXT, JSON, max_size=4)})


def outcome(value: Any, canonicalise: Any) -> tuple[str, Any]:
    try:
        return "bytes", canonicalise(value)
    except Exception as exc:  # noqa: BLE001 - comparing what each raises is the point
        return "raises", (type(exc), str(exc))


@MANY
@given(JSON)
def test_any_json_value_canonicalises_as_the_reference_does(value: Any) -> None:
    assert outcome(value, canonical_json) == outcome(value, rfc8785.dumps)


@MANY
@given(RECORDS)
def test_any_record_canonicalises_as_the_reference_does(record: dict[str, Any]) -> None:
    assert outcome(record, canonical_json) == outcome(record, rfc8785.dumps)


@pytest.mark.parametrize("text", [
    '{"b":1,"a":{"\\ue000":1,"\\ud83d\\ude00":2}}',  # UTF-16 order, not code-point order
    '{"n":9007199254740992}', '{"n":-9007199254740992}', '{"n":9007199254740991}',
    '{"x":1.0,"y":1e21,"z":-0.0}', '"\\ud800"', '{"\\ud800":1}',
    '{"t":"\\u0000\\u001f\\u007f\\b\\f\\n\\r\\t\\"\\\\/"}',
    "[" * 300 + "]" * 300,  # deeper than orjson nests
])
def test_edge_cases_canonicalise_as_the_reference_does(text: str) -> None:
    value = json.loads(text)
    assert outcome(value, canonical_json) == outcome(value, rfc8785.dumps)
