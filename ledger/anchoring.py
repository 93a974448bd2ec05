"""What the ledger needs from a chain, as a small protocol that ``chain/`` implements.

Sending is split in two (``prepare_anchor`` then ``broadcast``) so the sealer can
record a transaction's hash before it leaves the machine: after a crash the next seal
knows what may be in flight and never anchors a batch twice. A prepared transaction
can be prepared again for the same nonce with higher fees (a replacement), so only one
of them can ever be mined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PreparedAnchor:
    """A signed anchoring transaction not yet broadcast."""

    tx_hash: bytes
    raw: bytes
    nonce: int
    max_fee: int = 0
    priority_fee: int = 0


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


@dataclass(frozen=True)
class AnchoredBatch:
    """A batch as the chain holds it: the root from the contract's state, the leaf count
    and content hash from the ``BatchAnchored`` event in ``receipt``, the anchoring
    transaction's (which says the block, too). The contract stores only the root."""

    batch_id: int
    root: bytes
    leaf_count: int
    content_hash: bytes
    receipt: TxReceipt

    @property
    def tx_hash(self) -> bytes:
        return self.receipt.tx_hash

    @property
    def block_number(self) -> int:
        return self.receipt.block_number


@dataclass(frozen=True)
class AccountNonces:
    """The anchoring key's transaction counts: mined (``latest``) and with the pool's."""

    mined: int
    pending: int


class ChainReader(Protocol):
    """Read access, all a verifier needs."""

    @property
    def chain_id(self) -> int: ...

    @property
    def contract_address(self) -> str: ...

    def latest_batch_id(self) -> int: ...

    def has_code(self) -> bool:
        """Whether the contract address holds code."""
        ...

    def created_contract(self, tx_hash: bytes) -> tuple[str, int] | None:
        """The address a deployment transaction created and its block, if it did."""
        ...

    def anchored_root(self, batch_id: int) -> bytes | None:
        """The root the contract holds for ``batch_id``; None if it holds none."""
        ...

    def receipt(self, tx_hash: bytes) -> TxReceipt | None: ...

    def anchor_events(self, tx_hash: bytes) -> list[AnchorEvent]: ...

    def confirmations(self, block_number: int) -> int: ...

    def verify_on_chain(self, batch_id: int, leaf: bytes, proof: list[bytes]) -> bool: ...

    def find_anchor_receipt(self, batch_id: int) -> TxReceipt | None:
        """The receipt of the transaction whose ``BatchAnchored`` event names ``batch_id``,
        found through the contract's logs (a claim: check its event against the state)."""
        ...


class Anchor(ChainReader, Protocol):
    """Read and write access, what the sealer needs."""

    def reader(self) -> ChainReader:
        """The same contract seen read-only, as an outside verifier sees it (no key, and
        no dev-chain favours such as mining to reach confirmations)."""
        ...

    def check_contract(self) -> None:
        """Raise :class:`~ledger.errors.AnchorMismatch` if the contract has no code (a
        node that came back without its state)."""
        ...

    def prepare_anchor(
        self, *, batch_id: int, root: bytes, leaf_count: int, content_hash: bytes,
        nonce: int | None = None, replacing: bytes | None = None,
        max_fee_ceiling: int | None = None,
    ) -> PreparedAnchor:
        """Simulate, price (EIP-1559) and sign. ``nonce`` defaults to the key's pending
        count; ``replacing`` (a raw transaction of the same nonce) bumps both fees by at
        least 12.5%. Raises :class:`FeeAboveCeiling` rather than sign above the ceiling."""
        ...

    def broadcast(self, raw: bytes) -> None:
        """Send; a transaction the node already has, or whose nonce is already used, is
        not an error (whether it counts is for the receipt to say). Raises
        :class:`FeeTooLow` when the base fee has risen above the transaction's max fee."""
        ...

    def is_known(self, tx_hash: bytes) -> bool:
        """Whether the node has the transaction (in its pool or mined)."""
        ...

    def nonces(self) -> AccountNonces: ...

    def head(self) -> int: ...

    def block_hash(self, block_number: int) -> bytes | None:
        """The canonical block's hash at ``block_number`` (None beyond the head)."""
        ...

    def mine_if_dev(self, blocks: int) -> bool:
        """Mine ``blocks`` on a dev chain to reach confirmations at once; False elsewhere."""
        ...

    def advance_clock_if_dev(self, to: int) -> bool:
        """Mine a block at ``to`` (unix seconds) on a dev chain, later blocks following it
        (the demo lives its season ahead of the wall clock); False elsewhere."""
        ...
