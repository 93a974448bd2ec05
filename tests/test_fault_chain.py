"""What real chains do to an anchor, on a real anvil: reorgs of depth 1 to 5, a
transaction stuck in the pool, fees above the ceiling, a node that goes away and comes
back (with or without its state)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select

import chain.client
from api.cli import main
from chain.client import ChainKind, EvmAnchor
from chain.connect import connect_anchor
from chain.nodes import ManagedAnvil, anvil_binary, rpc_web3
from ledger.errors import AnchorMismatch, ChainError
from ledger.ingest import submit_records
from ledger.models import Batch, LedgerEntry
from ledger.proofs import proof_bundle, verify_bundle
from ledger.sealing import Sealer, SealOptions
from tests.conftest import a_record

try:
    anvil_binary()
except Exception:  # noqa: BLE001
    pytest.skip("anvil is not installed (run `npm ci`)", allow_module_level=True)

pytestmark = pytest.mark.anvil
GWEI = 10**9


@pytest.fixture
def node(tmp_path: Path):  # type: ignore[no-untyped-def]
    with ManagedAnvil(tmp_path / "anvil") as n:
        yield n


@pytest.fixture
def credit(db, make_partner, make_citizen):  # type: ignore[no-untyped-def]
    partner, citizen = make_partner(), make_citizen()
    counter = iter(range(10**6))

    def add(n: int) -> None:
        with db.session(write_lock=True) as s:
            submit_records(s, partner=s.merge(partner), records=[
                a_record(citizen.pseudonym, quantity=500, record_id=f"r{next(counter)}",
                         hours_ago=1 + i / 1000) for i in range(n)])
    return add


def rpc(anchor: EvmAnchor, method: str, *params: object) -> object:
    answer = anchor.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer.get("result")


def everything_verifies(db, anchor: EvmAnchor) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        batches = s.scalars(select(Batch).order_by(Batch.id)).all()
        assert [b.status for b in batches] == ["anchored"] * len(batches)
        assert anchor.latest_batch_id() == len(batches)
        for b in batches:
            assert anchor.anchored_batch(b.id).root == b.root
        for entry_id in s.scalars(select(LedgerEntry.entry_id)):
            verify_bundle(proof_bundle(s, entry_id), anchor.reader())


class ReorgingAnchor(EvmAnchor):
    """A real anvil client that, once, rolls the chain back ``depth`` blocks the moment the
    anchor has its confirmations: the reorg lands exactly where it hurts."""

    depth = 0

    def wait_for_confirmations(self, block_number: int, *, confirmations: int,
                               timeout: float) -> int:
        seen = super().wait_for_confirmations(block_number, confirmations=confirmations,
                                              timeout=timeout)
        if self.depth:
            rpc(self, "anvil_rollback", self.depth)
            self.depth = 0
        return seen


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_a_reorg_while_confirming_is_noticed_and_the_batch_anchored_again(
        db, node, credit, depth: int) -> None:
    anchor = connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, Account.create(), db)
    rpc(anchor, "anvil_mine", hex(10))  # history below, so no rollback reaches the deployment
    credit(3)
    Sealer(db, anchor, SealOptions(confirmations=1, workers=1)).seal()
    reorging = ReorgingAnchor(anchor.w3, ChainKind.ANVIL, anchor.contract_address, anchor._signer)
    reorging.depth = depth
    credit(2)
    [second] = Sealer(db, reorging, SealOptions(confirmations=depth, workers=1)).seal()
    assert (second.id, reorging.depth) == (2, 0)  # it was rolled back, and sent again
    assert reorging.is_canonical(reorging.receipt(second.tx_hash))
    everything_verifies(db, anchor)


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_a_reorg_after_an_anchor_counted_final_is_repaired_by_the_next_seal(
        db, node, credit, depth: int) -> None:
    """A reorg deeper than the confirmations drops batches the ledger called anchored: the
    next seal notices they are missing at the chain's end and sends them again."""
    anchor = connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, Account.create(), db)
    rpc(anchor, "anvil_mine", hex(10))  # history below, so no rollback reaches the deployment
    sealer = Sealer(db, anchor, SealOptions(confirmations=1, workers=1))
    credit(2)
    sealer.seal()
    credit(2)
    [second] = sealer.seal()
    rpc(anchor, "anvil_rollback", depth)
    assert anchor.latest_batch_id() < 2 or anchor.receipt(second.tx_hash) is not None
    credit(1)
    done = sealer.seal()
    assert [b.id for b in done][-1] == 3
    everything_verifies(db, anchor)


def test_a_stuck_anchor_is_replaced_with_higher_fees_and_lands_once(db, node, credit) -> None:
    anchor = connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, Account.create(), db)
    credit(2)
    rpc(anchor, "evm_setAutomine", False)  # nothing is mined until the test says so
    sealer = Sealer(db, anchor, SealOptions(confirmations=1, workers=1, stuck_after=1.0,
                                            receipt_timeout=60))
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(sealer.seal()))
    thread.start()

    def batch_row() -> Batch | None:
        with db.session() as s:
            return s.get(Batch, 1)

    deadline = time.monotonic() + 30
    while (b := batch_row()) is None or b.tx_hash is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first_hash, first_nonce = b.tx_hash, b.nonce
    while (b := batch_row()).tx_hash == first_hash:
        assert time.monotonic() < deadline, "no replacement was sent"
        time.sleep(0.1)
    replacement = b.tx_hash
    assert b.nonce == first_nonce  # the same nonce: only one of them can ever be mined
    rpc(anchor, "evm_mine")
    rpc(anchor, "evm_setAutomine", True)
    thread.join(timeout=60)
    [[batch]] = result
    assert batch.tx_hash in {replacement, batch_row().tx_hash}
    assert anchor.receipt(first_hash) is None  # the stuck one was displaced, never mined
    everything_verifies(db, anchor)


def test_fees_above_the_ceiling_wait_and_nothing_is_sent(db, node, credit) -> None:
    anchor = connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, Account.create(), db)
    anchor.with_fee_ceiling(5 * GWEI)
    credit(2)
    rpc(anchor, "anvil_setNextBlockBaseFeePerGas", hex(50 * GWEI))
    rpc(anchor, "evm_mine")
    sealer = Sealer(db, anchor, SealOptions(confirmations=1, workers=1))
    with pytest.raises(ChainError) as exc:
        sealer.seal()
    assert exc.value.field == "max_fee_per_gas" and "ceiling" in exc.value.message
    with db.session() as s:
        assert s.get(Batch, 1).tx_hash is None  # sealed, never sent
    for _ in range(40):  # an empty chain's base fee falls 12.5% a block
        rpc(anchor, "evm_mine")
    [batch] = sealer.seal()
    assert batch.id == 1
    everything_verifies(db, anchor)


def test_a_node_down_for_a_while_then_sealing_resumes(db, tmp_path, credit, monkeypatch) -> None:
    monkeypatch.setattr(chain.client, "RETRY_DELAYS", (0.5, 1.0, 2.0, 2.0, 2.0, 2.0))
    node = ManagedAnvil(tmp_path / "anvil")
    back = ManagedAnvil(tmp_path / "anvil", port=node.port)  # the same node, restarted
    node.start()
    try:
        anchor = connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, Account.create(), db)
        sealer = Sealer(db, anchor, SealOptions(confirmations=1, workers=1))
        credit(2)
        sealer.seal()
        node.stop()  # its state is dumped; the port refuses connections
        credit(2)
        with pytest.raises(ChainError, match="unreachable"):
            sealer.seal()  # retried with backoff, then a clear error: nothing half-done
        outage = threading.Timer(2.0, back.start)
        outage.start()  # the node comes back while the next seal is retrying
        [batch] = sealer.seal()
        outage.join()
        assert batch.id == 2
        everything_verifies(db, anchor)
    finally:
        back.stop()
        node.stop()


def test_a_node_back_without_its_state_is_reported_loudly(db, tmp_path, credit, capsys,
                                                         monkeypatch) -> None:
    with ManagedAnvil(tmp_path / "anvil") as node:
        port = node.port
        anchor = connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, Account.create(), db)
        credit(2)
        Sealer(db, anchor, SealOptions(confirmations=1, workers=1)).seal()
        credit(1)
        Sealer(db, anchor, SealOptions(confirmations=1, workers=1)).seal()
    with ManagedAnvil(tmp_path / "amnesiac", port=port) as fresh:  # same chain id, no state
        with pytest.raises(AnchorMismatch, match="lost its state"):
            connect_anchor(rpc_web3(fresh.url), ChainKind.ANVIL, Account.create(), db)
        monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
        capsys.readouterr()
        code = main(["chain", "check", "--rpc", fresh.url, "--data-dir", str(tmp_path / "d")])
        out = capsys.readouterr().out
    assert code == 5
    assert out.count("missing on chain") == 2 and "no contract at" in out
