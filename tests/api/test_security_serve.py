"""A real `carbon-ledger serve` process against hostile bodies (issue #15 items 1 and 2):
a body nested 100,000 deep without a credential, and chunked uploads of 64 MiB, which
carry no Content-Length for the size limit to read.

The body of a route is read only once its caller is known, counted as it streams, and
never past the limit; what the client still sends is dropped unread. The server's
resident memory is read from /proc before and after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from api.composition import Container
from api.settings import Settings
from chain.nodes import free_port
from ledger.credentials import issue_api_key
from tests.api.test_live_http import setup_ledger

LIMIT = 1024 * 1024  # the server's max_body_bytes here
DEEP = b'{"reward": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
MIB = 1024 * 1024


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    creds: dict[str, str]

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def alive(self) -> bool:
        return self.proc.poll() is None and httpx.get(f"{self.base}/v1/info").status_code == 200


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    data_dir = tmp_path / "ledger"
    container = Container(Settings(data_dir=data_dir, chain="tester"))
    creds = setup_ledger(container, Account.create(), stock=5)
    with container.db.session(write_lock=True) as s:
        creds["auditor"] = issue_api_key(s, role="auditor")
    container.db.engine.dispose()
    port = free_port()
    env = {**os.environ, "CARBON_LEDGER_MAX_BODY_BYTES": str(LIMIT),
           "CARBON_LEDGER_RATE_LIMIT": "100000/minute"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from api.cli.main import run; run()", "serve", "--chain", "tester",
             "--port", str(port), "--data-dir", str(data_dir), "--no-sealer", "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/v1/info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.3)
        yield Served(base, proc, creds)
        assert proc.poll() is None, log.read_text()[-4000:]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length): ``total`` bytes of an unterminated array."""
    yield b"["
    sent = 1
    while sent < total:
        piece = b" " * min(size, total - sent)
        sent += len(piece)
        yield piece


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_a_deep_body_without_a_credential_gets_401_and_the_server_lives(served: Served) -> None:
    for route in ("/v1/redemptions", "/v1/submissions", "/v1/verify"):
        answer = httpx.post(f"{served.base}{route}", content=DEEP, timeout=60,
                            headers={"Content-Type": "application/json", "Idempotency-Key": "k"})
        assert answer.status_code == 401, (route, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert served.alive()


def test_a_deep_body_with_a_credential_is_refused_unparsed(served: Served) -> None:
    redemption = httpx.post(f"{served.base}/v1/redemptions", content=DEEP, timeout=60, headers={
        **bearer(served.creds["citizen"]), "Content-Type": "application/json",
        "Idempotency-Key": "k"})
    assert redemption.status_code == 413 and redemption.json()["field"] == "body"
    deep_record = b'[{"details": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"
    submission = httpx.post(f"{served.base}/v1/submissions", content=deep_record, timeout=60,
                            headers={**bearer(served.creds["partner"]),
                                     "Content-Type": "application/json"})
    assert submission.status_code == 422 and submission.json()["field"] == "body"
    assert served.alive()


@pytest.mark.parametrize("route", ["/v1/submissions", "/v1/redemptions", "/v1/verify"])
def test_a_chunked_64_mib_upload_is_refused_without_the_server_holding_it(
        served: Served, route: str) -> None:
    role = {"/v1/submissions": "partner", "/v1/redemptions": "citizen"}.get(route, "auditor")
    headers = {"Content-Type": "application/json", "Idempotency-Key": "big"}
    httpx.get(f"{served.base}/v1/info")
    before = served.rss_kib()
    anonymous = httpx.post(f"{served.base}{route}", content=chunks(64 * MIB), headers=headers,
                           timeout=120)
    assert anonymous.status_code == 401, anonymous.text
    signed_in = httpx.post(f"{served.base}{route}", content=chunks(64 * MIB), timeout=120,
                           headers={**headers, **bearer(served.creds[role])})
    assert signed_in.status_code == 413, signed_in.text
    assert signed_in.headers["content-type"] == "application/problem+json"
    assert signed_in.json()["field"] == "body"
    grown = served.rss_kib() - before
    print(f"{route}: RSS {before} KiB before, grown {grown} KiB after two 64 MiB uploads")
    assert grown < 16 * 1024, f"the server grew {grown} KiB"
    assert served.alive()


def test_a_chunked_submission_just_over_the_limit_gets_413(served: Served) -> None:
    answer = httpx.post(f"{served.base}/v1/submissions", content=chunks(LIMIT + 1), timeout=60,
                        headers={**bearer(served.creds["partner"]),
                                 "Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert answer.json()["type"].endswith(":too-large")
