"""The command line as a user meets it (issue #17): `--json` with full ids on the read
commands, tables that never cut an id a later command takes (at 80 columns too), lists of
what exists, local times with their offset, redemptions as named debits with their
status, `submit`'s summary first with the file's line numbers, confirmation before an
erasure, option names in errors, exit codes in `--help`, and the demo's next steps."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.cli.main import main
from api.composition import container
from ledger import errors, rankings
from ledger.hashing import keccak
from ledger.leaf import KIND_BONUS, LEAF_RECORD_HASH
from ledger.methodology import local_day_offset, partner_kinds
from ledger.store.models import CampaignRanking, EntryLocator, LedgerEntry
from tests.conftest import a_record

ID = re.compile(r"0x[0-9a-f]{64}")


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    assert "Traceback" not in got.err
    return code, got.out, got.err


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small demo ledger (three weeks, in-process chain) and what its last lines name."""
    data_dir = tmp_path_factory.mktemp("demo") / "ledger"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", "--data-dir", str(data_dir), "--citizens", "12", "--seed", "7",
                     "--chain", "tester"])
    said = buffer.getvalue()
    assert code == 0, said
    found = re.search(r"A citizen: (c_[0-9a-f]+); one of their entries: (0x[0-9a-f]{64})", said)
    assert found, said
    return {"data_dir": data_dir, "said": said, "citizen": found.group(1),
            "entry": found.group(2)}


def test_the_demo_ends_with_what_to_try_next_on_weeks_of_data(demo) -> None:
    said = demo["said"]
    assert "demo: 21 days" in said
    assert f"The ledger is in {demo['data_dir']}" in said
    for command in (f"carbon-ledger balance {demo['citizen']}",
                    f"carbon-ledger proof {demo['entry']}", "carbon-ledger report city",
                    "carbon-ledger audit "):
        assert command in said, command
    assert "proofs verified on chain" in said


def test_the_demo_s_suggested_commands_work(demo, capsys) -> None:
    at = ["--data-dir", demo["data_dir"]]
    assert run(capsys, "balance", demo["citizen"], *at)[0] == 0
    code, out, _ = run(capsys, "proof", demo["entry"], *at)
    assert code == 0 and json.loads(out)["entryId"] == demo["entry"]
    code, out, _ = run(capsys, "report", "city", "--from", (_days_ago(21)), "--to", _days_ago(1),
                       *at, "--json")
    assert code == 0 and len({r["period"] for r in json.loads(out)["rows"]}) > 7, \
        "the city's days have a shape: weeks of them, not one"


def test_the_demo_runs_its_season_to_an_anchored_ranking_and_credited_prizes(demo, capsys) -> None:
    """#21's "done when": a short season with two partners' offers and a cycling ranking,
    lived to its close: the ranking sealed and anchored, its prizes credited as entries
    naming its root, a rank proof checked against the chain and the ranking's audit ok."""
    said = demo["said"]
    season = re.search(r"campaign show (season-\d{8}) ", said).group(1)  # type: ignore[union-attr]
    for partner_offer in (r"trade-in-discount \(homeshop\) x[1-9]", r"nev-test-drive \(voltauto\) x[1-9]"):
        assert re.search(partner_offer, said), partner_offer
    assert re.search(r"rank proof verified\s*│ rider-\w+: rank 1, ", said), said
    assert re.search(r"ranking audit\s*│ ok", said), said
    code, out, _ = run(capsys, "campaign", "ranking", "board", season, "--json",
                       "--data-dir", demo["data_dir"])
    board = json.loads(out)
    assert code == 0 and board["final"] and board["status"] == "anchored"
    assert [e["rank"] for e in board["entries"]] == list(range(1, len(board["entries"]) + 1))
    with container(demo["data_dir"]).db.session() as s:
        ranking = s.get(CampaignRanking, season)
        assert ranking is not None and ranking.block_number is not None
        key, root = ranking.campaign_key, ranking.root
        prizes = {(r.citizen_id, r.rank, r.prize) for r in rankings.ranks(s, season) if r.prize}
        paid = [(e.citizen_id, e.quantity, e.points, e.leaf, batch) for e, batch in s.execute(
            select(LedgerEntry, EntryLocator.batch_id)
            .join(EntryLocator, EntryLocator.seq == LedgerEntry.seq, isouter=True)
            .where(LedgerEntry.kind == KIND_BONUS,
                   LedgerEntry.behaviour == rankings.prize_behaviour(season)))]
    assert prizes and {(a, rank, pts) for a, rank, pts, _, _ in paid} == prizes
    for _, rank, points, leaf, batch in paid:
        assert leaf[LEAF_RECORD_HASH] == keccak(rankings.prize_record(key, root, rank, points)), \
            "a prize entry names the ranking root it pays for"
        assert batch is not None, "prizes are sealed like any entry"


def _days_ago(n: int) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone(local_day_offset())) - timedelta(days=n)).date().isoformat()


def test_balance_shows_every_entry_id_whole_at_80_columns(demo, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "balance", demo["citizen"], "--data-dir", demo["data_dir"])
    assert code == 0
    code, as_json, _ = run(capsys, "balance", demo["citizen"], "--data-dir", demo["data_dir"],
                           "--json")
    entries = json.loads(as_json)["entries"]
    assert entries and all(len(line) <= 80 for line in out.splitlines())
    shown = set(ID.findall(out))
    assert {e["entryId"] for e in entries} <= shown, "every id a proof needs, whole"
    offset = local_day_offset()
    assert f"UTC+{int(offset.total_seconds() // 3600):02d}:00" in out


def test_balance_json_names_each_entry_s_status_and_a_redemption_s_reward(capsys,
                                                                         tmp_path) -> None:
    d = ["--data-dir", tmp_path]
    assert run(capsys, "admin", "partner-add", "greenbike", "bike_share", "--address",
               "0x" + "ab" * 20, *d)[0] == 0
    who = run(capsys, "admin", "citizen-add", *d)[1].strip()
    rides = tmp_path / "rides.json"
    rides.write_text(json.dumps([a_record(who, quantity=9000, record_id=f"r{i}", hours_ago=3 + i)
                                 for i in range(3)]))
    assert run(capsys, "submit", "--partner", "greenbike", rides, *d)[0] == 0
    assert run(capsys, "admin", "reward-set", "coffee", "Coffee voucher", "--cost", "10",
               "--stock", "5", *d)[0] == 0
    assert run(capsys, "redeem", who, "coffee", "--key", "k1", *d)[0] == 0
    code, out, _ = run(capsys, "balance", who, *d, "--json")
    mine = json.loads(out)
    debit = mine["entries"][-1]
    assert debit["kind"] == "debit" and debit["points"] == -10
    assert debit["reward"] == {"code": "coffee", "title": "Coffee voucher"}
    assert {e["status"] for e in mine["entries"]} == {"pending"}
    code, out, _ = run(capsys, "balance", who, *d)
    assert "Coffee voucher" in out and "-10" in out and "pending" in out

    code, out, _ = run(capsys, "admin", "reward-list", *d, "--json")
    assert json.loads(out) == [{"code": "coffee", "title": "Coffee voucher", "points": 10,
                                "stock": 4}]


def test_batch_list_and_audit_give_full_ids_and_the_recomputed_root(demo, capsys,
                                                                   monkeypatch) -> None:
    at = ["--data-dir", demo["data_dir"]]
    code, out, _ = run(capsys, "batch", "list", *at, "--json")
    batches = json.loads(out)
    assert code == 0 and all(ID.fullmatch(b["root"]) and ID.fullmatch(b["txHash"])
                             for b in batches)
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "batch", "list", *at)
    assert {b["root"] for b in batches} <= set(ID.findall(out))
    code, out, _ = run(capsys, "audit", "1", *at)
    assert code == 0 and f"recomputed  {batches[0]['root']}" in out
    assert f"sealed    = {batches[0]['root']}" in out and "content hash" in out
    code, out, _ = run(capsys, "audit", "1", *at, "--json")
    report = json.loads(out)
    assert report["recomputed"] == report["sealed"]
    assert report["sealed"]["root"] == batches[0]["root"]


@pytest.mark.parametrize(("command", "key"), [
    ("partner-list", "signingAddress"), ("citizen-list", "pseudonym"),
    ("reward-list", "stock"), ("key-list", "keyId"), ("submission-list", None)])
def test_lists_of_what_exists(demo, capsys, command, key) -> None:
    at = ["--data-dir", demo["data_dir"]]
    if command == "key-list":
        secret = run(capsys, "admin", "key-add", "auditor", *at)[1].strip()
    code, out, _ = run(capsys, "admin", command, *at, "--json")
    items = json.loads(out)
    assert code == 0 and isinstance(items, list)
    if key is not None:
        assert items and all(key in i for i in items)
    if command == "key-list":
        key_id = secret.split(".")[0].split("_")[-1]
        assert {"keyId": key_id, "role": "auditor"}.items() <= items[-1].items()
        assert secret.split(".")[1] not in out
        table = run(capsys, "admin", command, *at)[1]
        assert key_id in table and secret.split(".")[1] not in table
    assert run(capsys, "admin", command, *at)[0] == 0


def test_submit_prints_the_summary_first_and_the_file_s_line_numbers(capsys, tmp_path) -> None:
    d = ["--data-dir", tmp_path]
    assert run(capsys, "admin", "partner-add", "greenbike", "bike_share", "--address",
               "0x" + "cd" * 20, *d)[0] == 0
    who = run(capsys, "admin", "citizen-add", *d)[1].strip()
    path = tmp_path / "mixed.ndjson"
    long_id = "a-record-id-long-enough-that-a-terminal-of-80-columns-would-have-wrapped-it-x"
    path.write_text("\n".join([json.dumps(a_record(who, record_id="ok-1")), "",
                               json.dumps(a_record(who, record_id=long_id, behaviour="SKATE"))])
                    + "\n")
    code, out, _ = run(capsys, "submit", "--partner", "greenbike", path, *d)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("1 accepted, 0 duplicate, 1 rejected;")
    assert lines[1].startswith(f"line 3 ({long_id}): rejected, behaviour: "), lines
    assert len(lines) == 2, "one line per rejected record: nothing wrapped on a pipe"
    code, out, _ = run(capsys, "submit", "--partner", "greenbike", path, *d, "--json")
    answer = json.loads(out)
    assert [(r["line"], r["status"]) for r in answer["records"]] == [(1, "duplicate"),
                                                                      (3, "rejected")]


def test_a_json_error_in_ndjson_keeps_its_line_and_column(capsys, tmp_path) -> None:
    d = ["--data-dir", tmp_path]
    assert run(capsys, "admin", "partner-add", "greenbike", "bike_share", "--address",
               "0x" + "ef" * 20, *d)[0] == 0
    path = tmp_path / "bad.ndjson"
    path.write_text('{"a": 1}\n{"b": 2,,}\n')
    code, _, err = run(capsys, "submit", "--partner", "greenbike", path, *d)
    assert code == 2 and "records line 2:" in err and "column 9" in err
    assert "line 1 column" not in err, err


def test_citizen_erase_asks_first(capsys, tmp_path, monkeypatch) -> None:
    d = ["--data-dir", tmp_path]
    who = run(capsys, "admin", "citizen-add", *d)[1].strip()
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, _, _ = run(capsys, "admin", "citizen-erase", who, *d)
    assert code == 130
    assert run(capsys, "balance", who, *d)[0] == 0, "not erased"
    assert run(capsys, "admin", "citizen-erase", who, "--yes", *d)[0] == 0
    assert run(capsys, "balance", who, *d)[0] == 3


def test_errors_name_the_option_not_the_parameter(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "admin", "reward-set", "coffee", "Coffee", "--cost", "-5",
                       "--stock", "1", "--data-dir", tmp_path)
    assert code == 2 and "--cost:" in err and "points_cost" not in err


def test_help_shows_defaults_choices_and_every_exit_code(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = run(capsys, "--help")[1]
    for cls in (errors.VerificationError, errors.InvalidInput, errors.NotFound, errors.Conflict,
                errors.ChainError, errors.DatabaseUnavailable):
        assert f" {cls.exit_code} " in out.replace(";", " "), cls
    assert "Exit codes: 0 done" in " ".join(out.split())
    help_of = " ".join(run(capsys, "admin", "partner-add", "--help")[1].split())
    assert all(kind in help_of for kind in partner_kinds())
    assert "default: ./.carbon-ledger" in help_of
    assert "default: a free port" in " ".join(run(capsys, "node", "--help")[1].split())


def test_verify_with_a_pin_but_no_endpoint_says_so_and_starts_nothing(capsys, tmp_path,
                                                                      monkeypatch) -> None:
    from api.cli.trust_store import TrustStore
    from ledger.verification import TrustRoot

    bundle = Path(__file__).parent / "data" / "bundle_corpus" / "cases" / "001-good-credit.json"
    chain_id = json.loads(bundle.read_text())["chainId"]
    TrustStore().pin(TrustRoot(chain_id, "0x" + "12" * 20, "--contract"), rpc=None,
                     deployment=None)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "verify", bundle)
    assert code == 2 and "no chain endpoint" in err and "--rpc" in err, err
    assert list(tmp_path.iterdir()) == []


def test_charts_mark_withheld_cells_and_show_a_statement_by_month(demo, capsys,
                                                                  tmp_path) -> None:
    at = ["--data-dir", demo["data_dir"]]
    city, statement = tmp_path / "city.svg", tmp_path / "statement.svg"
    span = ["--from", _days_ago(21), "--to", _days_ago(1)]
    assert run(capsys, "report", "city", *span, *at, "--chart", city)[0] == 0
    report = json.loads(run(capsys, "report", "city", *span, *at, "--json")[1])
    if any(r["withheld"] for r in report["rows"]):
        assert "withheld: fewer than 3 citizens" in city.read_text()
    assert run(capsys, "report", "statement", demo["citizen"], *span, *at,
               "--chart", statement)[0] == 0
    drawn = statement.read_text()
    assert "by behaviour" in drawn and "by month" in drawn


def test_each_behaviour_keeps_one_colour_distinct_from_the_others() -> None:
    from api.cli.charts import behaviour_colours
    from ledger.methodology import available_versions, load_methodology

    colours = behaviour_colours()
    codes = {c for v in available_versions() for c in load_methodology(v).behaviours}
    assert set(colours) == codes
    assert len(set(colours.values())) == len(codes)


def test_balance_with_a_chain_endpoint_counts_confirmations(demo, capsys, monkeypatch) -> None:
    monkeypatch.setattr("api.cli.commands.chain_head", lambda url: 1000)
    code, out, _ = run(capsys, "balance", demo["citizen"], "--data-dir", demo["data_dir"],
                       "--rpc", "http://127.0.0.1:9", "--json")
    anchored = [e for e in json.loads(out)["entries"] if e["blockNumber"]]
    assert code == 0 and anchored
    assert all(e["confirmations"] == 1000 - e["blockNumber"] + 1 for e in anchored)
    table = run(capsys, "balance", demo["citizen"], "--data-dir", demo["data_dir"],
                "--rpc", "http://127.0.0.1:9")[1]
    assert f"{1000 - anchored[0]['blockNumber'] + 1} conf." in table


@pytest.mark.parametrize(("args", "named"), [
    (["report", "city", "--from", "2026-01-01", "--to", "x"], "--to:"),
    (["report", "city", "--from", "2026-02-01", "--to", "2026-01-01"], "--to:"),
    (["report", "city", "--from", "2026-01-01", "--to", "2026-01-02", "--period", "week"],
     "--period:"),
    (["submit", "--partner", "nobody", "records.json"], "--partner:"),
    (["admin", "key-add", "partner", "--partner", "nobody"], "--partner:"),
])
def test_more_errors_name_their_option(capsys, tmp_path, args, named) -> None:
    (tmp_path / "records.json").write_text("[]")
    args = [str(tmp_path / a) if a.endswith(".json") else a for a in args]
    code, _, err = run(capsys, *args, "--data-dir", tmp_path / "d")
    assert code in (2, 3) and named in err, err


def test_a_bad_redemption_key_names_the_option(capsys, tmp_path) -> None:
    d = ["--data-dir", tmp_path]
    who = run(capsys, "admin", "citizen-add", *d)[1].strip()
    assert run(capsys, "admin", "reward-set", "coffee", "Coffee voucher", "--cost", "1",
               "--stock", "1", *d)[0] == 0
    code, _, err = run(capsys, "redeem", who, "coffee", "--key", "x" * 200, *d)
    assert code == 2 and "--key:" in err


def test_ledger_pins_as_json(capsys) -> None:
    from api.cli.trust_store import TrustStore
    from ledger.verification import TrustRoot

    TrustStore().pin(TrustRoot(5, "0x" + "34" * 20, "--contract"), rpc="http://node:8545",
                     deployment=None)
    code, out, _ = run(capsys, "ledger", "pins", "--json")
    [pin] = json.loads(out)
    assert code == 0 and (pin["chainId"], pin["contract"], pin["rpc"]) == (
        5, "0x" + "34" * 20, "http://node:8545")


def test_the_operators_page_lists_the_exit_codes_the_errors_carry() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "production.md").read_text()
    said = " ".join(page.split("ends with the exit codes:")[1].split("Tables")[0].split())
    for cls in (errors.VerificationError, errors.InvalidInput, errors.NotFound, errors.Conflict,
                errors.ChainError, errors.DatabaseUnavailable):
        assert f" {cls.exit_code} " in f" {said}", cls
