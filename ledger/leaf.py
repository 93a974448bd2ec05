"""The ledger entry's leaf: its values, their ABI types, and the one encoder for them.

Every value is a static ABI type, so ``abi.encode(values)`` is eleven 32-byte words and
a ``struct`` format packs it exactly (tests hold it equal to ``eth_abi.encode``).
The first value is the entry id; no personal data ever enters a leaf: the citizen
appears only as a salted commitment.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache

from eth_utils import to_checksum_address

from ledger.errors import InvalidInput
from ledger.hashing import keccak
from ledger.merkle import hash_leaf

LEAF_ENCODING: tuple[str, ...] = (
    "bytes32",  # entryId
    "bytes32",  # account: keccak256(citizen pseudonym || secret salt)
    "uint8",  # kind: 1 credit, 2 debit, 3 campaign bonus or prize (points only)
    "bytes32",  # behaviour code, ASCII, right-padded with zero bytes
    "uint64",  # quantity, in the behaviour's unit
    "uint64",  # reductionGrams
    "uint64",  # points
    "uint32",  # methodology version
    "uint64",  # occurredAt, unix seconds
    "bytes32",  # recordHash: keccak256 of the RFC 8785 raw record (zero for a debit)
    "address",  # partner signing address (the operator's for a debit)
)
LEAF_FIELDS: tuple[str, ...] = (
    "entryId",
    "account",
    "kind",
    "behaviour",
    "quantity",
    "reductionGrams",
    "points",
    "methodology",
    "occurredAt",
    "recordHash",
    "partner",
)

KIND_CREDIT = 1
KIND_DEBIT = 2
#: Campaign points (#21): a bonus or a prize, never grams; adds to the balance like a credit.
KIND_BONUS = 3

# Left-padded integers: 24 zero bytes then 8 bytes big-endian (uint8/uint32 fit in a Q
# too; the range checks below keep them in their declared widths).
_WORDS = struct.Struct(">32s32s24xQ32s24xQ24xQ24xQ24xQ24xQ32s12x20s")
ENCODED_SIZE = _WORDS.size  # 352
#: Where the ABI form holds the entry id, the quantity, the methodology version, the
#: record hash and the partner's address (the entry id is first in the stored form too).
LEAF_ENTRY_ID = slice(0, 32)
LEAF_QUANTITY = slice(152, 160)
LEAF_METHODOLOGY = slice(252, 256)
LEAF_RECORD_HASH = slice(288, 320)
LEAF_PARTNER = slice(332, 352)


def leaf_quantity(encoded: bytes) -> int:
    """The quantity an ABI-form leaf holds, in its behaviour's unit."""
    return int.from_bytes(encoded[LEAF_QUANTITY], "big")


def leaf_methodology(encoded: bytes) -> int:
    """The methodology version an ABI-form leaf holds."""
    return int.from_bytes(encoded[LEAF_METHODOLOGY], "big")


#: The leaf as the ledger stores it: the same values without the ABI's padding, each
#: integer in its declared width (185 bytes; the padding is zeros in every canonical leaf,
#: so nothing is lost). Stored, a leaf is 167 bytes shorter, about a tenth of an entry's
#: bytes on disk all included (#19); :func:`expand_leaf` gives the ABI form back.
_STORED = struct.Struct(">32s32sB32sQQQIQ32s20s")
STORED_SIZE = _STORED.size  # 185
#: (offset in the stored form, offset in the ABI form, length) of each run of bytes the
#: two share, for expanding many stored leaves at once (the sealer's, with numpy)
STORED_PLACES = ((0, 0, 64), (64, 95, 33), (97, 152, 8), (105, 184, 8), (113, 216, 8),
                 (121, 252, 4), (125, 280, 40), (165, 332, 20))

_LIMITS = {"kind": 2**8, "quantity": 2**64, "reductionGrams": 2**64, "points": 2**64,
           "methodology": 2**32, "occurredAt": 2**64}


@dataclass(frozen=True, slots=True)
class LeafValues:
    entry_id: bytes
    account: bytes
    kind: int
    behaviour: bytes
    quantity: int
    reduction_grams: int
    points: int
    methodology: int
    occurred_at: int
    record_hash: bytes
    partner: bytes

    def as_tuple(self) -> tuple:  # type: ignore[type-arg]
        """The values in :data:`LEAF_ENCODING` order (``dataclasses.astuple`` deep-copies)."""
        return (self.entry_id, self.account, self.kind, self.behaviour, self.quantity,
                self.reduction_grams, self.points, self.methodology, self.occurred_at,
                self.record_hash, self.partner)

    def encode(self) -> bytes:
        """``abi.encode`` of the values, checked against their ABI widths."""
        return encode_leaf(self.as_tuple())

    def leaf_hash(self) -> bytes:
        return hash_leaf(self.encode())

    def to_json(self) -> list[str | int]:
        """The values as OZ's dump and our proof bundles write them."""
        return leaf_values_to_json(self.as_tuple())


def encode_leaf(values: tuple) -> bytes:  # type: ignore[type-arg]
    """Encode a tuple of leaf values in :data:`LEAF_ENCODING` order."""
    return _WORDS.pack(*_checked(values))


def encode_stored_leaf(values: tuple) -> bytes:  # type: ignore[type-arg]
    """The values as :func:`encode_leaf` checks them, in the leaf's stored form."""
    return _STORED.pack(*_checked(values))


def _checked(values: tuple) -> tuple:  # type: ignore[type-arg]
    if len(values) == len(LEAF_FIELDS):  # the common case, checked in one expression
        entry, account, kind, behaviour, quantity, grams, points, version, at, record, partner = values
        if (type(entry) is bytes and len(entry) == 32 and type(account) is bytes
                and len(account) == 32 and type(kind) is int and 0 <= kind < 2**8
                and type(behaviour) is bytes and len(behaviour) == 32
                and type(quantity) is int and 0 <= quantity < 2**64
                and type(grams) is int and 0 <= grams < 2**64
                and type(points) is int and 0 <= points < 2**64
                and type(version) is int and 0 <= version < 2**32
                and type(at) is int and 0 <= at < 2**64
                and type(record) is bytes and len(record) == 32
                and type(partner) is bytes and len(partner) == 20):
            return values
    _check_leaf_values(values)  # raises, naming the field
    return values


def store_leaf(encoded: bytes) -> bytes:
    """A canonical ABI leaf in its stored form; anything else is refused (its padding
    would be lost)."""
    try:
        stored = _STORED.pack(*_WORDS.unpack(encoded))
    except struct.error:
        stored = b""  # a wrong length, or a value wider than its ABI type
    if len(encoded) != ENCODED_SIZE or expand_leaf(stored) != encoded:
        raise ValueError("only a canonical leaf encoding is stored")
    return stored


def expand_leaf(stored: bytes) -> bytes:
    """A stored leaf in its ABI form (:func:`encode_leaf`'s), the form that is hashed.
    A stored value of any other length is given back as it is: the checks that read it
    (the audit, a proof's leaf hash) then find it wrong, rather than this failing."""
    values = stored_values(stored)
    return stored if values is None else abi_form(values)


def stored_values(stored: bytes) -> tuple | None:  # type: ignore[type-arg]
    """The values of a leaf in its stored form, in :data:`LEAF_ENCODING` order (each
    within its ABI width: the stored form has no room for more); None for a stored value
    of any other length."""
    return _STORED.unpack(stored) if len(stored) == STORED_SIZE else None


def abi_form(values: tuple) -> bytes:  # type: ignore[type-arg]
    """:func:`stored_values`' values in their ABI form, as :func:`expand_leaf` gives it."""
    return _WORDS.pack(*values)


def _check_leaf_values(values: tuple) -> None:  # type: ignore[type-arg]
    if len(values) != len(LEAF_FIELDS):
        raise InvalidInput(f"a leaf has {len(LEAF_FIELDS)} values, got {len(values)}", field="values")
    for name, value in zip(LEAF_FIELDS, values, strict=True):
        limit = _LIMITS.get(name)
        if limit is not None:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
                raise InvalidInput(f"{value!r} is not a uint below {limit}", field=name)
        else:
            width = 20 if name == "partner" else 32
            if not isinstance(value, bytes) or len(value) != width:
                raise InvalidInput(f"expected {width} bytes", field=name)


def decode_leaf(encoded: bytes) -> LeafValues:
    """Decode a stored leaf, refusing any encoding but the one canonical form (padding
    bytes zero, every value within its ABI width)."""
    if len(encoded) != ENCODED_SIZE:
        raise InvalidInput(f"an encoded leaf is {ENCODED_SIZE} bytes, got {len(encoded)}",
                           field="leaf")
    values = _WORDS.unpack(encoded)
    try:
        canonical = encode_leaf(values)
    except InvalidInput as exc:
        raise InvalidInput(f"not a canonical leaf encoding: {exc}", field="leaf") from exc
    if canonical != encoded:
        raise InvalidInput("not a canonical leaf encoding: non-zero padding", field="leaf")
    return LeafValues(*values)


@lru_cache(maxsize=1024)
def checksum_address(address: bytes | str) -> str:
    """An address's EIP-55 form. Kept: a ledger's leaves and bundles name few addresses
    (its partners' signing addresses, the operator's, its contract), and each form costs a
    keccak (~35 us, a tenth of a proof bundle's making)."""
    return str(to_checksum_address(address))


def leaf_values_to_json(values: tuple) -> list[str | int]:  # type: ignore[type-arg]
    """bytes32 as 0x-hex, integers as decimal strings (JS numbers lose uint64 precision),
    the address EIP-55 checksummed: the forms OZ's JS library reads back unchanged."""
    out: list[str | int] = []
    for abi_type, value in zip(LEAF_ENCODING, values, strict=True):
        if abi_type == "address":
            out.append(checksum_address(value))
        elif abi_type == "bytes32":
            out.append("0x" + value.hex())
        else:
            out.append(str(value))
    return out


def leaf_values_from_json(items: list, *, strings_only: bool = False) -> LeafValues:  # type: ignore[type-arg]
    """Parse values as :func:`leaf_values_to_json` writes them, naming the bad field
    (``strings_only``: integers only as decimal strings, as a proof bundle has them)."""
    if not isinstance(items, list) or len(items) != len(LEAF_FIELDS):
        raise InvalidInput(f"expected a list of {len(LEAF_FIELDS)} values", field="values")
    parsed: list[bytes | int] = []
    for name, abi_type, item in zip(LEAF_FIELDS, LEAF_ENCODING, items, strict=True):
        if abi_type in ("bytes32", "address"):
            digits = 40 if abi_type == "address" else 64
            if not isinstance(item, str) or not re.fullmatch(f"0x[0-9a-fA-F]{{{digits}}}", item):
                raise InvalidInput(f"expected 0x and {digits} hex digits", field=f"values.{name}")
            if abi_type == "address" and item != item.lower() and item != to_checksum_address(item):
                raise InvalidInput("mixed-case address with a wrong EIP-55 checksum",
                                   field=f"values.{name}")
            parsed.append(bytes.fromhex(item[2:]))
        elif isinstance(item, int) and not isinstance(item, bool) and not strings_only:
            parsed.append(item)
        elif isinstance(item, str) and len(item) <= 20 and re.fullmatch(r"0|[1-9][0-9]*", item):
            parsed.append(int(item))
        else:
            raise InvalidInput("expected a decimal integer as a string of at most 20 digits",
                               field=f"values.{name}")
    values = tuple(parsed)
    try:
        encode_leaf(values)  # range and width checks
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"values.{exc.field}") from exc
    return LeafValues(*values)  # type: ignore[arg-type]


@lru_cache(maxsize=1024)
def behaviour_code(code: str) -> bytes:
    """A behaviour code as bytes32: ASCII, right-padded with zero bytes (a few dozen
    codes exist, so each is padded once)."""
    raw = code.encode("ascii", errors="strict") if code.isascii() else b""
    if not raw or len(raw) > 32:
        raise InvalidInput(f"{code!r} is not 1-32 ASCII characters", field="behaviour")
    return raw.ljust(32, b"\0")


def account_commitment(pseudonym: str, salt: bytes) -> bytes:
    """The citizen's face in a leaf: unlinkable once the salt is erased."""
    return keccak(b"carbon-ledger/account\x00" + pseudonym.encode() + b"\x00" + salt)


def credit_entry_id(partner: bytes, partner_record_id: str) -> bytes:
    """Deterministic: the same partner record always maps to the same entry id."""
    return keccak(b"carbon-ledger/credit\x00" + partner + partner_record_id.encode())


def debit_entry_id(redemption_key: bytes) -> bytes:
    return keccak(b"carbon-ledger/debit\x00" + redemption_key)
