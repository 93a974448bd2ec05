"""Sealing and anchoring on a real EVM (eth-tester), including crashes at every step."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import select, update

from chain.client import ChainKind, EvmAnchor
from chain.connect import connect_anchor
from chain.nodes import in_process_web3
from ledger import merkle
from ledger.anchor_audit import anchored_batch
from ledger.errors import AnchorMismatch, Conflict, InvalidInput, LedgerError, VerificationError
from ledger.hashing import keccak
from ledger.intake.service import submit_records
from ledger.proofs import proof_bundle
from ledger.sealing import SEALER_LEASE, STEPS, Sealer, SealOptions
from ledger.store.database import Database
from ledger.store.leases import acquire_lease, process_holder
from ledger.store.models import Batch, Lease, LedgerEntry
from tests.conftest import a_record
from tests.fault_support import verify_own_bundle


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no except clause catches it."""


@pytest.fixture
def credit(db: Database, make_partner, make_citizen):
    partner = make_partner()
    citizens = [make_citizen().pseudonym for _ in range(5)]

    def add(n: int) -> None:
        records = [a_record(citizens[i % 5], quantity=1000 + i, hours_ago=1 + i / 1000)
                   for i in range(n)]
        with db.session(write_lock=True) as s:
            s.merge(partner)
            result = submit_records(s, partner=partner, records=records)
        assert result.count("accepted") == n
    return add


def entry_ids(db: Database) -> list[bytes]:
    with db.session() as s:
        return list(s.scalars(select(LedgerEntry.entry_id).order_by(LedgerEntry.seq)))


def assert_ledger_consistent(db: Database, anchor: EvmAnchor) -> None:
    """Every entry in exactly one anchored batch; ids 1..n on chain; every proof holds."""
    with db.session() as s:
        batches = s.scalars(select(Batch).order_by(Batch.id)).all()
        seqs = list(s.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)))
    assert [b.id for b in batches] == list(range(1, len(batches) + 1))
    assert anchor.latest_batch_id() == len(batches)
    covered = [seq for seq in seqs if any(b.first_seq <= seq <= b.last_seq for b in batches)]
    assert covered == seqs
    for a, b in zip(batches, batches[1:], strict=False):
        assert a.last_seq < b.first_seq
    for b in batches:
        assert b.status == "anchored"
        on_chain = anchored_batch(anchor, b.id)
        assert (on_chain.root, on_chain.leaf_count, on_chain.content_hash, on_chain.tx_hash) == (
            b.root, b.leaf_count, b.content_hash, b.tx_hash)
    for entry_id in entry_ids(db):
        with db.session() as s:
            bundle = proof_bundle(s, entry_id)
        verify_own_bundle(bundle, anchor)


def test_seal_puts_every_unbatched_entry_into_the_next_batch(db, sealer, anchor, credit) -> None:
    assert sealer.seal() == []
    credit(7)
    [first] = sealer.seal()
    credit(3)
    [second] = sealer.seal()
    assert (first.id, first.leaf_count, second.id, second.leaf_count) == (1, 7, 2, 3)
    assert sealer.seal() == []
    assert_ledger_consistent(db, anchor)


def test_sealed_root_and_content_hash_are_recomputable_from_the_entries(db, sealer, credit) -> None:
    credit(12)
    [batch] = sealer.seal()
    with db.session() as s:
        leaves = [merkle.hash_leaf(leaf) for leaf in
                  s.scalars(select(LedgerEntry.leaf).order_by(LedgerEntry.seq))]
    assert merkle.root(merkle.build_tree(sorted(leaves))) == batch.root
    assert keccak(b"".join(leaves)) == batch.content_hash


def test_anchored_batch_records_tx_block_and_gas(db, sealer, anchor, credit) -> None:
    credit(2)
    [batch] = sealer.seal()
    receipt = anchor.receipt(batch.tx_hash)
    assert receipt.succeeded and receipt.block_number == batch.block_number
    assert batch.gas_used == receipt.gas_used > 0
    assert anchor.confirmations(batch.block_number) >= 2


@pytest.mark.parametrize("crash_point", STEPS)
def test_a_crash_at_any_step_is_completed_by_the_next_seal(db, anchor, credit, crash_point) -> None:
    credit(4)

    def crash(step: str, _batch_id: int) -> None:
        if step == crash_point:
            raise Crash

    crashing = Sealer(db, anchor, SealOptions(confirmations=2, workers=1, on_step=crash))
    with pytest.raises(Crash):
        crashing.seal()
    # The dead sealer's lease would expire; here it is ended at once.
    with db.session() as s:
        s.execute(update(Lease).values(expires_at=0))

    credit(2)  # entries that arrive meanwhile go into the next batch, not the resumed one
    restarted = Sealer(db, anchor, SealOptions(confirmations=2, workers=1))
    done = restarted.seal()
    assert [b.id for b in done] == [1, 2]
    assert [b.leaf_count for b in done] == [4, 2]
    assert_ledger_consistent(db, anchor)


def test_only_one_sealer_runs_at_a_time(db, anchor, credit) -> None:
    credit(1)
    assert acquire_lease(db, SEALER_LEASE, "someone-else", seconds=60)
    with pytest.raises(Conflict, match="another sealer"):
        Sealer(db, anchor).seal()


def test_a_chain_that_lost_its_state_is_reported_not_papered_over(db, sealer, credit) -> None:
    credit(3)
    sealer.seal()
    credit(1)
    amnesiac = connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(), db)
    with pytest.raises(AnchorMismatch, match="lost its state"):
        Sealer(db, amnesiac).seal()


def test_a_changed_stored_leaf_is_caught(db, sealer, anchor, credit) -> None:
    credit(3)
    sealer.seal()
    victim = entry_ids(db)[1]
    with db.session() as s:
        bundle = proof_bundle(s, victim)
        entry = s.scalar(select(LedgerEntry).where(LedgerEntry.entry_id == victim))
        forged = bytearray(entry.leaf)
        forged[-40] ^= 1  # one bit of the record hash
        entry.leaf = bytes(forged)
    with db.session() as s, pytest.raises(LedgerError, match="changed after sealing"):
        proof_bundle(s, victim)
    bundle["values"][6] = str(int(bundle["values"][6]) + 1)  # more points than anchored
    with pytest.raises(VerificationError, match="fold to"):
        verify_own_bundle(bundle, anchor)


def test_erasing_a_citizen_unlinks_them_and_every_proof_still_verifies(
        db, sealer, anchor, make_partner, make_citizen) -> None:
    from ledger import accounts
    from ledger.store.models import ActivityRecord, Citizen

    partner, gone, stays = make_partner(), make_citizen(), make_citizen()
    with db.session(write_lock=True) as s:
        submit_records(s, partner=s.merge(partner), records=[
            a_record(gone.pseudonym, record_id="g1"), a_record(stays.pseudonym, record_id="s1")])
    sealer.seal()
    with db.session(write_lock=True) as s:
        accounts.erase_citizen(s, s.get_one(Citizen, gone.id))
    with db.session() as s:
        erased = s.get_one(Citizen, gone.id)
        assert erased.salt is None and erased.pseudonym != gone.pseudonym
        raws = list(s.scalars(select(ActivityRecord.raw)))
    assert not any(gone.pseudonym in raw for raw in raws)
    assert any(stays.pseudonym in raw for raw in raws)
    for entry_id in entry_ids(db):  # the leaves are on chain unchanged; proofs still hold
        with db.session() as s:
            verify_own_bundle(proof_bundle(s, entry_id), anchor)
    with db.session(write_lock=True) as s:
        [outcome] = submit_records(s, partner=s.merge(partner),
                                   records=[a_record(gone.pseudonym, record_id="g2")]).outcomes
    assert (outcome.status, outcome.field) == ("rejected", "citizen")


def test_a_lease_this_process_left_behind_is_taken_back_at_once(db, anchor, credit) -> None:
    """A seal whose lease release failed (the database went down) must not stall this
    process's next seal until the lease expires."""
    credit(2)
    assert acquire_lease(db, SEALER_LEASE, process_holder(), seconds=600)  # left behind
    assert [b.id for b in Sealer(db, anchor).seal()] == [1]
    with db.session() as s:
        assert s.get(Lease, SEALER_LEASE) is None  # released this time


def batch_shapes(done: list[Batch]) -> list[tuple[int, int]]:
    return [(b.id, b.leaf_count) for b in done]


def test_a_backlog_larger_than_the_limit_becomes_batches_anchored_in_order(
        db, anchor, credit) -> None:
    credit(7)
    steps: list[tuple[str, int]] = []
    sealer = Sealer(db, anchor, SealOptions(workers=1, max_batch=3,
                                            on_step=lambda step, b: steps.append((step, b))))
    done = sealer.seal()
    assert batch_shapes(done) == [(1, 3), (2, 3), (3, 1)]
    # each batch is anchored before the next is sealed: strict ids on chain
    assert [s for s in steps if s[0] in ("sealed", "confirmed")] == [
        ("sealed", 1), ("confirmed", 1), ("sealed", 2), ("confirmed", 2),
        ("sealed", 3), ("confirmed", 3)]
    assert sealer.seal() == []
    assert_ledger_consistent(db, anchor)


def test_a_crash_inside_a_backlog_is_resumed_in_order(db, anchor, credit) -> None:
    credit(7)

    def crash(step: str, batch_id: int) -> None:
        if (step, batch_id) == ("broadcast", 2):
            raise Crash

    with pytest.raises(Crash):
        Sealer(db, anchor, SealOptions(workers=1, max_batch=3, on_step=crash)).seal()
    with db.session() as s:
        s.execute(update(Lease).values(expires_at=0))
        assert [(b.id, b.status) for b in s.scalars(select(Batch).order_by(Batch.id))] == [
            (1, "anchored"), (2, "submitted")]
    done = Sealer(db, anchor, SealOptions(workers=1, max_batch=3)).seal()
    assert batch_shapes(done) == [(2, 3), (3, 1)]
    assert_ledger_consistent(db, anchor)


def test_entries_that_arrive_during_a_seal_wait_for_the_next(db, anchor, credit) -> None:
    credit(4)

    def more(step: str, batch_id: int) -> None:
        if (step, batch_id) == ("confirmed", 1):
            credit(2)

    done = Sealer(db, anchor, SealOptions(workers=1, max_batch=2, on_step=more)).seal()
    assert batch_shapes(done) == [(1, 2), (2, 2)]
    assert batch_shapes(Sealer(db, anchor, SealOptions(workers=1, max_batch=3)).seal()) == [
        (3, 2)]
    assert_ledger_consistent(db, anchor)


def test_the_cli_and_the_service_seal_by_the_max_batch_setting(tmp_path, monkeypatch,
                                                               anchor) -> None:
    """``seal`` (``Container.sealer``) and ``serve``'s scheduler make their sealers alike."""
    from api.composition import container

    monkeypatch.setenv("CARBON_LEDGER_SEAL_MAX_BATCH", "7")
    c = container(tmp_path, chain="tester")
    assert c.sealer(anchor).options.max_batch == 7
    assert c.seal_scheduler(anchor).new_sealer().options.max_batch == 7
    with pytest.raises(InvalidInput, match="seal_max_batch"):
        container(tmp_path, chain="tester", seal_max_batch=0)
