"""The audit over HTTP holds the recomputed batch against the chain, as ``carbon-ledger
audit`` does, on a real anvil: in the request (a small batch, through the server's reader)
and in a job's process (a large one, through the reader the composition root opens
there). A batch whose anchor a reorg took away is named in both reports."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import audit_jobs
from ledger.credentials import issue_api_key
from ledger.store.database import Database
from ledger.store.models import Batch, BatchAudit
from tests.conftest import needs_anvil
from tests.fault_support import Entries, anvil_call

pytestmark = needs_anvil()


@pytest.fixture
def served(db: Database, node: Any, tmp_path: Path
           ) -> Iterator[tuple[TestClient, dict[str, str]]]:
    Entries(db).add(3)
    with db.session(write_lock=True) as s:
        key = issue_api_key(s, role="auditor")
    container = Container(Settings(
        data_dir=tmp_path / "served", chain="anvil", rpc_url=node.url, database_url=db.url,
        confirmations=1, rate_limit="100000/minute"))
    with TestClient(create_app(container, run_sealer=False)) as client:
        client.app.state.ledger.scheduler.seal_once()  # type: ignore[attr-defined]
        yield client, {"Authorization": f"Bearer {key}"}


def report(client: TestClient, auditor: dict[str, str], **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answer = client.get("/v1/batches/1/audit", headers=auditor, params=params)
        if answer.status_code == 200:
            return answer.json()  # type: ignore[no-any-return]
        assert answer.status_code == 202, answer.text
        params = {}
        time.sleep(0.2)
    with client.app.state.ledger.container.db.session() as s:  # type: ignore[attr-defined]
        job = s.get(BatchAudit, 1)
        seen = job and (job.state, job.result)
    raise AssertionError(f"the audit job did not finish in 90 s: {seen}")


def take_the_anchor_away(db: Database, url: str) -> None:
    with db.session() as s:
        batch = s.get(Batch, 1)
        assert batch is not None and batch.status == "anchored" and batch.block_number
        block = batch.block_number
    head = int(anvil_call(url, "eth_blockNumber"), 16)
    anvil_call(url, "anvil_reorg", [head - block + 1, []])


def test_the_http_audit_names_a_batch_the_chain_does_not_hold(
        served, db: Database, node: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, auditor = served
    held = report(client, auditor)  # in the request
    assert held["ok"] and held["heldAgainstChain"], held

    take_the_anchor_away(db, node.url)
    inline = report(client, auditor)
    assert not inline["ok"] and "batch 1 is not on chain" in inline["problems"], inline
    assert inline["recomputed"] == inline["sealed"]  # the ledger itself still recomputes
    monkeypatch.setattr(audit_jobs, "INLINE_ENTRIES", 0)  # every batch is large: a job
    job = report(client, auditor)  # in the job's own process
    assert job["heldAgainstChain"] and not job["ok"], job
    assert job["problems"] == ["batch 1 is not on chain"], job


def read_elsewhere(db: Database) -> tuple[str, int]:
    """The batch's job as another process reads it (its state and when it finished)."""
    code = ("import sys\n"
            "from ledger.store.database import Database\n"
            "from ledger.store.models import BatchAudit\n"
            "with Database(sys.argv[1]).session(snapshot=True) as s:\n"
            "    job = s.get(BatchAudit, 1)\n"
            "    print(job.state, job.finished_at)\n")
    out = subprocess.run([sys.executable, "-c", code, db.url], capture_output=True, text=True,
                         check=True, timeout=60, cwd=Path(__file__).parents[2]).stdout.split()
    return out[0], 0 if out[1] == "None" else int(out[1])


def test_a_refreshed_job_is_read_by_the_server_as_written(
        served, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's connections and the job's process see one database. This test's own
    ``db`` opens the file beside the server's Container: that once dropped the server
    process's SQLite lock, so the first job's process, closing, took itself for the last
    connection and deleted the write-ahead log under the server's; the refresh's claim then
    went to a log no other process read, the job never saw it, and the server answered
    `running` until the job was taken for dead (a fresh engine read the first report)."""
    client, auditor = served
    monkeypatch.setattr(audit_jobs, "INLINE_ENTRIES", 0)  # every batch is large: a job
    first = report(client, auditor)
    assert first["ok"] and read_elsewhere(db) == ("done", first["auditedAt"])
    time.sleep(1.1)  # the refreshed report's auditedAt is a later second
    claimed = client.get("/v1/batches/1/audit", headers=auditor, params={"refresh": "true"})
    assert claimed.status_code == 202, claimed.text
    state, finished = read_elsewhere(db)  # the claim, or the job it started, everywhere
    assert state == "running" or (state == "done" and finished > first["auditedAt"]), state
    refreshed = report(client, auditor)  # polled without refresh: the job's own report
    assert refreshed["ok"] and refreshed["auditedAt"] > first["auditedAt"], refreshed
    assert read_elsewhere(db) == ("done", refreshed["auditedAt"])
