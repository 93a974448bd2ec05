"""Untrusted JSON read with bounds (ledger/json_input.py): the depth check against the
real depth of any document, the refusals, and the process that must survive a document
nested 100,000 deep. Fast and deterministic; scripts/fuzz_json_entry_points.py is the
long run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput, TooLarge
from ledger.json_input import (
    BYTES_PER_VALUE,
    MAX_DEPTH,
    ORJSON_MAX_DEPTH,
    deeper_than,
    parse_json,
    parse_ndjson,
    read_bounded,
    read_json_file,
    values_at_most,
)

ROOT = Path(__file__).resolve().parents[2]
FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
MIB = 1 << 20


def depth_of(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def nest(kinds: list[str], inner: bytes = b"1") -> bytes:
    """``inner`` inside one array ("a") or object ("o") per kind, outermost first."""
    opening = b"".join(b"[" if k == "a" else b'{"k":' for k in kinds)
    closing = b"".join(b"]" if k == "a" else b"}" for k in reversed(kinds))
    return opening + inner + closing


# Strings full of what a depth counter could mistake for structure.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\,:ab/\n\t\u00e9\U0001f600\u2028')), max_size=10)
scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | tricky_text
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(tricky_text, inner, max_size=3), max_leaves=12)


def wrapped(value: Any, kinds: list[str]) -> Any:
    for kind in reversed(kinds):
        value = [value] if kind == "a" else {"k": value}
    return value


deep_values = st.builds(wrapped, values, st.lists(st.sampled_from("ao"), max_size=40))


def refused_as_too_deep(doc: bytes, limit: int) -> bool:
    """What the raw-bytes depth check used to answer, through parse_json."""
    try:
        parse_json(doc, field="f", max_bytes=len(doc), max_depth=limit)
    except InvalidInput as exc:
        return "nested deeper" in exc.message
    return False


# -- the depth check -----------------------------------------------------------------

@FAST
@given(deep_values, st.booleans())
def test_the_depth_check_sees_the_real_depth_of_any_document(value: Any, ascii_only: bool) -> None:
    doc = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = depth_of(value)
    for limit in {0, 1, max(0, depth - 1), depth, depth + 1}:
        assert refused_as_too_deep(doc, limit) == (depth > limit), (doc, limit)
        assert deeper_than(value, limit) == (depth > limit), (value, limit)


@FAST
@given(deep_values, st.booleans())
def test_what_is_written_is_read_back_at_exactly_its_depth(value: Any, ascii_only: bool) -> None:
    doc = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = depth_of(value)
    assert parse_json(doc, field="f", max_bytes=len(doc), max_depth=depth) == value
    assert parse_json(doc.decode(), field="f", max_bytes=len(doc), max_depth=depth) == value
    if depth:
        with pytest.raises(InvalidInput, match="nested deeper"):
            parse_json(doc, field="f", max_bytes=len(doc), max_depth=depth - 1)


@pytest.mark.parametrize("kinds", ["a", "o", "ao", "oa", "aao"])
@pytest.mark.parametrize("limit", [1, 8, MAX_DEPTH])
def test_depth_at_the_limit_passes_and_one_deeper_is_refused(kinds: str, limit: int) -> None:
    at = nest([kinds[i % len(kinds)] for i in range(limit)])
    deeper = nest([kinds[i % len(kinds)] for i in range(limit + 1)])
    assert depth_of(parse_json(at, field="f", max_bytes=MIB, max_depth=limit)) == limit
    with pytest.raises(InvalidInput, match=f"nested deeper than {limit} levels") as refused:
        parse_json(deeper, field="body", max_bytes=MIB, max_depth=limit)
    assert refused.value.field == "body"


def test_the_default_limit_is_the_documented_one() -> None:
    parse_json(nest(["a"] * MAX_DEPTH), field="f", max_bytes=MIB)
    with pytest.raises(InvalidInput):
        parse_json(nest(["a"] * (MAX_DEPTH + 1)), field="f", max_bytes=MIB)


@pytest.mark.parametrize("doc", [
    b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',
    b'[{"}}}}{{{{[[[[": "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"}]',
    b'["\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',  # \" inside
    b'["\\\\", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',  # \\ then "
    b'["\\\\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',  # \\\" inside
    b'["\\u0022[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',
])
def test_brackets_and_escaped_quotes_inside_strings_are_not_nesting(doc: bytes) -> None:
    assert not refused_as_too_deep(doc, 2)
    assert depth_of(parse_json(doc, field="f", max_bytes=MIB, max_depth=2)) <= 2


def test_a_quote_escaped_inside_a_string_does_not_end_it() -> None:
    # were \" taken as the end of the string, the brackets after it would count
    doc = b'["a\\"' + b"[" * 40 + b'", "' + b"]" * 40 + b'"]'
    assert json.loads(doc) == ['a"' + "[" * 40, "]" * 40]
    assert parse_json(doc, field="f", max_bytes=MIB, max_depth=1) == json.loads(doc)
    real = b'["a\\\\", ' + b"[" * 40 + b"]" * 40 + b"]"  # \\ then a real end of string
    assert refused_as_too_deep(real, 32)
    with pytest.raises(InvalidInput, match="nested deeper"):
        parse_json(real, field="f", max_bytes=MIB)


@pytest.mark.parametrize("doc", [
    b'["' + b'\\"' * 32_000,  # an unterminated string of escaped quotes
    b'["' + b'\\"' * 32_000 + b"\\",  # ... ending in a lone backslash
    b'{"a": 1}' + b'"\\"' * 20_000,
    b'"\\\n' * 20_000,  # backslash-newline, which no JSON string holds
    b'"' * MIB,
])
def test_unterminated_strings_cost_one_pass(doc: bytes) -> None:
    # The string pattern was retried from every quote inside an unterminated string:
    # quadratic, these 64 KB took ~14 s (a bundle's limit), a 32 MiB body days. Now ~1 ms.
    started = time.perf_counter()
    with pytest.raises(InvalidInput):
        parse_json(doc, field="f", max_bytes=len(doc))
    assert time.perf_counter() - started < 0.5


# -- the refusals --------------------------------------------------------------------

@pytest.mark.parametrize("doc, says", [
    (b"\xef\xbb\xbf[1]", "byte order mark"),
    (b'["\xff"]', "not valid JSON"),
    (b'["\xed\xa0\x80"]', "not valid JSON"),  # a surrogate, raw
    (rb'["\ud800"]', "not valid JSON"),  # a lone surrogate, escaped
    (rb'{"\udc00": 1}', "not valid JSON"),
    (rb'["\udc00\ud800"]', "not valid JSON"),  # a pair the wrong way round
    (b"[NaN]", "not valid JSON"), (b"[Infinity]", "not valid JSON"),
    (b"[-Infinity]", "not valid JSON"), (b"[1e400]", "not valid JSON"),
    (b"[" + b"1" * 5000 + b"]", "not valid JSON"),  # past the int-string limit
    (b"[" + b"9" * 400 + b"]", "not valid JSON"),  # past a double
    (b"", "not valid JSON"), (b"[1,]", "not valid JSON"), (b"[1] [2]", "not valid JSON"),
])
@pytest.mark.parametrize("unique_keys", [False, True])
def test_what_json_from_outside_may_not_hold(doc: bytes, says: str, unique_keys: bool) -> None:
    with pytest.raises(InvalidInput, match=says) as refused:
        parse_json(doc, field="records", max_bytes=MIB, unique_keys=unique_keys)
    assert refused.value.field == "records" and type(refused.value) is InvalidInput


def test_a_lone_surrogate_in_a_str_is_refused_too() -> None:
    with pytest.raises(InvalidInput):
        parse_json('["\ud800"]', field="f", max_bytes=MIB)


def test_a_valid_surrogate_pair_is_one_character() -> None:
    assert parse_json(rb'["\ud83d\ude00"]', field="f", max_bytes=MIB) == ["\U0001f600"]


def test_duplicate_names_are_refused_only_when_asked() -> None:
    doc = b'{"a": 1, "b": {"c": 2, "c": 3}}'
    assert parse_json(doc, field="f", max_bytes=MIB) == {"a": 1, "b": {"c": 3}}
    with pytest.raises(InvalidInput, match="duplicate member name 'c'"):
        parse_json(doc, field="f", max_bytes=MIB, unique_keys=True)


@pytest.mark.parametrize("number", [b"18446744073709551616", b"-9223372036854775809",
                                    b"1" + b"0" * 300, b"9007199254740993"])
def test_unique_keys_reads_numbers_as_the_one_parser_does(number: bytes) -> None:
    # The value once came from the stdlib: an integer of 300 digits that orjson (and
    # JSON.parse) read as a double, which no JSON writer here could write back.
    doc = b'{"n": ' + number + b"}"
    value = parse_json(doc, field="f", max_bytes=MIB, unique_keys=True)
    assert value == parse_json(doc, field="f", max_bytes=MIB) == orjson.loads(doc)
    orjson.dumps(value)


def test_the_size_limit_counts_bytes() -> None:
    doc = json.dumps(["é" * 10]).encode()
    assert parse_json(doc, field="f", max_bytes=len(doc)) == ["é" * 10]
    with pytest.raises(TooLarge, match=f"over {len(doc) - 1} bytes"):
        parse_json(doc, field="f", max_bytes=len(doc) - 1)
    with pytest.raises(TooLarge):
        parse_json(doc.decode(), field="f", max_bytes=len(doc) - 1)  # utf-8 bytes, not chars


@FAST
@given(st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b'"a"', b":", b",", b"1",
                                 b" ", b"\n", b"\xff", b"\xed\xa0\x80", b"\\ud800", b"\xef\xbb\xbf",
                                 b"NaN", b"1e999", b"null", b'"k":']), max_size=60).map(b"".join),
       st.integers(0, 6), st.booleans())
def test_any_bytes_are_a_value_within_bounds_or_invalid_input(doc: bytes, limit: int,
                                                             unique_keys: bool) -> None:
    try:
        value = parse_json(doc, field="f", max_bytes=MIB, max_depth=limit, unique_keys=unique_keys)
    except InvalidInput:
        return
    assert depth_of(value) <= limit
    orjson.dumps(value)  # what came in can go out: no lone surrogate, no NaN


# -- NDJSON --------------------------------------------------------------------------

def test_ndjson_lines_are_parsed_and_numbered() -> None:
    body = b'{"a": 1}\r\n\n  \n[2]\n"x"'
    assert parse_ndjson(body, field="body", max_bytes=MIB) == [{"a": 1}, [2], "x"]
    with pytest.raises(InvalidInput) as refused:
        parse_ndjson(b'{"a": 1}\n\n[' + b"[" * 40 + b"]" * 41 + b"\n", field="body", max_bytes=MIB)
    assert refused.value.field == "body line 3" and "nested deeper" in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        parse_ndjson(b'{}\n{"a": "\\ud800"}', field="body", max_bytes=MIB)
    assert refused.value.field == "body line 2"
    with pytest.raises(TooLarge):
        parse_ndjson(b"{}\n" * 10, field="body", max_bytes=29)
    assert parse_ndjson(b"\n\n", field="body", max_bytes=MIB) == []


@FAST
@given(st.lists(deep_values, min_size=1, max_size=4), st.integers(0, 45))
def test_ndjson_refuses_exactly_the_lines_too_deep(items: list[Any], limit: int) -> None:
    body = b"\n".join(json.dumps(v).encode() for v in items)
    too_deep = [i for i, v in enumerate(items, start=1) if depth_of(v) > limit]
    if not too_deep:
        assert parse_ndjson(body, field="body", max_bytes=MIB, max_depth=limit) == items
        return
    with pytest.raises(InvalidInput) as refused:
        parse_ndjson(body, field="body", max_bytes=MIB, max_depth=limit)
    assert refused.value.field == f"body line {too_deep[0]}"


# -- files ---------------------------------------------------------------------------

def test_read_bounded_reads_at_most_one_byte_past_the_limit(tmp_path: Path) -> None:
    exact = tmp_path / "exact.json"
    exact.write_bytes(b"x" * 100)
    assert read_bounded(exact, field="f", max_bytes=100) == b"x" * 100
    with pytest.raises(TooLarge, match="over 99 bytes"):
        read_bounded(exact, field="f", max_bytes=99)
    started = time.perf_counter()  # an endless file is refused at the limit, not read whole
    with pytest.raises(TooLarge):
        read_bounded("/dev/zero", field="f", max_bytes=1024)
    assert time.perf_counter() - started < 1.0


def test_read_bounded_names_what_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no file") as refused:
        read_bounded(tmp_path / "missing.json", field="bundle", max_bytes=10)
    assert refused.value.field == "bundle"
    with pytest.raises(InvalidInput, match="is a directory"):
        read_bounded(tmp_path, field="bundle", max_bytes=10)
    (tmp_path / "file").write_bytes(b"{}")
    with pytest.raises(InvalidInput, match="cannot read"):  # a path through a file
        read_bounded(tmp_path / "file" / "x.json", field="bundle", max_bytes=10)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.json"
        locked.write_bytes(b"{}")
        locked.chmod(0)
        with pytest.raises(InvalidInput, match="cannot read"):
            read_bounded(locked, field="bundle", max_bytes=10)


def test_read_json_file_has_the_same_bounds(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidInput, match="nested deeper"):
        read_json_file(path, field="f", max_bytes=MIB)
    with pytest.raises(TooLarge):
        read_json_file(path, field="f", max_bytes=1000)


# -- the process survives ------------------------------------------------------------

def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (its own recursion limit and imports)."""
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_a_document_100000_deep_is_refused_quickly_after_web3_is_imported() -> None:
    # web3 first, as a process that uses it would: py_ecc then sets the recursion limit to
    # 100,000, and the stdlib parser (FastAPI reads bodies with it) would overflow the C
    # stack and kill the process unless the project puts the limit back.
    done = run_python("""
        import json, sys, time
        import web3  # noqa: F401
        import chain.client  # noqa: F401
        from ledger.errors import InvalidInput
        from ledger.json_input import parse_json
        limit = sys.getrecursionlimit()
        assert limit <= 10_000, f"the recursion limit is {limit}"
        deep = b"[" * 100_000 + b"]" * 100_000
        started = time.perf_counter()
        try:
            parse_json(deep, field="body", max_bytes=1 << 20)
        except InvalidInput as exc:
            assert "nested deeper" in exc.message
        else:
            raise AssertionError("accepted")
        assert time.perf_counter() - started < 1.0, time.perf_counter() - started
        try:
            json.loads(deep)
        except RecursionError:
            pass
        print("survived")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "survived", \
        f"exit status {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"


def test_the_chain_code_leaves_the_recursion_limit_as_it_found_it() -> None:
    done = run_python("""
        import sys
        before = sys.getrecursionlimit()
        import chain.client  # noqa: F401
        import chain.nodes
        w3 = chain.nodes.in_process_web3()
        assert w3.eth.block_number >= 0
        print(before, sys.getrecursionlimit())
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = done.stdout.split()
    assert after == before


# -- parse first, then the depth of the value ----------------------------------------

def wide(piece: bytes, size: int) -> bytes:
    """An array of ``size`` bytes or so made of one small shallow piece repeated."""
    return b"[" + b",".join([piece] * (size // (len(piece) + 1))) + b"]"


@pytest.mark.parametrize("piece", [b"[1]", b"{}", b"[]", b'{"a":[1]}', b'""'])
def test_a_wide_shallow_body_is_accepted_at_its_size(piece: bytes) -> None:
    # 32 MiB of these took the raw-bytes depth check 11-30 s and +2.75 GB; 1 MiB here,
    # the 32 MiB figures are scripts/bench_json_input.py's.
    doc = wide(piece, MIB)
    started = time.perf_counter()
    value = parse_json(doc, field="body", max_bytes=32 * MIB)
    elapsed = time.perf_counter() - started
    assert len(value) == len(doc) // (len(piece) + 1) and value[0] == json.loads(piece)
    assert elapsed < 5.0, elapsed
    small = wide(piece, 64 << 10)  # unique_keys is for small documents: the stdlib is slower
    assert parse_json(small, field="body", max_bytes=MIB, unique_keys=True) == json.loads(small)


@pytest.mark.parametrize("doc", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"[" * 100_000,  # never closed
    b'{"a":' * 100_000,
    b"[" * (ORJSON_MAX_DEPTH + 1) + b"]" * (ORJSON_MAX_DEPTH + 1),  # orjson's own refusal
    b"[" * ORJSON_MAX_DEPTH + b"]" * ORJSON_MAX_DEPTH,  # orjson reads it, the depth check refuses it
    wide(b"[1]", 64 << 10)[:-1] + b"," + b"[" * 40 + b"]" * 40 + b"]",  # deep after much that is not
])
@pytest.mark.parametrize("unique_keys", [False, True])
def test_a_deep_document_is_refused_naming_the_field_before_the_stdlib_sees_it(
        doc: bytes, unique_keys: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.json_input as json_input

    seen: list[bytes] = []
    monkeypatch.setattr(json_input.json, "loads", lambda raw, **kw: seen.append(raw))
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match=f"nested deeper than {MAX_DEPTH} levels") as refused:
        parse_json(doc, field="reward", max_bytes=32 * MIB, unique_keys=unique_keys)
    assert refused.value.field == "reward"
    assert seen == []  # the stdlib parser (recursive, in C) never ran
    assert time.perf_counter() - started < 1.0


def test_past_orjsons_own_bound_the_refusal_says_its_depth() -> None:
    doc = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(InvalidInput, match=f"nested deeper than {ORJSON_MAX_DEPTH} levels"):
        parse_json(doc, field="f", max_bytes=MIB, max_depth=10_000)
    at_bound = b"[" * ORJSON_MAX_DEPTH + b"]" * ORJSON_MAX_DEPTH
    assert depth_of(parse_json(at_bound, field="f", max_bytes=MIB, max_depth=ORJSON_MAX_DEPTH)) \
        == ORJSON_MAX_DEPTH


@pytest.mark.parametrize("unique_keys", [False, True])
@pytest.mark.parametrize("kinds", ["a", "o", "ao"])
def test_depth_32_is_accepted_and_depth_33_refused_among_wide_siblings(kinds: str,
                                                                      unique_keys: bool) -> None:
    def doc(depth: int) -> bytes:
        deep = nest([kinds[i % len(kinds)] for i in range(depth - 1)])
        return b"[" + b"[1]," * 1000 + deep + b"," + b"{}," * 1000 + b"[]]"

    value = parse_json(doc(32), field="f", max_bytes=MIB, unique_keys=unique_keys)
    assert depth_of(value) == 32 == MAX_DEPTH
    with pytest.raises(InvalidInput, match="nested deeper than 32 levels") as refused:
        parse_json(doc(33), field="records", max_bytes=MIB, unique_keys=unique_keys)
    assert refused.value.field == "records"


def test_duplicate_names_are_still_refused_anywhere_within_the_depth() -> None:
    deepest = nest(["o"] * (MAX_DEPTH - 1), inner=b'{"x": 1, "x": 2}')
    for doc in (deepest, wide(b'{"a":1}', 256 << 10)[:-1] + b',{"a":1,"a":2}]'):
        assert parse_json(doc, field="f", max_bytes=MIB) is not None
        with pytest.raises(InvalidInput, match="duplicate member name") as refused:
            parse_json(doc, field="bundle", max_bytes=MIB, unique_keys=True)
        assert refused.value.field == "bundle"
    # one level deeper, the depth is what is refused (the duplicate is never looked for)
    with pytest.raises(InvalidInput, match="nested deeper"):
        parse_json(nest(["o"] * MAX_DEPTH, inner=b'{"x": 1, "x": 2}'), field="f", max_bytes=MIB,
                   unique_keys=True)


def test_the_depth_walk_needs_no_recursion() -> None:
    value: Any = 1
    for i in range(100_000):  # built iteratively: deeper than any recursion limit
        value = [value] if i % 2 else {"k": value}
    assert deeper_than(value, 32)
    assert deeper_than(value, 99_999)
    assert not deeper_than(value, 100_000)
    assert not deeper_than([[], {}, [[]], {"a": {}}], 3)
    assert deeper_than([[], {}, [[]], {"a": {"b": []}}], 3)
    assert not deeper_than("[[[", 0) and deeper_than([], 0) and not deeper_than([], 1)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_left_as_it_was_found(enabled: bool) -> None:
    import gc

    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        parse_json(b"[[1],[2]]", field="f", max_bytes=MIB)
        assert gc.isenabled() is enabled
        with pytest.raises(InvalidInput):
            parse_json(b"[[1],", field="f", max_bytes=MIB)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def count_values(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(count_values(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(count_values(v) for v in value.values())
    return 1


@given(values, st.booleans())
@FAST
def test_the_values_bound_is_never_below_what_a_document_holds(value: Any, pretty: bool) -> None:
    doc = orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)
    assert values_at_most(doc) >= count_values(value)


@pytest.mark.parametrize(("piece", "lines"), [(b"[1]", False), (b"{}", False), (b"0", False),
                                              (b"[1]", True), (b"{}", True)])
def test_a_body_of_tiny_values_is_refused_before_it_is_parsed(piece: bytes, lines: bool) -> None:
    """#15's fuzzer: 32 MiB of ``[1],`` parse to some 8 million lists, over a gigabyte.
    Refused by counting, as too large for its limit, naming the field."""
    limit = MIB
    doc = b"\n".join([piece] * (limit // (len(piece) + 1))) if lines else wide(piece, limit - 2)
    with pytest.raises(TooLarge) as refused:
        (parse_ndjson if lines else parse_json)(doc, field="body", max_bytes=limit)
    assert refused.value.field == "body" and "JSON values" in refused.value.message


def test_dense_real_documents_fill_their_limit() -> None:
    """The densest records we expect (a route of coordinate pairs in ``details``), and
    short plain ones, are accepted up to the byte limit itself."""
    route = {"record_id": "r", "citizen": "c_000001", "behaviour": "CYCLING", "quantity": 3200,
             "occurred_at": "2026-12-04T08:10:00+08:00",
             "details": {"route": [[31.2304, 121.4737]] * 40}}
    plain = {"record_id": "r-1", "citizen": "c_1", "behaviour": "METRO", "quantity": 1,
             "occurred_at": "2026-12-04T08:10:00+08:00", "details": {}}
    for record in (route, plain):
        line = orjson.dumps(record)
        body = b"\n".join([line] * (MIB // (len(line) + 1)))
        assert len(parse_ndjson(body, field="body", max_bytes=MIB)) == MIB // (len(line) + 1)
        array = b"[" + b",".join([line] * (MIB // (len(line) + 1) - 1)) + b"]"
        assert len(parse_json(array, field="body", max_bytes=MIB)) > 1
    assert BYTES_PER_VALUE <= 4
