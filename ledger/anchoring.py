"""What the ledger needs from a chain, as a small protocol that ``chain/`` implements.

Sending is split in two (``prepare_anchor`` then ``broadcast``) so the sealer can
record a transaction's hash before it leaves the machine: after a crash the next seal
knows what may be in flight and never anchors a batch twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class AnchoredBatch:
    """A batch as the contract remembers it."""

    batch_id: int
    root: bytes
    leaf_count: int
    content_hash: bytes
    block_number: int


@dataclass(frozen=True)
class PreparedAnchor:
    """A signed anchoring transaction not yet broadcast, and the EIP-1559 fees it offers
    (a replacement for a stuck one must offer more)."""

    tx_hash: bytes
    raw: bytes
    nonce: int
    max_fee: int = 0
    tip: int = 0


@dataclass(frozen=True)
class TxReceipt:
    tx_hash: bytes
    block_number: int
    succeeded: bool
    gas_used: int
    to: str | None
    block_hash: bytes | None = None


@dataclass(frozen=True)
class AnchorEvent:
    """A ``BatchAnchored`` log found in a transaction's receipt."""

    batch_id: int
    root: bytes
    leaf_count: int
    content_hash: bytes


class ChainReader(Protocol):
    """Read access, all a verifier needs."""

    @property
    def chain_id(self) -> int: ...

    @property
    def contract_address(self) -> str: ...

    def latest_batch_id(self) -> int: ...

    def anchored_batch(self, batch_id: int) -> AnchoredBatch | None: ...

    def receipt(self, tx_hash: bytes) -> TxReceipt | None: ...

    def anchor_events(self, tx_hash: bytes) -> list[AnchorEvent]: ...

    def confirmations(self, block_number: int) -> int: ...

    def head_block(self) -> int: ...

    def verify_on_chain(self, batch_id: int, leaf: bytes, proof: list[bytes]) -> bool: ...


class Anchor(ChainReader, Protocol):
    """Read and write access, what the sealer needs."""

    def prepare_anchor(
        self, *, batch_id: int, root: bytes, leaf_count: int, content_hash: bytes,
        replacing: PreparedAnchor | None = None,
    ) -> PreparedAnchor:
        """Sign the anchoring transaction; ``replacing`` a stuck one keeps its nonce and
        raises both fees by at least the 12.5% nodes require of a replacement."""
        ...

    def is_canonical(self, receipt: TxReceipt) -> bool:
        """Whether the receipt's block is still on the canonical chain (no reorg)."""
        ...

    def broadcast(self, raw: bytes) -> None: ...

    def has_code(self) -> bool:
        """Whether the contract is (still) deployed where the ledger anchors."""
        ...

    def find_anchor_receipt(self, batch_id: int) -> TxReceipt | None:
        """The receipt of the transaction whose ``BatchAnchored`` event names ``batch_id``."""
        ...

    def is_pending(self, tx_hash: bytes) -> bool: ...

    def wait_for_receipt(self, tx_hash: bytes, *, timeout: float) -> TxReceipt: ...

    def wait_for_confirmations(self, block_number: int, *, confirmations: int,
                               timeout: float) -> int: ...
