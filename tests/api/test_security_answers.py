"""What the API answers must not give away or change (issue #15 item 9, item 10's HTTP
side, and its redemption fixes), through the real app on SQLite and PostgreSQL:

- another citizen's entry is answered exactly as an entry that does not exist;
- bad input is a 4xx problem naming the field, never a 500;
- a redemption replayed answers what it answered first, its balance included, and an
  Idempotency-Key sent again for another reward is refused (409) without a debit.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts
from ledger.credentials import issue_api_key, issue_citizen_token
from ledger.intake.service import submit_records
from ledger.store.database import Database
from ledger.store.models import LedgerEntry, Partner
from tests.conftest import a_record


@dataclass
class World:
    client: TestClient
    container: Container
    tokens: dict[str, str]
    pseudonyms: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def credit(self, who: str, *, days_ago: int) -> None:
        """A 10 km ride (487 points) on a day of its own, so no daily cap applies."""
        with self.container.db.session(write_lock=True) as s:
            partner = s.scalars(select(Partner)).one()
            result = submit_records(s, partner=partner, records=[
                a_record(self.pseudonyms[who], quantity=10_000, hours_ago=24 * days_ago + 12)])
        assert result.count("accepted") == 1

    def entry_of(self, who: str) -> str:
        with self.container.db.session() as s:
            citizen = accounts.get_citizen(s, self.pseudonyms[who])
            entry = s.scalars(select(LedgerEntry.entry_id)
                              .where(LedgerEntry.citizen_id == citizen.id)).first()
        assert entry is not None
        return "0x" + entry.hex()

    def redeem(self, reward: str, key: str) -> Any:
        return self.client.post("/v1/redemptions", json={"reward": reward},
                                headers={**self.auth("alice"), "Idempotency-Key": key})


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[World]:
    container = Container(Settings(data_dir=tmp_path / "data", chain="tester",
                                   database_url=db.url, rate_limit="100000/minute"))
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                          signing_address=bytes.fromhex(Account.create().address[2:]))
        alice, bob = accounts.create_citizen(s), accounts.create_citizen(s)
        accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=100, stock=10)
        accounts.upsert_reward(s, code="tea", title="Tea", points_cost=50, stock=10)
        tokens = {"alice": issue_citizen_token(s, citizen=alice),
                  "bob": issue_citizen_token(s, citizen=bob),
                  "partner": issue_api_key(s, role="partner", partner=partner),
                  "auditor": issue_api_key(s, role="auditor")}
        pseudonyms = {"alice": alice.pseudonym, "bob": bob.pseudonym}
    with TestClient(create_app(container, run_sealer=False)) as client:
        yield World(client, container, tokens, pseudonyms)
    container.db.engine.dispose()


def assert_problem(response: Any, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body.get("field") == field, body
    return body


# -- item 9: no probing for other citizens' entries ------------------------------------

def refusal(world: World, entry: str) -> tuple[int, dict[str, Any]]:
    """Bob's answer for ``entry``, with the id it names put back as a placeholder."""
    answer = world.client.get(f"/v1/me/entries/{entry}/proof", headers=world.auth("bob"))
    return answer.status_code, json.loads(answer.text.replace(entry, "<id>"))


def test_another_citizens_entry_is_answered_as_no_entry(world: World) -> None:
    world.credit("alice", days_ago=1)
    entry, unknown = world.entry_of("alice"), "0x" + secrets.token_hex(32)
    nothing = refusal(world, unknown)
    assert nothing[0] == 404
    assert refusal(world, entry) == nothing  # pending
    world.client.app.state.ledger.scheduler.seal_once()  # type: ignore[attr-defined]
    assert refusal(world, entry) == nothing  # anchored, read from the database
    own = world.client.get(f"/v1/me/entries/{entry}/proof", headers=world.auth("alice"))
    assert own.status_code == 200 and own.json()["status"] == "anchored"
    assert refusal(world, entry) == nothing  # anchored, from the proof cache
    assert refusal(world, unknown) == nothing


# -- item 10: bad input is a 4xx problem -------------------------------------------------

def test_a_5000_digit_integer_in_a_record_is_422_naming_the_body(world: World) -> None:
    record = json.dumps([a_record(world.pseudonyms["alice"])])
    body = record.replace('"quantity": 3200', '"quantity": ' + "9" * 5000).encode()
    assert b"9" * 5000 in body
    answer = world.client.post("/v1/submissions", content=body, headers={
        "Authorization": f"Bearer {world.tokens['partner']}", "X-Signature": "0x00",
        "Content-Type": "application/json"})
    assert "infinity" in assert_problem(answer, 422, "body")["detail"]


@pytest.mark.parametrize(("version", "status", "field"), [
    ("1" + "0" * 300, 422, "version"), ("0", 422, "version"), ("-1", 422, "version"),
    (str(2**31), 422, "version"), ("99", 404, "methodology"), ("v1", 422, "version")])
def test_a_methodology_that_is_not_published_is_a_problem(
        world: World, version: str, status: int, field: str) -> None:
    assert_problem(world.client.get(f"/v1/methodologies/{version}"), status, field)


def test_a_published_methodology_is_served(world: World) -> None:
    assert world.client.get("/v1/methodologies/1").json()["version"] == 1


def test_a_bundle_with_a_lone_surrogate_is_refused_at_parsing(world: World) -> None:
    bundle = b'{"format": "carbon-ledger-proof/1", "contract": "\\ud800"}'
    answer = world.client.post("/v1/verify", content=bundle, headers={
        "Authorization": f"Bearer {world.tokens['auditor']}", "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == "body" and "surrogate" in problem["detail"], problem


@pytest.mark.parametrize(("body", "content_type", "status", "field"), [
    (b'{"reward": "coffee", "more": 1}', "application/json", 422, "body"),
    (b'["coffee"]', "application/json", 422, "body"),
    (b'{"reward": 5}', "application/json", 422, "reward"),
    (b'{"reward": "' + b"x" * 65 + b'"}', "application/json", 422, "reward"),
    (b'{"reward": "\\ud800"}', "application/json", 422, "body"),
    (b'{"reward": ' + b"9" * 900 + b"}", "application/json", 422, "body"),
    (b"reward=coffee", "application/x-www-form-urlencoded", 415, "content-type"),
    (b'{"reward": "' + b"x" * 2000 + b'"}', "application/json", 413, "body")])
def test_a_redemption_body_that_is_not_one_reward_code_is_a_problem(
        world: World, body: bytes, content_type: str, status: int, field: str) -> None:
    answer = world.client.post("/v1/redemptions", content=body, headers={
        **world.auth("alice"), "Idempotency-Key": "k", "Content-Type": content_type})
    assert_problem(answer, status, field)


# -- redemptions: a replay is the first answer -------------------------------------------

def test_a_replayed_redemption_answers_the_first_answer(world: World) -> None:
    world.credit("alice", days_ago=2)
    world.credit("alice", days_ago=3)  # 974 points
    first = world.redeem("coffee", "k1")
    assert first.status_code == 200 and first.json()["balance"] == 874
    world.credit("alice", days_ago=4)
    assert world.redeem("tea", "k2").json()["balance"] == 874 + 487 - 50
    again = world.redeem("coffee", "k1")
    assert again.status_code == 200
    assert again.json() == {**first.json(), "replayed": True}
    me = world.client.get("/v1/me", headers=world.auth("alice")).json()
    assert me["points"] == 1311 and me["pointsSpent"] == 150


def test_an_idempotency_key_sent_again_for_another_reward_is_409(world: World) -> None:
    world.credit("alice", days_ago=2)
    assert world.redeem("coffee", "k1").status_code == 200
    refused = assert_problem(world.redeem("tea", "k1"), 409, "idempotency_key")
    assert refused["type"].endswith(":idempotency-key-reused") and "coffee" in refused["detail"]
    assert_problem(world.redeem("no-such-reward", "k1"), 409, "idempotency_key")
    me = world.client.get("/v1/me", headers=world.auth("alice")).json()
    assert me["points"] == 387 and me["pointsSpent"] == 100
    stock = {r["code"]: r["stock"] for r in
             world.client.get("/v1/rewards", headers=world.auth("alice")).json()}
    assert stock == {"coffee": 9, "tea": 10}
