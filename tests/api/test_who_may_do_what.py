"""Authorisation, as a table: every route × every role, allowed or refused, and how."""

from __future__ import annotations

import itertools
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

ROLES = ["none", "partner_a", "partner_b", "citizen_x", "citizen_y", "auditor"]
OK, NO_CREDENTIAL, WRONG_ROLE, NOT_YOURS = 200, 401, 403, 404

# route → the answer each role gets (in ROLES order)
MATRIX: dict[str, list[int]] = {
    "GET /v1/info":                       [OK, OK, OK, OK, OK, OK],
    "GET /v1/ledger":                     [OK, OK, OK, OK, OK, OK],
    "GET /v1/methodologies/1":            [OK, OK, OK, OK, OK, OK],
    "POST /v1/submissions":               [NO_CREDENTIAL, OK, OK, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE],
    "GET /v1/submissions":                [NO_CREDENTIAL, OK, OK, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE],
    "GET /v1/submissions/{a_submission}": [NO_CREDENTIAL, OK, NOT_YOURS, WRONG_ROLE, WRONG_ROLE,
                                           WRONG_ROLE],
    "GET /v1/contribution":               [NO_CREDENTIAL, OK, OK, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE],
    "GET /v1/me":                         [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, OK, OK, WRONG_ROLE],
    "GET /v1/me/entries":                 [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, OK, OK, WRONG_ROLE],
    "GET /v1/me/statement":               [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, OK, OK, WRONG_ROLE],
    "GET /v1/reports/city":               [OK, OK, OK, OK, OK, OK],
    "GET /v1/me/entries/{x_entry}/proof": [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, OK, NOT_YOURS,
                                           WRONG_ROLE],
    "GET /v1/rewards":                    [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, OK, OK, WRONG_ROLE],
    "POST /v1/redemptions":               [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, OK, OK, WRONG_ROLE],
    # a citizen is answered 404 here: the world has no anchored month statement to issue from
    "POST /v1/me/credentials":            [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, NOT_YOURS,
                                           NOT_YOURS, WRONG_ROLE],
    "GET /v1/batches":                    [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE,
                                           WRONG_ROLE, OK],
    "GET /v1/batches/1/dump":             [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE,
                                           WRONG_ROLE, OK],
    "GET /v1/batches/1/audit":            [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE,
                                           WRONG_ROLE, OK],
    "GET /v1/batches/1/audit/entries":    [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE,
                                           WRONG_ROLE, OK],
    "GET /v1/entries/{x_entry}/proof":    [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE,
                                           WRONG_ROLE, OK],
    "POST /v1/verify":                    [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE,
                                           WRONG_ROLE, OK],
    # campaigns (#21): the world publishes none, so a campaign's routes answer 404
    "GET /v1/campaigns":                  [OK, OK, OK, OK, OK, OK],
    "GET /v1/campaigns/{campaign_id}/leaderboard": [NOT_YOURS] * 6,
    "GET /v1/me/campaigns/{campaign_id}": [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, NOT_YOURS,
                                           NOT_YOURS, WRONG_ROLE],
    "PUT /v1/me/campaigns/{campaign_id}/nickname": [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE,
                                                    NOT_YOURS, NOT_YOURS, WRONG_ROLE],
    "DELETE /v1/me/campaigns/{campaign_id}/nickname": [NO_CREDENTIAL, WRONG_ROLE, WRONG_ROLE, OK,
                                                       OK, WRONG_ROLE],
}


class World:
    def __init__(self, tmp: Path) -> None:
        self.container = Container(Settings(data_dir=tmp, chain="tester", rate_limit="100000/minute"))
        self.keys = {"partner_a": Account.create(), "partner_b": Account.create()}
        self.creds: dict[str, str] = {}
        with self.container.db.session(write_lock=True) as s:
            for role, code, kind in (("partner_a", "greenbike", "bike_share"),
                                     ("partner_b", "citytransit", "transit")):
                p = accounts.create_partner(s, code=code, name=code, kind=kind,
                                            signing_address=bytes.fromhex(self.keys[role].address[2:]))
                self.creds[role] = issue_api_key(s, role="partner", partner=p)
            self.pseudonyms = {}
            for role in ("citizen_x", "citizen_y"):
                c = accounts.create_citizen(s)
                self.pseudonyms[role] = c.pseudonym
                self.creds[role] = issue_citizen_token(s, citizen=c)
            self.creds["auditor"] = issue_api_key(s, role="auditor")
            accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=1, stock=1000)
        self.partner = {"partner_a": ("greenbike", "CYCLING", "citizen_x"),
                        "partner_b": ("citytransit", "METRO", "citizen_y")}
        self.counter = itertools.count()

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "none" else {"Authorization": f"Bearer {self.creds[role]}"}

    def submission(self, client: TestClient, role: str) -> tuple[bytes, dict[str, str]]:
        """A fresh signed submission for partner ``role`` (or as partner A for others)."""
        signer = role if role in self.partner else "partner_a"
        code, behaviour, citizen = self.partner[signer]
        records = [a_record(self.pseudonyms[citizen], behaviour=behaviour, quantity=3000,
                            record_id=f"{code}-{next(self.counter)}")]
        info = client.get("/v1/info").json()
        signed = submission_headers(self.keys[signer].key, chain_id=info["chainId"],
                                    contract=info["contract"], partner=code,
                                    digest=records_hash(record_hashes(records)), count=1)
        return json.dumps(records).encode(), {**self.headers(role), **signed,
                                              "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # type: ignore[no-untyped-def]
    w = World(tmp_path_factory.mktemp("authz"))
    with TestClient(create_app(w.container, run_sealer=False)) as client:
        answers = {role: client.post("/v1/submissions", content=body, headers=h).json()
                   for role in w.partner for body, h in [w.submission(client, role)]}
        w.a_submission = answers["partner_a"]["submissionId"]
        w.x_entry = answers["partner_a"]["records"][0]["entry_id"]
        client.app.state.ledger.scheduler.seal_once()
        w.bundle = client.get(f"/v1/entries/{w.x_entry}/proof", headers=w.headers("auditor")).json()
        w.client = client
        yield w


def call(world: World, route: str, role: str):  # type: ignore[no-untyped-def]
    method, path = route.split(" ")
    path = path.format(a_submission=world.a_submission, x_entry=world.x_entry,
                       campaign_id="test-season")
    client, headers = world.client, world.headers(role)
    if route == "POST /v1/submissions":
        body, headers = world.submission(client, role)
        return client.post(path, content=body, headers=headers)
    if route == "POST /v1/redemptions":
        return client.post(path, json={"reward": "coffee"},
                           headers={**headers, "Idempotency-Key": f"k-{next(world.counter)}"})
    if route == "POST /v1/me/credentials":
        return client.post(path, json={"holder": "0x" + "ab" * 20, "from": "2026-10",
                                       "to": "2026-11"}, headers=headers)
    if route == "PUT /v1/me/campaigns/{campaign_id}/nickname":
        return client.put(path, json={"nickname": "rider"}, headers=headers)
    if route == "POST /v1/verify":
        return client.post(path, json=world.bundle, headers=headers)
    if route in ("GET /v1/contribution", "GET /v1/me/statement", "GET /v1/reports/city"):
        return client.get(path, params={"from": "2025-01-01", "to": "2027-12-31"}, headers=headers)
    return client.request(method, path, headers=headers)


@pytest.mark.parametrize(("route", "role"), [(r, role) for r in MATRIX for role in ROLES])
def test_route_answers_each_role_as_the_matrix_says(world: World, route: str, role: str) -> None:
    expected = MATRIX[route][ROLES.index(role)]
    response = call(world, route, role)
    assert response.status_code == expected, (route, role, response.text)
    if expected != OK:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == expected


def test_the_matrix_covers_every_route(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    routes = {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}
    named = {r.replace("{a_submission}", "{submission_id}").replace("{x_entry}", "{entry_id}")
             .replace("/batches/1/", "/batches/{batch_id}/")
             .replace("/methodologies/1", "/methodologies/{version}") for r in MATRIX}
    assert routes == named


def test_a_submission_signed_by_another_key_is_refused(world: World) -> None:
    body, headers = world.submission(world.client, "partner_a")
    stranger = submission_headers(Account.create().key, chain_id=1, contract="0x" + "11" * 20,
                                  partner="greenbike", digest=b"\0" * 32, count=1)
    answer = world.client.post("/v1/submissions", content=body,
                               headers={**headers, "X-Signature": stranger["X-Signature"]})
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("wrong-signer")


def test_partner_b_signing_as_partner_a_is_refused(world: World) -> None:
    body, headers = world.submission(world.client, "partner_b")
    answer = world.client.post("/v1/submissions", content=body,
                               headers={**headers, **world.headers("partner_a")})
    assert answer.status_code == 403
