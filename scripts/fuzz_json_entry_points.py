"""Fuzz every place JSON enters from outside (issue #15): coverage-guided, with atheris.

    python scripts/fuzz_json_entry_points.py --minutes 10 [--targets parse_json,http]
                                             [--workdir DIR] [--self-check]
    python scripts/fuzz_json_entry_points.py --reproduce DIR/findings/T/ID/input.bin --target T

Targets (each may only return, or raise a :class:`ledger.errors.LedgerError`; anything else
is a finding, and so is a wrong answer from the oracle each target checks):

- ``parse_json`` / ``parse_ndjson``: random limits (size, depth, ``unique_keys``); what is
  accepted must be no deeper than the limit and serialisable again (no lone surrogate, no
  NaN, no integer beyond 64 bits);
- ``bundle`` (``ProofBundle.from_bytes``) and ``descriptor`` (``LedgerDescriptor.from_bytes``):
  what is accepted round-trips through ``to_json``/``from_json``;
- ``record``: a parsed document's records through ``parse_record``, ``record_hash`` and
  ``prepare_records`` (shape checks and quantification under the methodology); a parsed
  record's canonical bytes must be RFC 8785's reference output and its hash
  ``record_hash``'s;
- ``http``: the real app (FastAPI ``TestClient``, a real :class:`Container` on the in-process
  ``tester`` chain, a partner, a citizen, an auditor): ``POST /v1/submissions`` (JSON and
  NDJSON, junk signatures), ``POST /v1/redemptions``, ``POST /v1/verify``,
  ``GET /v1/methodologies/{junk}`` and other ``{junk}`` paths, with right, wrong and no
  credentials, sometimes chunked. Any 5xx answer is a finding.

Inputs are made from libFuzzer's bytes by generators that do what random bytes would not:
nesting from 1 to 200,000 levels (built as bytes, never as Python objects), numbers of
4,300 to 60,000 digits and exponents beyond a double, invalid UTF-8, lone surrogates
(escaped and raw), byte order marks, duplicate and odd member names, NaN and Infinity,
strings of up to a megabyte (and of escaped quotes), control characters; and structural
and byte-level mutations of a real proof bundle (tests/data/bundle_corpus/cases/
001-good-credit.json), a real partner record (README's), a ledger descriptor and a
redemption. One mode hands libFuzzer's bytes over as they are, so its own mutations of
the seeds (those documents) are fuzzed too. Known historic payloads (a body nested
100,000 deep, a 5,000-digit quantity, ``/v1/methodologies/1000…``, a lone surrogate in a
bundle) run first, once per target.

The worst failure is the process dying (the C stack overflowing), so each target is
fuzzed in a child process, one at a time (one CPU core), and the parent reports a child
that dies by a signal, with the input it was running (the child writes each input to a
file before running it, and ``faulthandler`` writes the Python stack). libFuzzer's own
signal handlers are off so that such a death is the kernel's, as a server's would be.
A child that dies is restarted for the rest of its time. Each finding is saved, once per
kind, under ``WORKDIR/findings/<target>/<id>/``: ``input.bin`` (libFuzzer's bytes;
``--reproduce`` runs them again), ``document.bin`` (the exact JSON sent), ``request.json``
(for ``http``: method, path, headers) and ``finding.txt`` (what failed, the traceback).
An input that takes over 10 s, or raises the process's peak memory by over 1 GiB, is a
finding too (a denial of service needs no crash); limits are drawn up to 32 MiB, the
largest one the service reads JSON under (a request body).

``--minutes`` is the whole run's fuzzing time, shared out (``http`` gets twice a direct
target's share: a request costs more). Exit status 0: no finding; 1: findings.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's packages, before any installed copy

TARGETS = ("parse_json", "parse_ndjson", "bundle", "descriptor", "record", "http")
WEIGHTS = {"http": 2}
BUNDLE_FILE = ROOT / "tests" / "data" / "bundle_corpus" / "cases" / "001-good-credit.json"
CITIZEN = "c_fuzz_citizen"
PARTNER = "greenbike"
MAX_LEN = 20_000  # libFuzzer's largest input; generated documents are far larger
SLOW_SECONDS = 10.0  # one input taking longer is a finding (libFuzzer stops a child at 120 s)
MEMORY_MB = 1024  # one input raising the process's peak memory by more is a finding
LARGEST_LIMIT = 32 << 20  # the largest size limit anything here reads JSON under (a body)


# -- reading choices from libFuzzer's bytes --------------------------------------------

class Src:
    """Choices drawn from the fuzzer's bytes, front to back; zeros once they run out (so
    every input, however short, makes a case, and a mutation of a byte changes a choice)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        if n <= 1:
            return 0
        value = 0
        for _ in range(((n - 1).bit_length() + 7) // 8):
            value = value << 8 | self.byte()
        return value % n

    def between(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1)

    def choice(self, items: Any) -> Any:
        return items[self.below(len(items))]

    def chance(self, one_in: int) -> bool:
        return self.below(one_in) == 0

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


# -- nasty fragments, as bytes ---------------------------------------------------------

DEPTHS = (1, 2, 8, 9, 31, 32, 33, 64, 100, 1000, 1024, 1025, 5000, 40_000, 100_000, 200_000, 0)


def deep(src: Src) -> bytes:
    d = src.choice(DEPTHS) or src.between(1, 120_000)
    style = src.below(11)
    if style == 0:
        return b"[" * d + b"]" * d
    if style == 1:
        return b'{"a":' * d + b"1" + b"}" * d
    if style == 2:
        half = max(1, d // 2)
        return b'[{"a":' * half + b"null" + b"}]" * half
    if style == 3:
        return b"[" * d  # never closed
    if style == 4:
        return b"]" * d
    if style == 5:
        return b"[1," * d + b"1" + b"]" * d
    if style == 6:
        return b'"' + b"[" * d + b'"'  # brackets inside a string are not nesting
    if style == 7:
        return b'"\\"' + b"{[" * d + b'\\""'  # escaped quotes around them
    if style == 8:
        return b"[ \n\t" * d + b"]\r\n" * d
    if style == 9:
        return b"[" * d + b"}" * d  # badly matched
    return b'[["\\"]", ' * d + b'"]["' + b"]]" * d  # strings of brackets at every level


def huge_number(src: Src) -> bytes:
    special = (b"1e400", b"-1e400", b"1e-400", b"1.7976931348623157e309", b"9007199254740993",
               b"18446744073709551615", b"18446744073709551616", b"-9223372036854775809",
               b"-0", b"0e0", b"-0.0", b"01", b"1.", b".1", b"1e", b"--1", b"+1", b"0x10",
               b"1_000", b"1E+2", b"2e-1074", b"4.9e-325", b"1" + b"0" * 308 + b".5")
    if src.chance(3):
        return src.choice(special)
    digits = src.choice((4300, 4301, 5000, 10_000, 60_000, 0)) or src.between(1, 20_000)
    run = str(src.between(1, 9)).encode() + src.choice((b"0", b"9", b"7")) * (digits - 1)
    form = src.below(6)
    if form == 0:
        return run
    if form == 1:
        return b"-" + run
    if form == 2:
        return b"0." + run
    if form == 3:
        return b"1e" + run
    if form == 4:
        return b"1e-" + run
    return run + b"." + run + b"e-" + run[:5]


BAD_UTF8 = (b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xb0\x80",
            b"\xed\xa0\xbd\xed\xb8\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80",
            b"\xf8\x88\x80\x80\x80", b"\xc3", b"\xef\xbf\xbe", b"\xef\xbf\xbf")


def bad_utf8(src: Src) -> bytes:
    raw = src.choice(BAD_UTF8) if src.chance(2) else bytes(0x80 | src.byte() for _ in range(3))
    form = src.below(3)
    return b'"a' + raw + b'b"' if form == 0 else raw if form == 1 else b'"' + raw * 100 + b'"'


SURROGATES = (rb'"\ud800"', rb'"\udfff"', rb'"\udc00\ud800"', rb'"a\ud83d"', rb'"\ud83d\ude00"',
              rb'"\uD800\u0041"', rb'"\ud800\\"', rb'"\ud800\ud800"', rb'"\u0000"',
              rb'"\uDBFF\uDFFF"', rb'"\ud83d"', rb'"\ude00x"', rb'"\u00"', rb'"\uzzzz"',
              b'"\xed\xa0\x80"', b'"\xed\xbf\xbf"')


def surrogate(src: Src) -> bytes:
    return src.choice(SURROGATES)


LITERALS = (b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"null", b"true",
            b"false", b"None", b"undefined", b"'single'", b"bare", b'""', b"[]", b"{}", b"0",
            b"-1", b"1.0", b"true false", b"[,]", b"[1,]", b'{"a":1,}', b"{,}", b"\x00",
            b'"\t"', b'"\n"', b'"\x00\x01\x1f"', b'"\\x41"', b'"\\u00e9\xc3\xa9"', b"//x\n1",
            b"/*x*/1", b'"\xf0\x9f\x98\x80"', b'"\\/"', b'"\\"', b'"\\\\"')


def literal(src: Src) -> bytes:
    return src.choice(LITERALS)


def long_string(src: Src) -> bytes:
    n = src.choice((60_000, 65_536, 200_000, 1_000_000, 0)) or src.between(1, 70_000)
    body = src.below(7)
    if body == 0:
        text = b"a" * n
    elif body == 1:
        text = b"\\u0041" * (n // 6)
    elif body == 2:
        text = b'\\"' * (n // 2)  # escaped quotes all the way
    elif body == 3:
        text = b"\\\\" * (n // 2)
    elif body == 4:
        text = "€".encode() * (n // 3)
    elif body == 5:
        text = b"[{" * (n // 2)
    else:
        text = b"\\" * n  # never ends properly when n is odd
    return b'"' + text + b'"'


def whitespace(src: Src) -> bytes:
    return src.choice((b" " * 100_000, b"\x0c", b"\xc2\xa0", b"\x00", b"\x0b", b"\r", b"\u2028",
                       b"\xe2\x80\xa8", b"\n\n\n"))


NASTIES: tuple[Callable[[Src], bytes], ...] = (deep, huge_number, bad_utf8, surrogate, literal,
                                               long_string, whitespace)


def nasty(src: Src) -> bytes:
    return src.choice(NASTIES)(src)


NASTY_KEYS = (b'"\\ud800"', b'"\xed\xa0\x80"', b'"\xff"', b'""', b'"\\u0000"', b'"format "',
              b'"FORMAT"', b'"entryid"', b'"__proto__"', b'"constructor"', b'"a' + b"b" * 5000 + b'"',
              b'"\\u0066ormat"', b'"quantity"', b'"details"', b'"reward"', b'"record_id"', b"1",
              b"null", b"[]", b'"\xef\xbb\xbf"')


# -- documents as trees with raw leaves, so odd text can go anywhere -------------------

@dataclass
class Raw:
    text: bytes


@dataclass
class Obj:
    pairs: list[tuple[Any, Any]]  # (str | Raw, node); a name may come twice


def to_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return Obj([(k, to_tree(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [to_tree(v) for v in value]
    return value


def emit(node: Any, ascii_only: bool = True) -> bytes:
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, Obj):
        return b"{" + b",".join(emit(k if isinstance(k, Raw) else Raw(_text(k, ascii_only)))
                                + b":" + emit(v, ascii_only) for k, v in node.pairs) + b"}"
    if isinstance(node, list):
        return b"[" + b",".join(emit(v, ascii_only) for v in node) + b"]"
    return _text(node, ascii_only)


def _text(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _other_type(node: Any, src: Src) -> Any:
    """The same value in another JSON type, or a near miss of its text."""
    if isinstance(node, str):
        near = (node.upper(), " " + node, node + " ", node[:-1], node + "0", node.replace("0x", "0X"),
                node.replace("0x", ""), "0x" + node[2:].upper(), node * 2, node + "\u0000",
                node[:2] + "\u0660" + node[3:], node.encode().hex())
        options: list[Any] = [*near, None, True, [node], {"x": node}]
        with contextlib.suppress(ValueError):
            options.append(int(node, 0))
        return src.choice(options)
    if isinstance(node, bool) or node is None:
        return src.choice((0, 1, "true", [], {}, None, not node))
    if isinstance(node, int):
        return src.choice((str(node), float(node), Raw(b"%d.0" % node), Raw(b"%de0" % node),
                           Raw(b"%d.00000000000000001" % node), -node, node + 1, node - 1,
                           2**53, 2**53 - 1, 2**64, 0, True, [node], Raw(b"%s" % str(node).encode()
                                                                        + b"e300")))
    return src.choice((0, "", None, [], {}))


def mutate(node: Any, src: Src, depth: int = 0) -> Any:
    """A copy of ``node`` with one change somewhere below it."""
    descend = depth < 6 and src.below(3) != 0
    if isinstance(node, Obj) and node.pairs:
        pairs = list(node.pairs)
        i = src.below(len(pairs))
        if descend:
            pairs[i] = (pairs[i][0], mutate(pairs[i][1], src, depth + 1))
            return Obj(pairs)
        op = src.below(6)
        if op == 0:
            del pairs[i]
        elif op == 1:
            pairs.insert(src.below(len(pairs) + 1), (Raw(src.choice(NASTY_KEYS)), Raw(nasty(src))))
        elif op == 2:  # the same name twice, the second with another value
            pairs.insert(src.below(len(pairs) + 1), (pairs[i][0], src.choice(
                (pairs[i][1], Raw(nasty(src)), _other_type(pairs[i][1], src)))))
        elif op == 3:
            pairs[i] = (Raw(src.choice(NASTY_KEYS)), pairs[i][1])
        elif op == 4:
            pairs[i] = (pairs[i][0], Raw(nasty(src)))
        else:
            pairs[i] = (pairs[i][0], _other_type(pairs[i][1], src))
        return Obj(pairs)
    if isinstance(node, list) and node:
        items = list(node)
        i = src.below(len(items))
        if descend:
            items[i] = mutate(items[i], src, depth + 1)
            return items
        op = src.below(6)
        if op == 0:
            del items[i]
        elif op == 1:
            items.insert(src.below(len(items) + 1), Raw(nasty(src)))
        elif op == 2:
            items = items * src.choice((2, 13, 65))
        elif op == 3:
            items[i] = Raw(nasty(src))
        elif op == 4:
            items[i] = _other_type(items[i], src)
        else:
            items = []
        return items
    return src.choice((Raw(nasty(src)), _other_type(node, src), Raw(nasty(src))))


def byte_mutations(doc: bytes, src: Src) -> bytes:
    out = bytearray(doc)
    for _ in range(src.between(1, 4)):
        at = src.below(len(out) + 1)
        op = src.below(7)
        if op == 0:
            out[at:at] = nasty(src)
        elif op == 1:
            del out[at:at + src.between(1, 64)]
        elif op == 2 and out:
            out[min(at, len(out) - 1)] ^= 1 << src.below(8)
        elif op == 3:
            del out[at:]
        elif op == 4:
            out[at:at] = out[at:at + src.between(1, 256)]
        elif op == 5:
            out[at:at] = src.choice((b'"', b"\\", b"[", b"{", b"]", b"}", b",", b":", b"\n"))
        else:
            out[at:at] = bytes([src.byte()])
    return bytes(out)


BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")


def document(src: Src, template: Any) -> tuple[str, bytes]:
    """(how it was made, a JSON-ish document) from ``template``, a parsed document."""
    mode = src.below(9)
    if mode == 0:
        return "raw", src.rest()  # libFuzzer's own mutations of the seeds
    if mode in (1, 2, 3):
        tree = to_tree(template)
        for _ in range(src.between(1, 3)):
            tree = mutate(tree, src)
        return "structure", emit(tree, ascii_only=src.chance(2))
    if mode == 4:
        return "bytes", byte_mutations(emit(to_tree(template)), src)
    if mode == 5:
        kind = src.below(len(NASTIES))
        return NASTIES[kind].__name__, NASTIES[kind](src)
    if mode == 6:
        _, doc = document(src, template)
        bom = src.choice(BOMS)
        return "bom", bom + doc if src.chance(2) else doc[:len(doc) // 2] + bom + doc[len(doc) // 2:]
    if mode == 7:
        kind = src.below(len(NASTIES))
        fragment = NASTIES[kind](src)
        wrapper = src.choice((b'{"reward": %s}', b"[%s]", b'[{"details": %s}]', b'{"a": 1, "a": %s}',
                              b'{"values": %s}', b"%s %s", b"[%s, %s]"))
        return "wrapped-" + NASTIES[kind].__name__, wrapper.replace(b"%s", fragment)
    tree = to_tree(template)
    return "template", emit(tree, ascii_only=src.chance(2)) + src.choice((b"", b" ", b"\n", b"x", b"{}"))


def ndjson(src: Src, template: Any) -> tuple[str, bytes]:
    lines, kinds = [], []
    for _ in range(src.between(1, 4)):
        kind, doc = document(src, template)
        kinds.append(kind)
        lines.append(doc)
    sep = src.choice((b"\n", b"\r\n", b"\n\n", b"\n \t\n", b"\r"))
    return "ndjson:" + "+".join(kinds), sep.join(lines) + src.choice((b"", b"\n", b"\n\n"))


# -- the documents mutated -------------------------------------------------------------

def templates(now: int) -> dict[str, Any]:
    cst = timezone(timedelta(hours=8))
    start = datetime.fromtimestamp(now - 7200, cst)
    record = {"record_id": "greenbike-000123", "citizen": CITIZEN, "behaviour": "CYCLING",
              "quantity": 3200, "occurred_at": start.isoformat(timespec="seconds"),
              "ended_at": (start + timedelta(minutes=16)).isoformat(timespec="seconds"),
              "details": {"bike": "B-1"}}
    descriptor = {
        "format": "carbon-ledger-descriptor-v1", "chainId": 31337,
        "contract": "0x5d7aeC03bABd9FfB3A48145EDCF3dAB1e81672D1",
        "deployment": {"txHash": "0x1f9a6f04bc7e03a93b52d7388277e6ba6c7ca92b3266d459ac28b9c1ba922be2",
                       "blockNumber": 1},
        "formats": {"proofBundle": ["carbon-ledger-proof-v1"], "leaf": "oz-standard-v1"},
        "operatorKeys": [{"use": "receipts", "address": "0x2e446A2e2240E95395e1Fb0FE219A37cfC223489"}],
        "endpoints": {"api": "https://ledger.city.example", "rpc": ["https://rpc.example"]}}
    walk = {**record, "record_id": "greenbike-000124", "behaviour": "WALKING", "quantity": 5000}
    return {"bundle": json.loads(BUNDLE_FILE.read_bytes()), "record": record,
            "submission": [record, walk], "descriptor": descriptor, "redemption": {"reward": "coffee"}}


# -- targets ---------------------------------------------------------------------------

@dataclass
class Case:
    """One input, made: what a finding saves and a reproduction replays."""

    kind: str
    document: bytes
    params: dict[str, Any] = field(default_factory=dict)


class Finding(Exception):
    """A wrong answer: not a crash, but not what the entry point promises."""


def value_depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_serialisable(value: Any) -> None:
    """What parse_json accepts can be written out again: the crash of a lone surrogate."""
    import orjson

    orjson.dumps(value)
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise Finding(f"a non-finite number came through: {item!r}")
        if isinstance(item, int) and not -(2**63) <= item < 2**64:
            raise Finding("an integer beyond 64 bits came through")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class Target:
    name = ""

    def __init__(self, now: int) -> None:
        self.now = now
        self.templates = templates(now)

    def make(self, src: Src) -> Case:
        raise NotImplementedError

    def known(self) -> list[Case]:
        """Historic payloads, run once before fuzzing."""
        return []

    def run(self, case: Case) -> str:
        """The outcome's name (for the counts); raises what is a finding."""
        raise NotImplementedError

    def setup(self) -> None:
        pass


def _deep_array(n: int) -> bytes:
    return b"[" * n + b"]" * n


def full_bodies() -> list[bytes]:
    """Bodies of the largest size read, made of the smallest pieces: what costs a reader
    the most per byte (the deepest, and millions of tiny arrays or strings)."""
    return [_deep_array(LARGEST_LIMIT // 2), b"[" + b"[1]," * (LARGEST_LIMIT // 4 - 2) + b"[1]]",
            b"[" + b'"",' * (LARGEST_LIMIT // 3 - 1) + b'""]']


class ParseJson(Target):
    name = "parse_json"

    def make(self, src: Src) -> Case:
        template = self.templates[src.choice(("bundle", "record", "submission", "descriptor",
                                              "redemption"))]
        kind, doc = document(src, template)
        max_bytes = min(LARGEST_LIMIT, src.choice((len(doc), max(0, len(doc) - 1), 1 << 20, 64 << 10,
                                                   16 << 10, 1, LARGEST_LIMIT)))
        max_depth = src.choice((0, 1, 2, 8, 32, 33, 64)) if src.chance(2) else src.between(0, 200)
        return Case(kind, doc, {"max_bytes": max_bytes, "max_depth": max_depth,
                                "unique_keys": src.chance(2), "as_str": src.chance(4)})

    def known(self) -> list[Case]:
        p = {"max_bytes": 32 << 20, "max_depth": 32, "unique_keys": False, "as_str": False}
        docs = [_deep_array(100_000), _deep_array(1_000_000), b'{"details": ' + _deep_array(40_000) + b"}",
                b"[" + b"1" * 5000 + b"]", rb'["\ud800"]', b'["\xed\xa0\x80"]', b"\xef\xbb\xbf[]",
                b"[NaN]", b'{"a":1,"a":2}', b'"' + b'\\"' * 500_000 + b'"', _deep_array(32), _deep_array(33)]
        return [Case("known", d, p) for d in [*docs, *full_bodies()]] + [
            Case("known", d, {**p, "unique_keys": True}) for d in docs]

    def setup(self) -> None:
        from ledger.errors import LedgerError
        from ledger.json_input import parse_json

        self.parse_json, self.LedgerError = parse_json, LedgerError

    def run(self, case: Case) -> str:
        p = case.params
        data: bytes | str = case.document
        if p["as_str"]:
            data = case.document.decode("utf-8", "surrogateescape")
        try:
            value = self.parse_json(data, field="body", max_bytes=p["max_bytes"],
                                    max_depth=p["max_depth"], unique_keys=p["unique_keys"])
        except self.LedgerError as exc:
            return type(exc).__name__
        if value_depth(value) > p["max_depth"]:
            raise Finding(f"accepted a value {value_depth(value)} deep, max_depth {p['max_depth']}")
        if len(case.document) > p["max_bytes"] and not p["as_str"]:
            raise Finding(f"accepted {len(case.document)} bytes, max_bytes {p['max_bytes']}")
        check_serialisable(value)
        return "accepted"


class ParseNdjson(ParseJson):
    name = "parse_ndjson"

    def make(self, src: Src) -> Case:
        kind, doc = ndjson(src, self.templates[src.choice(("record", "submission", "redemption"))])
        max_bytes = min(LARGEST_LIMIT, src.choice((len(doc), max(0, len(doc) - 1), 1 << 20,
                                                   LARGEST_LIMIT)))
        return Case(kind, doc, {"max_bytes": max_bytes,
                                "max_depth": src.choice((0, 1, 2, 8, 32, 33, 64))})

    def known(self) -> list[Case]:
        p = {"max_bytes": 32 << 20, "max_depth": 32}
        return [Case("known", d, p) for d in (
            b'{"a": 1}\n' + _deep_array(100_000) + b"\n", b"\n".join([_deep_array(32)] * 1000),
            b'{"quantity": ' + b"9" * 5000 + b"}\n", b'{"a": "\\ud800"}\r\n', b"\n\n\n",
            b"\xef\xbb\xbf{}\n{}")]

    def setup(self) -> None:
        from ledger.errors import LedgerError
        from ledger.json_input import parse_ndjson

        self.parse_ndjson, self.LedgerError = parse_ndjson, LedgerError

    def run(self, case: Case) -> str:
        p = case.params
        try:
            values = self.parse_ndjson(case.document, field="body", max_bytes=p["max_bytes"],
                                       max_depth=p["max_depth"])
        except self.LedgerError as exc:
            return type(exc).__name__
        lines = [line for line in case.document.split(b"\n") if line.strip()]
        if len(values) != len(lines):
            raise Finding(f"{len(values)} values from {len(lines)} non-blank lines")
        for value in values:
            if value_depth(value) > p["max_depth"]:
                raise Finding(f"accepted a line {value_depth(value)} deep, max_depth {p['max_depth']}")
            check_serialisable(value)
        return "accepted"


class Bundle(Target):
    name = "bundle"
    template = "bundle"

    def make(self, src: Src) -> Case:
        kind, doc = document(src, self.templates[self.template])
        return Case(kind, doc)

    def known(self) -> list[Case]:
        good = self.templates[self.template]
        contract = "contract" if "contract" in good else "format"
        cases = [_deep_array(100_000), b'{"format": ' + _deep_array(40_000) + b"}",
                 json.dumps({**good, contract: "0x\ud800"}).encode(),
                 json.dumps({**good, contract: "0x\ud800"}, ensure_ascii=False)
                 .encode("utf-8", "surrogatepass"),
                 json.dumps(good).replace('"chainId": 31337', '"chainId": ' + "1" * 5000).encode(),
                 json.dumps(good).encode(), b"\xef\xbb\xbf" + json.dumps(good).encode()]
        return [Case("known", d) for d in cases]

    def setup(self) -> None:
        from ledger.bundle import ProofBundle
        from ledger.errors import LedgerError

        self.parser, self.LedgerError = ProofBundle, LedgerError

    def run(self, case: Case) -> str:
        try:
            parsed = self.parser.from_bytes(case.document)
        except self.LedgerError as exc:
            return type(exc).__name__
        again = self.parser.from_json(json.loads(json.dumps(parsed.to_json())))
        if again != parsed:
            raise Finding(f"does not round-trip: {parsed!r} became {again!r}")
        check_serialisable(parsed.to_json())
        return "accepted"


class Descriptor(Bundle):
    name = "descriptor"
    template = "descriptor"

    def setup(self) -> None:
        from ledger.descriptor import LedgerDescriptor
        from ledger.errors import LedgerError

        self.parser, self.LedgerError = LedgerDescriptor, LedgerError  # type: ignore[assignment]


class Record(Target):
    name = "record"

    def make(self, src: Src) -> Case:
        which = src.choice(("record", "submission"))
        kind, doc = document(src, self.templates[which])
        from ledger.methodology import partner_kinds

        return Case(kind, doc, {"kind": src.choice(partner_kinds())})

    def known(self) -> list[Case]:
        record = self.templates["record"]
        p = {"kind": "bike_share"}
        return [Case("known", d, p) for d in (
            json.dumps({**record, "details": {}}).replace("{}", _deep_array(40_000).decode()).encode(),
            json.dumps(record).replace('"quantity": 3200', '"quantity": ' + "1" * 5000).encode(),
            json.dumps({**record, "details": {"x": "\ud800"}}).encode(),
            json.dumps({**record, "details": {"x": 1e300, "y": 2**70, "z": -0.0}}).encode(),
            json.dumps({**record, "occurred_at": "9999-12-31T23:59:59+14:00"}).encode(),
            json.dumps({**record, "occurred_at": 2**63}).encode(), json.dumps(record).encode())]

    def setup(self) -> None:
        import rfc8785

        from ledger.errors import LedgerError
        from ledger.intake.rules import prepare_records
        from ledger.intake.signed import record_hash
        from ledger.json_input import parse_json
        from ledger.records import parse_record

        self.rfc8785 = rfc8785
        self.LedgerError = LedgerError
        self.parse_json, self.parse_record, self.record_hash = parse_json, parse_record, record_hash
        self.prepare_records = prepare_records

    def run(self, case: Case) -> str:
        try:
            value = self.parse_json(case.document, field="body", max_bytes=32 << 20)
        except self.LedgerError as exc:
            return "body:" + type(exc).__name__
        records = value if isinstance(value, list) else [value]
        outcomes = Counter[str]()
        for i, raw in enumerate(records[:100]):
            try:
                parsed = self.parse_record(raw, now=self.now)
            except self.LedgerError as exc:
                outcomes["record:" + type(exc).__name__] += 1
                parsed = None
            try:
                digest = self.record_hash(raw, i)
            except self.LedgerError as exc:
                outcomes["hash:" + type(exc).__name__] += 1
                digest = None
            if parsed is not None:
                reference = self.rfc8785.dumps(raw)
                if parsed.canonical != reference:
                    raise Finding(f"record {i}: canonical bytes differ from RFC 8785's: "
                                  f"{parsed.canonical[:200]!r} vs {reference[:200]!r}")
                if digest != parsed.record_hash:
                    raise Finding(f"record {i}: record_hash differs from parse_record's hash")
                outcomes["parsed"] += 1
        try:
            prepared = self.prepare_records(records, kind=case.params["kind"],
                                            address=b"\x11" * 20, now=self.now)
        except self.LedgerError as exc:
            return "prepare:" + type(exc).__name__
        return f"prepared:{len(prepared.good)}good" if prepared.good else \
            (max(outcomes, key=outcomes.__getitem__) if outcomes else "empty")


class Http(Target):
    name = "http"
    ROUTES = ("submissions", "submissions", "redemptions", "redemptions", "verify", "verify",
              "methodologies", "paths")
    CONTENT_TYPES = ("application/json", "application/json", "application/x-ndjson",
                     "application/json; charset=utf-8", "text/plain", "", "application/JSON",
                     "application/x-ndjson; charset=latin-1", "multipart/form-data; boundary=x",
                     "application/json; charset=utf-16", "application/merge-patch+json")
    PATHS = ("/v1/me/entries/{}/proof", "/v1/entries/{}/proof", "/v1/submissions/{}",
             "/v1/batches/{}/dump", "/v1/methodologies/{}")

    def make(self, src: Src) -> Case:
        route = src.choice(self.ROUTES)
        auth = src.choice(("right", "right", "right", "right", "none", "junk", "wrong"))
        headers: dict[str, str] = {}
        if route in ("methodologies", "paths"):
            path = (self.PATHS[-1] if route == "methodologies" else src.choice(self.PATHS)).format(
                junk_segment(src))
            return Case(route, b"", {"method": "GET", "path": path, "auth": auth, "headers": headers,
                                     "chunked": False})
        if route == "submissions":
            content_type = src.choice(self.CONTENT_TYPES)
            if "ndjson" in content_type:
                kind, body = ndjson(src, self.templates["record"])
            else:
                kind, body = document(src, self.templates["submission"])
            if content_type:
                headers["Content-Type"] = content_type
            signature = src.choice((None, "0x00", "0x" + "11" * 65, "0x" + src.take(65).hex(), "zz",
                                    "0x" + "ab" * 5000, "0x" + "1b" * 64 + "1c", ""))
            if signature is not None:
                headers["X-Signature"] = signature
            for name in ("X-Nonce", "X-Deadline"):  # the signed struct's newer members
                value = src.choice((None, None, "0x" + "00" * 32, "1" + "0" * 5000, "-1", "abc",
                                    str(self.now + 600)))
                if value is not None:
                    headers[name] = value
            path = "/v1/submissions"
        elif route == "redemptions":
            kind, body = document(src, self.templates["redemption"])
            headers["Content-Type"] = src.choice(("application/json",) * 4 + ("text/plain", ""))
            key = src.choice((None, "k-" + src.take(8).hex(), "x" * 200, "", "k"))
            if key is not None:
                headers["Idempotency-Key"] = key
            path = "/v1/redemptions"
        else:
            kind, body = document(src, self.templates["bundle"])
            headers["Content-Type"] = src.choice(("application/json",) * 4 + ("text/plain", ""))
            path = "/v1/verify"
        headers = {k: v for k, v in headers.items() if v or k != "Content-Type"}
        return Case(f"{route}:{kind}", body, {"method": "POST", "path": path, "auth": auth,
                                              "headers": headers, "chunked": src.chance(8)})

    def known(self) -> list[Case]:
        deep = b'{"reward": ' + _deep_array(100_000) + b"}"
        record = self.templates["record"]
        bundle = self.templates["bundle"]
        cases = []
        for auth in ("none", "right", "junk"):
            for path in ("/v1/redemptions", "/v1/verify", "/v1/submissions"):
                cases.append(Case("known", deep, {"method": "POST", "path": path, "auth": auth,
                                                   "headers": {"Content-Type": "application/json",
                                                               "Idempotency-Key": "k1",
                                                               "X-Signature": "0x00"},
                                                   "chunked": False}))
        sub = {"method": "POST", "path": "/v1/submissions", "auth": "right", "chunked": False,
               "headers": {"Content-Type": "application/json", "X-Signature": "0x" + "11" * 65}}
        deep_details = json.dumps([{**record, "details": {}}]).replace(
            "{}", _deep_array(40_000).decode()).encode()
        huge = json.dumps([record]).replace('"quantity": 3200', '"quantity": ' + "1" * 5000).encode()
        cases += [Case("known", deep_details, sub), Case("known", huge, sub),
                  Case("known", json.dumps([{**record, "details": {"x": "\ud800"}}]).encode(), sub),
                  Case("known", json.dumps({**bundle, "contract": "0x\ud800"}).encode(),
                       {**sub, "path": "/v1/verify"}),
                  Case("known", json.dumps({**bundle, "contract": "0x\ud800"}, ensure_ascii=False)
                       .encode("utf-8", "surrogatepass"), {**sub, "path": "/v1/verify"})]
        # the most a reader may have to read: a partner's body at the limit, of the smallest pieces
        cases += [Case("known", body, sub) for body in full_bodies()]
        for segment in ("1" + "0" * 300, "1" + "0" * 5000, "-1", "%00", "99999999999999999999"):
            cases.append(Case("known", b"", {"method": "GET", "path": f"/v1/methodologies/{segment}",
                                             "auth": "none", "headers": {}, "chunked": False}))
        return cases

    def setup(self) -> None:
        import logging

        import httpx
        from fastapi.testclient import TestClient

        from api.composition import Container
        from api.http.app import create_app
        from api.settings import Settings
        from ledger import accounts
        from ledger.credentials import issue_api_key, issue_citizen_token

        self.client_errors = (httpx.InvalidURL, httpx.LocalProtocolError)
        logging.getLogger("carbon_ledger.http").disabled = True  # findings keep the trace
        self.data_dir = Path(tempfile.mkdtemp(prefix="fuzz-http-"))
        container = Container(Settings(data_dir=self.data_dir, chain="tester",
                                       rate_limit="1000000/second"))
        with container.db.session(write_lock=True) as s:
            partner = accounts.create_partner(s, code=PARTNER, name="Green Bike", kind="bike_share",
                                              signing_address=b"\x22" * 20)
            citizen = accounts.create_citizen(s, pseudonym=CITIZEN)
            accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=10, stock=5)
            self.creds = {"partner": issue_api_key(s, role="partner", partner=partner),
                          "citizen": issue_citizen_token(s, citizen=citizen),
                          "auditor": issue_api_key(s, role="auditor")}
        self.client = TestClient(create_app(container, run_sealer=False))
        self.client.__enter__()

    ROLE = {"/v1/submissions": "partner", "/v1/redemptions": "citizen", "/v1/verify": "auditor",
            "/v1/me/": "citizen", "/v1/entries/": "auditor", "/v1/batches/": "auditor"}
    WRONG = {"partner": "citizen", "citizen": "auditor", "auditor": "partner"}

    def headers_for(self, case: Case) -> dict[str, str]:
        headers = dict(case.params["headers"])
        role = next((r for prefix, r in self.ROLE.items() if case.params["path"].startswith(prefix)),
                    "citizen")
        auth = case.params["auth"]
        if auth == "right":
            headers["Authorization"] = f"Bearer {self.creds[role]}"
        elif auth == "wrong":
            headers["Authorization"] = f"Bearer {self.creds[self.WRONG[role]]}"
        elif auth == "junk":
            headers["Authorization"] = "Bearer clk_0000000000000000.junk"
        return headers

    def run(self, case: Case) -> str:
        p = case.params
        body = case.document
        content: Any = body
        if p["chunked"]:
            cut = len(body) // 2
            content = iter([body[:cut], body[cut:]])
        try:
            if p["method"] == "GET":
                answer = self.client.get(p["path"], headers=self.headers_for(case))
            else:
                answer = self.client.post(p["path"], content=content, headers=self.headers_for(case))
        except self.client_errors as exc:  # the client refused to send it: nothing was served
            return f"client-refused:{type(exc).__name__}"
        if answer.status_code >= 500:
            raise Finding(f"{p['method']} {p['path'][:120]} answered {answer.status_code}: "
                          f"{answer.text[:500]}")
        return f"{p['path'].split('/')[2]}:{answer.status_code}"


def junk_segment(src: Src) -> str:
    form = src.below(10)
    if form == 0:
        return "1" + "0" * src.choice((255, 256, 300, 4300, 5000, src.between(1, 6000)))
    if form == 1:
        return str(src.between(1, 9)) * src.between(1, 400)
    if form == 2:
        return "-" + "9" * src.between(1, 30)
    if form == 3:
        return "0" * src.between(1, 300) + "1"
    if form == 4:
        return quote(src.take(src.between(1, 64)).decode("latin-1"), safe="")
    if form == 5:
        return quote(src.choice(("١", "１", "⅓", "1.0", "1e3", "+1", " 1", "0x1", "1_0", "..", "%2F..")),
                     safe="")
    if form == 6:
        return "0x" + src.take(32).hex() + src.choice(("", "0", "zz", "%00"))
    if form == 7:
        return quote(src.choice(("\ud800", "\x00", "\uffff")).encode("utf-8", "surrogatepass")
                     .decode("latin-1"), safe="")
    if form == 8:
        return "a" * src.choice((255, 256, 4096, 16_000))  # httpx refuses a URL over 64 KiB
    return str(src.choice((0, 1, 2, 3, 2**63, 2**64, -(2**63))))


CLASSES: dict[str, type[Target]] = {c.name: c for c in (ParseJson, ParseNdjson, Bundle, Descriptor,
                                                         Record, Http)}


# -- the child: one target under libFuzzer ---------------------------------------------

class Child:
    def __init__(self, target: Target, workdir: Path, seconds: float) -> None:
        self.target, self.workdir, self.seconds = target, workdir, seconds
        self.stats_path = workdir / "stats" / f"{target.name}.json"
        self.findings_dir = workdir / "findings" / target.name
        self.iterations, self.known_cases = 0, 0
        self.outcomes: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.findings: Counter[str] = Counter()
        self.slowest = (0.0, "")
        self.largest = 0
        self.started = self.deadline = self.next_flush = 0.0
        previous = self._load_stats()  # a restarted child carries on the counts
        if previous:
            self.iterations, self.known_cases = previous["iterations"], previous["known_cases"]
            self.outcomes.update(previous["outcomes"])
            self.kinds.update(previous["kinds"])
            self.findings.update(previous["findings"])
            self.slowest = tuple(previous["slowest"])  # type: ignore[assignment]
            self.largest = previous["largest_document"]
        self.fuzz_seconds_before = previous["fuzz_seconds"] if previous else 0.0
        current = workdir / "current" / f"{target.name}.bin"
        current.parent.mkdir(parents=True, exist_ok=True)
        self.current = os.open(current, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def _load_stats(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.stats_path.read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def _remember(self, tag: bytes, data: bytes) -> None:
        os.pwrite(self.current, tag + data, 0)
        os.ftruncate(self.current, len(tag) + len(data))

    def flush(self, final: bool = False) -> None:
        now = time.monotonic()
        self.next_flush = now + 1.0
        stats = {"target": self.target.name, "iterations": self.iterations,
                 "known_cases": self.known_cases,
                 "fuzz_seconds": self.fuzz_seconds_before + (now - self.started if self.started else 0),
                 "outcomes": dict(self.outcomes.most_common()), "kinds": dict(self.kinds.most_common()),
                 "findings": dict(self.findings), "slowest": list(self.slowest),
                 "largest_document": self.largest, "recursion_limit": sys.getrecursionlimit(),
                 "final": final}
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stats, indent=1))
        tmp.replace(self.stats_path)

    def execute(self, case: Case, data: bytes | None) -> None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        try:
            outcome = self.target.run(case)
        except Exception as exc:  # every non-LedgerError escape is a finding
            self.record(case, data, exc)
            outcome = "FINDING:" + type(exc).__name__
        elapsed = time.perf_counter() - started
        self.outcomes[outcome] += 1
        self.kinds[re.sub(r"ndjson:.*", "ndjson", case.kind)] += 1
        self.largest = max(self.largest, len(case.document))
        if elapsed > self.slowest[0]:
            self.slowest = (round(elapsed, 3), f"{case.kind}, {len(case.document)} bytes")
        if elapsed > SLOW_SECONDS:
            self.record(case, data, Finding(f"slow: took {elapsed:.1f} s, answer {outcome}"))
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) // 1024
        if grown > MEMORY_MB:
            self.record(case, data, Finding(f"memory: peak up {grown} MB for {len(case.document)} "
                                            f"bytes, answer {outcome}"))

    def record(self, case: Case, data: bytes | None, exc: BaseException) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if str(ROOT) in f.filename and "scripts" not in f.filename] or frames
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else ""
        message = str(exc)
        route = case.params.get("path", "").split("/")[2] if "path" in case.params else ""
        detail = message.split(":")[0] if isinstance(exc, Finding) else ""
        signature = " ".join(part for part in (route, type(exc).__name__, where, detail) if part)
        self.findings[signature] += 1
        if self.findings[signature] > 1:
            return
        folder = self.findings_dir / hashlib.sha1(signature.encode()).hexdigest()[:12]
        folder.mkdir(parents=True, exist_ok=True)
        if data is not None:
            (folder / "input.bin").write_bytes(data)
        save_case(folder, case)
        (folder / "finding.txt").write_text(
            f"target: {self.target.name}\nsignature: {signature}\ncase: {case.kind}, "
            f"{len(case.document)} bytes\n{type(exc).__name__}: {message[:2000]}\n\n"
            + "".join(traceback.format_exception(exc))[-20_000:]
            + (f"\nreproduce: {reproduce_command(folder / 'input.bin', self.target.name)}\n"
               if data is not None else "\n(a known case: document.bin is the input)\n"))
        print(f"FINDING [{self.target.name}] {signature} -> {folder}", file=sys.stderr, flush=True)

    def run_known(self) -> None:
        for i, case in enumerate(self.target.known()):
            self._remember(b"K", str(i).encode())
            self.execute(case, None)
            self.known_cases += 1
        self.flush()

    def one_input(self, data: bytes) -> None:
        now = time.monotonic()
        if now >= self.deadline:
            self.flush(final=True)
            os._exit(0)
        self._remember(b"F", data)
        try:
            case = self.target.make(Src(data))
        except Exception as exc:  # a bug of this script, not of the target: say so loudly
            traceback.print_exc()
            raise SystemExit(f"the generator failed on {data!r}: {exc}") from exc
        self.iterations += 1
        self.execute(case, data)
        if now >= self.next_flush:
            self.flush()


def save_case(folder: Path, case: Case) -> None:
    (folder / "document.bin").write_bytes(case.document)
    params = {k: v for k, v in case.params.items() if k != "headers"}
    if "headers" in case.params:
        params["headers"] = {k: (v if len(v) < 300 else v[:60] + f"…({len(v)} chars)")
                             for k, v in case.params["headers"].items()}
    (folder / "request.json").write_text(json.dumps({"kind": case.kind, **params}, indent=1))


def seeds(target: Target) -> Iterator[bytes]:
    """One start per generator mode (the mode is the first choice); for raw mode, the real
    documents themselves, so libFuzzer mutates them."""
    for mode in range(9):
        for tail in (b"", b"\x01\x02\x03\x04\x05\x06\x07\x08", bytes(range(40, 80))):
            yield bytes([mode]) + tail
    for doc in target.templates.values():
        text = json.dumps(doc).encode()
        yield b"\x00" + text
        for prefix in (b"\x00\x00", b"\x01\x00", b"\x00\x01"):  # ndjson / http spend a choice first
            yield prefix + text


def child_main(args: argparse.Namespace) -> None:
    import faulthandler

    import atheris

    workdir = Path(args.workdir)
    faults = open(workdir / "logs" / f"{args.child}.faults", "a")  # noqa: SIM115 - lives on
    faulthandler.enable(file=faults)
    with atheris.instrument_imports(include=["ledger", "api"]):
        import api.http.app  # noqa: F401 - the server's imports, in its order
        import ledger.bundle  # noqa: F401
        import ledger.descriptor  # noqa: F401
        import ledger.intake.service  # noqa: F401
        import ledger.intake.signed  # noqa: F401
        import ledger.json_input  # noqa: F401
        import ledger.records  # noqa: F401
    target = CLASSES[args.child](int(time.time()))
    target.setup()
    child = Child(target, workdir, args.seconds)
    corpus = workdir / "corpus" / target.name
    if not corpus.exists():
        corpus.mkdir(parents=True)
        for i, seed in enumerate(seeds(target)):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
    artifacts = workdir / "artifacts" / target.name
    artifacts.mkdir(parents=True, exist_ok=True)
    child.started = time.monotonic()
    if not args.resumed:
        child.run_known()
    child.deadline = child.started + args.seconds
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={int(args.seconds) + 120}",
                   "-timeout=120", "-rss_limit_mb=6144", f"-max_len={MAX_LEN}",
                   f"-artifact_prefix={artifacts}/", "-print_final_stats=1", "-handle_segv=0",
                   "-handle_bus=0", "-handle_abrt=0", "-handle_ill=0", "-handle_fpe=0"],
                  child.one_input)
    atheris.Fuzz()


# -- the parent ------------------------------------------------------------------------

def reproduce_command(path: Path, target: str) -> str:
    return shlex.join([sys.executable, str(Path(__file__).resolve()), "--reproduce", str(path),
                       "--target", target])


def run_child(target: str, workdir: Path, seconds: float, resumed: bool) -> tuple[int, float]:
    log = open(workdir / "logs" / f"{target}.log", "ab")  # noqa: SIM115
    command = [sys.executable, str(Path(__file__).resolve()), "--child", target, "--seconds",
               f"{seconds:.1f}", "--workdir", str(workdir)] + (["--resumed"] if resumed else [])
    started = time.monotonic()
    with log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            rc = proc.wait(timeout=seconds + 600)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    return rc, time.monotonic() - started


def render(target_name: str, data: bytes, folder: Path) -> None:
    """Make (never run) the case of a fuzz input: what a dead child was running."""
    target = CLASSES[target_name](int(time.time()))
    if data.startswith(b"K"):
        case = target.known()[int(data[1:])]
    else:
        case = target.make(Src(data[1:] if data.startswith(b"F") else data))
    save_case(folder, case)


def signal_finding(target: str, workdir: Path, rc: int, restart: int) -> str:
    folder = workdir / "findings" / target / f"signal-{-rc}-{restart}"
    folder.mkdir(parents=True, exist_ok=True)
    current = workdir / "current" / f"{target}.bin"
    data = current.read_bytes() if current.exists() else b""
    (folder / "current.bin").write_bytes(data)
    if data.startswith(b"F"):
        (folder / "input.bin").write_bytes(data[1:])
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--render", str(folder / "current.bin"),
                    "--target", target, "--out", str(folder)], cwd=ROOT, check=False,
                   capture_output=True)
    faults = workdir / "logs" / f"{target}.faults"
    stack = faults.read_text(errors="replace")[-20_000:] if faults.exists() else ""
    stack = stack or "(nothing: a thread whose C stack overflowed has no stack left to write from)\n"
    (folder / "finding.txt").write_text(
        f"target: {target}\nthe child died by signal {-rc}\n"
        + (f"reproduce: {reproduce_command(folder / 'input.bin', target)}\n" if data.startswith(b"F")
           else f"a known case, number {data[1:].decode()}: document.bin\n")
        + "\nfaulthandler:\n" + stack)
    return str(folder)


def parent_main(args: argparse.Namespace) -> int:
    chosen = [t for t in (args.targets.split(",") if args.targets else TARGETS) if t]
    unknown = set(chosen) - set(CLASSES) - {"canary"}
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="fuzz-json-"))
    for sub in ("logs", "stats", "findings", "current"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    total = args.minutes * 60
    units = sum(WEIGHTS.get(t, 1) for t in chosen)
    command = shlex.join([sys.executable, *sys.argv])
    print(f"fuzzing {', '.join(chosen)} for {args.minutes} min in all, one child at a time; "
          f"workdir {workdir}", flush=True)
    problems: list[str] = []
    wall = time.monotonic()
    for target in chosen:
        budget = total * WEIGHTS.get(target, 1) / units
        spent, restarts = 0.0, 0
        while True:
            stats = workdir / "stats" / f"{target}.json"
            done = json.loads(stats.read_text())["fuzz_seconds"] if stats.exists() else 0.0
            left = budget - done
            if left < 5 and restarts:
                break
            rc, took = run_child(target, workdir, max(left, 5.0), resumed=restarts > 0)
            spent += took
            if rc == 0:
                break
            if rc < 0:
                where = signal_finding(target, workdir, rc, restarts)
                problems.append(f"[{target}] the child DIED BY SIGNAL {-rc}: {where}")
            else:
                log = (workdir / "logs" / f"{target}.log").read_text(errors="replace")
                kind = next((k for k in ("timeout", "out-of-memory", "deadly signal", "Traceback")
                             if k in log[-20_000:]), f"exit status {rc}")
                problems.append(f"[{target}] the child stopped ({kind}); see {workdir}/logs/{target}.log "
                                f"and {workdir}/artifacts/{target}/")
            restarts += 1
            if restarts > 3:
                problems.append(f"[{target}] given up after {restarts} deaths")
                break
        print(f"  {target}: done in {spent:.0f} s wall", flush=True)
    wall = time.monotonic() - wall

    print(f"\ncommand: {command}\nwall time: {wall / 60:.1f} min\n")
    print(f"{'target':<14}{'fuzz s':>8}{'inputs':>10}{'per s':>8}{'known':>7}  slowest input")
    findings: list[str] = []
    for target in chosen:
        stats_file = workdir / "stats" / f"{target}.json"
        if not stats_file.exists():
            print(f"{target:<14} (no statistics: the child never started fuzzing)")
            continue
        st = json.loads(stats_file.read_text())
        rate = st["iterations"] / st["fuzz_seconds"] if st["fuzz_seconds"] else 0
        print(f"{target:<14}{st['fuzz_seconds']:>8.0f}{st['iterations']:>10}{rate:>8.0f}"
              f"{st['known_cases']:>7}  {st['slowest'][0]} s ({st['slowest'][1]})")
        top = ", ".join(f"{k} {v}" for k, v in list(st["outcomes"].items())[:8])
        print(f"{'':<14}outcomes: {top}")
        print(f"{'':<14}made by: {', '.join(f'{k} {v}' for k, v in list(st['kinds'].items())[:12])}")
        print(f"{'':<14}largest document {st['largest_document']} bytes; recursion limit "
              f"{st['recursion_limit']}")
        findings += [f"[{target}] {sig} (x{n})" for sig, n in st["findings"].items()]
    print()
    for folder in sorted((workdir / "findings").glob("*/*")):
        print(f"reproducer: {folder}")
    if problems or findings:
        print("FINDINGS:")
        for line in problems + findings:
            print("  " + line)
        return 1
    print("findings: none")
    return 0


def reproduce_main(args: argparse.Namespace) -> int:
    target = CLASSES[args.target](int(time.time()))
    target.setup()
    data = Path(args.reproduce).read_bytes()
    case = target.make(Src(data))
    print(f"case: {case.kind}, {len(case.document)} bytes, params "
          f"{json.dumps({k: v for k, v in case.params.items() if k != 'headers'})[:300]}")
    try:
        print("outcome:", target.run(case))
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def self_check(workdir: Path) -> int:
    """The parent notices a child that dies by a signal (a canary that segfaults)."""
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / "current").mkdir(parents=True, exist_ok=True)
    (workdir / "current" / "canary.bin").write_bytes(b"F\x00canary")
    proc = subprocess.run([sys.executable, "-c", "import faulthandler, ctypes, sys; "
                           f"faulthandler.enable(open({str(workdir / 'logs' / 'canary.faults')!r}, 'a'));"
                           " ctypes.string_at(0)"], check=False)
    if proc.returncode >= 0:
        print(f"self-check FAILED: the canary exited with {proc.returncode}")
        return 1
    shutil.copy(workdir / "current" / "canary.bin", workdir / "logs" / "canary.input")
    print(f"self-check: a canary child died by signal {-proc.returncode}, seen as such")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="fuzzing time in all")
    parser.add_argument("--targets", default="", help=f"comma-separated, of {', '.join(TARGETS)}")
    parser.add_argument("--workdir", default="", help="default: a new temporary directory")
    parser.add_argument("--self-check", action="store_true",
                        help="first check that a child's death by signal is noticed")
    parser.add_argument("--reproduce", help="run one input.bin once (with --target)")
    parser.add_argument("--target", choices=sorted(CLASSES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--resumed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--render", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return 0
    if args.render:
        render(args.target, Path(args.render).read_bytes(), Path(args.out))
        return 0
    if args.reproduce:
        if not args.target:
            parser.error("--reproduce needs --target")
        return reproduce_main(args)
    if args.self_check:
        check_dir = Path(tempfile.mkdtemp(prefix="fuzz-selfcheck-"))
        if self_check(check_dir):
            return 1
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
