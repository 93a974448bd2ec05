"""`carbon-ledger serve --workers 2` on PostgreSQL and a managed anvil, over real HTTP:
redemptions racing across both worker processes, signed submissions alongside, and both
workers' sealers contending for the one lease while entries keep arriving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from sqlalchemy import func, select

from api.composition import Container
from api.settings import Settings
from chain.nodes import ManagedAnvil, free_port
from ledger import accounts
from ledger.intake.service import submit_records
from ledger.store.models import Batch, LedgerEntry, Reward
from tests.api.test_live_http import setup_ledger, submit
from tests.conftest import a_record

pytestmark = pytest.mark.anvil


@contextmanager
def serve_two_workers(data_dir: Path, db_url: str, rpc_url: str, log: Path, *,
                      seal_interval: float = 1.0) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "CARBON_LEDGER_DATABASE_URL": db_url,
           "CARBON_LEDGER_SEAL_INTERVAL": str(seal_interval),
           "CARBON_LEDGER_RATE_LIMIT": "100000/minute"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from api.cli.main import run; run()", "serve", "--workers", "2",
             "--port", str(port), "--rpc", rpc_url, "--data-dir", str(data_dir), "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/v1/info", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 did not come up"
            time.sleep(0.3)
        yield base
    except BaseException:
        print(log.read_text()[-6000:])  # the workers' side of a failure
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def redeem_all(base: str, token: str, reward: str, keys: list[str]) -> list[httpx.Response]:
    def one(key: str) -> httpx.Response:
        return httpx.post(f"{base}/v1/redemptions", json={"reward": reward}, timeout=60,
                          headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
    with ThreadPoolExecutor(max_workers=40) as pool:
        return list(pool.map(one, keys))


def wait_until_all_sealed_and_anchored(container: Container) -> None:
    deadline = time.monotonic() + 90
    while True:
        with container.db.session() as s:
            newest = s.scalar(select(func.max(LedgerEntry.seq))) or 0
            sealed = s.scalar(select(func.max(Batch.last_seq))) or 0
            pending = s.scalar(select(func.count()).where(Batch.status != "anchored"))
        if newest and sealed == newest and not pending:
            return
        assert time.monotonic() < deadline, (newest, sealed, pending)
        time.sleep(0.5)


def test_two_workers_on_postgresql_never_overdraw_and_seal_with_one_sealer(tmp_path: Path,
                                                                            pg_url: str) -> None:
    key = Account.create()
    with ManagedAnvil(tmp_path / "anvil") as node:
        container = Container(Settings(data_dir=tmp_path / "ledger", database_url=pg_url,
                                       rpc_url=node.url))  # an empty database: migrated here
        creds = setup_ledger(container, key, stock=5)  # "coffee": 100 points, 5 in stock
        with container.db.session(write_lock=True) as s:
            accounts.upsert_reward(s, code="tea", title="Tea", points_cost=100, stock=100)
            partner = accounts.get_partner(s, "greenbike")
            citizen = accounts.get_citizen(s, creds["pseudonym"])
            rider = accounts.create_citizen(s).pseudonym  # credited while the others race
            # 10 km rides on five different days: well under each day's cap.
            submit_records(s, partner=partner, records=[
                a_record(creds["pseudonym"], quantity=10_000, hours_ago=30 + 24 * i)
                for i in range(5)])
            points = accounts.balance(s, citizen.id)
        assert points >= 700  # coffee is bound by its stock, tea by the points left

        with serve_two_workers(tmp_path / "ledger", pg_url, node.url, tmp_path / "serve.log") as base:
            rides = [[a_record(rider, quantity=3000, record_id=f"rider-{j}-{i}",
                               hours_ago=30 + 24 * (3 * j + i)) for i in range(3)] for j in range(4)]
            with ThreadPoolExecutor(max_workers=4) as side:  # submissions race the redemptions
                submitted = [side.submit(submit, base, creds, key, batch) for batch in rides]
                coffee = redeem_all(base, creds["citizen"], "coffee", [f"coffee-{i}" for i in range(30)])
                tea_keys = [f"tea-{i}" for i in range(40)]
                tea = redeem_all(base, creds["citizen"], "tea", tea_keys + tea_keys)  # each twice
                credits = sum(f.result()["accepted"] for f in submitted)
            me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {creds['citizen']}"},
                           timeout=30).json()
            wait_until_all_sealed_and_anchored(container)

        log = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in log and "sealing failed" not in log, log[-3000:]

        assert [r.status_code for r in coffee].count(200) == 5
        assert {r.json()["type"] for r in coffee if r.status_code != 200} == {
            "urn:carbon-ledger:problem:out-of-stock"}
        affordable = (points - 500) // 100
        by_key = {k: {(r.status_code, r.json().get("entryId")) for r in tea[i::40]}
                  for i, k in enumerate(tea_keys)}
        assert all(len(answers) == 1 for answers in by_key.values()), by_key  # a replay agrees
        assert sum(status == 200 for [(status, _)] in by_key.values()) == affordable
        assert {r.json()["type"] for r in tea if r.status_code != 200} == {
            "urn:carbon-ledger:problem:insufficient-points"}
        assert me["points"] == points - 100 * (5 + affordable) >= 0

        with container.db.session() as s:
            stock = dict(s.execute(select(Reward.code, Reward.stock)).all())
            seqs = list(s.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)))
            batches = list(s.scalars(select(Batch).order_by(Batch.id)))
        assert stock == {"coffee": 0, "tea": 100 - affordable}
        assert credits == 12
        assert len(seqs) == 5 + credits + 5 + affordable  # credits, coffees, teas; nothing else
        assert [b.id for b in batches] == list(range(1, len(batches) + 1))
        assert batches[0].first_seq == 1
        assert all(a.last_seq + 1 == b.first_seq for a, b in zip(batches, batches[1:], strict=False))
        assert batches[-1].last_seq == seqs[-1]
        for b in batches:
            assert b.leaf_count == sum(b.first_seq <= q <= b.last_seq for q in seqs)
        with container.anchor() as anchor:
            assert anchor.latest_batch_id() == len(batches)
            assert all(anchor.anchored_root(b.id) == b.root for b in batches)
