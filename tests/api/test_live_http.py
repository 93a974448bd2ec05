"""The API over real HTTP on loopback: racing redemptions, and the whole path from a
partner's signed submission to a citizen's proof that `carbon-ledger verify` accepts."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from eth_account import Account

from api.cli.main import main
from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from chain.nodes import ManagedAnvil, free_port
from ledger import accounts
from ledger.credentials import issue_api_key, issue_citizen_token
from ledger.intake.signed import record_hashes
from ledger.signing import records_hash, submission_headers
from tests.conftest import CST, a_record


@contextmanager
def live_server(container: Container, *, run_sealer: bool) -> Iterator[str]:
    """uvicorn serving the app on a free loopback port, in a thread, for the block."""
    port = free_port()
    config = uvicorn.Config(create_app(container, run_sealer=run_sealer), host="127.0.0.1",
                            port=port, log_level="warning", limit_concurrency=200)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def setup_ledger(container: Container, partner_key: Account, *, stock: int) -> dict[str, str]:
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="Green Bike", kind="bike_share",
                                          signing_address=bytes.fromhex(partner_key.address[2:]))
        citizen = accounts.create_citizen(s)
        accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=100, stock=stock)
        return {"partner": issue_api_key(s, role="partner", partner=partner),
                "citizen": issue_citizen_token(s, citizen=citizen), "pseudonym": citizen.pseudonym}


def submit(base: str, creds: dict[str, str], key: Account, records: list[dict]) -> dict:
    info = httpx.get(f"{base}/v1/info").json()
    signed = submission_headers(key.key, chain_id=info["chainId"], contract=info["contract"],
                                partner="greenbike", digest=records_hash(record_hashes(records)),
                                count=len(records))
    answer = httpx.post(f"{base}/v1/submissions", content=json.dumps(records), timeout=60,
                        headers={"Authorization": f"Bearer {creds['partner']}",
                                 **signed, "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def hours_since_yesterday(hour: int, *, minutes: int = 0) -> float:
    """How many hours ago yesterday's ``hour`` (plus ``minutes``) was in UTC+8, the day
    the methodology's caps count in."""
    at = (datetime.now(CST) - timedelta(days=1)).replace(hour=hour, minute=0, second=0,
                                                         microsecond=0)
    return (datetime.now(CST) - at - timedelta(minutes=minutes)).total_seconds() / 3600


def test_racing_redemptions_never_overdraw_the_balance_or_the_stock(tmp_path: Path) -> None:
    container = Container(Settings(data_dir=tmp_path, chain="tester", rate_limit="10000/minute"))
    key = Account.create()
    creds = setup_ledger(container, key, stock=40)
    # 6 rides of 4.9 km (238 g each) on one local day: 1428 g, capped at the day's
    # 1000 g: 1000 points, enough for exactly 10 coffees of 100 points. The day is fixed
    # (yesterday from noon, UTC+8, where caps count): rides at 2 to 2.6 hours ago fell on
    # two days' caps when run from 02:00 to 02:36 there (1428 g).
    rides = [a_record(creds["pseudonym"], quantity=4900, record_id=f"ride-{i}",
                      hours_ago=hours_since_yesterday(12, minutes=25 * i)) for i in range(6)]
    with live_server(container, run_sealer=False) as base:
        assert submit(base, creds, key, rides)["reductionGrams"] == 1000
        auth = {"Authorization": f"Bearer {creds['citizen']}"}

        def redeem(i: int) -> int:
            r = httpx.post(f"{base}/v1/redemptions", json={"reward": "coffee"}, timeout=60,
                           headers={**auth, "Idempotency-Key": f"race-{i}"})
            return r.status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(redeem, range(60)))
        me = httpx.get(f"{base}/v1/me", headers=auth).json()
        rewards = httpx.get(f"{base}/v1/rewards", headers=auth).json()
    assert statuses.count(200) == 10, statuses
    assert statuses.count(409) == 50, statuses
    assert me["points"] == 0 and me["pointsSpent"] == 1000
    assert rewards[0]["stock"] == 30


def test_replayed_idempotency_key_under_a_race_debits_once(tmp_path: Path) -> None:
    container = Container(Settings(data_dir=tmp_path, chain="tester", rate_limit="10000/minute"))
    key = Account.create()
    creds = setup_ledger(container, key, stock=5)
    with live_server(container, run_sealer=False) as base:
        submit(base, creds, key, [a_record(creds["pseudonym"], quantity=9000, record_id="r1")])
        auth = {"Authorization": f"Bearer {creds['citizen']}", "Idempotency-Key": "same"}
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda _: httpx.post(
                f"{base}/v1/redemptions", json={"reward": "coffee"}, headers=auth, timeout=60),
                range(20)))
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": auth["Authorization"]}).json()
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["entryId"] for a in answers}) == 1
    assert me["pointsSpent"] == 100


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on an open socket, and its response read whole."""
    sock.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the response's head: {head!r}"
        head += chunk
    head, body = head.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed inside the response's body"
        body += chunk
    return int(status.split()[1]), headers, body


def test_on_postgresql_a_submission_closes_its_connection(empty_db_url: str, tmp_path: Path) -> None:
    """On PostgreSQL a partner's next submission is accepted afresh, by whichever worker
    is free (on one kept-alive connection every submission went to the worker that took
    it first); on SQLite, where writers take turns at one lock, it is kept alive. Other
    requests keep their connection on both."""
    container = Container(Settings(data_dir=tmp_path, chain="tester", rate_limit="10000/minute",
                                   database_url=empty_db_url))
    closes = not container.db.is_sqlite
    key = Account.create()
    creds = setup_ledger(container, key, stock=1)
    with live_server(container, run_sealer=False) as base:
        info = httpx.get(f"{base}/v1/info").json()
        records = [a_record(creds["pseudonym"], record_id="keep-1")]
        body = json.dumps(records).encode()
        signed = submission_headers(key.key, chain_id=info["chainId"], contract=info["contract"],
                                    partner="greenbike", digest=records_hash(record_hashes(records)),
                                    count=len(records))
        fields = {"Host": "ledger", "Authorization": f"Bearer {creds['partner']}", **signed,
                  "Content-Type": "application/json", "Content-Length": str(len(body))}
        post = ("POST /v1/submissions HTTP/1.1\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode() + body
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            for _ in range(2):  # a read keeps its connection: the same socket answers again
                status, headers, _ = _exchange(sock, b"GET /v1/info HTTP/1.1\r\nHost: ledger\r\n\r\n")
                assert status == 200 and headers.get("connection") != "close", headers
            status, headers, answer = _exchange(sock, post)
            assert status == 200, answer
            assert json.loads(answer)["accepted"] == 1
            assert (headers.get("connection") == "close") is closes, headers
            if closes:
                assert sock.recv(1) == b""  # and the server closed it
            else:
                status, _, _ = _exchange(sock, b"GET /v1/info HTTP/1.1\r\nHost: ledger\r\n\r\n")
                assert status == 200


@pytest.mark.anvil
def test_partner_submits_service_seals_citizen_proves_cli_verifies(tmp_path: Path, capsys) -> None:
    data_dir = tmp_path / "ledger"
    key = Account.create()
    with ManagedAnvil(tmp_path / "anvil") as node:
        container = Container(Settings(data_dir=data_dir, rpc_url=node.url, seal_interval=1.0))
        creds = setup_ledger(container, key, stock=1)
        with live_server(container, run_sealer=True) as base:
            answer = submit(base, creds, key, [a_record(creds["pseudonym"], record_id="e2e-1")])
            entry_id = answer["records"][0]["entry_id"]
            auth = {"Authorization": f"Bearer {creds['citizen']}"}
            deadline = time.monotonic() + 60
            while (bundle := httpx.get(f"{base}/v1/me/entries/{entry_id}/proof",
                                       headers=auth).json())["status"] != "anchored":
                assert time.monotonic() < deadline, bundle
                time.sleep(0.5)
            descriptor = tmp_path / "ledger.json"  # as a city would publish it
            descriptor.write_bytes(httpx.get(f"{base}/v1/ledger").content)
        assert bundle["confirmations"] >= 1
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(bundle))
        capsys.readouterr()
        assert main(["verify", str(path), "--rpc", node.url, "--ledger", str(descriptor)]) == 0
        assert capsys.readouterr().out.startswith(f"OK: entry {entry_id}")


@pytest.mark.anvil
def test_serve_with_two_workers_shares_one_chain_and_database(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    port = free_port()
    with ManagedAnvil(tmp_path / "anvil") as node:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from api.cli.main import run; run()", "serve", "--workers", "2",
             "--port", str(port), "--rpc", node.url, "--data-dir", str(tmp_path / "ledger"),
             "--no-access-log"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    infos = [httpx.get(f"http://127.0.0.1:{port}/v1/info", timeout=5).json()
                             for _ in range(6)]
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, "serve --workers 2 did not come up"
                    time.sleep(0.3)
            assert len({i["contract"] for i in infos}) == 1  # one deployment, whichever worker
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
