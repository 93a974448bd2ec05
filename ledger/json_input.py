"""Untrusted JSON, read with bounds: size and nesting depth are checked on the raw bytes
before any parser sees them, and the parser is one that cannot overflow the C stack.

Every place JSON enters from outside (HTTP bodies, NDJSON lines, bundle and descriptor
files, methodology files) reads it through :func:`parse_json`. A body nested 100,000
arrays deep once killed a serving process: the stdlib parser recurses in C, and a
dependency had raised the interpreter's recursion limit so far that the C stack
overflowed first. Here depth is measured by peeling matched bracket pairs off a copy of
the text with its strings removed, one level per pass, stopping after ``max_depth``
passes; then orjson (no recursion limit involved; it refuses invalid UTF-8, lone
surrogates, a byte order mark, NaN and numbers beyond a double) parses it.

``unique_keys`` parses a second time with the stdlib, which can see duplicate member
names (orjson keeps the last silently): for small documents whose every member matters,
such as a proof bundle.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from ledger.errors import InvalidInput, TooLarge

#: Deep enough for any document of ours (a record's ``details`` included), far below what
#: a recursive parser or canonicaliser would need to fear.
MAX_DEPTH = 32

# A JSON string with its escapes, or an unterminated one to the end of the text: possessive
# and never tried again from inside a string, so linear (an unterminated "\"\"\"… was
# quadratic: 64 KB took ~14 s).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]++")
_PAIR = re.compile(rb"\[\]|\{\}")
_BOM = b"\xef\xbb\xbf"


def nesting_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True if ``data`` nests arrays/objects deeper than ``max_depth`` (text that is not
    well bracketed is left for the parser to refuse)."""
    if b"[" not in data and b"{" not in data:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    for _ in range(max_depth):
        brackets, peeled = _PAIR.subn(b"", brackets)
        if not brackets or not peeled:
            return False
    return bool(brackets)


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        name = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate member name {name!r}")
    return obj


def parse_json(data: bytes | str, *, field: str, max_bytes: int,
               max_depth: int = MAX_DEPTH, unique_keys: bool = False) -> Any:
    """Parse untrusted JSON or raise :class:`InvalidInput` naming ``field``: over
    ``max_bytes``, nested deeper than ``max_depth``, a byte order mark, invalid UTF-8, a
    lone surrogate, NaN or an out-of-range number, or (with ``unique_keys``) a duplicate
    member name."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise TooLarge(f"over {max_bytes} bytes", field=field)
    if raw.startswith(_BOM):
        raise InvalidInput("not JSON: a UTF-8 byte order mark", field=field)
    if nesting_depth_exceeds(raw, max_depth):
        raise InvalidInput(f"not accepted: nested deeper than {max_depth} levels", field=field)
    try:
        value = orjson.loads(raw)
        if unique_keys:  # only to see duplicate names: orjson's value is the one returned
            json.loads(raw, object_pairs_hook=_unique_members)
    except (orjson.JSONDecodeError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not valid JSON: {_short(exc)}", field=field) from None
    return value


def parse_ndjson(data: bytes, *, field: str, max_bytes: int,
                 max_depth: int = MAX_DEPTH) -> list[Any]:
    """One JSON value per non-blank line; a bad line is named by its 1-based number."""
    if len(data) > max_bytes:
        raise TooLarge(f"over {max_bytes} bytes", field=field)
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
