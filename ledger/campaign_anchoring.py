"""Campaigns on the chain (#21): what the ledger needs of the anchor contract for them,
pinning a campaign version's rules hash before it starts, anchoring a closed ranking's
root, and the check anyone makes of a campaign file against the pinned hash.

Each signed transaction is recorded before it is sent, so a rerun sends the same one
(or, once the node no longer knows it, a new one with the same contents). A reorg can take
a publication or a ranking root away after it was mined: :func:`recheck_campaign_anchors`
(the serving process's chore, :class:`CampaignAnchorChore`) holds each against the chain
as batches and statements are held, and anchors again what it took away.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol, cast

from sqlalchemy import select

from ledger import campaign_bonuses, campaigns
from ledger.anchor_audit import anchor_problem
from ledger.anchoring import PreparedAnchor, TxReceipt
from ledger.campaign_rules import Campaign, parse_campaign
from ledger.errors import AnchorMismatch, ChainError, InvalidInput, NotFound
from ledger.green_credit_issue import anchoring_turn
from ledger.reanchoring import KeyedAnchors, KeyedRecheck, recheck_keyed
from ledger.seal_scheduler import Throttle
from ledger.store.database import Database
from ledger.store.models import CampaignRanking, CampaignRow

log = logging.getLogger("carbon_ledger.campaigns")


class CampaignReader(Protocol):
    """What anyone reads of campaigns on the anchor contract."""

    @property
    def chain_id(self) -> int: ...

    @property
    def contract_address(self) -> str: ...

    def campaign_rules(self, key: bytes) -> bytes | None:
        """The rules hash pinned for ``key``, or None if it was never published."""

    def ranking_root(self, key: bytes) -> bytes | None:
        """The ranking root anchored for ``key``, or None."""

    def block_time(self) -> int:
        """The latest block's timestamp (the contract's clock for "before it starts")."""

    def find_publication_receipt(self, key: bytes) -> TxReceipt | None:
        """The receipt of a successful transaction that pinned campaign version ``key``."""

    def find_ranking_receipt(self, key: bytes) -> TxReceipt | None:
        """The receipt of a successful transaction that anchored ``key``'s ranking root."""


class CampaignChain(CampaignReader, Protocol):
    """The anchoring key's side: publish rules and anchor rankings."""

    def prepare_publication(self, *, key: bytes, rules_hash: bytes,
                            starts_at: int) -> PreparedAnchor: ...

    def prepare_ranking(self, *, key: bytes, root: bytes, leaf_count: int,
                        content_hash: bytes) -> PreparedAnchor: ...

    def broadcast(self, raw: bytes) -> None: ...

    def is_known(self, tx_hash: bytes) -> bool: ...

    def wait_for_receipt(self, tx_hash: bytes, *, timeout: float) -> TxReceipt: ...

    def check_contract(self) -> None: ...

    def block_hash(self, block_number: int) -> bytes | None: ...



# -- publishing -----------------------------------------------------------------------------

def publish(db: Database, chain: CampaignChain, text: bytes | str, *,
            timeout: float = 120.0) -> Campaign:
    """Register a campaign file and pin its rules hash on chain before it starts.

    The signed transaction is recorded before it is sent (a rerun sends the same one);
    a version the chain already pins with the same hash is taken as published, with
    another hash it is an :class:`AnchorMismatch`. A correction whose ranking counts other
    credits has the running standings counted anew in the transaction that marks it
    published (:func:`ledger.campaign_bonuses.follow_correction`)."""
    campaign = parse_campaign(text)
    pinned = chain.campaign_rules(campaign.key)
    if pinned is not None and pinned != campaign.rules_hash:
        raise AnchorMismatch(f"{campaign.id} version {campaign.version} is pinned on chain with "
                             f"rules hash 0x{pinned.hex()}; this file hashes "
                             f"0x{campaign.rules_hash.hex()}: publish the correction as a new "
                             "version", field="version")
    if pinned is None and campaign.starts_at <= chain.block_time():
        raise InvalidInput(f"{campaign.id} version {campaign.version} starts "
                           f"{campaign.starts.isoformat()}: rules are pinned before the start, "
                           "so publish a version that starts later", field="starts")
    with db.session(write_lock=True) as s:
        row = campaigns.register(s, campaign)
        raw, tx_hash = row.raw_tx, row.tx_hash
    if pinned is None:
        if raw is None or tx_hash is None or not chain.is_known(tx_hash):
            prepared = chain.prepare_publication(key=campaign.key, rules_hash=campaign.rules_hash,
                                                 starts_at=campaign.starts_at)
            with db.session(write_lock=True) as s:
                row = s.get_one(CampaignRow, campaign.key)
                row.tx_hash, row.raw_tx, row.status = prepared.tx_hash, prepared.raw, "submitted"
            raw, tx_hash = prepared.raw, prepared.tx_hash
        chain.broadcast(raw)
        receipt = chain.wait_for_receipt(tx_hash, timeout=timeout)
        if not receipt.succeeded:
            raise ChainError(f"the publication of {campaign.id} v{campaign.version} reverted",
                             field="txHash")
        block, gas = receipt.block_number, receipt.gas_used
    else:
        block, gas = None, None
    with db.session(write_lock=True) as s:
        row = s.get_one(CampaignRow, campaign.key)
        row.status, row.published_at = "published", int(time.time())
        row.chain_id, row.contract_address = chain.chain_id, chain.contract_address
        if block is not None:
            row.tx_hash, row.block_number, row.gas_used = tx_hash, block, gas
        s.flush()
        if campaign_bonuses.follow_correction(s, campaign):
            log.info("campaign %s v%d ranks other credits: its standings were counted anew",
                     campaign.id, campaign.version)
    log.info("campaign %s v%d published (rules 0x%s)", campaign.id, campaign.version,
             campaign.rules_hash.hex())
    return campaign


def check_file(reader: CampaignReader, text: bytes | str) -> Campaign:
    """A campaign file as anyone checks it: its hash must be the one the contract pins
    for its id and version; otherwise it is refused, naming both hashes."""
    campaign = parse_campaign(text)
    pinned = reader.campaign_rules(campaign.key)
    if pinned is None:
        raise NotFound(f"{campaign.id} version {campaign.version} was never published on "
                       f"this contract", field="version")
    if pinned != campaign.rules_hash:
        raise InvalidInput(f"this file hashes 0x{campaign.rules_hash.hex()}, the contract pins "
                           f"0x{pinned.hex()} for {campaign.id} v{campaign.version}: these are "
                           "not the published rules", field="campaign")
    return campaign


# -- rankings ----------------------------------------------------------------------------

def anchor_ranking(db: Database, chain: CampaignChain, campaign_id: str, *,
                   timeout: float = 120.0) -> CampaignRanking:
    """Pin a closed ranking's root on the contract (a rerun sends the same transaction)."""
    with db.session() as s:
        row = s.get(CampaignRanking, campaign_id)
        if row is None:
            raise NotFound(f"the ranking of {campaign_id!r} is not closed", field="campaign")
        s.expunge(row)
    on_chain = chain.ranking_root(row.campaign_key)
    if on_chain is not None:
        if on_chain != row.root:
            raise AnchorMismatch(f"the chain holds ranking root 0x{on_chain.hex()}, the ledger "
                                 f"closed 0x{row.root.hex()}", field="root")
        block, gas, tx_hash = row.block_number, row.gas_used, row.tx_hash
    else:
        raw, tx_hash = row.raw_tx, row.tx_hash
        if raw is None or tx_hash is None or not chain.is_known(tx_hash):
            prepared = chain.prepare_ranking(key=row.campaign_key, root=row.root,
                                             leaf_count=row.leaf_count,
                                             content_hash=row.content_hash)
            with db.session(write_lock=True) as s:
                r = s.get_one(CampaignRanking, campaign_id)
                r.tx_hash, r.raw_tx, r.status = prepared.tx_hash, prepared.raw, "submitted"
            raw, tx_hash = prepared.raw, prepared.tx_hash
        chain.broadcast(raw)
        receipt = chain.wait_for_receipt(tx_hash, timeout=timeout)
        if not receipt.succeeded:
            raise ChainError(f"the ranking anchor of {campaign_id!r} reverted", field="txHash")
        block, gas = receipt.block_number, receipt.gas_used
    with db.session(write_lock=True) as s:
        r = s.get_one(CampaignRanking, campaign_id)
        r.status, r.tx_hash, r.block_number, r.gas_used = "anchored", tx_hash, block, gas
        r.anchored_at, r.chain_id, r.contract_address = (int(time.time()), chain.chain_id,
                                                         chain.contract_address)
        s.flush()
        s.expunge(r)
        return r


# -- after a reorg ---------------------------------------------------------------------------

class PublicationAnchors(KeyedAnchors):
    """Published campaign versions: each rules hash pinned under the version's key."""

    what, model, key, held, unsent, held_since = (
        "campaign", CampaignRow, "key", "published", "registered", "published_at")

    def __init__(self, db: Database, chain: CampaignChain) -> None:
        super().__init__(db, chain)
        self.campaigns = chain

    def label(self, row: CampaignRow) -> str:
        return f"campaign {row.campaign_id} v{row.version}"

    def receipt_of(self, row: CampaignRow) -> TxReceipt | None:
        pinned = self.campaigns.campaign_rules(row.key)
        if pinned is None:
            return None
        if pinned != row.rules_hash:
            raise AnchorMismatch(f"{self.label(row)} on chain: rules hash differs: chain "
                                 f"0x{pinned.hex()}, ledger 0x{row.rules_hash.hex()}",
                                 field="rules_hash")
        receipt = self.campaigns.find_publication_receipt(row.key)
        if receipt is None:
            raise AnchorMismatch(f"{self.label(row)} on chain: its publishing transaction was "
                                 "not found", field="txHash")
        return receipt


class RankingAnchors(KeyedAnchors):
    """Closed rankings: each root anchored under its campaign version's key."""

    what, model, key, held, unsent, held_since = (
        "ranking", CampaignRanking, "campaign_id", "anchored", "closed", "anchored_at")

    def __init__(self, db: Database, chain: CampaignChain) -> None:
        super().__init__(db, chain)
        self.campaigns = chain

    def receipt_of(self, row: CampaignRanking) -> TxReceipt | None:
        root = self.campaigns.ranking_root(row.campaign_key)
        if root is None:
            return None
        if root != row.root:
            raise AnchorMismatch(f"{self.label(row)} on chain: root differs: chain "
                                 f"0x{root.hex()}, ledger 0x{row.root.hex()}", field="root")
        receipt = self.campaigns.find_ranking_receipt(row.campaign_key)
        if receipt is None:
            raise AnchorMismatch(f"{self.label(row)} on chain: its anchoring transaction was "
                                 "not found", field="txHash")
        return receipt


def recheck_campaign_anchors(db: Database, chain: CampaignChain) -> KeyedRecheck:
    """Hold every published campaign version and anchored ranking root against the chain
    (:func:`ledger.reanchoring.recheck_keyed`), then send again what is left submitted: what
    a reorg took away, or a crash left unconfirmed. A version whose campaign has started
    can no longer be pinned (the contract refuses it): that is logged as an error, and the
    version awards nothing until it is."""
    found = recheck_keyed(PublicationAnchors(db, chain))
    rankings = recheck_keyed(RankingAnchors(db, chain))
    found.reopened += rankings.reopened
    found.moved += rankings.moved
    with db.session() as s:
        unpinned = list(s.scalars(select(CampaignRow.rules).where(CampaignRow.status == "submitted")
                                  .order_by(CampaignRow.campaign_id, CampaignRow.version)))
        unanchored = list(s.scalars(select(CampaignRanking.campaign_id)
                                    .where(CampaignRanking.status == "submitted")
                                    .order_by(CampaignRanking.campaign_id)))
    for rules in unpinned:
        try:
            publish(db, chain, rules)
        except InvalidInput as exc:
            log.error("a campaign version the chain does not pin: %s", exc.message)
    for campaign_id in unanchored:
        anchor_ranking(db, chain, campaign_id)
    return found


def campaign_chain_problems(db: Database, chain: CampaignReader | None
                            ) -> tuple[int, list[tuple[str, str]]]:
    """How many campaign versions and ranking roots the ledger calls anchored, and each
    one the chain does not hold as the ledger says, as (label, problem): its hash or root
    in the contract's state, by the transaction and block the ledger recorded. Reads only
    (``carbon-ledger chain check``); with no ``chain`` (no contract there) each is missing."""
    held, problems = 0, []
    for kind in (PublicationAnchors, RankingAnchors):
        # what this reads of the anchors (rows, labels, receipt_of) needs a reader only
        anchors = kind(db, cast(CampaignChain, chain))
        rows: list[Any] = anchors.held_rows()
        held += len(rows)
        for row in rows:
            label = anchors.label(row)
            problem = "missing on chain" if chain is None else anchor_problem(
                lambda: anchors.receipt_of(row),  # noqa: B023 - called at once
                f"{label} on chain: ", tx_hash=row.tx_hash, block_number=row.block_number)
            if problem:
                problems.append((label, problem))
    return held, problems


class CampaignAnchorChore:
    """What a serving process does after its seals, at most every ``every`` seconds: hold
    the campaigns' anchors against the chain (:func:`recheck_campaign_anchors`). Run by
    the sealer's lease holder, in the anchoring key's turn."""

    def __init__(self, db: Database, chain: CampaignChain, *, every: float = 300.0) -> None:
        self.db, self.chain = db, chain
        self.throttle = Throttle(every)

    def __call__(self) -> None:
        if not self.throttle.due():
            return
        with anchoring_turn(self.db, when_taken=self.throttle.again):
            recheck_campaign_anchors(self.db, self.chain)
