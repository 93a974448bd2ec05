"""The audit over HTTP (#24 item 2, #17): a small batch recomputed in the request, a
large one by a job whose progress is answered (202, Retry-After) until its stored report
is, and each entry's recomputation in pages whose cost follows the page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts, audit_jobs
from ledger.credentials import issue_api_key
from ledger.intake.service import submit_records
from ledger.store.models import ActivityRecord, BatchAudit
from tests.conftest import a_record


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[TestClient, dict[str, str], Container]]:
    container = Container(Settings(data_dir=tmp_path_factory.mktemp("audit-http"), chain="tester",
                                   rate_limit="100000/minute"))
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="Green Bike", kind="bike_share",
                                          signing_address=bytes.fromhex(Account.create().address[2:]))
        citizen = accounts.create_citizen(s)
        key = issue_api_key(s, role="auditor")
        records = [a_record(citizen.pseudonym, quantity=1000 + k, hours_ago=2 + k / 2)
                   for k in range(7)]
        assert all(o.status == "accepted" for o in submit_records(
            s, partner=partner, records=records).outcomes)
    with TestClient(create_app(container, run_sealer=False)) as client:
        client.app.state.ledger.scheduler.seal_once()  # type: ignore[attr-defined]
        yield client, {"Authorization": f"Bearer {key}"}, container


def test_a_small_batch_is_recomputed_in_the_request(served) -> None:  # type: ignore[no-untyped-def]
    client, auditor, _ = served
    answer = client.get("/v1/batches/1/audit", headers=auditor)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["ok"] and report["entries"] == report["credits"] == 7
    assert report["problemCount"] == 0 and report["recomputed"] == report["sealed"]
    assert report["heldAgainstChain"]  # the server's own (in-process) chain
    assert abs(report["auditedAt"] - time.time()) < 60


def test_each_entrys_recomputation_pages_through_the_batch(served) -> None:  # type: ignore[no-untyped-def]
    client, auditor, _ = served
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.get("/v1/batches/1/audit/entries", headers=auditor,
                          params={"limit": 3} | ({} if after is None else {"after": after}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["entries"]) <= 3
        seen += body["entries"]
        if body["next"] is None:
            break
        after = body["next"]
    assert [e["seq"] for e in seen] == list(range(1, 8))
    for e in seen:
        assert e["problems"] == [] and e["kind"] == 1 and e["recordHash"].startswith("0x")
        assert e["fullGrams"] == e["reductionGrams"] and e["rulePoints"] == e["points"]
    missing = client.get("/v1/batches/9/audit/entries", headers=auditor)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/batches/1/audit/entries", headers=auditor,
                      params={"limit": 1001}).status_code == 422


def until_done(client: TestClient, auditor: dict[str, str], **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = client.get("/v1/batches/1/audit", headers=auditor, params=params)
        if answer.status_code == 200:
            return answer.json()  # type: ignore[no-any-return]
        assert answer.status_code == 202, answer.text
        assert answer.headers["Retry-After"] == str(audit_jobs.RETRY_SECONDS)
        job = answer.json()
        assert (job["batchId"], job["state"], job["entries"]) == (1, "running", 7)
        params = {}
        time.sleep(0.2)
    raise AssertionError("the audit job did not finish in 60 s")


def test_a_large_batch_is_audited_by_one_job_then_served_stored(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, auditor, container = served
    monkeypatch.setattr(audit_jobs, "INLINE_ENTRIES", 0)  # every batch is large
    started: list[str] = []
    real = audit_jobs.start_process

    def start(url: str, batch_id: int, holder: str, open_chain: Any) -> None:
        assert open_chain is None  # an in-process chain cannot be opened in the job's process
        started.append(holder)
        real(url, batch_id, holder, open_chain)

    monkeypatch.setattr(audit_jobs, "start_process", start)
    first = client.get("/v1/batches/1/audit", headers=auditor)
    assert first.status_code == 202 and first.json()["entriesDone"] <= 7
    report = until_done(client, auditor)
    assert len(started) == 1  # the requests while it ran started nothing more
    assert report["ok"] and report["entries"] == 7 and report["recomputed"] == report["sealed"]
    assert not report["heldAgainstChain"]
    again = client.get("/v1/batches/1/audit", headers=auditor).json()
    assert again == report and len(started) == 1  # stored: not recomputed

    with container.db.session() as s:  # a record edited after the audit: a refresh finds it
        record = s.scalar(select(ActivityRecord).order_by(ActivityRecord.id))
        record.raw = record.raw.replace('"quantity":1000', '"quantity":1001')
    assert client.get("/v1/batches/1/audit", headers=auditor).json() == report
    refreshed = until_done(client, auditor, refresh="true")
    assert len(started) == 2 and not refreshed["ok"] and refreshed["problemCount"] == 1
    assert "does not hash" in refreshed["problems"][0]
    assert refreshed["auditedAt"] >= report["auditedAt"]


def test_a_job_whose_process_died_is_claimed_again(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, auditor, container = served
    monkeypatch.setattr(audit_jobs, "INLINE_ENTRIES", 0)
    long_ago = int(time.time()) - audit_jobs.STALE_SECONDS - 1
    with container.db.session() as s:
        s.execute(update(BatchAudit).where(BatchAudit.batch_id == 1).values(
            state="running", holder="dead", heartbeat_at=long_ago, result=None))
    report = until_done(client, auditor)
    with container.db.session() as s:
        assert s.get(BatchAudit, 1).holder != "dead"  # type: ignore[union-attr]
    assert report["entries"] == 7


def test_an_unknown_batch_is_a_problem(served) -> None:  # type: ignore[no-untyped-def]
    client, auditor, _ = served
    answer = client.get("/v1/batches/9/audit", headers=auditor)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "batch_id"
