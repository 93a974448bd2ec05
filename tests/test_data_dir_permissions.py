"""The data dir holds citizens' salts, raw records, key hashes and the anchoring keystore:
made fresh it is 0700 and every file the ledger writes in it 0600, whatever the umask lets
through; an existing one that is open to others gets one warning line."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.cli.main import main
from api.composition import Container
from api.settings import Settings
from chain.nodes import ManagedAnvil, anvil_binary, node_file
from ledger import accounts


@pytest.fixture(autouse=True)
def usual_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A common umask (0022), under which a plain file would be 0644, a folder 0755."""
    monkeypatch.delenv("CARBON_LEDGER_DATABASE_URL", raising=False)
    monkeypatch.delenv("CARBON_LEDGER_DATA_DIR", raising=False)
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (``.`` for itself), relative, with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_a_fresh_data_dir_is_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    assert main(["admin", "citizen-add", "alice_1", "--data-dir", str(data_dir)]) == 0
    assert main(["seal", "--chain", "tester", "--data-dir", str(data_dir)]) == 0  # makes the key
    container = Container(Settings(data_dir=data_dir, chain="tester"))
    with container.db.session(write_lock=True) as s:  # the engine keeps -wal and -shm open
        accounts.create_citizen(s, pseudonym="bob_2")
    with container.db.session() as s, node_file(data_dir, "http://127.0.0.1:1"):
        s.execute(text("SELECT 1"))
        found = modes(data_dir)
    container.db.engine.dispose()
    expected = {"ledger.db", "ledger.db-wal", "ledger.db-shm", "ledger.db-writer.lock",
                "anchor-keystore.json", "anchor-keystore.password", "node.json"}
    assert expected <= set(found)
    assert found.pop(".") == 0o700
    assert {name: f"{mode:o}" for name, mode in found.items() if mode != 0o600} == {}


def test_the_managed_nodes_state_is_owner_only(tmp_path: Path) -> None:
    try:
        anvil_binary()
    except Exception:  # noqa: BLE001 - any reason it cannot be found or run
        pytest.skip("anvil is not installed (run `npm ci`)")
    with ManagedAnvil(tmp_path / "anvil") as node:
        deadline = time.monotonic() + 10
        while not (tmp_path / "anvil" / "state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # dumped every second
        assert node.url
    found = modes(tmp_path / "anvil")
    assert found == {".": 0o700, "anvil.log": 0o600, "state.json": 0o600}


def test_an_open_data_dir_is_warned_about_in_one_line(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "shared"
    data_dir.mkdir(mode=0o755)
    (data_dir / "anchor-keystore.json").write_text("{}\n")  # 0644, as older versions wrote
    with caplog.at_level(logging.WARNING):
        assert main(["admin", "citizen-add", "--data-dir", str(data_dir)]) == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    line = warnings[0].getMessage()
    assert "\n" not in line and str(data_dir) in line
    assert "the folder 0755" in line and "anchor-keystore.json 0644" in line
    assert "ledger.db" not in line  # made now, so made private
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o755  # warned, not changed


def test_a_private_data_dir_raises_no_warning(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "state"
    assert main(["admin", "citizen-add", "--data-dir", str(data_dir)]) == 0
    with caplog.at_level(logging.WARNING):
        assert main(["admin", "citizen-add", "--data-dir", str(data_dir)]) == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_files_asked_for_outside_it_keep_the_usual_permissions(tmp_path: Path) -> None:
    """Only the data dir is made private: no process-wide umask."""
    data_dir, chart = tmp_path / "state", tmp_path / "city.svg"
    assert main(["report", "city", "--from", "2025-03-01", "--to", "2025-03-31",
                 "--data-dir", str(data_dir), "--chart", str(chart)]) == 0
    assert stat.S_IMODE(chart.stat().st_mode) == 0o644
