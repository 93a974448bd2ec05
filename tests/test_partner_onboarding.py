"""A partner onboarding from the docs alone (issue #17): `carbon-ledger partner keygen`,
`partner submit` and the importable client against a live ledger over HTTP; retries that
resend the same signed request and never credit twice; a refused signature that says which
part failed; the receipt checked; and every sample file in docs/samples accepted by a real
submission."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from sqlalchemy import func, select

from api.cli.main import main
from api.composition import Container
from api.partner import Client, PartnerClientError, ReceiptInvalid
from api.settings import Settings
from ledger import accounts
from ledger.credentials import issue_api_key
from ledger.methodology import partner_kinds
from ledger.store.models import ActivityRecord, Submission
from tests.api.test_live_http import live_server
from tests.conftest import CST, a_record

SAMPLES = Path(__file__).resolve().parents[1] / "docs" / "samples"
SAMPLE_DAY = datetime(2026, 11, 24, tzinfo=CST)


@dataclasses.dataclass
class Served:
    url: str
    container: Container
    data_dir: Path

    def partner(self, code: str, kind: str, address: str) -> str:
        """Register a partner (as the operator does) and return its API key."""
        with self.container.db.session(write_lock=True) as s:
            partner = accounts.create_partner(s, code=code, name=code, kind=kind,
                                              signing_address=bytes.fromhex(address[2:]))
            return issue_api_key(s, role="partner", partner=partner)

    def citizen(self) -> str:
        with self.container.db.session(write_lock=True) as s:
            return accounts.create_citizen(s).pseudonym

    def count(self, model: Any) -> int:
        with self.container.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("ledger")
    container = Container(Settings(data_dir=data_dir, chain="tester",
                                   rate_limit="100000/minute"))
    with live_server(container, run_sealer=False) as url:
        yield Served(url, container, data_dir)
    container.db.engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    assert "Traceback" not in got.err
    return code, got.out, got.err


def test_keygen_then_submit_from_the_command_line(served: Served, tmp_path: Path, capsys,
                                                  monkeypatch) -> None:
    monkeypatch.setenv("CARBON_LEDGER_KEY_PASSWORD", "correct horse battery")
    keystore = tmp_path / "cli-bike.json"
    code, out, err = run(capsys, "partner", "keygen", keystore, "--partner", "clibike")
    address = out.strip()
    assert code == 0 and re.fullmatch(r"0x[0-9a-fA-F]{40}", address), (out, err)
    assert f"--address {address}" in err
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert Account.decrypt(json.loads(keystore.read_text()), "correct horse battery")
    assert run(capsys, "partner", "keygen", keystore)[0] == 2, "never overwrites a keystore"

    monkeypatch.setenv("CARBON_LEDGER_API_KEY", served.partner("clibike", "bike_share", address))
    who = served.citizen()
    lines = [a_record(who, record_id="cli-1", hours_ago=5), a_record(who, record_id="cli-2",
                                                                     behaviour="SKATE")]
    records = tmp_path / "rides.ndjson"
    records.write_text("\n" + "\n".join(json.dumps(r) for r in lines) + "\n")
    code, out, err = run(capsys, "partner", "submit", records, "--url", served.url,
                         "--key", keystore)
    assert code == 0, err
    first, second = out.strip().splitlines()
    assert first.startswith("submission 0x") and "1 accepted, 0 duplicate, 1 rejected" in first
    assert "receipt signed by " + served.container.signer.address in first
    assert second.startswith("line 3 (cli-2): rejected, behaviour:"), second

    code, out, _ = run(capsys, "partner", "submit", records, "--url", served.url, "--key",
                       keystore, "--json")
    answer = json.loads(out)
    assert code == 0 and answer["receiptChecked"] and answer["duplicate"] == 1
    assert [r["line"] for r in answer["records"]] == [2, 3]


def test_the_command_line_names_what_is_wrong(served: Served, tmp_path: Path, capsys,
                                              monkeypatch) -> None:
    monkeypatch.setenv("CARBON_LEDGER_KEY_PASSWORD", "correct horse battery")
    keystore = tmp_path / "k.json"
    assert run(capsys, "partner", "keygen", keystore)[0] == 0
    records = tmp_path / "r.json"
    records.write_text(json.dumps([a_record("c_x")]))
    monkeypatch.delenv("CARBON_LEDGER_API_KEY", raising=False)
    code, _, err = run(capsys, "partner", "submit", records, "--url", served.url, "--key",
                       keystore, "--partner", "nobody")
    assert code == 2 and "--api-key" in err
    code, _, err = run(capsys, "partner", "submit", records, "--url", served.url, "--key",
                       keystore, "--partner", "nobody", "--api-key", "clk_0000000000000000.x")
    assert code == 1 and "unauthenticated" in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("CARBON_LEDGER_KEY_PASSWORD", "wrong password")
    code, _, err = run(capsys, "partner", "submit", records, "--url", served.url, "--key",
                       keystore, "--partner", "nobody", "--api-key", "k")
    assert code == 2 and "--key:" in err, err
    code, _, err = run(capsys, "partner", "submit", records, "--url", "http://127.0.0.1:9",
                       "--key", tmp_path / "none.json", "--api-key", "k")
    assert code == 2 and "--key:" in err


@pytest.fixture
def partner(served: Served) -> tuple[Any, str, str]:
    key = Account.create()
    code = f"p{os.urandom(4).hex()}"
    return key, code, served.partner(code, "bike_share", key.address)


def test_a_retry_after_a_lost_answer_reuses_the_nonce_and_credits_once(served: Served,
                                                                      partner) -> None:
    key, code, api_key = partner

    class LosesTheFirstAnswer(requests.Session):
        posts = 0

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            answer = super().request(method, url, *args, **kwargs)
            if method == "POST":
                LosesTheFirstAnswer.posts += 1
                if LosesTheFirstAnswer.posts == 1:  # recorded, but the answer never arrives
                    raise requests.Timeout("read timed out")
            return answer

    client = Client(served.url, api_key=api_key, partner=code, private_key=key.key,
                    session=LosesTheFirstAnswer(), sleep=lambda _: None)
    who = served.citizen()
    before = served.count(Submission), served.count(ActivityRecord)
    result = client.submit([a_record(who, record_id=f"{code}-1")])
    assert result.replayed and result.attempts == 2
    assert result.answer["accepted"] == 1 and result.receipt["message"]["accepted"] == 1
    assert (served.count(Submission), served.count(ActivityRecord)) == (before[0] + 1,
                                                                      before[1] + 1)
    assert client.submission(result.submission_id)["submissionId"] == result.submission_id


def test_a_nonce_used_before_is_not_mistaken_for_a_lost_answer(served: Served, partner) -> None:
    key, code, api_key = partner
    client = Client(served.url, api_key=api_key, partner=code, private_key=key.key)
    prepared = client.prepare([a_record(served.citizen(), record_id=f"{code}-n")])
    client.send(prepared)
    with pytest.raises(PartnerClientError) as refused:
        client.send(prepared)  # a first attempt answered 409: the nonce was reused
    assert refused.value.status == 409 and refused.value.code == "replayed-submission"


def test_a_records_hash_mismatch_is_told_apart_from_a_wrong_key(served: Served, partner) -> None:
    key, code, api_key = partner
    client = Client(served.url, api_key=api_key, partner=code, private_key=key.key)
    who = served.citizen()
    prepared = client.prepare([a_record(who, record_id=f"{code}-h")])
    sent = json.loads(prepared.body)
    sent[0]["quantity"] += 1  # the body no longer holds the records that were signed
    with pytest.raises(PartnerClientError) as mismatch:
        client.send(dataclasses.replace(prepared, body=json.dumps(sent).encode()))
    said = str(mismatch.value)
    assert said.startswith("recordsHash mismatch: the ledger computed 0x"), said
    assert "over 1 records" in said and "0x" + prepared.records_hash.hex() in said

    stranger = Client(served.url, api_key=api_key, partner=code, private_key=Account.create().key)
    with pytest.raises(PartnerClientError) as wrong:
        stranger.submit([a_record(who, record_id=f"{code}-w")])
    assert str(wrong.value).startswith("wrong signer: the records' hash agrees"), wrong.value
    assert wrong.value.status == 403 and wrong.value.field == "X-Signature"


def test_a_receipt_from_another_key_is_refused(served: Served, partner) -> None:
    key, code, api_key = partner
    client = Client(served.url, api_key=api_key, partner=code, private_key=key.key,
                    operator=Account.create().address)
    with pytest.raises(ReceiptInvalid, match="not the operator"):
        client.submit([a_record(served.citizen(), record_id=f"{code}-r")])


def _as_of_recently(record: dict[str, Any], citizens: dict[str, str]) -> dict[str, Any]:
    """A sample record for this ledger: its citizens, and its day moved to two days ago
    (a partner sends its own citizens and recent records)."""
    shift = (datetime.now(CST).replace(hour=0, minute=0, second=0, microsecond=0)
             - timedelta(days=2) - SAMPLE_DAY)
    moved = dict(record, citizen=citizens[record["citizen"]])
    for name in ("occurred_at", "ended_at"):
        if name in record:
            moved[name] = (datetime.fromisoformat(record[name]) + shift).isoformat()
    return moved


def test_there_is_a_sample_for_every_partner_kind() -> None:
    assert sorted(p.stem for p in SAMPLES.glob("*.ndjson")) == sorted(partner_kinds())


@pytest.mark.parametrize("kind", partner_kinds())
def test_each_sample_is_accepted_by_a_real_submission(served: Served, kind: str) -> None:
    key = Account.create()
    code = f"{kind.replace('_', '-')}-{os.urandom(3).hex()}"
    api_key = served.partner(code, kind, key.address)
    sample = [json.loads(line) for line in (SAMPLES / f"{kind}.ndjson").read_text().splitlines()
              if line.strip()]
    citizens = {r["citizen"]: served.citizen() for r in sample}
    records = [_as_of_recently(r, citizens) for r in sample]
    result = Client(served.url, api_key=api_key, partner=code, private_key=key.key).submit(records)
    assert result.rejected == [] and result.answer["accepted"] == len(records), result.answer


def test_the_partners_page_lists_a_sample_for_every_kind() -> None:
    page = (SAMPLES.parent / "partners.md").read_text(encoding="utf-8")
    for kind in partner_kinds():
        assert f"| `{kind}` |" in page and f"(samples/{kind}.ndjson)" in page, kind
