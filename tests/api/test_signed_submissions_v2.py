"""Signed submissions, version 2 (issue #15, item 7 and EIP-2): a signed request is good
once, for a short time, on one ledger; a malleable (high-s) signature is refused; version
1 is refused with a problem naming version 2. Through the real app, on SQLite and
PostgreSQL, and what is written is counted in the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.constants import SECPK1_N
from eth_keys.datatypes import Signature
from sqlalchemy import select

from ledger import accounts
from ledger.credentials import issue_api_key
from ledger.errors import LedgerError, MalleableSignature, Replayed
from ledger.hashing import keccak
from ledger.intake.service import record_submission
from ledger.intake.signed import check_submission, record_hashes
from ledger.records import canonical_json
from ledger.signing import (
    MAX_VALIDITY_SECONDS,
    receipt_signer,
    records_hash,
    sign_submission,
    submission_typed_data,
)
from ledger.store.database import Database
from ledger.store.models import Partner
from tests.conftest import a_record
from tests.signed_ledger import Ledger, open_ledger


@pytest.fixture
def ledger(db: Database, tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path / "state", db.url, Account.create()) as opened:
        yield opened


def assert_problem(response: Any, status: int, code: str, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == f"urn:carbon-ledger:problem:{code}", body
    assert body["field"] == field, body
    return dict(body)


def rides(ledger: Ledger, n: int = 2, prefix: str = "r") -> list[dict]:
    return [a_record(ledger.pseudonym, quantity=2000 + i, record_id=f"{prefix}-{i}",
                     hours_ago=2 + i) for i in range(n)]


def test_info_publishes_the_v2_struct_bound_to_this_ledgers_contract(ledger: Ledger) -> None:
    eip712 = ledger.info["eip712"]
    assert eip712["domain"] == {"name": "CarbonLedger", "version": "2",
                                "chainId": ledger.info["chainId"],
                                "verifyingContract": ledger.info["contract"]}
    assert [f["name"] for f in eip712["types"]["Submission"]] == [
        "partner", "recordsHash", "count", "nonce", "deadline"]
    assert eip712["headers"] == {"signature": "X-Signature", "nonce": "X-Nonce",
                                 "deadline": "X-Deadline"}
    assert eip712["maxValiditySeconds"] == MAX_VALIDITY_SECONDS


def test_a_partner_signing_only_what_info_publishes_is_accepted(ledger: Ledger) -> None:
    """The published typed data is enough: signed here with eth-account alone."""
    records = rides(ledger)
    eip712 = ledger.info["eip712"]
    nonce, deadline = "0x" + "ab" * 32, int(time.time()) + 300
    signable = encode_typed_data(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  **eip712["types"]},
        "primaryType": eip712["primaryType"], "domain": eip712["domain"],
        "message": {"partner": "greenbike", "recordsHash": records_hash(record_hashes(records)),
                    "count": len(records), "nonce": bytes.fromhex(nonce[2:]),
                    "deadline": deadline}})
    signature = "0x" + bytes(Account.sign_message(signable, ledger.key.key).signature).hex()
    answer = ledger.post(records, {"Authorization": f"Bearer {ledger.partner_key}",
                                   "X-Signature": signature, "X-Nonce": nonce,
                                   "X-Deadline": str(deadline),
                                   "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2 and answer.json()["nonce"] == nonce


def test_a_replayed_submission_is_refused_and_writes_nothing(ledger: Ledger) -> None:
    records = rides(ledger)
    headers = ledger.headers(records)
    first = ledger.post(records, headers)
    assert first.status_code == 200 and first.json()["accepted"] == 2
    after_first = ledger.written()
    for _ in range(2):
        problem = assert_problem(ledger.post(records, headers), 409, "replayed-submission",
                                 "X-Nonce")
        assert first.json()["submissionId"] in problem["detail"]
    assert ledger.written() == after_first  # no second submission row, receipt or credit
    # The same records under a new nonce are a new submission: each record a duplicate.
    again = ledger.post(records, ledger.headers(records))
    assert again.status_code == 200 and again.json()["duplicate"] == 2
    assert again.json()["receipt"]["message"]["accepted"] == 0


def test_a_nonce_is_one_partners_own(ledger: Ledger, tmp_path: Path) -> None:
    """Another partner using the same nonce is not a replay (and cannot burn this one's)."""
    other = Account.create()
    with ledger.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="cyclo", name="c", kind="bike_share",
                                          signing_address=bytes.fromhex(other.address[2:]))
        other_key = issue_api_key(s, role="partner", partner=partner)
    nonce, deadline = b"\x07" * 32, int(time.time()) + 300
    for key, code, credential, prefix in ((other, "cyclo", other_key, "o"),
                                          (ledger.key, "greenbike", ledger.partner_key, "g")):
        records = rides(ledger, 1, prefix)
        signature = sign_submission(key.key, chain_id=ledger.info["chainId"],
                                    contract=ledger.info["contract"], partner=code,
                                    digest=records_hash(record_hashes(records)), count=1,
                                    nonce=nonce, deadline=deadline)
        answer = ledger.post(records, {"Authorization": f"Bearer {credential}",
                                       "X-Signature": signature, "X-Nonce": "0x" + nonce.hex(),
                                       "X-Deadline": str(deadline),
                                       "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text


def test_an_expired_or_too_distant_deadline_is_refused_naming_it(ledger: Ledger) -> None:
    records = rides(ledger)
    expired = ledger.headers(records, valid_for=-1)
    assert_problem(ledger.post(records, expired), 422, "invalid-input", "X-Deadline")
    distant = ledger.headers(records, valid_for=MAX_VALIDITY_SECONDS + 3600)
    assert_problem(ledger.post(records, distant), 422, "invalid-input", "X-Deadline")
    for bad in ("soon", "-5", "1e9", str(2**64), "١٢٣".encode()):
        headers = {**ledger.headers(records), "X-Deadline": bad}
        assert_problem(ledger.post(records, headers), 422, "invalid-input", "X-Deadline")
    for bad in ("0x1234", "ab" * 32, "0x" + "zz" * 32):
        headers = {**ledger.headers(records), "X-Nonce": bad}
        assert_problem(ledger.post(records, headers), 422, "invalid-input", "X-Nonce")
    assert ledger.written() == (0, 0, 0, 0)
    # A deadline the partner changed after signing is another message: not the partner's.
    tampered = {**ledger.headers(records), "X-Deadline": str(int(time.time()) + 900)}
    assert ledger.post(records, tampered).status_code == 403
    assert ledger.post(records, ledger.headers(records)).status_code == 200


def test_a_request_signed_for_another_ledger_on_the_same_chain_is_refused(
        ledger: Ledger, tmp_path: Path) -> None:
    """Two ledgers, one partner key: what is signed for one is worthless to the other."""
    with open_ledger(tmp_path / "other", None, ledger.key) as other:
        assert other.info["chainId"] == ledger.info["chainId"]
        assert other.info["contract"] != ledger.info["contract"]
        records = [a_record(ledger.pseudonym, quantity=3000, record_id="x-1")]
        for_other = other.headers(records)
        answer = ledger.post(records, {**for_other,
                                       "Authorization": f"Bearer {ledger.partner_key}"})
        assert_problem(answer, 403, "wrong-signer", "X-Signature")
        assert ledger.written() == (0, 0, 0, 0)
        # The ledger it was signed for takes it (its record names a citizen it does not know).
        taken = other.post(records, for_other)
        assert taken.status_code == 200 and taken.json()["records"][0]["field"] == "citizen"


def v1_signature(ledger: Ledger, records: list[dict]) -> str:
    """A submission signed as partners did before version 2 (no nonce, deadline, contract)."""
    signable = encode_typed_data(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"}],
                  "Submission": [{"name": "partner", "type": "string"},
                                 {"name": "recordsHash", "type": "bytes32"},
                                 {"name": "count", "type": "uint32"}]},
        "primaryType": "Submission",
        "domain": {"name": "CarbonLedger", "version": "1", "chainId": ledger.info["chainId"]},
        "message": {"partner": "greenbike", "recordsHash": records_hash(record_hashes(records)),
                    "count": len(records)}})
    return "0x" + bytes(Account.sign_message(signable, ledger.key.key).signature).hex()


def test_a_v1_submission_is_refused_with_a_problem_naming_v2(ledger: Ledger) -> None:
    records = rides(ledger)
    v1 = {"Authorization": f"Bearer {ledger.partner_key}", "Content-Type": "application/json",
          "X-Signature": v1_signature(ledger, records)}
    problem = assert_problem(ledger.post(records, v1), 422, "retired-signing-version", "X-Nonce")
    assert "Submission(partner, recordsHash, count, nonce, deadline)" in problem["detail"]
    assert "docs/signing.md" in problem["detail"]
    # The new headers around the old struct's signature: told what is wrong, not "wrong key".
    mixed = {**ledger.headers(records), "X-Signature": v1["X-Signature"]}
    assert_problem(ledger.post(records, mixed), 422, "retired-signing-version", "X-Signature")
    assert ledger.written() == (0, 0, 0, 0)


def high_s_twin(signature: str) -> str:
    """The same signature with s' = n - s and the recovery bit flipped: valid for the same
    key and message, so it recovers the same address (the malleability EIP-2 closes)."""
    raw = bytes.fromhex(signature[2:])
    sig = Signature(raw[:64] + bytes([raw[64] - 27]))
    twin = Signature(vrs=(1 - sig.v, sig.r, SECPK1_N - sig.s))
    return "0x" + twin.to_bytes()[:64].hex() + bytes([twin.v + 27]).hex()


def test_a_high_s_signature_is_refused_and_its_low_s_form_then_accepted(ledger: Ledger) -> None:
    records = rides(ledger)
    headers = ledger.headers(records)
    twin = high_s_twin(headers["X-Signature"])
    low = Signature(bytes.fromhex(headers["X-Signature"][2:])[:64] + b"\x00").s
    assert Signature(bytes.fromhex(twin[2:])[:64] + b"\x00").s == SECPK1_N - low > SECPK1_N // 2
    problem = assert_problem(ledger.post(records, {**headers, "X-Signature": twin}), 422,
                             "malleable-signature", "X-Signature")
    assert "EIP-2" in problem["detail"]
    assert ledger.written() == (0, 0, 0, 0)
    # The refusal used nothing up: the partner's own (low-s) signature of the same nonce works.
    assert ledger.post(records, headers).status_code == 200


def test_the_high_s_twin_recovers_the_same_signer(ledger: Ledger) -> None:
    """So it is a real malleable twin, which only the EIP-2 check tells apart."""
    records = rides(ledger)
    headers = ledger.headers(records)
    digest = records_hash(record_hashes(records))
    signable = encode_typed_data(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  **ledger.info["eip712"]["types"]},
        "primaryType": "Submission", "domain": ledger.info["eip712"]["domain"],
        "message": {"partner": "greenbike", "recordsHash": digest, "count": len(records),
                    "nonce": bytes.fromhex(headers["X-Nonce"][2:]),
                    "deadline": int(headers["X-Deadline"])}})
    twin = bytes.fromhex(high_s_twin(headers["X-Signature"])[2:])
    assert Account.recover_message(signable, signature=twin) == ledger.key.address


def test_receipts_are_bound_to_the_ledger_and_their_high_s_twin_is_refused(ledger: Ledger) -> None:
    records = rides(ledger)
    receipt = ledger.post(records, ledger.headers(records)).json()["receipt"]
    assert receipt["domain"]["verifyingContract"] == ledger.info["contract"]
    assert receipt["domain"]["version"] == "2"
    assert receipt_signer(receipt) == ledger.info["operator"]
    with pytest.raises(MalleableSignature) as refused:
        receipt_signer({**receipt, "signature": high_s_twin(receipt["signature"])})
    assert refused.value.field == "signature"


def test_two_racing_copies_of_one_request_are_credited_once(ledger: Ledger) -> None:
    """Both checked, then decided at once in two sessions: one is recorded, one refused."""
    records = rides(ledger, 3)
    headers = ledger.headers(records)
    with ledger.db.session() as s:
        partner = s.scalars(select(Partner)).one()
    checked = check_submission(partner=partner, records=records,
                               signature=headers["X-Signature"], nonce=headers["X-Nonce"],
                               deadline=headers["X-Deadline"], chain_id=ledger.info["chainId"],
                               contract=ledger.info["contract"])
    start, outcomes = threading.Barrier(2), []

    def decide() -> None:
        start.wait()
        try:
            with ledger.db.session(write_lock=True) as s:
                record_submission(s, checked, partner=s.get_one(Partner, partner.id),
                                  operator_key=ledger.operator_key, anchor_within=600)
            outcomes.append("recorded")
        except LedgerError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=decide) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == sorted(["recorded", Replayed.__name__])
    submissions, recorded, entries, _points = ledger.written()
    assert (submissions, recorded, entries) == (1, 3, 3)


DOCS = Path(__file__).parents[2] / "docs" / "signing.md"


def test_the_worked_example_in_docs_signing_md_holds() -> None:
    """Every value of the documented example, recomputed (the page cannot drift)."""
    page = DOCS.read_text()
    key = keccak(b"carbon-ledger signing example")
    contract, nonce = "0x5FbDB2315678afecb367f032d93F642f64180aa3", bytes.fromhex(
        "7f3c9a0e5b1d4c2a8e6f0b9d3a7c5e1f2b4d6a8c0e9f1b3d5a7c9e0f2b4d6a8c")
    record = {"record_id": "greenbike-000123", "citizen": "c_3f9a0b1c2d3e4f5a6b7c8d9e",
              "behaviour": "CYCLING", "quantity": 3200,
              "occurred_at": "2026-11-24T08:13:00+08:00", "ended_at": "2026-11-24T08:29:00+08:00"}
    [one] = record_hashes([record])
    digest = records_hash([one])
    eip712 = submission_typed_data(31337, contract)
    signable = encode_typed_data(eip712["domain"], eip712["types"], {
        "partner": "greenbike", "recordsHash": digest, "count": 1, "nonce": nonce,
        "deadline": 1795929180})
    signature = sign_submission(key, chain_id=31337, contract=contract, partner="greenbike",
                                digest=digest, count=1, nonce=nonce, deadline=1795929180)
    shown = [Account.from_key(key).address, canonical_json(record).decode(), one, digest,
             signable.header, signable.body,
             keccak(b"\x19" + signable.version + signable.header + signable.body), signature]
    for value in shown:
        text = value if isinstance(value, str) else "0x" + value.hex()
        assert f"`{text}`" in page, text
    assert "0x" + bytes(Account.sign_message(signable, key).signature).hex() == signature
