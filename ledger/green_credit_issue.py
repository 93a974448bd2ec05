"""Issuing and revoking green-credit credentials (the operator's side).

A credential row keeps the status index, the citizen and the holder key's address, never
the document. Revocation is a bit on the contract, set by the issuer: a bank reads it from
the chain, so checking tells the operator nothing. Erasing a citizen revokes their
credentials at the next :func:`revoke` (their statements stay verifiable and unlinkable,
like their entries, but a credential tying them to a holder key must stop working).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from sqlalchemy import or_, select, update

from ledger.errors import AnchoringTurnTaken, Conflict, InvalidInput, NotFound
from ledger.green_credit import (
    CREDENTIAL_TYPE,
    DEFAULT_VALID_DAYS,
    LOCAL_CONTEXT,
    MAX_MONTHS,
    PROOF_TYPE,
    STATUS_TYPE,
    VC_CONTEXT,
    credential_typed_data,
    did,
    iso,
    parse_holder,
    sign,
)
from ledger.seal_scheduler import Throttle
from ledger.sealing import SEALER_LEASE
from ledger.statement_builder import (
    DEFAULT_SETTLE_SECONDS,
    build_due_statements,
    statement_proofs,
)
from ledger.statements import StatementChain, areas_to_json, period_label, periods_between
from ledger.store.database import Database
from ledger.store.leases import acquire_lease, process_holder, release_lease
from ledger.store.models import Citizen, GreenCredential

log = logging.getLogger("carbon_ledger.statements")


# -- issuance -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CredentialRequest:
    citizen_id: int
    holder: str  # 0x address of the citizen's holder key
    first: int  # yyyymm
    last: int
    areas: bool = False
    valid_days: int = DEFAULT_VALID_DAYS


def issue_credential(db: Database, request: CredentialRequest, *, issuer: LocalAccount,
                     chain_id: int, contract: str, now: int | None = None) -> dict[str, Any]:
    """A signed credential for the citizen's anchored statements of the months asked."""
    now = int(time.time()) if now is None else now
    holder = parse_holder(request.holder)
    periods = periods_between(request.first, request.last, at_most=MAX_MONTHS)
    if not 1 <= request.valid_days <= 366:
        raise InvalidInput("1 to 366 days", field="valid_days")
    with db.session(write_lock=True) as s:
        citizen = s.get(Citizen, request.citizen_id)
        if citizen is None or citizen.erased_at is not None:
            raise NotFound("no such citizen", field="citizen")
        proofs = statement_proofs(s, citizen.id, periods)
        for p in proofs:
            st = p.statement
            if st.chain_id != chain_id or (st.contract_address or "").lower() != contract.lower():
                raise Conflict(f"{period_label(st.period)}'s statement is anchored on chain "
                               f"{st.chain_id} {st.contract_address}, not this ledger's",
                               field="period")
        valid_until = now + request.valid_days * 86_400
        row = GreenCredential(citizen_id=citizen.id, holder=bytes.fromhex(holder[2:]),
                              first_period=periods[0], last_period=periods[-1], issued_at=now,
                              valid_until=valid_until)
        s.add(row)
        s.flush()
        index, account = int(row.id), bytes(citizen.account)
    statements = [{"month": period_label(p.leaf.period), "leaf": p.leaf.to_json(),
                   **({"areaTotals": areas_to_json(p.areas)} if request.areas else {}),
                   "proof": ["0x" + h.hex() for h in p.proof]} for p in proofs]
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT, LOCAL_CONTEXT],
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "id": f"urn:carbon-ledger:credential:{chain_id}:{to_checksum_address(contract)}:{index}",
        "issuer": did(chain_id, issuer.address),
        "validFrom": iso(now),
        "validUntil": iso(valid_until),
        "credentialSubject": {
            "id": did(chain_id, holder), "account": "0x" + account.hex(),
            "ledger": {"chainId": chain_id, "contract": to_checksum_address(contract)},
            "areasDisclosed": request.areas, "statements": statements},
        "credentialStatus": {"type": STATUS_TYPE, "statusIndex": str(index),
                             "contract": to_checksum_address(contract)},
    }
    data = credential_typed_data(chain_id=chain_id, contract=contract,
                                 issuer=issuer.address, holder=holder, account=account,
                                 index=index, valid_from=now, valid_until=valid_until,
                                 areas=request.areas,
                                 leaves=[(p.leaf.period, p.leaf.leaf_hash()) for p in proofs])
    credential["proof"] = {
        "type": PROOF_TYPE, "created": iso(now), "proofPurpose": "assertionMethod",
        "verificationMethod": did(chain_id, issuer.address) + "#blockchainAccountId",
        "proofValue": sign(issuer, data),
        "eip712": {k: data[k] for k in ("domain", "types", "primaryType")}}
    return credential


# -- revocation -----------------------------------------------------------------------------

def revoke(db: Database, chain: StatementChain, indices: Sequence[int] = (), *,
           timeout: float = 120.0) -> list[int]:
    """Revoke ``indices`` and every credential of an erased citizen, on chain; the indices
    whose revocation this call sent. Marked first, sent after: a rerun sends what a crash
    left unsent."""
    now = int(time.time())
    erased = select(Citizen.id).where(Citizen.erased_at.is_not(None))
    if not indices:  # the usual chore: a read finds nothing to do, no write lock taken
        with db.session() as s:
            if s.scalar(select(GreenCredential.id).where(
                    GreenCredential.revocation_tx.is_(None),
                    or_(GreenCredential.revoked_at.is_not(None),
                        GreenCredential.citizen_id.in_(erased))).limit(1)) is None:
                return []
    with db.session(write_lock=True) as s:
        for index in indices:
            if s.get(GreenCredential, index) is None:
                raise NotFound(f"no credential {index}", field="index")
        if indices:
            s.execute(update(GreenCredential).where(GreenCredential.id.in_(list(indices)),
                                                    GreenCredential.revoked_at.is_(None))
                      .values(revoked_at=now))
        s.execute(update(GreenCredential).where(GreenCredential.citizen_id.in_(erased),
                                                GreenCredential.revoked_at.is_(None))
                  .values(revoked_at=now))
        pending = [int(i) for i in s.scalars(
            select(GreenCredential.id).where(GreenCredential.revoked_at.is_not(None),
                                             GreenCredential.revocation_tx.is_(None))
            .order_by(GreenCredential.id))]
    sent: list[int] = []
    for start in range(0, len(pending), 100):
        chunk = pending[start:start + 100]
        prepared = chain.prepare_revocation(chunk)
        chain.broadcast(prepared.raw)
        receipt = chain.wait_for_receipt(prepared.tx_hash, timeout=timeout)
        if not receipt.succeeded:
            raise Conflict("the revocation transaction reverted", field="txHash")
        with db.session(write_lock=True) as s:
            s.execute(update(GreenCredential).where(GreenCredential.id.in_(chunk))
                      .values(revocation_tx=receipt.tx_hash))
        sent += chunk
    return sent


@contextmanager
def anchoring_turn(db: Database, *, seconds: float = 600.0,
                   when_taken: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the sealer's lease while statements or revocations are sent: they use the
    anchoring key, and one sender at a time keeps its nonces in order. If another process
    holds it: :class:`AnchoringTurnTaken`, after ``when_taken()`` (a chore makes itself
    due again, so its turn comes after a later seal rather than a whole period later)."""
    holder = process_holder()
    if not acquire_lease(db, SEALER_LEASE, holder, seconds=seconds):
        if when_taken is not None:
            when_taken()
        raise AnchoringTurnTaken("another process is sealing or anchoring with this key: "
                                 "try again shortly", field="lease")
    try:
        yield
    finally:
        release_lease(db, SEALER_LEASE, holder)


class StatementChore:
    """What a serving process does after its seals, at most every ``every`` seconds: build
    and anchor the statements of months now over, then send pending revocations (an erased
    citizen's credentials among them). Built from the sealer's chain, run by the sealer's
    lease holder only, so one process does it."""

    def __init__(self, db: Database, chain: StatementChain, *, every: float = 300.0,
                 settle_seconds: int = DEFAULT_SETTLE_SECONDS) -> None:
        self.db, self.chain, self.settle = db, chain, settle_seconds
        self.throttle = Throttle(every)

    def __call__(self) -> None:
        if not self.throttle.due():
            return
        with anchoring_turn(self.db, when_taken=self.throttle.again):
            for st in build_due_statements(self.db, self.chain, settle_seconds=self.settle):
                log.info("statement %s anchored: %d accounts", period_label(st.period),
                         st.leaf_count)
            revoke(self.db, self.chain)
