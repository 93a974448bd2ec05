"""The campaign routes (#21) over HTTP: the published campaigns and the public board
(nicknames only, of those who opted in), a citizen's nickname, progress and rank proof;
every refusal problem+json naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts, campaign_bonuses, campaigns, rankings
from ledger.campaign_rules import parse_campaign
from ledger.credentials import issue_citizen_token
from ledger.merkle import verify_inclusion
from tests.campaign_support import day, season, text
from tests.statement_ledger import Entry, add_entries


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    container = Container(Settings(data_dir=tmp_path_factory.mktemp("campaigns"), chain="tester",
                                   rate_limit="100000/minute"))
    doc = season()
    with container.db.session(write_lock=True) as s:
        for code, kind in (("appliance-shop", "appliance_retailer"), ("nev-maker", "nev_maker")):
            accounts.create_partner(s, code=code, name=code, kind=kind,
                                    signing_address=bytes.fromhex(Account.create().address[2:]))
        campaigns.register(s, parse_campaign(text(doc))).status = "published"
        people = {n: accounts.create_citizen(s) for n in ("ann", "ben", "cat")}
        tokens = {n: issue_citizen_token(s, citizen=c) for n, c in people.items()}
    with TestClient(create_app(container, run_sealer=False)) as client:
        yield {"client": client, "container": container, "doc": doc, "people": people,
               "auth": {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}}


def test_a_citizen_joins_follows_and_proves_their_rank(world: dict[str, Any]) -> None:
    client, auth, doc = world["client"], world["auth"], world["doc"]
    listed = client.get("/v1/campaigns").json()
    assert [c["id"] for c in listed] == ["test-season"]
    assert listed[0]["rulesHash"] == "0x" + parse_campaign(text(doc)).rules_hash.hex()
    for name, nick in (("ann", "ann-rides"), ("ben", "本本")):
        answer = client.put("/v1/me/campaigns/test-season/nickname", json={"nickname": nick},
                            headers=auth[name])
        assert answer.status_code == 200 and answer.json()["nickname"] == nick
    people, c = world["people"], world["container"]
    add_entries(c.db, [Entry(people["ann"], day(doc, 1), grams=4000, points=40),
                       Entry(people["ben"], day(doc, 2), grams=3000, points=30),
                       Entry(people["cat"], day(doc, 2), grams=9000, points=90)])
    campaign_bonuses.award_bonuses(c.db, c.operator_address)  # the step that keeps the standings
    board = client.get("/v1/campaigns/test-season/leaderboard").json()
    assert board["final"] is False
    assert [(e["nickname"], e["metric"]) for e in board["entries"]] == [("ann-rides", 4000),
                                                                        ("本本", 3000)]
    client.app.state.ledger.scheduler.seal_once()
    rankings.close_ranking(c.db, "test-season", c.operator_address,
                           now=parse_campaign(text(doc)).ranking.ends_at)  # type: ignore[union-attr]
    page = client.get("/v1/me/entries", headers=auth["ann"]).json()
    assert [(e["kind"], e["behaviour"], e["points"]) for e in page["entries"]] == [
        ("credit", "CYCLING", 40), ("bonus", "BONUS/test-season", 20),
        ("bonus", "PRIZE/test-season", 50)]
    mine = client.get("/v1/me/campaigns/test-season", headers=auth["ann"]).json()
    assert mine["bonusPoints"] == 20 and mine["nickname"] == "ann-rides"
    rank = mine["rank"]
    assert rank["leaf"]["rank"] == 1 and rank["leaf"]["prize"] == "50"
    leaf = rankings.RankLeaf(bytes.fromhex(rank["leaf"]["campaign"][2:]),
                             bytes.fromhex(rank["leaf"]["account"][2:]), 4000, 1, 50)
    verify_inclusion(leaf.leaf_hash(), [bytes.fromhex(p[2:]) for p in rank["proof"]],
                     bytes.fromhex(rank["root"][2:]))
    final = client.get("/v1/campaigns/test-season/leaderboard").json()
    assert final["final"] is True and [e["nickname"] for e in final["entries"]] == ["ann-rides",
                                                                                    "本本"]
    assert client.get("/v1/me/campaigns/test-season", headers=auth["cat"]).json()["rank"] is None
    gone = client.delete("/v1/me/campaigns/test-season/nickname", headers=auth["ben"])
    assert gone.status_code == 200 and gone.json()["nickname"] is None
    after = client.get("/v1/campaigns/test-season/leaderboard").json()
    assert [e["nickname"] for e in after["entries"]] == ["ann-rides"]


@pytest.mark.parametrize("path, send, status, field", [
    ("/v1/me/campaigns/test-season/nickname", {"json": {"nickname": "13912345678"}}, 422,
     "nickname"),
    ("/v1/me/campaigns/test-season/nickname", {"json": {"nick": "x"}}, 422, "body"),
    ("/v1/me/campaigns/test-season/nickname", {"content": b"nickname=x"}, 415, "content-type"),
    ("/v1/me/campaigns/no-such/nickname", {"json": {"nickname": "abc"}}, 404, "campaign"),
])
def test_a_refused_nickname_is_a_problem_naming_the_field(world: dict[str, Any], path: str,
                                                          send: dict[str, Any], status: int,
                                                          field: str) -> None:
    answer = world["client"].put(path, headers=world["auth"]["cat"], **send)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field


def test_an_unknown_campaign_has_no_board(world: dict[str, Any]) -> None:
    answer = world["client"].get("/v1/campaigns/nope/leaderboard")
    assert answer.status_code == 404 and answer.json()["field"] == "campaign"
    bad = world["client"].get("/v1/campaigns/Not%20An%20Id/leaderboard")
    assert bad.status_code == 422
