"""`carbon-ledger campaign …` (#21) against a real anvil: publish a season, check its
file against the pinned hash, join under a nickname, read the board and one's progress;
and bad input as one line naming the field, with its exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import update

from api.cli.main import main
from api.settings import Settings
from ledger.store.database import Database
from ledger.store.models import CampaignRow
from tests.campaign_support import season, text
from tests.conftest import needs_anvil

pytestmark = needs_anvil()


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    assert "Traceback" not in got.err
    return code, got.out, got.err


def test_a_season_published_followed_and_checked_from_the_command_line(node, tmp_path: Path,
                                                                      capsys) -> None:
    d = ["--data-dir", tmp_path / "ledger"]
    chain = ["--rpc", node.url]
    file = tmp_path / "season.json"
    file.write_text(text(season()))
    for code, kind in (("appliance-shop", "appliance_retailer"), ("nev-maker", "nev_maker")):
        assert run(capsys, "admin", "partner-add", code, kind, "--address",
                   Account.create().address, *d)[0] == 0
    assert run(capsys, "admin", "citizen-add", "alice_1", *d)[0] == 0

    code, said, _ = run(capsys, "campaign", "publish", file, *d, *chain)
    assert code == 0 and "test-season v1 published" in said
    shown = json.loads(run(capsys, "campaign", "show", "test-season", *d)[1])
    contract = shown["publication"]["contract"]
    assert shown["rulesHash"] == "0x" + _hash(file)
    code, said, _ = run(capsys, "campaign", "check", file, *chain, "--contract", contract)
    assert code == 0 and "pinned on chain" in said
    code, said, _ = run(capsys, "chain", "check", *d, *chain)
    assert code == 0 and "all 1 campaign versions and ranking roots match the chain" in said
    with Database(Settings(data_dir=tmp_path / "ledger").db_url).session(write_lock=True) as s:
        s.execute(update(CampaignRow).values(rules_hash=b"\x01" * 32))  # the ledger's row
    code, said, err = run(capsys, "chain", "check", *d, *chain, "--json")
    assert code == 5 and "1 problem(s)" in err
    assert json.loads(said)["campaigns"]["problems"] == [
        {"anchor": "campaign test-season v1", "problem": "rules hash differs: chain 0x"
         + _hash(file) + ", ledger 0x" + "01" * 32}]
    with Database(Settings(data_dir=tmp_path / "ledger").db_url).session(write_lock=True) as s:
        s.execute(update(CampaignRow).values(rules_hash=bytes.fromhex(_hash(file))))

    changed = tmp_path / "changed.json"
    changed.write_text(text(season(bonus_cap_points=99999)))
    code, _, said = run(capsys, "campaign", "check", changed, *chain, "--contract", contract)
    assert code == 2 and "not the published rules" in said and said.count("\n") == 1
    code, _, said = run(capsys, "campaign", "publish", changed, *d, *chain)
    assert code == 5 and "new version" in said

    code, said, _ = run(capsys, "campaign", "list", *d, "--json")
    assert [c["id"] for c in json.loads(said)] == ["test-season"]
    assert run(capsys, "campaign", "join", "test-season", "alice_1", "--nickname", "骑行达人",
               *d)[0] == 0
    code, said, _ = run(capsys, "campaign", "ranking", "board", "test-season", *d, "--json")
    board = json.loads(said)
    assert code == 0 and board["final"] is False and board["entries"] == []
    code, said, _ = run(capsys, "campaign", "progress", "test-season", "alice_1", *d)
    assert json.loads(said)["nickname"] == "骑行达人" and json.loads(said)["bonusPoints"] == 0
    code, _, said = run(capsys, "campaign", "ranking", "close", "test-season", *d, *chain)
    assert code == 4 and "close it after that" in said


def _hash(path: Path) -> str:
    from ledger.campaign_rules import parse_campaign

    return parse_campaign(path.read_bytes()).rules_hash.hex()


@pytest.mark.parametrize("change, field", [({"version": 0}, "version"),
                                           ({"ranking": {"metric": "steps"}}, "ranking.metric")])
def test_a_bad_campaign_file_is_one_line_naming_the_field(tmp_path: Path, capsys, change,
                                                          field) -> None:
    file = tmp_path / "bad.json"
    file.write_text(text(season(**change)))
    code, _, said = run(capsys, "campaign", "publish", file, "--data-dir", tmp_path / "l",
                        "--chain", "tester")
    assert code == 2 and field in said
    assert said.count("\n") == 1


def test_an_unknown_campaign_is_not_found(tmp_path: Path, capsys) -> None:
    code, _, said = run(capsys, "campaign", "ranking", "board", "nope", "--data-dir", tmp_path)
    assert code == 3 and "nope" in said
