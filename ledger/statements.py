"""Month statements: the statement leaf, local months, and what a statement needs of a chain.

A month's statement tree holds one leaf per account: the month's totals (grams reduced,
points earned and spent, entries) and two commitments, to the account's entry leaves in
ledger order and to its totals per area of the methodology. Leaves are laid into a plain
OpenZeppelin ``StandardMerkleTree`` (not a sum tree: a sum tree's path would show a bank
the sums of other citizens' subtrees), each with a random salt, so a sibling hash in a
proof says nothing guessable. The account is the same salted commitment the entry leaves
carry: erasing a citizen's salt leaves their statements verifiable and unlinkable.

Which entries a statement counts (see docs/green-credit.md): statement ``s`` for month
``P`` is built after ``P`` ends and names the last anchored batch it counts
(``throughBatchId``); it counts every entry of a batch up to that one that occurred
before ``P``'s end and that no earlier statement counted. So each anchored entry lands in
exactly one statement, a late record is counted by the next month's, and an auditor
recomputes every leaf from the anchored batches and the ``StatementAnchored`` events.

Pure rules here; the database side is :mod:`ledger.statement_builder`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ledger.anchoring import PreparedAnchor, TxReceipt
from ledger.errors import InvalidInput
from ledger.hashing import keccak
from ledger.leaf import KIND_BONUS, KIND_CREDIT, LeafValues
from ledger.merkle import hash_leaf

STATEMENT_ENCODING: tuple[str, ...] = (
    "uint32",  # period, yyyymm (local month)
    "bytes32",  # account: the salted commitment the entry leaves carry
    "uint64",  # reductionGrams: credits' grams
    "uint64",  # pointsEarned: credits' points
    "uint64",  # pointsSpent: debits' points
    "uint64",  # entryCount
    "bytes32",  # entries: keccak256 of the account's entry leaf hashes in ledger order
    "bytes32",  # areas: keccak256(abi.encode((bytes32 area, uint64 grams, uint64 entries)[]))
    "bytes32",  # salt: random, so no leaf can be confirmed by guessing its values
)
STATEMENT_FIELDS: tuple[str, ...] = ("period", "account", "reductionGrams", "pointsEarned",
                                     "pointsSpent", "entryCount", "entries", "areas", "salt")
ENCODED_STATEMENT_SIZE = 32 * len(STATEMENT_ENCODING)
AREA_TOTALS_TYPE = "(bytes32,uint64,uint64)[]"
_UINT_LIMITS = {"period": 2**32, "reductionGrams": 2**64, "pointsEarned": 2**64,
                "pointsSpent": 2**64, "entryCount": 2**64}


# -- local months ---------------------------------------------------------------------------

def parse_period(text: object, *, field: str = "period") -> int:
    """``2026-11`` or ``202611`` → 202611, refusing anything that is not a month."""
    raw = str(text).strip()
    digits = raw.replace("-", "") if len(raw) == 7 and raw[4] == "-" else raw
    if not (len(digits) == 6 and digits.isdigit()):
        raise InvalidInput(f"{raw!r} is not a month written YYYY-MM", field=field)
    period = int(digits)
    if not 1 <= period % 100 <= 12 or period < 197001:
        raise InvalidInput(f"{raw!r} is not a month written YYYY-MM", field=field)
    return period


def period_label(period: int) -> str:
    return f"{period // 100:04d}-{period % 100:02d}"


def next_period(period: int) -> int:
    return (period // 100 + 1) * 100 + 1 if period % 100 == 12 else period + 1


def period_bounds(period: int, offset: timedelta) -> tuple[int, int]:
    """The unix seconds where the local month ``period`` starts and ends (end exclusive)."""
    def start(p: int) -> int:
        local = datetime(p // 100, p % 100, 1, tzinfo=UTC)
        return int((local - offset).timestamp())
    return start(period), start(next_period(period))


def period_of(unix_seconds: int, offset: timedelta) -> int:
    """The local month (yyyymm) a moment falls in."""
    local = datetime.fromtimestamp(unix_seconds, UTC) + offset
    return local.year * 100 + local.month


def periods_between(first: int, last: int, *, at_most: int = 120) -> list[int]:
    """The months from ``first`` to ``last``, both included (at most ``at_most`` of them)."""
    if last < first:
        raise InvalidInput(f"{period_label(last)} is before {period_label(first)}", field="to")
    count = (last // 100 - first // 100) * 12 + last % 100 - first % 100 + 1
    if count > at_most:
        raise InvalidInput(f"{count} months; at most {at_most}", field="to")
    out = [first]
    while out[-1] != last:
        out.append(next_period(out[-1]))
    return out


# -- the leaf -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AreaTotal:
    area: str
    grams: int
    entries: int


def area_code(area: str) -> bytes:
    raw = area.encode("ascii")
    if not raw or len(raw) > 32:
        raise InvalidInput(f"{area!r} is not 1-32 ASCII characters", field="area")
    return raw.ljust(32, b"\0")


def areas_commitment(areas: Sequence[AreaTotal]) -> bytes:
    """The leaf's ``areas`` value: the area totals, in area order, ABI-encoded and hashed."""
    ordered = sorted(areas, key=lambda a: a.area)
    return keccak(abi_encode([AREA_TOTALS_TYPE],
                             [[(area_code(a.area), a.grams, a.entries) for a in ordered]]))


def areas_to_json(areas: Iterable[AreaTotal]) -> list[dict[str, str | int]]:
    return [{"area": a.area, "reductionGrams": str(a.grams), "entryCount": str(a.entries)}
            for a in sorted(areas, key=lambda a: a.area)]


def areas_from_json(items: object, *, field: str = "areas") -> list[AreaTotal]:
    if not isinstance(items, list) or len(items) > 64:
        raise InvalidInput("expected a list of at most 64 area totals", field=field)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"area", "reductionGrams", "entryCount"}:
            raise InvalidInput("expected {area, reductionGrams, entryCount}", field=f"{field}[{i}]")
        area = item["area"]
        if not isinstance(area, str) or not area.isascii() or not 1 <= len(area) <= 32:
            raise InvalidInput("expected 1-32 ASCII characters", field=f"{field}[{i}].area")
        out.append(AreaTotal(area, _decimal(item["reductionGrams"], f"{field}[{i}].reductionGrams"),
                             _decimal(item["entryCount"], f"{field}[{i}].entryCount")))
    return out


def _decimal(value: object, field: str) -> int:
    if isinstance(value, str) and value.isdigit() and len(value) <= 20 and (
            value == "0" or not value.startswith("0")) and int(value) < 2**64:
        return int(value)
    raise InvalidInput("expected a decimal integer string below 2**64", field=field)


@dataclass(frozen=True, slots=True)
class StatementLeafValues:
    period: int
    account: bytes
    reduction_grams: int
    points_earned: int
    points_spent: int
    entry_count: int
    entries: bytes
    areas: bytes
    salt: bytes

    def as_tuple(self) -> tuple[int | bytes, ...]:
        return (self.period, self.account, self.reduction_grams, self.points_earned,
                self.points_spent, self.entry_count, self.entries, self.areas, self.salt)

    def encode(self) -> bytes:
        """``abi.encode`` of the values, each checked against its ABI width first."""
        for name, value in zip(STATEMENT_FIELDS, self.as_tuple(), strict=True):
            limit = _UINT_LIMITS.get(name)
            if limit is not None:
                if type(value) is not int or not 0 <= value < limit:
                    raise InvalidInput(f"{value!r} is not a uint below {limit}", field=name)
            elif type(value) is not bytes or len(value) != 32:
                raise InvalidInput("expected 32 bytes", field=name)
        return abi_encode(list(STATEMENT_ENCODING), list(self.as_tuple()))

    def leaf_hash(self) -> bytes:
        return hash_leaf(self.encode())

    def to_json(self) -> dict[str, str | int]:
        """Named values: bytes as 0x-hex, uint64s as decimal strings (JS numbers lose them)."""
        return {"period": self.period, "account": "0x" + self.account.hex(),
                "reductionGrams": str(self.reduction_grams),
                "pointsEarned": str(self.points_earned), "pointsSpent": str(self.points_spent),
                "entryCount": str(self.entry_count), "entries": "0x" + self.entries.hex(),
                "areas": "0x" + self.areas.hex(), "salt": "0x" + self.salt.hex()}

    @classmethod
    def from_json(cls, data: object, *, field: str = "leaf") -> StatementLeafValues:
        from ledger.hashing import parse_hex32

        if not isinstance(data, dict) or set(data) != set(STATEMENT_FIELDS):
            raise InvalidInput(f"expected exactly {', '.join(STATEMENT_FIELDS)}", field=field)
        period = data["period"]
        if type(period) is not int:
            raise InvalidInput("expected an integer yyyymm", field=f"{field}.period")
        parse_period(str(period), field=f"{field}.period")
        return cls(period, parse_hex32(data["account"], field=f"{field}.account"),
                   _decimal(data["reductionGrams"], f"{field}.reductionGrams"),
                   _decimal(data["pointsEarned"], f"{field}.pointsEarned"),
                   _decimal(data["pointsSpent"], f"{field}.pointsSpent"),
                   _decimal(data["entryCount"], f"{field}.entryCount"),
                   parse_hex32(data["entries"], field=f"{field}.entries"),
                   parse_hex32(data["areas"], field=f"{field}.areas"),
                   parse_hex32(data["salt"], field=f"{field}.salt"))


def decode_statement_leaf(encoded: bytes) -> StatementLeafValues:
    if len(encoded) != ENCODED_STATEMENT_SIZE:
        raise InvalidInput(f"an encoded statement leaf is {ENCODED_STATEMENT_SIZE} bytes",
                           field="leaf")
    values = StatementLeafValues(*abi_decode(list(STATEMENT_ENCODING), encoded))
    if values.encode() != encoded:
        raise InvalidInput("not a canonical statement leaf encoding", field="leaf")
    return values


def entries_commitment(entry_leaf_hashes: Iterable[bytes]) -> bytes:
    """The leaf's ``entries`` value: keccak256 of the entry leaf hashes in ledger order."""
    return keccak(b"".join(entry_leaf_hashes))


def content_hash(leaf_hashes_in_account_order: Iterable[bytes]) -> bytes:
    return keccak(b"".join(leaf_hashes_in_account_order))


def areas_json_text(areas: Iterable[AreaTotal]) -> str:
    return json.dumps(areas_to_json(areas), separators=(",", ":"))


# -- what statements and credentials need of a chain ----------------------------------------

@dataclass(frozen=True)
class StatementEvent:
    """A ``StatementAnchored`` log found in a transaction's receipt."""

    period: int
    root: bytes
    leaf_count: int
    through_batch_id: int
    content_hash: bytes


class StatementReader(Protocol):
    """Read access to statements and credential status: all a bank's verifier needs."""

    @property
    def chain_id(self) -> int: ...

    @property
    def contract_address(self) -> str: ...

    def statement_root(self, period: int) -> bytes | None:
        """The root the contract holds for month ``period``; None if it holds none."""
        ...

    def latest_statement(self) -> tuple[int, int]:
        """The last anchored month (0 before any) and the last batch it counts."""
        ...

    def credential_revoked(self, index: int) -> bool: ...

    def is_issuer(self, address: str) -> bool:
        """Whether ``address`` holds the contract's ``ISSUER_ROLE``."""
        ...

    def statement_events(self, tx_hash: bytes) -> list[StatementEvent]: ...

    def find_statement_receipt(self, period: int) -> TxReceipt | None: ...


class StatementChain(StatementReader, Protocol):
    """Read and write access: what the operator's statement anchoring and revocation need."""

    def prepare_statement(self, *, period: int, root: bytes, leaf_count: int,
                          through_batch_id: int, content_hash: bytes) -> PreparedAnchor: ...

    def prepare_revocation(self, indices: Sequence[int]) -> PreparedAnchor: ...

    def broadcast(self, raw: bytes) -> None: ...

    def is_known(self, tx_hash: bytes) -> bool: ...

    def wait_for_receipt(self, tx_hash: bytes, *, timeout: float) -> TxReceipt: ...

    def mine_if_dev(self, blocks: int) -> bool: ...

    def block_hash(self, block_number: int) -> bytes | None:
        """The canonical block's hash at that height (None beyond the head)."""
        ...

    def check_contract(self) -> None:
        """:class:`~ledger.errors.AnchorMismatch` if the contract has no code."""
        ...


# -- one account's totals -------------------------------------------------------------------

def area_of(behaviour: bytes, methodology: int) -> str | None:
    """The methodology's area of a credit's behaviour (None for a debit's ``REDEMPTION``)."""
    from ledger.methodology import load_methodology

    code = behaviour.rstrip(b"\0").decode("ascii")
    behaviours = load_methodology(methodology).behaviours
    return behaviours[code].area if code in behaviours else None


def account_leaf(period: int, account: bytes, entries: Sequence[LeafValues], salt: bytes
                 ) -> tuple[StatementLeafValues, list[AreaTotal]]:
    """An account's statement leaf from its counted entries in ledger order (the builder
    and the audit both call this: the builder on its rows' leaves, the audit on the leaves
    of the anchored batches)."""
    grams = earned = spent = 0
    by_area: dict[str, list[int]] = {}
    for e in entries:
        if e.account != account:
            raise InvalidInput("an entry of another account", field="account")
        if e.kind == KIND_CREDIT:
            grams += e.reduction_grams
            earned += e.points
            area = area_of(e.behaviour, e.methodology)
            if area is not None:
                totals = by_area.setdefault(area, [0, 0])
                totals[0] += e.reduction_grams
                totals[1] += 1
        elif e.kind == KIND_BONUS:  # campaign points: earned, never grams
            earned += e.points
        else:
            spent += e.points
    areas = [AreaTotal(a, g, n) for a, (g, n) in sorted(by_area.items())]
    leaf = StatementLeafValues(period, account, grams, earned, spent, len(entries),
                               entries_commitment(e.leaf_hash() for e in entries),
                               areas_commitment(areas), salt)
    return leaf, areas


def counted_in(*, seq: int, occurred_at: int, through_seq: int, period_end: int,
               previous_seq: int, previous_end: int) -> bool:
    """Whether a statement (counting batches through ``through_seq``, entries before
    ``period_end``) counts an entry, the previous statement having counted through
    ``previous_seq`` and ``previous_end`` (0 and 0 for the first statement)."""
    counted_now = seq <= through_seq and occurred_at < period_end
    counted_before = seq <= previous_seq and occurred_at < previous_end
    return counted_now and not counted_before
