"""Green-credit credentials end to end on a real EVM: issued from anchored statements,
presented with a bank's challenge, verified against the chain alone; every forgery a
bank could be shown is refused with the check named."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.client import ChainKind, EvmAnchor
from chain.connect import connect_anchor
from chain.nodes import in_process_web3
from chain.statements import EvmStatements
from ledger import accounts
from ledger.errors import NotFound, VerificationError
from ledger.green_credit import parse_credential, present, presentation_typed_data, sign
from ledger.green_credit_issue import CredentialRequest, issue_credential, revoke
from ledger.green_credit_verify import verify_presentation
from ledger.leaf import KIND_DEBIT
from ledger.merkle import verify_inclusion
from ledger.sealing import Sealer, SealOptions
from ledger.statement_builder import anchor_statements, build_statement
from ledger.statements import StatementLeafValues
from ledger.store.database import Database
from ledger.store.models import Citizen
from tests.conftest import fresh_database
from tests.statement_ledger import Entry, add_entries, at

BANK = "Bank of Suzhou green loans"
NONCE = "n-4f1c2a"


@dataclass
class World:
    db: Database
    anchor: EvmAnchor
    chain: EvmStatements
    reader: EvmStatements  # what a bank sees: no key
    alice: Citizen
    bob: Citizen
    holder: LocalAccount

    def issue(self, citizen: Citizen | None = None, *, holder: LocalAccount | None = None,
              areas: bool = False, issuer: LocalAccount | None = None) -> dict[str, Any]:
        who = citizen or self.alice
        request = CredentialRequest(who.id, (holder or self.holder).address, 202610, 202611,
                                    areas=areas)
        return issue_credential(self.db, request, issuer=issuer or self.anchor._signer,
                                chain_id=self.anchor.chain_id,
                                contract=self.anchor.contract_address)

    def verify(self, presentation: dict[str, Any], *, challenge: str = NONCE,
               now: int | None = None, **kw: Any) -> Any:
        return verify_presentation(presentation, reader=self.reader, challenge=challenge,
                                   audience=BANK, now=now or int(time.time()), **kw)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with fresh_database(request, "sqlite", tmp_path, at_head=True) as url:
        db = Database(url)
        anchor = connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(), db)
        with db.session(write_lock=True) as s:
            alice, bob = accounts.create_citizen(s), accounts.create_citizen(s)
        add_entries(db, [Entry(alice, at(2026, 10, 3), 460, 4),
                         Entry(alice, at(2026, 10, 9), 230, 2, behaviour="NO_DISPOSABLE_TABLEWARE"),
                         Entry(bob, at(2026, 10, 12), 80, 0),
                         Entry(alice, at(2026, 11, 2), 1200, 12),
                         Entry(alice, at(2026, 11, 20), 0, 10, kind=KIND_DEBIT)])
        Sealer(db, anchor, SealOptions(confirmations=1, workers=1)).seal()
        chain = EvmStatements(anchor)
        for now in (at(2026, 11, 3), at(2026, 12, 3)):
            build_statement(db, now=now)
            anchor_statements(db, chain)
        yield World(db, anchor, chain, EvmStatements(anchor.reader()), alice, bob,
                    Account.create())
        db.engine.dispose()


def _presented(w: World, credential: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return present(credential or w.issue(), w.holder, nonce=kw.pop("nonce", NONCE),
                   audience=BANK, **kw)


def _refused(w: World, presentation: dict[str, Any], check: str, **kw: Any) -> str:
    with pytest.raises(VerificationError) as caught:
        w.verify(presentation, **kw)
    assert caught.value.check == check, caught.value
    return str(caught.value)


def _credential(presentation: dict[str, Any]) -> dict[str, Any]:
    return presentation["verifiableCredential"][0]  # type: ignore[no-any-return]


def test_a_presentation_verifies_to_the_months_totals_and_nothing_more(world: World) -> None:
    verified = world.verify(_presented(world)).to_json()
    assert [(m["month"], m["reductionGrams"], m["pointsEarned"], m["pointsSpent"], m["entryCount"])
            for m in verified["months"]] == [("2026-10", "690", "6", "0", "2"),
                                             ("2026-11", "1200", "12", "10", "2")]
    assert verified["totalReductionGrams"] == "1890" and verified["holder"] == world.holder.address
    text = json.dumps(_presented(world))
    assert "occurredAt" not in text and "CYCLING" not in text and "areaTotals" not in text


def test_totals_per_area_are_disclosed_only_when_asked_and_are_checked(world: World) -> None:
    verified = world.verify(_presented(world, world.issue(areas=True))).to_json()
    assert verified["months"][0]["areaTotals"] == {"food": "230", "transport": "460"}
    forged = _presented(world, world.issue(areas=True))
    _credential(forged)["credentialSubject"]["statements"][0]["areaTotals"][1][
        "reductionGrams"] = "9460"
    assert "area totals are not the ones its leaf commits to" in _refused(world, forged, "areas")


def test_tampered_totals_are_refused_by_the_statement_proof(world: World) -> None:
    forged = _presented(world)
    _credential(forged)["credentialSubject"]["statements"][1]["leaf"]["reductionGrams"] = "12000"
    assert "2026-11: proof folds to root" in _refused(world, forged, "statement")


def test_a_leaf_moved_to_another_month_is_refused(world: World) -> None:
    forged = _presented(world)
    months = _credential(forged)["credentialSubject"]["statements"]
    months[0]["leaf"], months[1]["leaf"] = months[1]["leaf"], months[0]["leaf"]
    assert "listed under 2026-10 is 2026-11's" in _refused(world, forged, "statement")
    relabelled = _presented(world)
    leaf = _credential(relabelled)["credentialSubject"]["statements"][1]["leaf"]
    leaf["period"] = 202610  # and the leaf's own month rewritten: its hash moves off the tree
    _credential(relabelled)["credentialSubject"]["statements"][0]["leaf"] = leaf
    _credential(relabelled)["credentialSubject"]["statements"][0]["proof"] = \
        _credential(relabelled)["credentialSubject"]["statements"][1]["proof"]
    assert "2026-10: proof folds to root" in _refused(world, relabelled, "statement")


def test_a_proof_for_another_account_is_refused(world: World) -> None:
    bobs = world.issue(world.bob, holder=Account.create())
    forged = _presented(world)
    _credential(forged)["credentialSubject"]["statements"][0] = \
        bobs["credentialSubject"]["statements"][0]  # a sound leaf and proof, of Bob's October
    assert "2026-10's leaf is account 0x" in _refused(world, forged, "subject")


def test_a_credential_not_signed_by_an_issuer_is_refused(world: World) -> None:
    forged = _presented(world, world.issue(issuer=Account.create()))
    assert "does not hold ISSUER_ROLE" in _refused(world, forged, "issuer")
    resigned = _presented(world)
    _credential(resigned)["credentialSubject"]["account"] = \
        "0x" + world.bob.account.hex()  # the subject claimed to be someone else
    assert _refused(world, resigned, "subject")


def test_another_holders_signature_is_refused(world: World) -> None:
    presentation = _presented(world)
    parsed = parse_credential(_credential(presentation))
    proof = presentation["proof"]
    typed = presentation_typed_data(parsed.digest, chain_id=parsed.chain_id,
                                    contract=parsed.contract, audience=BANK, nonce=NONCE,
                                    created=_unix(proof["created"]), expires=_unix(proof["expires"]))
    proof["proofValue"] = sign(Account.create(), typed)  # well formed, but not the holder's
    assert "the credential's holder is" in _refused(world, presentation, "holder")
    with pytest.raises(Exception, match="the credential's holder is"):
        present(world.issue(), Account.create(), nonce=NONCE, audience=BANK)


def test_a_wrong_or_replayed_challenge_is_refused(world: World) -> None:
    presentation = _presented(world)
    assert "answers challenge 'n-4f1c2a', not 'n-new'" in _refused(
        world, presentation, "challenge", challenge="n-new")
    seen: set[str] = set()

    def nonce_seen(nonce: str) -> bool:
        known = nonce in seen
        seen.add(nonce)
        return known

    world.verify(presentation, nonce_seen=nonce_seen)
    assert "answered before: a replay" in _refused(world, presentation, "challenge",
                                                   nonce_seen=nonce_seen)
    other_bank = verify_presentation
    with pytest.raises(VerificationError) as caught:
        other_bank(presentation, reader=world.reader, challenge=NONCE, audience="Another bank",
                   now=int(time.time()))
    assert caught.value.check == "audience"


def test_an_expired_presentation_is_refused(world: World) -> None:
    presentation = _presented(world, valid_seconds=600)
    assert "was good from" in _refused(world, presentation, "expiry", now=int(time.time()) + 601)
    world.verify(presentation, now=int(time.time()) + 540)


def test_a_revoked_credential_is_refused(world: World) -> None:
    credential = world.issue()
    index = int(credential["credentialStatus"]["statusIndex"])
    assert revoke(world.db, world.chain, [index]) == [index]
    assert f"credential {index} is revoked on chain" in _refused(
        world, _presented(world, credential), "revocation")


def test_an_erased_citizens_credentials_are_refused_and_their_months_stay_verifiable(
        world: World) -> None:
    credential = world.issue()
    presentation = _presented(world, credential)
    with world.db.session(write_lock=True) as s:
        accounts.erase_citizen(s, s.get(Citizen, world.alice.id))
    assert revoke(world.db, world.chain) == [int(credential["credentialStatus"]["statusIndex"])]
    _refused(world, presentation, "revocation")
    for month in credential["credentialSubject"]["statements"]:  # still anchored, unlinkable
        leaf = StatementLeafValues.from_json(month["leaf"])
        verify_inclusion(leaf.leaf_hash(), [bytes.fromhex(h[2:]) for h in month["proof"]],
                         world.reader.statement_root(leaf.period))
    with pytest.raises(NotFound):
        world.issue()  # and no new one is issued


def test_a_credential_of_a_month_not_anchored_is_not_issued(world: World) -> None:
    request = CredentialRequest(world.alice.id, world.holder.address, 202611, 202612)
    with pytest.raises(NotFound, match="2026-12 has no anchored statement"):
        issue_credential(world.db, request, issuer=world.anchor._signer,
                         chain_id=world.anchor.chain_id, contract=world.anchor.contract_address)


def test_a_presentation_for_another_ledger_is_refused(world: World) -> None:
    other = EvmStatements(connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(),
                                         world.db).reader())
    with pytest.raises(VerificationError) as caught:
        verify_presentation(_presented(world), reader=other, challenge=NONCE, audience=BANK,
                            now=int(time.time()))
    assert caught.value.check == "ledger"


@pytest.mark.parametrize("mangle, field", [
    (lambda p: p.pop("proof"), "presentation.proof"),
    (lambda p: _credential(p).update(issuer="did:web:bank.example"), "credential.issuer"),
    (lambda p: _credential(p)["credentialSubject"]["statements"][0]["proof"].append("0x12"),
     "credentialSubject.statements[0].proof[1]"),
    (lambda p: _credential(p)["credentialSubject"]["statements"].append(
        copy.deepcopy(_credential(p)["credentialSubject"]["statements"][0])),
     "credentialSubject.statements"),
])
def test_a_malformed_presentation_is_refused_as_shape_naming_the_field(world: World, mangle: Any,
                                                                       field: str) -> None:
    presentation = _presented(world)
    mangle(presentation)
    with pytest.raises(VerificationError) as caught:
        world.verify(presentation)
    assert (caught.value.check, caught.value.field) == ("shape", field)


def _unix(text: str) -> int:
    from datetime import UTC, datetime

    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
