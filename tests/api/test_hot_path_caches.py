"""What the hot routes keep in memory, and what they must never get wrong because of it:
credentials (revocation takes effect within the ttl, the secret is checked every time),
anchored proof bundles (byte for byte what the ledger builds; only the owner sees them),
and the per-credential rate limit's moving window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from limits import parse

from api.composition import Container
from api.http.app import MovingWindow, create_app
from api.settings import Settings
from ledger import accounts
from ledger.credentials import CredentialCache, issue_api_key, issue_citizen_token, revoke
from ledger.intake.signed import record_hashes
from ledger.proofs import proof_bundle
from ledger.signing import records_hash, submission_headers
from tests.conftest import a_record


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api(tmp_path: Path):  # type: ignore[no-untyped-def]
    container = Container(Settings(data_dir=tmp_path, chain="tester", rate_limit="10000/minute"))
    key = Account.create()
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                          signing_address=bytes.fromhex(key.address[2:]))
        owner, other = accounts.create_citizen(s), accounts.create_citizen(s)
        creds = {"partner": issue_api_key(s, role="partner", partner=partner),
                 "auditor": issue_api_key(s, role="auditor"),
                 "owner": issue_citizen_token(s, citizen=owner),
                 "other": issue_citizen_token(s, citizen=other), "pseudonym": owner.pseudonym}
    clock = Clock()
    app = create_app(container, run_sealer=False)
    app.state.credentials = CredentialCache(clock=clock)
    with TestClient(app) as client:
        yield client, key, creds, clock


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def submit_one(client: TestClient, key, creds) -> str:  # type: ignore[no-untyped-def]
    records = [a_record(creds["pseudonym"], record_id="r-1", quantity=3000)]
    info = client.get("/v1/info").json()
    signed = submission_headers(key.key, chain_id=info["chainId"], contract=info["contract"],
                                partner="greenbike", digest=records_hash(record_hashes(records)),
                                count=1)
    answer = client.post("/v1/submissions", content=json.dumps(records).encode(), headers={
        **auth(creds["partner"]), **signed, "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["records"][0]["entry_id"])


def test_a_revoked_key_stops_working_within_the_cache_ttl(api) -> None:
    client, _key, creds, clock = api
    assert client.get("/v1/batches", headers=auth(creds["auditor"])).status_code == 200
    with client.app.state.ledger.container.db.session(write_lock=True) as s:
        revoke(s, creds["auditor"])
    clock.now += 4.9  # still what the cache saw
    assert client.get("/v1/batches", headers=auth(creds["auditor"])).status_code == 200
    clock.now += 0.1
    assert client.get("/v1/batches", headers=auth(creds["auditor"])).status_code == 401


def test_a_cached_key_id_with_another_secret_is_refused(api) -> None:
    client, _key, creds, _clock = api
    assert client.get("/v1/batches", headers=auth(creds["auditor"])).status_code == 200
    forged = creds["auditor"].split(".")[0] + ".not-the-secret"
    answer = client.get("/v1/batches", headers=auth(forged))
    assert answer.status_code == 401 and answer.json()["field"] == "authorization"


def test_a_pending_entry_is_answered_as_pending_then_as_its_bundle(api) -> None:
    client, key, creds, _clock = api
    entry = submit_one(client, key, creds)
    pending = client.get(f"/v1/entries/{entry}/proof", headers=auth(creds["auditor"])).json()
    assert pending["status"] == "pending" and pending["entryId"] == entry
    client.app.state.ledger.scheduler.seal_once()
    assert client.get(f"/v1/entries/{entry}/proof",
                      headers=auth(creds["auditor"])).json()["status"] == "anchored"


def test_a_cached_bundle_is_the_one_the_ledger_builds(api) -> None:
    client, key, creds, _clock = api
    entry = submit_one(client, key, creds)
    client.app.state.ledger.scheduler.seal_once()
    state = client.app.state.ledger
    with state.container.db.session() as s:
        built = proof_bundle(s, bytes.fromhex(entry[2:]))
    first = client.get(f"/v1/entries/{entry}/proof", headers=auth(creds["auditor"]))
    again = client.get(f"/v1/me/entries/{entry}/proof", headers=auth(creds["owner"]))
    assert first.headers["content-type"] == again.headers["content-type"] == "application/json"
    for answer in (first, again):
        bundle = answer.json()
        assert bundle.pop("confirmations") == state.proofs.confirmations(built["blockNumber"]) >= 1
        assert bundle == built and list(bundle) == list(built)


def test_only_the_owner_sees_a_cached_bundle(api) -> None:
    client, key, creds, _clock = api
    entry = submit_one(client, key, creds)
    client.app.state.ledger.scheduler.seal_once()
    path = f"/v1/me/entries/{entry}/proof"
    assert client.get(path, headers=auth(creds["other"])).status_code == 404  # not cached yet
    assert client.get(path, headers=auth(creds["owner"])).status_code == 200  # now cached
    refused = client.get(path, headers=auth(creds["other"]))
    assert refused.status_code == 404 and refused.json()["field"] == "entry_id"


def test_the_moving_window_counts_the_last_window_of_hits() -> None:
    clock = Clock()
    window = MovingWindow(parse("3/minute"), clock=clock)
    for _ in range(3):
        assert window.hit("k") is None
        clock.now += 10
    assert window.hit("k") == pytest.approx(30)  # the first hit leaves the window at 60 s
    assert window.hit("other") is None  # per key
    clock.now += 30
    assert window.hit("k") is None
    assert window.hit("k") == pytest.approx(10)


def test_a_fresh_workers_warm_up_makes_a_bundle_and_keeps_none(api) -> None:
    client, key, creds, _clock = api
    entry = submit_one(client, key, creds)
    client.app.state.ledger.scheduler.seal_once()
    state = client.app.state.ledger
    fresh = state.container.proof_service(state.anchor)
    fresh.warm()  # what a worker's start runs before it takes a connection
    assert len(fresh.bundles) == 0 and len(fresh.trees._rows) > 0
    made = json.loads(fresh.answer(bytes.fromhex(entry[2:])))  # type: ignore[arg-type]
    assert made["status"] == "anchored" and len(fresh.bundles) == 1


def test_a_slow_chain_node_holds_no_answer_while_the_head_is_followed(tmp_path) -> None:
    """The head is read by a thread of its own: a node that takes 0.3 s to answer (anvil
    writing its state) is waited for by that thread, never by a confirmations count."""
    import threading
    import time

    from ledger.proof_service import ProofService
    from ledger.store.database import Database

    reads: list[float] = []
    slow = threading.Event()

    def head() -> int:
        reads.append(time.monotonic())
        if slow.is_set():
            time.sleep(0.3)
        return 100 + len(reads)

    service = ProofService(Database(f"sqlite:///{tmp_path / 'l.db'}"), head)
    with service.following_head():  # a read a second, as a worker does
        deadline = time.monotonic() + 5
        while not reads and time.monotonic() < deadline:
            time.sleep(0.01)
        slow.set()
        counts, took = [], []
        for _ in range(150):  # 1.5 s: past the second after which a head is read again
            started = time.monotonic()
            counts.append(service.confirmations(100))
            took.append(time.monotonic() - started)
            time.sleep(0.01)
    assert max(took) < 0.05, max(took)  # never the node's 0.3 s
    assert counts == sorted(counts) and counts[-1] > counts[0]  # and the head moves on
    calls = len(reads)
    time.sleep(1.2)
    assert len(reads) == calls  # the thread stopped with the block
