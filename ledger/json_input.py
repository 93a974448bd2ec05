"""Untrusted JSON, read with bounds: size first, then a parser that cannot overflow the C
stack, then the depth of what it parsed, and only then anything that recurses.

Every place JSON enters from outside (HTTP bodies, NDJSON lines, bundle and descriptor
files, methodology files) reads it through :func:`parse_json`. A body nested 100,000
arrays deep once killed a serving process: the stdlib parser recurses in C, and a
dependency had raised the interpreter's recursion limit so far that the C stack
overflowed first. So, in this order:

1. the size, on the raw bytes (and a byte order mark refused), and how many values they
   can hold at most: separators and openers counted in C (``bytes.count``), against one
   value per :data:`BYTES_PER_VALUE` bytes of the limit. A parsed value costs Python
   30-70 bytes while ``[1],`` costs the body 4, so without this bound a body at the
   limit of millions of tiny containers cost over a gigabyte to parse (#15's fuzzer
   found it); with it, no body costs more than about 14 times its limit;
2. orjson parses (Rust; not Python's recursion, and no document nested over 1,024 levels:
   it stops there itself, which is refused here as too deep, naming the field). It also
   refuses invalid UTF-8, lone surrogates, NaN and numbers beyond a double. The cyclic
   garbage collector is paused while it builds the value: a JSON value holds no cycle,
   and a body of millions of small arrays otherwise sets off collections that cost
   several times the parse;
3. the depth of the parsed value, walked with an explicit stack (one iterator per open
   container, so never more than ``max_depth`` of them; no recursion), against
   ``max_depth``;
4. with ``unique_keys``, the stdlib parser a second time, to see duplicate member names
   (orjson keeps the last silently): for small documents whose every member matters,
   such as a proof bundle. It recurses in C, one level of Python's recursion limit per
   level of nesting, so it only ever sees a document already found no deeper than
   ``max_depth`` (32 by default, against the limit of 1,000 that :mod:`ledger` puts
   back; whatever the ``max_depth``, orjson has refused anything over 1,024 levels, and a
   limit the stdlib reaches is refused, not a crash).

The depth was once measured on the raw bytes, before any parse, by peeling matched
bracket pairs off a copy of the text one level per pass: a 32 MiB body of small shallow
containers (``[[1],[1],…]``) took 11-30 s and +2.75 GB there (as found in #15;
scripts/bench_json_input.py --against REV compares). Parsing such a body still costs what
its value costs: some 8 million Python lists, about a gigabyte.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import orjson

from ledger.errors import InvalidInput, TooLarge

#: Deep enough for any document of ours (a record's ``details`` included), far below what
#: a recursive parser or canonicaliser would need to fear.
MAX_DEPTH = 32

#: A body may hold at most one JSON value per this many bytes of its limit. Real
#: documents hold one per 12-30 bytes (a record's members, a bundle's 66-byte hashes);
#: ``[1],[1],…`` holds one per 2.
BYTES_PER_VALUE = 4

#: orjson refuses a document nested deeper than this itself ("depth limit exceeded").
ORJSON_MAX_DEPTH = 1024
_BOM = b"\xef\xbb\xbf"


def deeper_than(value: Any, max_depth: int) -> bool:
    """True if a parsed JSON value nests arrays/objects deeper than ``max_depth`` (a
    scalar is depth 0, ``[]`` and ``[1]`` depth 1). Iterative: one iterator per open
    container, and an empty one is never opened."""
    kind = type(value)
    if kind is not list and kind is not dict:
        return False
    if max_depth < 1:
        return True
    stack = [iter(value.values() if kind is dict else value)]
    while stack:
        for item in stack[-1]:
            kind = type(item)
            if kind is list or kind is dict:
                if len(stack) >= max_depth:
                    return True
                if item:
                    stack.append(iter(item.values() if kind is dict else item))
                    break
        else:
            stack.pop()
    return False


def values_at_most(raw: bytes, *, lines: bool = False) -> int:
    """An upper bound on the JSON values ``raw`` holds (each one but the first of a
    container follows a comma; each container opens with a bracket or brace; with
    ``lines``, each NDJSON line starts one), counted without parsing. Commas and
    brackets inside strings only raise it."""
    count = raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1
    return count + raw.count(b"\n") if lines else count


def _check_size(raw: bytes, *, field: str, max_bytes: int, lines: bool = False) -> None:
    if len(raw) > max_bytes:
        raise TooLarge(f"over {max_bytes} bytes", field=field)
    most = max(1024, max_bytes // BYTES_PER_VALUE)
    if values_at_most(raw, lines=lines) > most:
        raise TooLarge(f"more than {most} JSON values (one per {BYTES_PER_VALUE} bytes of "
                       f"the {max_bytes}-byte limit)", field=field)


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        name = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate member name {name!r}")
    return obj


def _too_deep(max_depth: int, field: str) -> InvalidInput:
    return InvalidInput(f"not accepted: nested deeper than {max_depth} levels", field=field)


def _orjson_loads(raw: bytes) -> Any:
    """orjson's value, built with the cyclic collector paused (and left as it was found:
    another thread pausing it too ends with it enabled, as it began)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return orjson.loads(raw)
    finally:
        if was_enabled:
            gc.enable()


def parse_json(data: bytes | str, *, field: str, max_bytes: int,
               max_depth: int = MAX_DEPTH, unique_keys: bool = False) -> Any:
    """Parse untrusted JSON or raise :class:`InvalidInput` naming ``field``: over
    ``max_bytes``, nested deeper than ``max_depth``, a byte order mark, invalid UTF-8, a
    lone surrogate, NaN or an out-of-range number, or (with ``unique_keys``) a duplicate
    member name."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    _check_size(raw, field=field, max_bytes=max_bytes)
    if raw.startswith(_BOM):
        raise InvalidInput("not JSON: a UTF-8 byte order mark", field=field)
    try:
        value = _orjson_loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg == "depth limit exceeded":  # orjson's own bound, past any max_depth of ours
            raise _too_deep(min(max_depth, ORJSON_MAX_DEPTH), field) from None
        raise InvalidInput(f"not valid JSON: {_short(exc)}", field=field) from None
    if deeper_than(value, max_depth):
        raise _too_deep(max_depth, field)
    if unique_keys:  # only to see duplicate names: orjson's value is the one returned
        try:
            json.loads(raw, object_pairs_hook=_unique_members)
        except RecursionError:  # only a max_depth near the recursion limit gets here
            raise InvalidInput("not accepted: nested too deep to look for duplicate names",
                               field=field) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"not valid JSON: {_short(exc)}", field=field) from None
    return value


def parse_ndjson(data: bytes, *, field: str, max_bytes: int,
                 max_depth: int = MAX_DEPTH) -> list[Any]:
    """One JSON value per non-blank line; a bad line is named by its 1-based number. The
    bounds hold for the whole body, not only for each line."""
    _check_size(data, field=field, max_bytes=max_bytes, lines=True)
    values = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            values.append(parse_json(line, field=f"{field} line {number}", max_bytes=max_bytes,
                                     max_depth=max_depth))
    return values


def read_json_file(path: Any, *, field: str, max_bytes: int, max_depth: int = MAX_DEPTH,
                   unique_keys: bool = False) -> Any:
    """A JSON file read with the same bounds (never more than ``max_bytes`` + 1 bytes)."""
    return parse_json(read_bounded(path, field=field, max_bytes=max_bytes), field=field,
                      max_bytes=max_bytes, max_depth=max_depth, unique_keys=unique_keys)


def read_bounded(path: Any, *, field: str, max_bytes: int) -> bytes:
    """A file's bytes, refusing one over ``max_bytes`` without reading it all; a missing
    file, a directory or an unreadable one is :class:`InvalidInput` naming ``field``."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InvalidInput(f"no file {path}", field=field) from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a file", field=field) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field=field) from None
    if len(data) > max_bytes:
        raise TooLarge(f"{path} is over {max_bytes} bytes", field=field)
    return data


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "…"
