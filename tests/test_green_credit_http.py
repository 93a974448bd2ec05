"""POST /v1/me/credentials over real HTTP handling: the citizen's app gets a credential
bound to its key that a bank verifies against the chain; bad asks are 4xx naming the field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from chain.statements import EvmStatements
from ledger import accounts
from ledger.credentials import issue_citizen_token
from ledger.green_credit import present
from ledger.green_credit_verify import verify_presentation
from ledger.seal_scheduler import Throttle
from tests.statement_ledger import Entry, add_entries, at


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, Any]]:
    """One server for the module's asks: none of them writes but the credentials issued."""
    container = Container(Settings(data_dir=tmp_path_factory.mktemp("gc") / "state", chain="tester",
                                   rate_limit="100000/minute"))
    with container.db.session(write_lock=True) as s:
        citizen = accounts.create_citizen(s)
        token = issue_citizen_token(s, citizen=citizen)
    add_entries(container.db, [Entry(citizen, at(2026, 11, 4), 730, 7)])
    with TestClient(create_app(container, run_sealer=False)) as client:
        state = client.app.state.ledger  # type: ignore[attr-defined]
        state.scheduler.seal_once()  # seals, then states November (it is over)
        yield client, token, state.anchor
    container.db.engine.dispose()


def test_a_citizen_gets_a_credential_a_bank_verifies(app: tuple[TestClient, str, Any]) -> None:
    client, token, anchor = app
    holder = Account.create()
    answer = client.post("/v1/me/credentials", headers={"Authorization": f"Bearer {token}"},
                         json={"holder": holder.address, "from": "2026-11", "to": "2026-11"})
    assert answer.status_code == 200, answer.text
    presentation = present(answer.json(), holder, nonce="n1", audience="A bank")
    verified = verify_presentation(presentation, reader=EvmStatements(anchor.reader()),
                                   challenge="n1", audience="A bank", now=int(time.time()))
    assert [(m.period, m.leaf.reduction_grams) for m in verified.months] == [(202611, 730)]


@pytest.mark.parametrize("ask, status, field", [
    ({"holder": "0x12", "from": "2026-11", "to": "2026-11"}, 422, "holder"),
    ({"holder": "0x" + "ab" * 20, "from": "2026-13", "to": "2026-11"}, 422, "from"),
    ({"holder": "0x" + "ab" * 20, "from": "2026-11", "to": "2026-10"}, 422, "to"),
    ({"holder": "0x" + "ab" * 20, "from": "2024-01", "to": "2026-11"}, 422, "to"),
    ({"holder": "0x" + "ab" * 20, "from": "2026-11", "to": "2026-12"}, 404, "period"),
    ({"holder": "0x" + "ab" * 20, "from": "2026-11", "to": "2026-11", "x": 1}, 422, "x"),
])
def test_a_bad_ask_is_refused_naming_the_field(app: tuple[TestClient, str, Any], ask: Any,
                                               status: int, field: str) -> None:
    client, token, _ = app
    answer = client.post("/v1/me/credentials", headers={"Authorization": f"Bearer {token}"},
                         json=ask)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field


def test_a_serving_process_states_months_and_revokes_an_erased_citizens_credentials(
        tmp_path: Path) -> None:
    """The sealer's chore: statements of the months now over, then pending revocations."""
    from ledger.green_credit_issue import CredentialRequest, StatementChore, issue_credential
    from ledger.store.models import Citizen, GreenCredential, Statement

    container = Container(Settings(data_dir=tmp_path / "state", chain="tester",
                                   rate_limit="100000/minute"))
    with container.db.session(write_lock=True) as s:
        citizen = accounts.create_citizen(s)
    add_entries(container.db, [Entry(citizen, at(2026, 10, 20), 300, 3)])
    with TestClient(create_app(container, run_sealer=False)) as client:
        state = client.app.state.ledger  # type: ignore[attr-defined]
        assert state.scheduler.seal_once()
        with container.db.session() as s:
            stated = {st.period: st.status for st in s.query(Statement)}
        assert stated[202610] == stated[202611] == "anchored"  # Dec 2026 at the earliest
        request = CredentialRequest(citizen.id, Account.create().address, 202610, 202611)
        credential = issue_credential(container.db, request, issuer=container.signer,
                                      chain_id=state.anchor.chain_id,
                                      contract=state.anchor.contract_address)
        with container.db.session(write_lock=True) as s:
            accounts.erase_citizen(s, s.get(Citizen, citizen.id))
        [chore] = [c for c in state.scheduler.chores if isinstance(c, StatementChore)]
        chore.throttle = Throttle(0)  # the next round is due at once
        assert state.scheduler.seal_once()
        index = int(credential["credentialStatus"]["statusIndex"])
        with container.db.session() as s:
            assert s.get(GreenCredential, index).revocation_tx is not None
        assert EvmStatements(state.anchor.reader()).credential_revoked(index)
    container.db.engine.dispose()
