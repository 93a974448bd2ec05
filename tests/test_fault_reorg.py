"""Reorgs of depth 1 to 5 around an anchor, on a real anvil (``anvil_reorg``,
``evm_snapshot``/``evm_revert``).

Before an anchor has its confirmations a reorg that drops it is noticed and the batch
is sent again; after, the next seal finds the tail missing, says so loudly, and anchors
it again. Either way batch ids stay 1..n with the same roots and every proof verifies.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select

from api.cli.main import main
from api.composition import Container
from ledger.store.database import Database
from ledger.store.models import Batch
from tests.conftest import needs_anvil
from tests.fault_support import (
    Entries,
    anvil_call,
    anvil_sealer,
    assert_ledger_matches_chain,
)

pytestmark = needs_anvil()



def rows(db: Database) -> dict[int, Batch]:
    with db.session() as s:
        return {b.id: b for b in s.scalars(select(Batch).order_by(Batch.id))}


def chain_check(db: Database, url: str, tmp_path: Path, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    capsys.readouterr()
    code = main(["chain", "check", "--rpc", url, "--data-dir", str(tmp_path / "cli")])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_a_reorg_before_the_anchor_is_final_anchors_the_batch_again_under_the_same_id(
        db, node, depth) -> None:
    entries, key = Entries(db), Account.create()
    entries.add(3)
    anvil_sealer(db, node.url, key, confirmations=depth + 1).seal()
    entries.add(4)
    seen: dict[str, object] = {}

    def reorg_under_the_anchor(step: str, batch_id: int) -> None:
        if step != "mined" or seen:
            return
        batch = rows(db)[batch_id]
        seen.update(block=anvil_call(node.url, "eth_blockNumber"), root=batch.root,
                    tx=batch.tx_hash)
        for _ in range(depth - 1):  # the anchor's block is now `depth` deep ...
            anvil_call(node.url, "evm_mine")
        anvil_call(node.url, "anvil_reorg", [depth, []])  # ... and gone

    sealer = anvil_sealer(db, node.url, key, confirmations=depth + 1,
                          on_step=reorg_under_the_anchor)
    [second] = sealer.seal()
    assert seen, "the anchor was never seen unconfirmed"
    assert (second.id, second.root, second.status) == (2, seen["root"], "anchored")
    assert second.tx_hash == seen["tx"], "the same signed transaction went out again"
    assert second.block_number > int(str(seen["block"]), 16)
    assert_ledger_matches_chain(db, node.url, other_txs=1)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_a_reorg_deeper_than_the_confirmations_is_reported_and_the_tail_anchored_again(
        db, node, depth, tmp_path, monkeypatch, capsys, caplog) -> None:
    entries, key = Entries(db), Account.create()
    sealer = anvil_sealer(db, node.url, key, confirmations=1)
    for _ in range(5):  # batches 1..5, each anchored in a block of its own
        entries.add(2)
        sealer.seal()
    before = {i: b.root for i, b in rows(db).items()}
    anvil_call(node.url, "anvil_reorg", [depth, []])
    lost = list(range(6 - depth, 6))

    code, report = chain_check(db, node.url, tmp_path, monkeypatch, capsys)
    assert code == 5
    assert "anchor-mismatch" in report
    for batch_id in lost:
        assert f"│ {batch_id}     │ missing on chain" in report, report

    entries.add(1)
    again = anvil_sealer(db, node.url, key, confirmations=1)
    with caplog.at_level(logging.ERROR, logger="carbon_ledger.sealer"):
        done = again.seal()
    assert again.reanchored == lost
    assert f"batches {lost[0]}..5 were anchored but the chain's latest batch is now " \
           f"{lost[0] - 1}" in caplog.text
    assert [b.id for b in done] == [*lost, 6]
    batches = assert_ledger_matches_chain(db, node.url, other_txs=1)
    assert {b.id: b.root for b in batches[:5]} == before
    assert chain_check(db, node.url, tmp_path, monkeypatch, capsys)[0] == 0


def test_a_reorg_that_mines_the_anchor_again_in_a_later_block_is_put_right(
        db, node, tmp_path, monkeypatch, capsys) -> None:
    entries, key = Entries(db), Account.create()
    sealer = anvil_sealer(db, node.url, key, confirmations=1)
    for _ in range(3):
        entries.add(2)
        sealer.seal()
    third = rows(db)[3]
    anvil_call(node.url, "anvil_mine", [2])  # two empty blocks on top of batch 3's
    assert third.raw_tx is not None
    anvil_call(node.url, "anvil_reorg", [3, [["0x" + third.raw_tx.hex(), 2]]])

    code, report = chain_check(db, node.url, tmp_path, monkeypatch, capsys)
    assert code == 5
    assert f"in block {third.block_number + 2}, the ledger says {third.block_number}" in report

    again = anvil_sealer(db, node.url, key, confirmations=1)
    assert again.seal() == []
    assert (again.moved, again.reanchored) == ([3], [])
    assert rows(db)[3].block_number == third.block_number + 2
    assert_ledger_matches_chain(db, node.url, other_txs=1)
    assert chain_check(db, node.url, tmp_path, monkeypatch, capsys)[0] == 0


def test_a_chain_reverted_to_an_older_snapshot_gets_the_lost_batches_again(db, node) -> None:
    entries, key = Entries(db), Account.create()
    sealer = anvil_sealer(db, node.url, key, confirmations=2)
    for _ in range(2):
        entries.add(2)
        sealer.seal()
    snapshot = anvil_call(node.url, "evm_snapshot")
    for _ in range(2):
        entries.add(3)
        sealer.seal()
    before = {i: b.root for i, b in rows(db).items()}
    assert anvil_call(node.url, "evm_revert", [snapshot]) is True
    anvil_call(node.url, "evm_mine")

    again = anvil_sealer(db, node.url, key, confirmations=2)
    assert [b.id for b in again.seal()] == [3, 4]
    assert again.reanchored == [3, 4]
    batches = assert_ledger_matches_chain(db, node.url, other_txs=1)
    assert {b.id: b.root for b in batches} == before


def test_chain_check_takes_no_batch_anchored_while_it_runs_for_a_stranger(
        db, node, tmp_path, monkeypatch, capsys) -> None:
    """A server's sealer anchors a batch while `chain check` runs (seen in CI's
    walkthrough): the check reads the chain's tail before the ledger, so the new batch is
    not reported as "on chain but never sealed by this ledger"."""
    entries, key = Entries(db), Account.create()
    sealer = anvil_sealer(db, node.url, key, confirmations=1)
    entries.add(2)
    sealer.seal()
    entries.add(2)  # batch 2: sealed and anchored as the check connects to the node
    connect = Container.ledger_reader

    def seal_meanwhile(self: Container, url: str):  # type: ignore[no-untyped-def]
        sealer.seal()
        return connect(self, url)

    monkeypatch.setattr(Container, "ledger_reader", seal_meanwhile)
    code, report = chain_check(db, node.url, tmp_path, monkeypatch, capsys)
    assert code == 0, report
    assert [b.status for b in rows(db).values()] == ["anchored", "anchored"]
