"""The composition root: settings → database, chain client, services. The CLI and the
HTTP app both build what they need here, and nowhere else: this is the only module of the
faces that imports ``chain/``; the rest of them see the chain through the ports in
``ledger/anchoring.py`` (:class:`Anchor`, :class:`ChainReader`)."""

from __future__ import annotations

import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from api.settings import Settings
from chain.client import ChainKind, EvmAnchor, call_chain
from chain.connect import connect_anchor, open_reader
from chain.keys import load_signer
from chain.nodes import ManagedAnvil, in_process_web3, managed_node_url, node_file, rpc_web3
from ledger.anchoring import Anchor, ChainReader
from ledger.campaign_anchoring import CampaignChain, CampaignReader
from ledger.errors import InvalidInput
from ledger.proof_service import ProofService
from ledger.seal_scheduler import SealScheduler
from ledger.sealing import STEPS, Sealer, SealOptions
from ledger.statements import StatementChain, StatementReader
from ledger.store.database import Database
from ledger.store.schema import create_schema

log = logging.getLogger("carbon_ledger.data_dir")


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        open_data_dir(settings.data_dir)

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
    def anchor(self) -> Iterator[EvmAnchor]:
        """The anchoring client for the configured chain, for the block's duration."""
        s = self.settings
        if s.chain == "tester":
            yield connect_anchor(in_process_web3(), ChainKind.TESTER, self.signer, self.db)
        elif s.chain == "rpc" or s.rpc_url:
            if not s.rpc_url:
                raise InvalidInput("chain 'rpc' needs an RPC URL", field="rpc_url")
            kind = ChainKind.ANVIL if s.chain == "anvil" else ChainKind.RPC
            yield connect_anchor(rpc_web3(s.rpc_url), kind, self.signer, self.db)
        else:
            with managed_node_url(s.data_dir) as url:
                yield connect_anchor(rpc_web3(url), ChainKind.ANVIL, self.signer, self.db)

    @contextmanager
    def node_url(self) -> Iterator[str]:
        """The chain's JSON-RPC URL: the configured one, else the data dir's managed anvil
        (started if it is not running, and stopped afterwards if it was started here)."""
        if self.settings.rpc_url:
            yield self.settings.rpc_url
        else:
            with managed_node_url(self.settings.data_dir) as url:
                yield url

    def ledger_reader(self, url: str) -> ChainReader | None:
        """This ledger's contract on the chain at ``url``, read-only (no key, never
        deploys), or None if the ledger never deployed there."""
        return open_reader(rpc_web3(url), self.db)

    def audit_job_chain(self, anchor: Anchor) -> ReaderAt | None:
        """How an audit job's process opens the chain ``anchor`` serves, to hold a large
        batch against it as the request holds a small one; None for the in-process chain,
        which lives in the server's process alone."""
        if self.settings.chain == "tester" or not isinstance(anchor, EvmAnchor):
            return None
        return ReaderAt(anchor.w3.provider.endpoint_uri)  # type: ignore[attr-defined]

    @contextmanager
    def foreground_node(self, port: int | None) -> Iterator[ManagedAnvil]:
        """The data dir's anvil, started here and named in the data dir (``node.json``)
        while it runs, so the other commands use it; stopped (state dumped) at the end."""
        anvil = ManagedAnvil(self.settings.data_dir / "anvil", port=port)
        anvil.start()
        try:
            with node_file(self.settings.data_dir, anvil.url):
                yield anvil
        finally:
            anvil.stop()

    def proof_service(self, anchor: Anchor | None = None) -> ProofService:
        """Bundles from the stored trees; with ``anchor``, confirmations on its chain."""
        return ProofService(self.db, anchor.head if anchor is not None else None)

    def seal_scheduler(self, anchor: Anchor, *,
                       on_proofs_changed: Callable[[list[int]], None] | None = None
                       ) -> SealScheduler:
        """A serving process's background sealing, by the settings' interval and backlog;
        after its seals, month statements and credential revocations (#20), campaign
        anchors held against the chain and campaign bonuses (#21)."""
        from ledger.campaign_anchoring import CampaignAnchorChore
        from ledger.campaign_bonuses import BonusChore
        from ledger.green_credit_issue import StatementChore

        statements: list[Callable[[], None]] = (
            [StatementChore(self.db, self.statement_chain(anchor)),
             CampaignAnchorChore(self.db, self.campaign_chain(anchor))]
            if isinstance(anchor, EvmAnchor) else [])
        bonuses = BonusChore(self.db, self.operator_address)  # campaigns' bonus points (#21)
        return SealScheduler(self.db, lambda: self.sealer(anchor),
                             interval=self.settings.seal_interval,
                             pending=self.settings.seal_pending,
                             on_proofs_changed=on_proofs_changed, chores=[*statements, bonuses])

    def statement_chain(self, anchor: EvmAnchor) -> StatementChain:
        """Statements and credential status on ``anchor``'s contract, with its key (#20)."""
        from chain.statements import EvmStatements

        return EvmStatements(anchor, max_fee_wei=self.max_fee_wei)

    def campaign_chain(self, anchor: EvmAnchor) -> CampaignChain:
        """Campaign publications and ranking roots on ``anchor``'s contract (#21)."""
        from chain.campaigns import EvmCampaigns

        return EvmCampaigns(anchor, max_fee_wei=self.max_fee_wei)

    @property
    def max_fee_wei(self) -> int:
        """The most any transaction with the anchoring key pays per gas (EIP-1559 max fee):
        batch anchors, statements, revocations, campaign publications and ranking roots."""
        return int(self.settings.max_fee_gwei * 10**9)

    def sealer(self, anchor: Anchor) -> Sealer:
        s = self.settings
        return Sealer(self.db, anchor, SealOptions(
            confirmations=s.confirmations, workers=s.seal_workers, max_batch=s.seal_max_batch,
            receipt_timeout=s.receipt_timeout, max_fee_wei=self.max_fee_wei,
            replace_after=s.replace_after, replace_after_blocks=s.replace_after_blocks,
            on_step=pause_at(s.fault_pause) if s.fault_pause else None))


def pause_at(point: str) -> Callable[[str, int], None]:
    """A step hook for fault tests (``CARBON_LEDGER_FAULT_PAUSE``): at ``point``, say so
    on stderr and wait there to be killed."""

    if point not in (*STEPS, "replacing", "replaced"):
        raise InvalidInput(f"{point!r} is not one of the sealer's steps: {', '.join(STEPS)}, "
                           "replacing, replaced", field="fault_pause")

    def hook(step: str, batch_id: int) -> None:
        if step != point:
            return
        print(f"fault-pause: {step} batch {batch_id} pid {os.getpid()}", file=sys.stderr,
              flush=True)
        time.sleep(600)
        os._exit(70)  # nobody came: do not carry on as if nothing happened

    return hook


@dataclass(frozen=True)
class ReaderAt:
    """This ledger's contract on the chain at ``url``, opened read-only in another process
    (an audit job's: picklable, so it crosses a spawn)."""

    url: str

    def __call__(self, db: Database) -> ChainReader | None:
        return open_reader(rpc_web3(self.url), db)


def container(data_dir: Path | None = None, chain: str | None = None, rpc: str | None = None,
              **overrides: Any) -> Container:
    """The composition root for one command or process: settings from the options given
    (the rest from the environment and defaults), then the container that builds the rest."""
    given = {"data_dir": data_dir, "chain": chain, "rpc_url": rpc, **overrides}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise InvalidInput(str(exc).splitlines()[1] if "\n" in str(exc) else str(exc),
                           field="settings") from exc
    return Container(settings)


def compile_contract() -> tuple[Path, dict[str, Any]]:
    """Recompile the anchor contract and rewrite its committed artifact; its path and the
    artifact."""
    from chain.compiler import ARTIFACT_PATH, write_artifact

    return ARTIFACT_PATH, write_artifact()


def contract_reader(rpc_url: str, contract: str) -> ChainReader:
    """A contract on the chain at ``rpc_url``, read as an outside verifier reads it."""
    return EvmAnchor(rpc_web3(rpc_url), ChainKind.RPC, contract, signer=None)


def statement_reader(rpc_url: str, contract: str) -> StatementReader:
    """A contract's statements and credential status, read as a bank's verifier reads them."""
    from chain.statements import EvmStatements

    return EvmStatements(EvmAnchor(rpc_web3(rpc_url), ChainKind.RPC, contract, signer=None))


def campaign_reader(rpc_url: str, contract: str) -> CampaignReader:
    """A contract's pinned campaign rules and ranking roots, read as anyone reads them."""
    from chain.campaigns import EvmCampaigns

    return EvmCampaigns(EvmAnchor(rpc_web3(rpc_url), ChainKind.RPC, contract, signer=None))


def served_chain_id(rpc_url: str) -> int:
    """The id of the chain the endpoint serves (asked of the endpoint itself)."""
    w3 = rpc_web3(rpc_url)
    return int(call_chain(lambda: w3.eth.chain_id, "chain id"))


def open_data_dir(path: Path) -> None:
    """Make the data dir owner-only (0700): it holds citizens' salts, raw records, key
    hashes and the anchoring keystore, and what the ledger writes in it is 0600. A data dir
    that exists already is left as it is, with one warning line if it or a file in it is
    open to other users (the operator may share it on purpose, e.g. with a backup group)."""
    try:
        path.mkdir(parents=True, mode=0o700)
        return
    except FileExistsError:
        pass
    open_to_others = [(p, mode) for p, mode in _modes(path) if mode & 0o077]
    if open_to_others:
        shown = ", ".join(f"{p.relative_to(path) if p != path else 'the folder'} "
                          f"{mode:04o}" for p, mode in open_to_others[:4])
        more = f" and {len(open_to_others) - 4} more" if len(open_to_others) > 4 else ""
        log.warning("data dir %s is open to other users (%s%s); it holds salts, records and "
                    "keys: chmod -R go-rwx %s", path, shown, more, path)


def _modes(path: Path, *, depth: int = 2) -> Iterator[tuple[Path, int]]:
    """The permission bits of ``path`` and what is under it, ``depth`` levels down;
    symbolic links are not followed."""
    st = path.lstat()
    yield path, stat.S_IMODE(st.st_mode)
    if depth and stat.S_ISDIR(st.st_mode):
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:  # unreadable: its mode above says enough
            return
        for entry in entries:
            if not entry.is_symlink():
                yield from _modes(Path(entry.path), depth=depth - 1)


def chain_head(rpc_url: str) -> int:
    """The newest block number the endpoint serves (for confirmations)."""
    from chain.client import call_chain

    w3 = rpc_web3(rpc_url)
    return int(call_chain(lambda: w3.eth.block_number, "block number"))
