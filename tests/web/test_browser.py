"""The browser front end (web/): its verifier in node against the conformance corpus, and
the pages end to end in real headless Chromium against a live `carbon-ledger serve`.

The JS suites live in web/test/ (node's own test runner); these tests build the pages, set
up what the suites need (a served demo ledger with credentials and one signed partner
submission), run them and fail with their output. Chromium is Debian's package at
/usr/bin/chromium (`.ci/run` installs it); without it only the browser test is skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select

from api.composition import Container
from api.settings import Settings
from chain.nodes import free_port
from ledger import accounts
from ledger.credentials import issue_api_key, issue_citizen_token
from ledger.intake.signed import record_hashes
from ledger.signing import records_hash, submission_headers
from ledger.store.models import Citizen
from tests.conftest import a_record, needs_anvil

pytestmark = needs_anvil()

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CLI = Path(sys.executable).with_name("carbon-ledger")
CORPUS_CASES = len(json.loads((ROOT / "tests/data/bundle_corpus/manifest.json").read_text())["cases"])


def run_node(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run node in the repository; fail the test with its output unless it exits 0."""
    done = subprocess.run(["node", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-12000:]
    return output


@pytest.fixture(scope="module")
def built() -> None:
    run_node("web/build.mjs", timeout=120)


def test_the_js_verifier_agrees_with_every_corpus_case_in_node(built: None, tmp_path: Path) -> None:
    counts = tmp_path / "counts.json"
    run_node("--test", "web/test/verifier.test.mjs", "web/test/corpus.test.mjs",
             "web/test/signing.test.mjs", "web/test/messages.test.mjs",
             env={"CORPUS_COUNTS": str(counts)})
    agreed = json.loads(counts.read_text())
    assert agreed["valid"] + agreed["refused"] == CORPUS_CASES


def _make_credentials(data_dir: Path, partner_key: Any) -> dict[str, str]:
    with Container(Settings(data_dir=data_dir)).db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="webbike", name="Web Bike", kind="bike_share",
                                          signing_address=bytes.fromhex(partner_key.address[2:]))
        richest = max(s.scalars(select(Citizen).order_by(Citizen.id)),
                      key=lambda c: accounts.balance(s, c.id))
        return {"CITIZEN_TOKEN": issue_citizen_token(s, citizen=richest),
                "AUDITOR_KEY": issue_api_key(s, role="auditor"),
                "PARTNER_KEY": issue_api_key(s, role="partner", partner=partner),
                "pseudonym": richest.pseudonym}


def _wait_for(url: str, server: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "carbon-ledger serve exited"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


def _submit(base: str, key: Any, partner_key: str, pseudonym: str) -> dict[str, Any]:
    """One signed submission as a partner sends it: one ride credited, one refused."""
    records = [a_record(pseudonym, quantity=3200, record_id="web-ride-1", hours_ago=3),
               a_record(pseudonym, behaviour="SKATEBOARD", record_id="web-skate-1", hours_ago=4)]
    info = httpx.get(f"{base}/v1/info").json()
    headers = submission_headers(key.key, chain_id=info["chainId"], contract=info["contract"],
                                 partner="webbike", digest=records_hash(record_hashes(records)),
                                 count=len(records))
    answer = httpx.post(f"{base}/v1/submissions", content=json.dumps(records), timeout=60,
                        headers={"Authorization": f"Bearer {partner_key}",
                                 "Content-Type": "application/json", **headers})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory, built: None) -> Iterator[dict[str, str]]:
    """`carbon-ledger demo`, then `carbon-ledger serve` on it (its own managed anvil)."""
    root = tmp_path_factory.mktemp("web-demo")
    data_dir = root / "ledger"
    subprocess.run([str(CLI), "demo", "--data-dir", str(data_dir), "--citizens", "40",
                    "--seed", "18"], check=True, capture_output=True, timeout=600)
    key = Account.create()
    env = _make_credentials(data_dir, key)
    port = free_port()
    server = subprocess.Popen([str(CLI), "serve", "--data-dir", str(data_dir), "--port", str(port),
                               "--no-access-log"], stdout=subprocess.DEVNULL,
                              stderr=(root / "serve.log").open("wb"), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/v1/info", server)
        answer = root / "answer.json"
        answer.write_text(json.dumps(_submit(base, key, env["PARTNER_KEY"], env.pop("pseudonym"))))
        yield {**env, "BASE_URL": base, "ANSWER_FILE": str(answer)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (Debian's `chromium`; "
                    ".ci/run installs it): the browser tests cannot run")
def test_the_pages_in_headless_chromium(live_demo: dict[str, str], tmp_path: Path) -> None:
    counts = tmp_path / "browser-counts.json"
    output = run_node("--test", "--test-reporter=spec", "web/test/browser.test.mjs",
                      env={**live_demo, "CHROMIUM": str(CHROMIUM), "BROWSER_COUNTS": str(counts),
                           "SCREENSHOTS": str(ROOT / "web/screenshots/latest")})
    assert json.loads(counts.read_text()) == {"agreed": CORPUS_CASES, "cases": CORPUS_CASES}, output
