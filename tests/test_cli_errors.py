"""Bad input at the command line: an exit code and one line naming the field, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli.main import main


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ledger"
    assert main(["admin", "partner-add", "greenbike", "bike_share", "--address", "0x" + "ab" * 20,
                 "--data-dir", str(d)]) == 0
    return d


def run(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(("content", "name", "field"), [
    ("[{", "bad.json", "records"),
    ('{"record_id": "x"}', "obj.json", "records"),
    ('{"a": 1}\n{oops\n', "bad.ndjson", "records line 2"),
])
def test_malformed_record_files_exit_2_naming_the_field(capsys, data_dir, tmp_path, content,
                                                        name, field) -> None:
    path = tmp_path / name
    path.write_text(content)
    code, err = run(capsys, "submit", "--partner", "greenbike", path, "--data-dir", data_dir)
    assert code == 2 and f"{field}:" in err


@pytest.mark.parametrize(("args", "code", "field"), [
    (["admin", "partner-add", "x1", "spaceship", "--address", "0x" + "cd" * 20], 2, "kind"),
    (["admin", "partner-add", "x2", "maas", "--address", "0x1234"], 2, "address"),
    (["admin", "partner-add", "greenbike", "maas", "--address", "0x" + "ef" * 20], 4, "code"),
    (["submit", "--partner", "nobody", "records.json"], 3, "partner"),
    (["proof", "0x1234"], 2, "entry_id"),
    (["proof", "0x" + "00" * 32], 3, "entry_id"),
    (["batch", "export", "7", "--out", "dump.json"], 3, "batch_id"),
    (["redeem", "c_nobody", "coffee", "--key", "k"], 3, "citizen"),
])
def test_bad_arguments_give_an_exit_code_and_name_the_field(capsys, data_dir, tmp_path, args,
                                                             code, field) -> None:
    (tmp_path / "records.json").write_text("[]")
    args = [a if not a.endswith(".json") else str(tmp_path / a) for a in args]
    got, err = run(capsys, *args, "--data-dir", data_dir)
    assert (got, f"{field}:" in err) == (code, True), err


def test_verify_of_a_missing_file_is_bad_input(capsys, tmp_path) -> None:
    code, err = run(capsys, "verify", tmp_path / "nope.json", "--rpc", "http://127.0.0.1:9")
    assert code == 2 and "bundle:" in err


def test_verify_of_a_bundle_with_no_contract_fails_with_the_reason(capsys, tmp_path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"values": []}')
    code, err = run(capsys, "verify", path, "--rpc", "http://127.0.0.1:9")
    assert code == 1 and "(shape): format:" in err


def test_unknown_settings_values_are_bad_input(capsys, tmp_path) -> None:
    code, err = run(capsys, "seal", "--chain", "moon", "--data-dir", tmp_path)
    assert code == 2 and "settings:" in err


def test_a_value_too_long_for_its_column_is_bad_input_on_postgresql(capsys, tmp_path, pg_url,
                                                                    monkeypatch) -> None:
    """Checked before the database sees it, so both backends answer alike (SQLite would
    keep any length; PostgreSQL would refuse it)."""
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", pg_url)
    code, err = run(capsys, "admin", "reward-set", "coffee", "x" * 201, "--cost", "100",
                    "--stock", "1", "--data-dir", tmp_path)
    assert code == 2 and "TITLE:" in err, err


@pytest.mark.parametrize(("args", "said"), [
    (["nosuch"], "No such command 'nosuch'"),
    (["balnce", "c_x"], "Did you mean 'balance'?"),
    (["verify"], "Missing argument"),
    (["verify", "b.json", "--bogus"], "No such option: --bogus"),
    (["batch", "export", "x", "--out", "d.json"], "Invalid value for 'batch_id'"),
    (["batch", "export", str(2**64), "--out", "d.json"], "less than or equal to"),
])
def test_usage_mistakes_are_one_line_and_exit_2(capsys, args, said) -> None:
    code, err = run(capsys, *args)
    assert code == 2 and said in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_version_is_printed(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("carbon-ledger ")


@pytest.mark.parametrize("target", ["folder", "/dev/full", "missing/dump.json", ""])
def test_export_to_an_odd_path_is_one_line(capsys, data_dir, tmp_path, target) -> None:
    (tmp_path / "folder").mkdir()
    path = str(tmp_path / target) if target and not target.startswith("/") else target
    code, err = run(capsys, "batch", "export", "1", "--out", path, "--data-dir", data_dir)
    assert code in (2, 3) and len(err.strip().splitlines()) == 1, err


def test_a_failed_export_leaves_the_existing_file_as_it_was(capsys, data_dir, tmp_path) -> None:
    target = tmp_path / "dump.json"
    target.write_text("yesterday's dump\n")
    code, err = run(capsys, "batch", "export", "7", "--out", target, "--data-dir", data_dir)
    assert code == 3 and "batch_id:" in err
    assert target.read_text() == "yesterday's dump\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dump")] == []


@pytest.mark.parametrize(("content", "said"), [
    (b'{"values": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "(parse): bundle:"),
    (b'{"batchId": ' + b"9" * 5000 + b"}", "(parse): bundle:"),
    (b'{"contract": "\xff\xfe"}', "(parse): bundle:"),
    (b"", "(parse): bundle:"),
])
def test_verify_refuses_hostile_files_in_one_line_before_any_chain(capsys, tmp_path, content,
                                                                   said) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(content)
    code, err = run(capsys, "verify", path, "--rpc", "http://127.0.0.1:9")
    assert code == 1 and said in err, err


@pytest.mark.parametrize("target", ["folder", "/dev/null/x.json"])
def test_verify_of_an_unreadable_path_is_bad_input(capsys, tmp_path, target) -> None:
    (tmp_path / "folder").mkdir()
    path = tmp_path / target if not target.startswith("/") else Path(target)
    code, err = run(capsys, "verify", path, "--rpc", "http://127.0.0.1:9")
    assert code == 2 and "bundle:" in err, err


def test_verify_with_nothing_pinned_refuses_and_says_how_to_pin(capsys, tmp_path,
                                                                monkeypatch) -> None:
    bundle = Path(__file__).parent / "data" / "bundle_corpus" / "cases" / "001-good-credit.json"
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "verify", str(bundle))
    assert code == 2 and "no ledger is pinned for chain 31337" in err and "--contract" in err
    assert list(tmp_path.iterdir()) == [], "verify starts no node and makes no data dir"


def test_the_operators_submit_refuses_records_older_than_the_window(capsys, data_dir,
                                                                     tmp_path) -> None:
    assert main(["admin", "citizen-add", "--data-dir", str(data_dir)]) == 0
    citizen = capsys.readouterr().out.strip().splitlines()[-1]
    old = {"record_id": "from-2022", "citizen": citizen, "behaviour": "CYCLING",
           "quantity": 3200, "occurred_at": "2022-03-01T08:00:00+08:00",
           "ended_at": "2022-03-01T08:20:00+08:00"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps([old]))
    assert main(["submit", "--partner", "greenbike", str(path), "--data-dir", str(data_dir)]) == 0
    said = capsys.readouterr().out
    assert "0 accepted" in said and "occurred_at" in said, said
