"""Keccak-256, the one hash of the project, from the fastest backend installed.

safe-pysha3 is a thin C binding and about 3x faster per call than eth-hash's default
pycryptodome backend, which matters when a batch hashes millions of leaves.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ledger.errors import InvalidInput

try:  # pragma: no branch - which backend is installed is fixed per environment
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        """Keccak-256 of ``data`` (Ethereum's hash, not NIST SHA3-256)."""
        return _keccak_256(data).digest()

    KECCAK_BACKEND = "pysha3"
except ImportError:  # pragma: no cover - exercised only where pysha3 cannot build
    from eth_hash.auto import keccak as _eth_keccak

    keccak: Callable[[bytes], bytes] = _eth_keccak  # type: ignore[no-redef]
    KECCAK_BACKEND = "eth-hash"


_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_hex32(text: object, *, field: str) -> bytes:
    """A 32-byte value written as ``0x`` and exactly 64 hex digits, in either case.

    ``bytes.fromhex`` alone would skip spaces, tabs and newlines between the digits; a
    32-byte value in this project's formats has nothing around or between them."""
    if not isinstance(text, str) or not _HEX32.fullmatch(text):
        shown = repr(text) if len(repr(text)) <= 80 else repr(text)[:77] + "..."
        raise InvalidInput(f"expected 0x and 64 hex digits, got {shown}", field=field)
    return bytes.fromhex(text[2:])
