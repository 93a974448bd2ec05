"""The composition root: settings → database, chain client, services. The CLI and the
HTTP app both build what they need here, and nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from eth_account.signers.local import LocalAccount
from web3 import Web3

from api.settings import Settings
from chain.client import ChainKind, EvmAnchor
from chain.connect import connect_anchor
from chain.keys import load_signer
from chain.nodes import in_process_web3, managed_node_url, rpc_web3
from ledger.db import Database, create_schema
from ledger.errors import ChainError, InvalidInput, NotFound
from ledger.models import ChainDeployment
from ledger.sealing import Sealer, SealOptions


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def db(self) -> Database:
        db = Database(self.settings.db_url)
        create_schema(db.engine)
        return db

    @cached_property
    def signer(self) -> LocalAccount:
        s = self.settings
        return load_signer(
            private_key=s.anchor_key.get_secret_value() if s.anchor_key else None,
            keystore=s.keystore,
            password=s.keystore_password.get_secret_value() if s.keystore_password else None,
            data_dir=s.data_dir, allow_dev_key=s.chain != "rpc")

    @property
    def operator_address(self) -> bytes:
        return bytes.fromhex(self.signer.address[2:])

    @contextmanager
    def web3(self) -> Iterator[tuple[Web3, ChainKind]]:
        """A connection to the configured chain, for the block's duration."""
        s = self.settings
        if s.chain == "tester":
            yield in_process_web3(), ChainKind.TESTER
        elif s.chain == "rpc" or s.rpc_url:
            if not s.rpc_url:
                raise InvalidInput("chain 'rpc' needs an RPC URL", field="rpc_url")
            yield rpc_web3(s.rpc_url), ChainKind.ANVIL if s.chain == "anvil" else ChainKind.RPC
        else:
            with managed_node_url(s.data_dir) as url:
                yield rpc_web3(url), ChainKind.ANVIL

    @contextmanager
    def anchor(self) -> Iterator[EvmAnchor]:
        """The anchoring client for the configured chain, for the block's duration."""
        with self.web3() as (w3, kind):
            yield connect_anchor(w3, kind, self.signer, self.db)

    @contextmanager
    def reader(self) -> Iterator[EvmAnchor]:
        """The contract this ledger anchored to, read-only and never deployed: what
        ``chain check`` compares with, even when the node has lost it."""
        with self.web3() as (w3, kind):
            try:
                chain_id = int(w3.eth.chain_id)
            except Exception as exc:  # noqa: BLE001 - any transport failure means unreachable
                raise ChainError(f"cannot reach the chain: {exc}", field="chain") from exc
            with self.db.session() as s:
                known = s.get(ChainDeployment, chain_id)
            if known is None:
                raise NotFound(f"this ledger has no contract on chain {chain_id}", field="chain")
            yield EvmAnchor(w3, kind, known.address, signer=None)

    def sealer(self, anchor: EvmAnchor) -> Sealer:
        s = self.settings
        ceiling = int(s.max_fee_gwei * 10**9) if s.max_fee_gwei is not None else None
        anchor.with_fee_ceiling(ceiling)
        return Sealer(self.db, anchor, SealOptions(confirmations=s.confirmations,
                                                   workers=s.seal_workers,
                                                   receipt_timeout=s.receipt_timeout,
                                                   stuck_after=s.stuck_after))
