"""A real `carbon-ledger serve` process against hostile bodies and a dying worker.

A 200 KB body nested 100,000 deep once killed the whole server (SIGSEGV, unauthenticated).
Now bodies are read after authentication and bounded before parsing; and should a worker
die anyway, uvicorn's supervisor replaces it, one worker included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chain.nodes import ManagedAnvil, free_port
from tests.conftest import needs_anvil

pytestmark = needs_anvil()

DEEP = b'{"reward": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def workers_of(pid: int) -> set[int]:
    """The uvicorn workers among ``pid``'s children (not multiprocessing's resource tracker)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    workers = set()
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.add(child)
        except FileNotFoundError:
            pass  # gone meanwhile
    return workers


def wait_until_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "serve exited"
        try:
            if httpx.get(f"{base}/v1/info", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not come up"
        time.sleep(0.3)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with ManagedAnvil(tmp_path / "anvil") as node:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from api.cli.main import run; run()", "serve", "--workers", "1",
             "--port", str(port), "--rpc", node.url, "--data-dir", str(tmp_path / "ledger"),
             "--no-access-log"], stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("wb"),
            start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, proc)
            yield base, proc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_deep_unauthenticated_bodies_get_401_and_the_server_lives(served) -> None:
    base, proc = served
    before = workers_of(proc.pid)
    for route in ("/v1/redemptions", "/v1/verify", "/v1/submissions"):
        answer = httpx.post(f"{base}{route}", content=DEEP, timeout=30,
                            headers={"Content-Type": "application/json", "Idempotency-Key": "k"})
        assert answer.status_code == 401, (route, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{base}/v1/info").status_code == 200
    assert workers_of(proc.pid) == before, "a worker died and was replaced"


def test_a_worker_killed_by_a_signal_is_replaced_and_the_service_goes_on(served) -> None:
    base, proc = served
    (worker,) = workers_of(proc.pid)
    os.kill(worker, signal.SIGSEGV)  # what a C stack overflow does
    deadline = time.monotonic() + 60
    while True:
        replaced = workers_of(proc.pid) - {worker}
        try:
            if replaced and httpx.get(f"{base}/v1/info", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.3)
    assert proc.poll() is None
    assert len(workers_of(proc.pid)) == 1


def test_a_huge_header_is_431_and_the_server_lives(served) -> None:
    base, proc = served
    before = workers_of(proc.pid)
    answer = httpx.get(f"{base}/v1/me", timeout=30,
                       headers={"Authorization": "Bearer " + "k" * (1 << 20)})
    assert answer.status_code == 431, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{base}/v1/info").status_code == 200
    assert workers_of(proc.pid) == before
