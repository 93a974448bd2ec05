"""Limits no request can sidestep (issue #15 items 3 and 4), through the real app:

- the rate limit counts per principal once a credential holds, per client address
  otherwise: respelling the header, a second header, a wrong or made-up credential buy
  no fresh allowance;
- headers are bounded (an Authorization of several MiB is refused unread, by the app
  and, before the app, by the HTTP protocol `serve` runs), and so is every cache.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from eth_account import Account
from fastapi.testclient import TestClient
from limits import parse

from api.composition import Container
from api.http.app import create_app
from api.http.limits import MAX_AUTHORIZATION, BoundedHttpTools, MovingWindow, client_key
from api.settings import Settings
from chain.nodes import free_port
from ledger import accounts
from ledger.credentials import CredentialCache, issue_api_key, issue_citizen_token
from ledger.proof_service import ProofCache

LIMIT = 5


def make_app(tmp_path: Path, rate_limit: str) -> tuple[Any, dict[str, str]]:
    container = Container(Settings(data_dir=tmp_path, chain="tester", rate_limit=rate_limit))
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                          signing_address=bytes.fromhex(Account.create().address[2:]))
        citizen = accounts.create_citizen(s)
        creds = {"citizen": issue_citizen_token(s, citizen=citizen),
                 "partner": issue_api_key(s, role="partner", partner=partner),
                 "partner2": issue_api_key(s, role="partner", partner=partner),
                 "auditor": issue_api_key(s, role="auditor"),
                 "auditor2": issue_api_key(s, role="auditor")}
    return create_app(container, run_sealer=False), creds


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app, creds = make_app(tmp_path, f"{LIMIT}/minute")
    with TestClient(app) as client:
        yield client, creds


@pytest.fixture
def unlimited(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app, creds = make_app(tmp_path, "1000000/minute")
    with TestClient(app) as client:
        yield client, creds


def made_up() -> str:
    """A credential of the right shape that no one was ever issued."""
    return f"clt_{secrets.token_hex(8)}.{secrets.token_urlsafe(32)}"


def status(client: TestClient, authorization: str | None, path: str = "/v1/me") -> int:
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.get(path, headers=headers).status_code


def assert_problem(response: Any, status: int, field: str | None, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.get("field") == field and body["type"].endswith(f":{code}"), body


# -- item 4: one allowance per caller ------------------------------------------------------

def test_every_spelling_of_a_credential_counts_against_its_principal(limited) -> None:
    client, creds = limited
    token = creds["citizen"]
    spellings = [f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Bearer  {token}",
                 f"  Bearer {token}"]
    assert [status(client, s) for s in spellings] == [200] * LIMIT
    for spelling in spellings:
        assert status(client, spelling) == 429


def test_a_partners_keys_share_one_allowance_and_auditors_keys_do_not(limited) -> None:
    client, creds = limited
    used = [status(client, f"Bearer {creds[k]}", "/v1/submissions")
            for k in ("partner", "partner2") * 3]
    assert used == [200] * LIMIT + [429]
    assert [status(client, f"Bearer {creds['auditor']}", "/v1/batches")
            for _ in range(LIMIT + 1)] == [200] * LIMIT + [429]
    assert status(client, f"Bearer {creds['auditor2']}", "/v1/batches") == 200


def test_wrong_and_made_up_credentials_share_the_addresss_allowance(limited) -> None:
    client, creds = limited
    wrong = [made_up(), "Bearer junk", f"Bearer {creds['citizen'].split('.')[0]}.wrong-secret",
             "Basic dXNlcjpwYXNz", f"Bearer {made_up()}"]
    assert [status(client, w if w.startswith(("Bearer", "Basic")) else f"Bearer {w}")
            for w in wrong] == [401] * LIMIT
    assert status(client, f"Bearer {made_up()}") == 429  # a fresh made-up one: no reset
    assert status(client, None, "/v1/info") == 429  # nor none at all
    assert status(client, f"Bearer {creds['citizen']}") == 200  # the citizen counts apart


def test_an_anonymous_caller_cannot_reset_its_count_with_junk_tokens(limited) -> None:
    client, _creds = limited
    assert [status(client, None, "/v1/info") for _ in range(LIMIT)] == [200] * LIMIT
    for junk in (f"Bearer {made_up()}", "Bearer x", "bearer  y", "Token z"):
        assert status(client, junk, "/v1/info") == 429


def test_a_second_authorization_header_is_refused_naming_it(limited) -> None:
    client, creds = limited
    both = [("Authorization", f"Bearer {creds['citizen']}"), ("Authorization", "Bearer junk")]
    assert_problem(client.get("/v1/me", headers=both), 400, "authorization", "duplicate-header")
    same = [("Authorization", f"Bearer {creds['citizen']}")] * 2
    assert_problem(client.get("/v1/me", headers=same), 400, "authorization", "duplicate-header")
    for _ in range(LIMIT - 2):  # each counted against the address
        client.get("/v1/info")
    assert client.get("/v1/me", headers=both).status_code == 429


def test_ipv6_clients_count_by_their_64_block() -> None:
    def key(host: str) -> str:
        return client_key({"client": (host, 1234)})

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") != key("2001:db8:1:3::1")
    assert key("::ffff:192.0.2.7") == key("192.0.2.7") == "addr:192.0.2.7"
    assert key("192.0.2.7") != key("192.0.2.8")


# -- item 3: bounded headers -------------------------------------------------------------

def test_an_authorization_header_over_4_kib_is_431_and_never_looked_up(unlimited) -> None:
    client, _creds = unlimited
    cache: CredentialCache = client.app.state.credentials  # type: ignore[attr-defined]
    for size in (MAX_AUTHORIZATION + 1, 1024 * 1024):
        token = "clt_" + "a" * 16 + "." + "b" * size
        answer = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert_problem(answer, 431, "authorization", "header-too-large")
    assert len(cache) == 0


def test_headers_over_32_kib_in_all_are_431(unlimited) -> None:
    client, _creds = unlimited
    headers = {f"X-Filler-{i}": "x" * 4000 for i in range(9)}
    assert_problem(client.get("/v1/info", headers=headers), 431, "headers", "header-too-large")
    assert_problem(client.get("/", headers=headers), 431, "headers", "header-too-large")


def test_1000_made_up_tokens_leave_the_credential_cache_at_its_bound(unlimited) -> None:
    client, creds = unlimited
    cache = client.app.state.credentials = CredentialCache(unknown_size=100)  # type: ignore[attr-defined]
    assert status(client, f"Bearer {creds['citizen']}") == 200
    for _ in range(1000):
        assert status(client, f"Bearer {made_up()}") == 401
    assert len(cache) == 101  # the citizen's, and the last 100 made-up ones
    for _ in range(1000):  # malformed: refused before any lookup, never kept
        assert status(client, f"Bearer clt_{secrets.token_hex(40)}.x") == 401
    assert len(cache) == 101
    assert status(client, f"Bearer {creds['citizen']}") == 200


def test_the_rate_limits_keys_and_the_proof_cache_are_bounded() -> None:
    window = MovingWindow(parse("5/minute"), max_keys=100)
    for i in range(1000):
        assert window.hit(f"addr:{i}") is None
    assert len(window) == 100
    proofs = ProofCache(size=8)
    for i in range(20):
        proofs.put(i.to_bytes(32, "big"), 1, {"status": "anchored", "blockNumber": i})
    assert len(proofs) == 8


@pytest.fixture
def bounded_server(tmp_path: Path) -> Iterator[int]:
    """The app under uvicorn with :class:`BoundedHttpTools`, on a loopback port."""
    app, _creds = make_app(tmp_path, "1000000/minute")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           http=BoundedHttpTools))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=30)


def raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)  # refused before it was all sent: the answer is still read
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_the_served_protocol_refuses_a_huge_head_before_the_app(bounded_server: int) -> None:
    head = (b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 8 * 1024 * 1024
            + b"\r\nConnection: close\r\n\r\n")
    answer = raw_request(bounded_server, head)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"application/problem+json" in answer and b'"field":"headers"' in answer
    fine = raw_request(bounded_server, b"GET /v1/info HTTP/1.1\r\nHost: x\r\n"
                                       b"Connection: close\r\n\r\n")
    assert fine.startswith(b"HTTP/1.1 200 ")
    keep_alive = (b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n" * 3
                  + b"GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw_request(bounded_server, keep_alive).count(b"HTTP/1.1 200 ") == 4


# -- item 2: every route's body is counted as it streams -----------------------------------

def test_a_chunked_body_over_the_apps_limit_is_413_on_any_route_that_reads_it(tmp_path: Path) -> None:
    container = Container(Settings(data_dir=tmp_path, chain="tester", max_body_bytes=2048))
    with container.db.session(write_lock=True) as s:
        auditor = issue_api_key(s, role="auditor")
    with TestClient(create_app(container, run_sealer=False)) as client:
        chunked = client.post("/v1/verify", content=iter([b"{" + b" " * 999] + [b" " * 1000] * 9),
                              headers={"Authorization": f"Bearer {auditor}",
                                       "Content-Type": "application/json"})
        assert_problem(chunked, 413, "body", "too-large")
        assert "2048" in chunked.json()["detail"]  # the app's limit, under the route's own
        declared = client.post("/v1/verify", content=b"{" + b" " * 3000 + b"}",
                               headers={"Authorization": f"Bearer {auditor}"})
        assert_problem(declared, 413, "body", "too-large")
        unread = client.request("GET", "/v1/info", content=iter([b"x" * 1000] * 10))
        assert unread.status_code == 200  # a route that reads no body is not refused
