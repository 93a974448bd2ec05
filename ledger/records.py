"""A partner's raw activity record: its shape, its checks, its canonical hash.

Each failure names the field at fault. The record's hash is keccak256 of its RFC 8785
canonical JSON, so anyone holding the record can recompute the ``recordHash`` leaf value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import rfc8785

from ledger.errors import InvalidInput
from ledger.hashing import keccak

ALLOWED_FIELDS = {"record_id", "citizen", "behaviour", "quantity", "occurred_at", "ended_at",
                  "details"}
FUTURE_SKEW_SECONDS = 300
MAX_DURATION_SECONDS = 31 * 86400  # a hotel stay is the longest behaviour
#: The text members' longest (printable, not blank); the HTTP schema states the same.
MAX_TEXT = {"record_id": 128, "citizen": 64, "behaviour": 32}


@dataclass(slots=True, eq=False)
class ActivityRecordIn:
    """A record that passed the shape checks (slotted and not frozen: a submission makes
    tens of thousands of them, and a frozen dataclass costs twice as much to build)."""

    record_id: str
    citizen: str
    behaviour: str
    quantity: int
    occurred_at: int  # when the behaviour started (or happened, for an instant)
    canonical: bytes
    record_hash: bytes
    ended_at: int | None = None  # when it ended; required where speed is checked

    @property
    def end(self) -> int:
        """When it ended, or when it happened for an instant."""
        return self.occurred_at if self.ended_at is None else self.ended_at

    @property
    def interval(self) -> tuple[int, int]:
        return self.occurred_at, self.end


_SAFE_INT = 2**53 - 1  # RFC 8785 numbers are IEEE doubles: larger integers are refused


def _orjson_is_canonical(value: Any) -> bool:
    """Whether orjson's sorted output is the RFC 8785 form of ``value``: only objects with
    ASCII keys (orjson sorts by code point, RFC 8785 by UTF-16 unit; they agree there),
    arrays, strings, safe integers, booleans and null. Floats (ECMAScript formatting) and
    everything else go to the reference implementation."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():  # a loop, not all(...): this runs per record
            if type(key) is not str or not key.isascii():
                return False
            item_kind = type(item)
            if item_kind is str or item is None or item_kind is bool:
                continue
            if item_kind is int:
                if not -_SAFE_INT <= item <= _SAFE_INT:
                    return False
            elif not _orjson_is_canonical(item):
                return False
        return True
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_SAFE_INT <= value <= _SAFE_INT
    if kind is list:
        return all(_orjson_is_canonical(v) for v in value)
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON, as ``rfc8785.dumps`` makes it (raising what it raises).

    The pure-Python reference costs ~40 µs for a typical record; orjson makes the same
    bytes in ~2 µs for the plain JSON records are (a property test holds them equal)."""
    try:
        if _orjson_is_canonical(value):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (RecursionError, orjson.JSONEncodeError):
        pass  # too deep or a string that is not UTF-8: the reference says what is wrong
    return rfc8785.dumps(value)


def rebuilt_record(record_id: str, citizen: str, behaviour: str, quantity: int,
                   occurred_at: int, ended_at: int | None) -> bytes:
    """The record that has these members and no others (``ended_at`` only when given), in
    orjson's sorted form: its canonical form (RFC 8785) for the plain records intake
    mostly gets, and what a record holds when its columns are all there is to it.
    Intake stores no text for a record whose canonical form is exactly this (most are), and
    readers rebuild it from the columns (activity_records.raw, migration 0017)."""
    value: dict[str, Any] = {"behaviour": behaviour, "citizen": citizen,
                             "occurred_at": occurred_at, "quantity": quantity,
                             "record_id": record_id}
    if ended_at is not None:
        value["ended_at"] = ended_at
    # orjson's sorted form, unchecked (0.2 us, not canonical_json's 1.1): intake keeps the
    # text of any record whose canonical form differs from it, so every reader that
    # rebuilds one with this function gets the bytes that were received
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # text that is not UTF-8: never rebuilt, kept as text
        return b""


def _text(raw: dict[str, Any], name: str, max_len: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("required, a non-empty string", field=name)
    if len(value) > max_len or not value.isprintable():
        raise InvalidInput(f"at most {max_len} printable characters", field=name)
    return value


def _timestamp(value: Any, name: str = "occurred_at") -> int:
    if type(value) is int:
        seconds = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput("unix seconds or an RFC 3339 time", field=name) from None
        if parsed.tzinfo is None:
            raise InvalidInput("an RFC 3339 time needs a UTC offset", field=name)
        seconds = int(parsed.timestamp())
    else:
        raise InvalidInput("required: unix seconds or an RFC 3339 time", field=name)
    if not 0 < seconds < 2**63:
        raise InvalidInput("out of range", field=name)
    return seconds


def parse_record(raw: Any, *, now: int) -> ActivityRecordIn:
    """Check a submitted record's shape; raise :class:`InvalidInput` naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput("each record must be a JSON object", field="record")
    if not raw.keys() <= ALLOWED_FIELDS:
        raise InvalidInput("unknown field", field=sorted(raw.keys() - ALLOWED_FIELDS)[0])
    quantity = raw.get("quantity")
    if type(quantity) is not int:  # bool is a subclass of int, and not a quantity
        raise InvalidInput("required, a whole number", field="quantity")
    if quantity <= 0:
        raise InvalidInput("must be positive", field="quantity")
    occurred_at = _timestamp(raw.get("occurred_at"))
    if occurred_at > now + FUTURE_SKEW_SECONDS:
        raise InvalidInput("is in the future", field="occurred_at")
    ended_at = None
    if "ended_at" in raw:
        ended_at = _timestamp(raw["ended_at"], "ended_at")
        if ended_at > now + FUTURE_SKEW_SECONDS:
            raise InvalidInput("is in the future", field="ended_at")
        if ended_at < occurred_at:
            raise InvalidInput("is before occurred_at", field="ended_at")
        if ended_at - occurred_at > MAX_DURATION_SECONDS:
            raise InvalidInput("more than 31 days after occurred_at", field="ended_at")
    if "details" in raw and not isinstance(raw["details"], dict):
        raise InvalidInput("must be a JSON object", field="details")
    try:
        canonical = canonical_json(raw)
    except (rfc8785.CanonicalizationError, ValueError) as exc:
        raise InvalidInput(f"cannot be canonicalised: {exc}", field="details") from exc
    return ActivityRecordIn(
        record_id=_text(raw, "record_id", MAX_TEXT["record_id"]),
        citizen=_text(raw, "citizen", MAX_TEXT["citizen"]),
        behaviour=_text(raw, "behaviour", MAX_TEXT["behaviour"]),
        quantity=quantity,
        occurred_at=occurred_at,
        canonical=canonical,
        record_hash=keccak(canonical),
        ended_at=ended_at,
    )


#: A plain record's members: no ``details``, whose canonical form needs looking into.
_PLAIN_FIELDS = frozenset(ALLOWED_FIELDS - {"details"})
_TEXTS = tuple(MAX_TEXT.items())
_SAFE_INT = 2**53 - 1  # RFC 8785's integers: past it the canonical form is refused
_NO_END = object()


def plain_record(value: Any) -> tuple[str, int, int] | None:
    """The behaviour, quantity and time of a record as intake writes it (no ``details``,
    integers safe), checked as :func:`parse_record` checks them: what this accepts,
    ``parse_record`` accepts with the same three values (a property test holds them to
    it). None for any other record: ``parse_record`` then says what it makes of it.

    For a reader that has the record's hash already (the audit re-reading stored
    records): it skips the canonical form and its hash, about half of ``parse_record``'s
    cost; a plain record's canonical form cannot fail (ASCII keys, safe integers, text)."""
    if type(value) is not dict or not _PLAIN_FIELDS.issuperset(value):
        return None
    quantity = value.get("quantity")
    if type(quantity) is not int or not 0 < quantity <= _SAFE_INT:
        return None
    at, end = value.get("occurred_at"), value.get("ended_at", _NO_END)
    if not (type(at) is int and 0 < at <= _SAFE_INT and (
            end is _NO_END or type(end) is int and end <= _SAFE_INT)):
        try:  # RFC 3339 times, or whatever parse_record refuses
            at = _plain_time(at, "occurred_at")
            end = at if end is _NO_END else _plain_time(end, "ended_at")
        except InvalidInput:
            return None
    elif end is _NO_END:
        end = at
    if not at <= end <= at + MAX_DURATION_SECONDS:
        return None
    for name, longest in _TEXTS:
        text = value.get(name)
        if type(text) is not str or len(text) > longest or not text.isprintable() \
                or not text.strip():
            return None
    return value["behaviour"], quantity, at


def _plain_time(value: Any, name: str) -> int:
    if type(value) is int and value > _SAFE_INT:
        raise InvalidInput("not a safe integer", field=name)
    return _timestamp(value, name)  # parse_record's own reading of a time
