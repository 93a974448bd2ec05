"""Keccak-256, the one hash of the project, from the fastest backend installed.

safe-pysha3 is a thin C binding and about 3x faster per call than eth-hash's default
pycryptodome backend, which matters when a batch hashes millions of leaves.
"""

from __future__ import annotations

from collections.abc import Callable

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
