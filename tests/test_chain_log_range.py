"""The contract's event logs are searched from its deployment, not from block 0 (#19):
on a chain with a long history before the contract, every search from block 0 scans all
of it. A reorg can move the deployment a little, so the search starts a margin before."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from chain.client import ChainKind
from chain.connect import REORG_MARGIN_BLOCKS, connect_anchor, open_reader
from chain.nodes import in_process_web3
from ledger.intake.service import submit_records
from ledger.sealing import Sealer, SealOptions
from ledger.store.models import ChainDeployment
from tests.conftest import a_record

HISTORY = 200  # blocks mined before the contract is deployed


def test_log_searches_start_near_the_deployment(db, make_partner, make_citizen) -> None:
    w3 = in_process_web3()
    w3.testing.mine(HISTORY)
    anchor = connect_anchor(w3, ChainKind.TESTER, Account.create(), db)
    partner, citizen = make_partner(), make_citizen()
    with db.session(write_lock=True) as s:
        submit_records(s, partner=s.merge(partner), records=[a_record(citizen.pseudonym)])
    sealed = list(Sealer(db, anchor, SealOptions(confirmations=1, workers=1,
                                                 receipt_timeout=30)).seal())
    assert [b.id for b in sealed] == [1]
    with db.session() as s:
        deployed = s.get(ChainDeployment, w3.eth.chain_id).block_number
    assert deployed > HISTORY

    searched: list[Any] = []
    get_logs = w3.eth.get_logs

    def recording(params: Any) -> Any:
        searched.append(params["fromBlock"])
        return get_logs(params)

    w3.eth.get_logs = recording  # type: ignore[method-assign]
    reader = open_reader(w3, db)
    assert reader is not None
    for client in (anchor, reader):
        receipt = client.find_anchor_receipt(1)
        assert receipt is not None and receipt.succeeded
    assert len(searched) == 2
    assert all(int(str(b), 0) == deployed - REORG_MARGIN_BLOCKS for b in searched), searched
