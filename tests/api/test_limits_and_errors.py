"""The API's edges: problem+json for bad input, body limits, rate limits, NDJSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts
from ledger.credentials import issue_api_key, issue_citizen_token
from ledger.intake.signed import record_hashes
from ledger.signing import records_hash, submission_headers
from tests.conftest import a_record


@pytest.fixture
def api(tmp_path: Path):  # type: ignore[no-untyped-def]
    container = Container(Settings(data_dir=tmp_path, chain="tester", rate_limit="30/minute",
                                   max_body_bytes=64 * 1024))
    key, creds = a_partner_and_citizen(container)
    with TestClient(create_app(container, run_sealer=False)) as client:
        yield client, key, creds


def a_partner_and_citizen(container: Container) -> tuple[Account, dict[str, str]]:
    """A bike-share partner (its signing key) and a citizen, with their credentials."""
    key = Account.create()
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                          signing_address=bytes.fromhex(key.address[2:]))
        citizen = accounts.create_citizen(s)
        creds = {"partner": issue_api_key(s, role="partner", partner=partner),
                 "citizen": issue_citizen_token(s, citizen=citizen), "pseudonym": citizen.pseudonym}
    return key, creds


def signed_post(client, key, creds, body: bytes, records: list, content_type: str):  # type: ignore[no-untyped-def]
    info = client.get("/v1/info").json()
    signed = submission_headers(key.key, chain_id=info["chainId"], contract=info["contract"],
                                partner="greenbike", digest=records_hash(record_hashes(records)),
                                count=len(records))
    return client.post("/v1/submissions", content=body, headers={
        "Authorization": f"Bearer {creds['partner']}", **signed,
        "Content-Type": content_type})


def assert_problem(response, status: int, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:carbon-ledger:problem:")
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_ndjson_submissions_are_accepted_like_json_arrays(api) -> None:
    client, key, creds = api
    records = [a_record(creds["pseudonym"], record_id=f"n{i}", quantity=1000 + i) for i in range(5)]
    body = "\n".join(json.dumps(r) for r in records).encode()
    answer = signed_post(client, key, creds, body, records, "application/x-ndjson")
    assert answer.status_code == 200 and answer.json()["accepted"] == 5


def test_a_submission_says_where_its_time_went(api) -> None:
    client, key, creds = api
    records = [a_record(creds["pseudonym"], record_id="t1")]
    answer = signed_post(client, key, creds, json.dumps(records).encode(), records, "application/json")
    assert answer.status_code == 200
    timing = {name: float(ms) for name, ms in (part.split(";dur=") for part in
                                              answer.headers["server-timing"].split(", "))}
    assert list(timing) == ["check", "wait", "locked", "commit", "answer"]
    assert all(ms >= 0 for ms in timing.values()) and timing["locked"] > 0


def test_bad_json_and_wrong_shapes_are_4xx_problems_naming_the_field(api) -> None:
    client, key, creds = api
    auth = {"Authorization": f"Bearer {creds['partner']}", "X-Signature": "0x00",
            "Content-Type": "application/json"}
    assert_problem(client.post("/v1/submissions", content=b"[{", headers=auth), 422, "body")
    assert_problem(client.post("/v1/submissions", content=b'{"a": 1}', headers=auth), 422, "body")
    assert_problem(client.post("/v1/submissions", content=b"[]", headers=auth), 422, "records")
    deep = b'[{"details": ' + b"[" * 2_000 + b"]" * 2_000 + b"}]"
    assert_problem(client.post("/v1/submissions", content=deep, headers=auth), 422, "body")
    # 20,000 openers hold more values than this 64 KiB limit allows: refused uncounted
    deeper = b'[{"details": ' + b"[" * 20_000 + b"]" * 20_000 + b"}]"
    assert_problem(client.post("/v1/submissions", content=deeper, headers=auth), 413, "body")
    ndjson = {**auth, "Content-Type": "application/x-ndjson"}
    assert_problem(client.post("/v1/submissions", content=b'{"a": 1}\n[{', headers=ndjson),
                   422, "body line 2")
    citizen = {"Authorization": f"Bearer {creds['citizen']}"}
    assert_problem(client.get("/v1/me/entries?limit=100000", headers=citizen), 422, "limit")
    assert_problem(client.get("/v1/me/entries?from=-1", headers=citizen), 422, "from")
    assert_problem(client.post("/v1/redemptions", json={"reward": "coffee"}, headers=citizen),
                   422, "idempotency-key")
    for key in (b"caf\xe9", b"tab\there", b"\xa0"):  # the documented pattern refuses them
        assert_problem(client.post("/v1/redemptions", json={"reward": "coffee"},
                                   headers={**citizen, "Idempotency-Key": key}),  # type: ignore[dict-item]
                       422, "idempotency-key")
    assert_problem(client.get("/v1/me/entries/0xzz/proof", headers=citizen), 422, "entry_id")


def test_a_submission_must_say_it_is_json_or_ndjson(api) -> None:
    client, key, creds = api
    records = [a_record(creds["pseudonym"], record_id="typed")]
    body = json.dumps(records).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        assert_problem(signed_post(client, key, creds, body, records, content_type), 415,
                       "content-type")
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {creds['citizen']}"}).json()
    assert me["points"] == 0


def test_oversized_bodies_get_413_and_write_nothing(api) -> None:
    client, key, creds = api
    records = [a_record(creds["pseudonym"], record_id=f"big{i}") for i in range(1000)]
    body = json.dumps(records).encode()
    assert len(body) > 64 * 1024
    assert_problem(signed_post(client, key, creds, body, records, "application/json"), 413, "body")
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {creds['citizen']}"}).json()
    assert me["points"] == 0


def test_each_credential_is_rate_limited_with_retry_after(api) -> None:
    client, _key, creds = api
    auth = {"Authorization": f"Bearer {creds['citizen']}"}
    statuses = [client.get("/v1/me", headers=auth).status_code for _ in range(35)]
    assert statuses[:30] == [200] * 30
    limited = client.get("/v1/me", headers=auth)
    body = assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) > 0 and body["type"].endswith("rate-limited")


def test_a_writer_holding_the_database_too_long_gives_503_and_writes_nothing(tmp_path: Path) -> None:
    from ledger.store.sqlite import WriterLock

    container = Container(Settings(data_dir=tmp_path, chain="tester"))
    key, creds = a_partner_and_citizen(container)
    lock = container.db._writer_lock
    assert lock is not None
    lock.timeout = 0.2
    records = [a_record(creds["pseudonym"], record_id="r1")]
    with TestClient(create_app(container, run_sealer=False)) as client:
        with WriterLock(lock.path):  # another process's long write, as the server sees it
            answer = signed_post(client, key, creds, json.dumps(records).encode(), records,
                                 "application/json")
        assert_problem(answer, 503, "database")
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {creds['citizen']}"}).json()
        assert me["points"] == 0
        again = signed_post(client, key, creds, json.dumps(records).encode(), records,
                            "application/json")
        assert again.status_code == 200 and again.json()["accepted"] == 1
