"""Campaign rankings anyone can check (#21).

At the end of a ranking's period, :func:`close_ranking` ranks the citizens who opted in
by the published rules over the entries of anchored batches only (so the auditor reads
the same entries from the chain's batches), seals the ranking into an OpenZeppelin
standard Merkle tree, one leaf per ranked account::

    abi.encode(bytes32 campaign, bytes32 account, uint64 metric, uint32 rank, uint64 prize)

and credits each prize as a kind-3 entry whose record hash names the ranking's root.
:func:`ledger.campaign_anchoring.anchor_ranking` pins the root on the contract. Each
participant's proof (:func:`rank_proof`) shows their rank against that root; a nickname is
only ever in the database, so erasing it leaves every leaf and proof as it was. The
public leaderboard is read here too; the audit is :mod:`ledger.ranking_audit`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import campaign_bonuses, campaigns
from ledger.accounts import credit_points
from ledger.campaign_rules import Campaign, RankingRules
from ledger.entries import make_entry
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.hashing import keccak
from ledger.leaf import KIND_BONUS, KIND_CREDIT, LeafValues, behaviour_code, decode_leaf
from ledger.merkle import build_tree, hash_leaf, root, verify_inclusion
from ledger.methodology import methodology_in_force
from ledger.proofs import TreeCache, default_tree_cache
from ledger.store.database import Database
from ledger.store.models import (
    Batch,
    CampaignParticipant,
    CampaignRank,
    CampaignRanking,
    CampaignStanding,
    Citizen,
    EntryLocator,
    LedgerEntry,
)
from ledger.store.trees import RANKING_TREES, store_tree

RANK_LEAF_ENCODING = ("bytes32", "bytes32", "uint64", "uint32", "uint64")


@dataclass(frozen=True)
class RankLeaf:
    campaign: bytes
    account: bytes
    metric: int
    rank: int
    prize: int

    def encode(self) -> bytes:
        return abi_encode(list(RANK_LEAF_ENCODING), [self.campaign, self.account, self.metric,
                                                     self.rank, self.prize])

    def leaf_hash(self) -> bytes:
        return hash_leaf(self.encode())

    def to_json(self) -> dict[str, str | int]:
        return {"campaign": "0x" + self.campaign.hex(), "account": "0x" + self.account.hex(),
                "metric": str(self.metric), "rank": self.rank, "prize": str(self.prize)}

    @classmethod
    def decode(cls, encoded: bytes) -> RankLeaf:
        campaign, account, metric, rank, prize = abi_decode(list(RANK_LEAF_ENCODING), encoded)
        return cls(bytes(campaign), bytes(account), int(metric), int(rank), int(prize))


@dataclass(frozen=True)
class Score:
    account: bytes
    metric: int
    reached_at: int  # the latest counted entry's time: when the final figure was reached


# -- the rules, applied ---------------------------------------------------------------------

def scores(rules: RankingRules, entries: Iterable[LeafValues], accounts: set[bytes] | None
           ) -> dict[bytes, Score]:
    """Each account's metric from its entries' leaves: credits of the ranking's behaviours
    that occurred in its period (``accounts``: only these; None: every account)."""
    behaviours = {behaviour_code(b) for b in rules.behaviours}
    start, end = rules.starts_at, rules.ends_at
    sums: dict[bytes, list[int]] = {}
    for e in entries:
        if (e.kind != KIND_CREDIT or e.behaviour not in behaviours or e.reduction_grams == 0
                or not start <= e.occurred_at < end
                or (accounts is not None and e.account not in accounts)):
            continue
        total = sums.setdefault(e.account, [0, 0])
        total[0] += e.reduction_grams
        total[1] = max(total[1], e.occurred_at)
    return {a: Score(a, g, at) for a, (g, at) in sums.items()}


def order(rules: RankingRules, found: Iterable[Score]) -> list[Score]:
    """Ranked best first: the metric, then the tie-break, then the account commitment
    (random per citizen and fixed before the campaign), so no two ever tie."""
    eligible = [s for s in found if s.metric >= max(rules.minimum, 1)]
    if rules.tie_break == "earliest_reached":
        return sorted(eligible, key=lambda s: (-s.metric, s.reached_at, s.account))
    return sorted(eligible, key=lambda s: (-s.metric, s.account))


def rank_leaves(campaign: Campaign, ranked: Sequence[Score]) -> list[RankLeaf]:
    assert campaign.ranking is not None
    return [RankLeaf(campaign.key, s.account, s.metric, i, campaign.ranking.prize_for(i))
            for i, s in enumerate(ranked, start=1)]


def content_hash(through_batch_id: int, leaves: Sequence[RankLeaf]) -> bytes:
    """keccak256 of the batch the ranking reads through (uint64, ABI) and its leaf hashes
    in rank order: what the ``RankingAnchored`` event carries."""
    return keccak(abi_encode(["uint64"], [through_batch_id])
                  + b"".join(leaf.leaf_hash() for leaf in leaves))


def prize_entry_id(key: bytes, account: bytes) -> bytes:
    return keccak(b"carbon-ledger/prize\x00" + key + account)


def prize_record(key: bytes, ranking_root: bytes, rank: int, points: int) -> bytes:
    """What a prize entry's record hash commits to: the campaign, the ranking's root, the
    rank and the points."""
    return rfc8785.dumps({"kind": "campaign-prize", "campaign": "0x" + key.hex(),
                          "ranking": "0x" + ranking_root.hex(), "rank": rank, "points": points})


def prize_behaviour(campaign_id: str) -> str:
    return f"PRIZE/{campaign_id}"


# -- closing and anchoring ------------------------------------------------------------------

def anchored_through(session: Session) -> int:
    """The last batch id up to which every batch is anchored (0 if none)."""
    first_open = session.scalar(select(Batch.id).where(Batch.status != "anchored")
                                .order_by(Batch.id).limit(1))
    if first_open is not None:
        return int(first_open) - 1
    return int(session.scalar(select(Batch.id).order_by(Batch.id.desc()).limit(1)) or 0)


def anchored_leaves(session: Session, rules: RankingRules, through: int,
                     citizen_ids: Sequence[int] | None = None) -> list[LeafValues]:
    """The leaves of the ranking's candidate entries in batches up to ``through``."""
    q = (select(LedgerEntry.leaf).join(EntryLocator, EntryLocator.seq == LedgerEntry.seq)
         .where(EntryLocator.batch_id <= through, LedgerEntry.kind == KIND_CREDIT,
                LedgerEntry.behaviour.in_(rules.behaviours),
                LedgerEntry.occurred_at >= rules.starts_at,
                LedgerEntry.occurred_at < rules.ends_at))
    if citizen_ids is not None:
        q = q.where(LedgerEntry.citizen_id.in_(citizen_ids))
    return [decode_leaf(bytes(leaf)) for leaf in session.scalars(q.order_by(LedgerEntry.seq))]


def close_ranking(db: Database, campaign_id: str, operator_address: bytes, *,
                  now: int | None = None) -> CampaignRanking:
    """Rank the opted-in citizens once the period is over, store the tree and the ranks,
    and credit the prizes; refused before the period's end or if closed already."""
    now = int(time.time()) if now is None else now
    with db.session(write_lock=True) as s:
        campaign = campaigns.current(s, campaign_id)
        rules = campaign.ranking
        if rules is None:
            raise Conflict(f"campaign {campaign_id!r} has no ranking", field="campaign")
        if now < rules.ends_at:
            raise Conflict(f"the ranking's period ends {rules.ends.isoformat()} (local): close "
                           "it after that", field="campaign")
        if s.get(CampaignRanking, campaign_id) is not None:
            raise Conflict(f"the ranking of {campaign_id!r} is closed already", field="campaign")
        through = anchored_through(s)
        people = dict(s.execute(select(Citizen.account, Citizen.id)
                                .join(CampaignParticipant,
                                      CampaignParticipant.citizen_id == Citizen.id)
                                .where(CampaignParticipant.campaign_id == campaign_id,
                                       Citizen.erased_at.is_(None))).all())
        ids = sorted(people.values())
        ranked = order(rules, scores(rules, anchored_leaves(s, rules, through, ids),
                                     set(people)).values())
        if not ranked:
            raise Conflict("nobody who opted in reached the ranking's minimum in anchored "
                           "entries: nothing to rank", field="campaign")
        leaves = rank_leaves(campaign, ranked)
        tree = build_tree(sorted(leaf.leaf_hash() for leaf in leaves))
        ranking_root = root(tree)
        row = CampaignRanking(campaign_id=campaign_id, campaign_key=campaign.key,
                              through_batch_id=through, leaf_count=len(leaves), root=ranking_root,
                              content_hash=content_hash(through, leaves),
                              status="closed", closed_at=now)
        s.add(row)
        s.flush()
        store_tree(s.connection(), campaign_id, tree, rows=RANKING_TREES)
        version = methodology_in_force(now).version
        campaign_bonuses.take_turns(s, {people[leaf.account] for leaf in leaves if leaf.prize > 0})
        for leaf, score in zip(leaves, ranked, strict=True):
            citizen_id = people[leaf.account]
            entry_id = None
            if leaf.prize > 0:
                entry_id = prize_entry_id(campaign.key, leaf.account)
                s.add(make_entry(entry_id=entry_id, citizen_id=citizen_id, account=leaf.account,
                                 kind=KIND_BONUS, behaviour=prize_behaviour(campaign_id),
                                 quantity=leaf.rank, reduction_grams=0, points=leaf.prize,
                                 methodology=version, occurred_at=now,
                                 record_hash=keccak(prize_record(campaign.key, ranking_root,
                                                                 leaf.rank, leaf.prize)),
                                 partner_address=operator_address))
                credit_points(s, citizen_id, leaf.prize)
            s.add(CampaignRank(campaign_id=campaign_id, rank=leaf.rank, citizen_id=citizen_id,
                               account=leaf.account, metric=leaf.metric,
                               reached_at=score.reached_at, prize=leaf.prize,
                               prize_entry_id=entry_id, leaf=leaf.encode()))
        s.flush()
        s.expunge(row)
        return row


# -- what citizens and the public see -------------------------------------------------------

def rank_proof(session: Session, campaign_id: str, citizen: Citizen, *,
               cache: TreeCache = default_tree_cache) -> dict[str, Any]:
    """A citizen's leaf in a closed ranking, its proof and the root it leads to, from the
    rows of the stored tree that the proof needs."""
    row = session.get(CampaignRanking, campaign_id)
    if row is None:
        raise NotFound(f"the ranking of {campaign_id!r} is not closed", field="campaign")
    rank = session.scalar(select(CampaignRank).where(CampaignRank.campaign_id == campaign_id,
                                                     CampaignRank.citizen_id == citizen.id))
    if rank is None:
        raise NotFound("this citizen is not ranked in this campaign", field="citizen")
    leaf = RankLeaf.decode(bytes(rank.leaf))
    tree = cache.tree(session, campaign_id, row.root, row.leaf_count, rows=RANKING_TREES)
    index = tree.find_leaf(leaf.leaf_hash())
    if index is None:
        raise InvalidInput(f"the ranking of {campaign_id!r}'s stored tree lacks the stored "
                           "leaf", field="ranking")
    return {"campaign": campaign_id, "root": "0x" + row.root.hex(), "status": row.status,
            "leaf": leaf.to_json(),
            "proof": ["0x" + p.hex() for p in tree.proof(index)],
            "chainId": row.chain_id, "contract": row.contract_address}


def ranks(session: Session, campaign_id: str) -> list[CampaignRank]:
    """A closed ranking's ranks, best first (none before it closes)."""
    return list(session.scalars(select(CampaignRank).where(CampaignRank.campaign_id == campaign_id)
                                .order_by(CampaignRank.rank)))


def verify_rank_proof(proof: dict[str, Any], expected_root: bytes) -> RankLeaf:
    """Check a rank proof against a root read from the chain; the leaf it proves."""
    try:
        lj = proof["leaf"]
        leaf = RankLeaf(bytes.fromhex(lj["campaign"][2:]), bytes.fromhex(lj["account"][2:]),
                        int(lj["metric"]), int(lj["rank"]), int(lj["prize"]))
        path = [bytes.fromhex(p[2:]) for p in proof["proof"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not a rank proof: {exc}", field="proof") from exc
    verify_inclusion(leaf.leaf_hash(), path, expected_root)
    return leaf


def leaderboard(session: Session, campaign_id: str, *, limit: int = 100) -> dict[str, Any]:
    """The public board: nicknames only, of citizens who opted in. Once closed, the
    anchored ranks (a rank whose citizen left or was erased shows no one); before, the
    standings the bonus step keeps (as of its last run: after each seal in a serving
    process), marked provisional. Either way it reads at most ``limit`` rows of an index,
    never the entries, so it costs the same whatever the ledger's size."""
    campaign = campaigns.current(session, campaign_id)
    rules = campaign.ranking
    if rules is None:
        raise Conflict(f"campaign {campaign_id!r} has no ranking", field="campaign")
    row = session.get(CampaignRanking, campaign_id)
    if row is not None:
        ranks = session.execute(
            select(CampaignRank.rank, CampaignParticipant.nickname, CampaignRank.metric,
                   CampaignRank.prize)
            .join(CampaignParticipant, (CampaignParticipant.campaign_id == CampaignRank.campaign_id)
                  & (CampaignParticipant.citizen_id == CampaignRank.citizen_id))
            .where(CampaignRank.campaign_id == campaign_id)
            .order_by(CampaignRank.rank).limit(limit)).all()
        return {"campaign": campaign_id, "final": True, "root": "0x" + row.root.hex(),
                "status": row.status, "metric": rules.metric,
                "entries": [{"rank": r, "nickname": n, "metric": int(m), "prize": int(p)}
                            for r, n, m, p in ranks]}
    st = CampaignStanding
    tie = (st.reached_at, Citizen.account) if rules.tie_break == "earliest_reached" else (
        Citizen.account,)
    standings = session.execute(
        select(CampaignParticipant.nickname, st.metric)
        .join(CampaignParticipant, (CampaignParticipant.campaign_id == st.campaign_id)
              & (CampaignParticipant.citizen_id == st.citizen_id))
        .join(Citizen, Citizen.id == st.citizen_id)
        .where(st.campaign_id == campaign_id, st.metric >= max(rules.minimum, 1))
        .order_by(st.metric.desc(), *tie).limit(limit)).all()
    return _provisional(campaign_id, rules, [(n, int(m)) for n, m in standings])


def leaderboard_from_entries(session: Session, campaign_id: str, *, limit: int = 100
                             ) -> dict[str, Any]:
    """The provisional board recounted from every entry of the period: what the kept
    standings must equal once the bonus step has looked at every credit (the tests and
    ``scripts/bench_leaderboard.py`` compare the two). Reads every entry: not for a face."""
    campaign = campaigns.current(session, campaign_id)
    rules = campaign.ranking
    if rules is None:
        raise Conflict(f"campaign {campaign_id!r} has no ranking", field="campaign")
    people = dict(session.execute(
        select(Citizen.account, CampaignParticipant.nickname)
        .join(Citizen, Citizen.id == CampaignParticipant.citizen_id)
        .where(CampaignParticipant.campaign_id == campaign_id)).all())
    q = (select(LedgerEntry.leaf)
         .join(CampaignParticipant, CampaignParticipant.citizen_id == LedgerEntry.citizen_id)
         .where(CampaignParticipant.campaign_id == campaign_id, LedgerEntry.kind == KIND_CREDIT,
                LedgerEntry.behaviour.in_(rules.behaviours),
                LedgerEntry.occurred_at >= rules.starts_at,
                LedgerEntry.occurred_at < rules.ends_at))
    found = scores(rules, (decode_leaf(bytes(x)) for x in session.scalars(q)), set(people))
    ranked = order(rules, found.values())[:limit]
    return _provisional(campaign_id, rules, [(people[s.account], s.metric) for s in ranked])


def _provisional(campaign_id: str, rules: RankingRules, ranked: list[tuple[str, int]]
                 ) -> dict[str, Any]:
    return {"campaign": campaign_id, "final": False, "root": None, "status": "open",
            "metric": rules.metric,
            "entries": [{"rank": i, "nickname": n, "metric": m, "prize": rules.prize_for(i)}
                        for i, (n, m) in enumerate(ranked, start=1)]}
