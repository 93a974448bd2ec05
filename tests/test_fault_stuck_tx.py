"""An anchor stuck in the pool is replaced: same nonce, both fees up by at least 12.5%,
the replacement recorded before it is sent; whichever of them is mined counts, once.

Real anvil with automine off, so a transaction waits in the pool until the test mines.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from sqlalchemy import select

from chain.fees import bump
from ledger.store.models import Batch
from tests.conftest import needs_anvil
from tests.fault_support import Entries, anvil_call, anvil_sealer, assert_ledger_matches_chain

pytestmark = needs_anvil()



def pool(url: str, sender: str) -> list[dict[str, Any]]:
    """The anchoring key's transactions waiting in the node's pool."""
    content = anvil_call(url, "txpool_content")
    waiting = {**content["pending"], **content["queued"]}
    mine = next((txs for who, txs in waiting.items() if who.lower() == sender.lower()), {})
    return list(mine.values())


def fees(tx: dict[str, Any]) -> tuple[int, int, int]:
    return int(tx["nonce"], 16), int(tx["maxFeePerGas"], 16), int(tx["maxPriorityFeePerGas"], 16)


def recorded(db, batch_id: int) -> Batch:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.get_one(Batch, batch_id)


def test_a_stuck_anchor_is_replaced_with_the_same_nonce_and_higher_fees_and_counts_once(
        db, node) -> None:
    entries, key = Entries(db), Account.create()
    entries.add(3)
    sealer = anvil_sealer(db, node.url, key, confirmations=1, replace_after=1.0)
    anvil_call(node.url, "evm_setAutomine", [False])
    seen: dict[str, Any] = {}

    def watch(step: str, batch_id: int) -> None:
        if step == "broadcast" and "first" not in seen:
            [seen["first"]] = pool(node.url, key.address)
            seen["first_hash"] = recorded(db, batch_id).tx_hash
        elif step == "replacing":  # recorded, not yet sent: the row already names it
            seen["row"] = recorded(db, batch_id)
        elif step == "replaced":
            [seen["second"]] = pool(node.url, key.address)  # the first is gone from the pool
            anvil_call(node.url, "evm_mine")

    sealer = anvil_sealer(db, node.url, key, confirmations=1, replace_after=1.0, on_step=watch)
    [batch] = sealer.seal()
    nonce, max_fee, tip = fees(seen["first"])
    nonce2, max_fee2, tip2 = fees(seen["second"])
    assert nonce2 == nonce
    assert max_fee2 >= bump(max_fee) and tip2 >= bump(tip)
    assert 8 * max_fee2 >= 9 * max_fee and 8 * tip2 >= 9 * tip  # at least +12.5% on both
    assert seen["row"].tx_hash.hex() == seen["second"]["hash"][2:]
    assert seen["row"].nonce == nonce
    assert batch.tx_hash == seen["row"].tx_hash != seen["first_hash"]
    assert sealer.anchor.receipt(seen["first_hash"]) is None
    anvil_call(node.url, "evm_setAutomine", [True])
    assert_ledger_matches_chain(db, node.url, other_txs=1)


def test_an_anchor_left_out_of_n_blocks_is_replaced(db, node) -> None:
    entries, key = Entries(db), Account.create()
    entries.add(2)
    anvil_sealer(db, node.url, key)  # deploy while blocks are still mined on demand
    anvil_call(node.url, "evm_setAutomine", [False])
    seen: dict[str, Any] = {}

    def blocks_go_by_without_it(step: str, _batch_id: int) -> None:
        if step == "broadcast" and "first" not in seen:
            [seen["first"]] = pool(node.url, key.address)
            anvil_call(node.url, "evm_setBlockGasLimit", [hex(50_000)])  # it does not fit
            anvil_call(node.url, "anvil_mine", [3])
            anvil_call(node.url, "evm_setBlockGasLimit", [hex(30_000_000)])
            [seen["still"]] = pool(node.url, key.address)
        elif step == "replaced":
            [seen["second"]] = pool(node.url, key.address)
            anvil_call(node.url, "evm_mine")

    sealer = anvil_sealer(db, node.url, key, confirmations=1, replace_after=3600,
                          replace_after_blocks=2, on_step=blocks_go_by_without_it)
    [batch] = sealer.seal()
    assert seen["still"]["hash"] == seen["first"]["hash"], "it stayed in the pool"
    assert "second" in seen, "no replacement went out"
    nonce, max_fee, tip = fees(seen["first"])
    nonce2, max_fee2, tip2 = fees(seen["second"])
    assert nonce2 == nonce and max_fee2 >= bump(max_fee) and tip2 >= bump(tip)
    assert batch.tx_hash is not None and batch.tx_hash.hex() == seen["second"]["hash"][2:]
    anvil_call(node.url, "evm_setAutomine", [True])
    assert_ledger_matches_chain(db, node.url, other_txs=1)


def test_an_anchor_dropped_for_a_base_fee_above_its_max_fee_is_sent_repriced(db, node) -> None:
    entries, key = Entries(db), Account.create()
    entries.add(2)
    anvil_sealer(db, node.url, key)
    anvil_call(node.url, "evm_setAutomine", [False])
    seen: dict[str, Any] = {}

    def price_it_out(step: str, _batch_id: int) -> None:
        if step == "broadcast" and "first" not in seen:
            [seen["first"]] = pool(node.url, key.address)
            seen["base"] = 3 * fees(seen["first"])[1]
            anvil_call(node.url, "anvil_setNextBlockBaseFeePerGas", [hex(seen["base"])])
            anvil_call(node.url, "evm_mine")  # the node drops it: it can no longer pay
            assert pool(node.url, key.address) == []
        elif step == "replaced":
            [seen["second"]] = pool(node.url, key.address)
            anvil_call(node.url, "evm_mine")

    sealer = anvil_sealer(db, node.url, key, confirmations=1, replace_after=3600,
                          on_step=price_it_out)
    [batch] = sealer.seal()
    nonce, max_fee, tip = fees(seen["first"])
    nonce2, max_fee2, tip2 = fees(seen["second"])
    assert nonce2 == nonce and tip2 >= bump(tip)
    assert max_fee2 >= bump(max_fee) and max_fee2 > seen["base"] // 8 * 7  # it can pay now
    assert batch.tx_hash is not None and batch.tx_hash.hex() == seen["second"]["hash"][2:]
    anvil_call(node.url, "evm_setAutomine", [True])
    assert_ledger_matches_chain(db, node.url, other_txs=1)


def test_when_the_first_anchor_is_mined_before_its_replacement_the_first_counts(db, node) -> None:
    entries, key = Entries(db), Account.create()
    entries.add(2)
    anvil_sealer(db, node.url, key)
    anvil_call(node.url, "evm_setAutomine", [False])
    seen: dict[str, Any] = {}

    def mine_the_first(step: str, batch_id: int) -> None:
        if step == "broadcast" and "first" not in seen:
            seen["first"] = recorded(db, batch_id).tx_hash
        elif step == "replacing":  # another node mined the first meanwhile
            seen["replacement"] = recorded(db, batch_id).tx_hash
            anvil_call(node.url, "evm_mine")

    sealer = anvil_sealer(db, node.url, key, confirmations=1, replace_after=0.5,
                          on_step=mine_the_first)
    [batch] = sealer.seal()  # the replacement is refused ("nonce too low"): not an error
    assert seen["replacement"] != seen["first"]
    assert batch.tx_hash == seen["first"]
    with db.session() as s:
        assert [b.status for b in s.scalars(select(Batch))] == ["anchored"]
    anvil_call(node.url, "evm_setAutomine", [True])
    assert_ledger_matches_chain(db, node.url, other_txs=1)
