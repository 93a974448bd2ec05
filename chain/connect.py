"""Connect the ledger to its chain: fund a dev key, deploy once, wait out an outage.

The contract's address is remembered per chain id in the ledger's database, so each
data dir deploys once. A remembered contract whose code is gone (a node restarted
without its state) is reported loudly, never silently redeployed.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import Wei

from chain.client import ChainKind, Deployment, EvmAnchor, call_chain, deploy_contract
from ledger.errors import ChainError
from ledger.store.database import Database
from ledger.store.models import ChainDeployment

DEV_FUNDING_WEI = 10**21


def fund_dev_account(w3: Web3, kind: ChainKind, address: str) -> None:
    """Give the anchoring key ether on a dev chain (never on a real one)."""
    if call_chain(lambda: w3.eth.get_balance(address), "balance") >= DEV_FUNDING_WEI // 10:  # type: ignore[arg-type]
        return
    if kind is ChainKind.ANVIL:
        call_chain(lambda: w3.provider.make_request("anvil_setBalance",  # type: ignore[arg-type]
                                               [address, hex(DEV_FUNDING_WEI)]), "balance")
    elif kind is ChainKind.TESTER:
        rich = w3.eth.accounts[0]
        tx = w3.eth.send_transaction({"from": rich, "to": address,
                                      "value": Wei(DEV_FUNDING_WEI)})
        w3.eth.wait_for_transaction_receipt(tx)
    else:
        raise ChainError("cannot fund an account on a real chain", field="chain")


def connect_anchor(w3: Web3, kind: ChainKind, signer: LocalAccount, db: Database) -> EvmAnchor:
    """The anchoring client for this ledger on ``w3``, deploying the contract if needed."""
    chain_id = int(call_chain(lambda: w3.eth.chain_id, "chain id"))
    if kind.is_dev:
        fund_dev_account(w3, kind, signer.address)
    with db.session() as s:
        known = s.get(ChainDeployment, chain_id)
    if known is not None and kind is not ChainKind.TESTER:
        anchor = EvmAnchor(w3, kind, known.address, signer, from_block=_logs_from(known))
        anchor.check_contract()
        return anchor
    deployment = deploy_contract(w3, signer)
    with db.session(write_lock=True) as s:
        s.merge(ChainDeployment(chain_id=chain_id, address=deployment.address,
                                tx_hash=deployment.tx_hash, block_number=deployment.block_number))
    return EvmAnchor(w3, kind, deployment.address, signer,
                     from_block=_logs_from(deployment))


def open_reader(w3: Web3, db: Database) -> EvmAnchor | None:
    """This ledger's contract on ``w3``'s chain, read-only (no key, never deploys), or
    None if the ledger never deployed there."""
    chain_id = int(call_chain(lambda: w3.eth.chain_id, "chain id"))
    with db.session() as s:
        known = s.get(ChainDeployment, chain_id)
    return None if known is None else EvmAnchor(w3, ChainKind.RPC, known.address, signer=None,
                                                from_block=_logs_from(known))


#: How far before its recorded deployment block the contract's logs are looked for: a
#: reorg may have put the deployment (and anchors after it) a few blocks lower.
REORG_MARGIN_BLOCKS = 128


def _logs_from(deployment: ChainDeployment | Deployment) -> int:
    """The first block worth searching for the contract's events: not block 0, which on a
    long chain makes every log query scan its whole history (#19)."""
    return max(0, int(deployment.block_number or 0) - REORG_MARGIN_BLOCKS)
