"""`schemathesis run` with every check (each is on unless the config turns it off for one
operation: `--checks all` would override that) against the document the app serves, over
real HTTP, as each role and anonymously: no undocumented status, content type or header, every answer
matching its schema, no schema-valid request refused, no 5xx.

The ledger behind it holds what the routes read: a partner, a citizen with credits and a
redemption, a reward, batches anchored on an in-process chain. The hooks
(tests/api/schemathesis_hooks.py) sign positive submissions as the partner does; the
config (tests/api/schemathesis.toml) says why one check does not apply to one body.
Bounded in examples and seeded, so a run is repeatable and takes seconds per role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from api.composition import Container
from api.settings import Settings
from ledger import accounts
from ledger.credentials import issue_api_key, issue_citizen_token
from ledger.intake.signed import record_hashes
from ledger.signing import records_hash, submission_headers
from tests.api.test_live_http import live_server
from tests.conftest import a_record

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MAX_EXAMPLES = 25
ROLES = ("anonymous", "citizen", "partner", "auditor")


def _seed(base: str, creds: dict[str, str], key: Account, pseudonym: str) -> dict[str, str]:
    """Records credited to the citizen, a redemption, and a batch anchored."""
    info = httpx.get(f"{base}/v1/info").json()
    records = [a_record(pseudonym, quantity=3000 + i, record_id=f"seed-{i}", hours_ago=3 + i)
               for i in range(4)]
    signed = submission_headers(key.key, chain_id=info["chainId"], contract=info["contract"],
                                partner="greenbike", digest=records_hash(record_hashes(records)),
                                count=len(records))
    answer = httpx.post(f"{base}/v1/submissions", content=json.dumps(records), timeout=60,
                        headers={"Authorization": f"Bearer {creds['partner']}", **signed,
                                 "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    redeemed = httpx.post(f"{base}/v1/redemptions", json={"reward": "coffee-voucher"},
                          headers={"Authorization": f"Bearer {creds['citizen']}",
                                   "Idempotency-Key": "seed"}, timeout=60)
    assert redeemed.status_code == 200, redeemed.text
    deadline = time.monotonic() + 60
    auditor = {"Authorization": f"Bearer {creds['auditor']}"}
    while True:
        batches = httpx.get(f"{base}/v1/batches", headers=auditor).json()["batches"]
        if batches and all(b["status"] == "anchored" for b in batches):
            break
        assert time.monotonic() < deadline, batches
        time.sleep(0.2)
    return {"ST_CHAIN_ID": str(info["chainId"]), "ST_CONTRACT": info["contract"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    container = Container(Settings(data_dir=tmp_path_factory.mktemp("fuzz"), chain="tester",
                                   rate_limit="1000000/minute", seal_interval=0.5))
    key = Account.create()
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="Green Bike", kind="bike_share",
                                          signing_address=bytes.fromhex(key.address[2:]))
        citizen = accounts.create_citizen(s)
        accounts.upsert_reward(s, code="coffee-voucher", title="Coffee voucher", points_cost=1,
                               stock=1000)
        creds = {"partner": issue_api_key(s, role="partner", partner=partner),
                 "citizen": issue_citizen_token(s, citizen=citizen),
                 "auditor": issue_api_key(s, role="auditor")}
        pseudonym = citizen.pseudonym
    with live_server(container, run_sealer=True) as base:
        env = _seed(base, creds, key, pseudonym)
        env["ST_PARTNER_KEY"] = key.key.hex()
        yield base, creds, env


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_nothing(served: tuple[str, dict[str, str], dict[str, str]],
                                    role: str, tmp_path: Path) -> None:
    base, creds, env = served
    auth = [] if role == "anonymous" else ["-H", f"Authorization: Bearer {creds[role]}"]
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file",
               str(HERE / "schemathesis.toml"), "run", f"{base}/openapi.json", *auth,
               "--max-examples", str(MAX_EXAMPLES), "--seed", "17",
               "--generation-deterministic", "--no-shrink", "--request-timeout", "30",
               "--report-dir", str(tmp_path), "--warnings", "off"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path,
                         env={**os.environ, **env, "NO_COLOR": "1", "PYTHONPATH": str(ROOT),
                              "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks"})
    assert run.returncode == 0, f"{role}:\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"
    if role == "partner":  # the hooks signed schema-valid submissions, and they were taken
        mine = httpx.get(f"{base}/v1/submissions", params={"limit": 500},
                         headers={"Authorization": f"Bearer {creds['partner']}"}).json()
        assert len(mine) > 1, mine
