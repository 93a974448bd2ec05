"""The whole path on a real node: anvil (npm) over JSON-RPC, driven through the CLI.

Partner records → seal → anchor → proof bundle → `verify` against the chain alone, then
the node restarts from its saved state and everything still verifies.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from api.cli.main import main
from chain.nodes import ManagedAnvil
from ledger.store.database import Database
from ledger.store.models import LedgerEntry
from tests.conftest import a_record, needs_anvil

pytestmark = needs_anvil()


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def entries(data_dir: Path) -> list[str]:
    db = Database(f"sqlite:///{data_dir / 'ledger.db'}")
    with db.session() as s:
        ids = ["0x" + e.hex() for e in s.scalars(select(LedgerEntry.entry_id)
                                                 .order_by(LedgerEntry.seq))]
    db.engine.dispose()
    return ids


def submit(data_dir: Path, tmp_path: Path, citizens: list[str], n: int, tag: str) -> None:
    records = [a_record(citizens[i % len(citizens)], quantity=2000 + i, record_id=f"{tag}-{i}",
                        hours_ago=1 + i / 100) for i in range(n)]
    path = tmp_path / f"{tag}.json"
    path.write_text(json.dumps(records))
    assert cli("submit", "--partner", "greenbike", path, "--data-dir", data_dir) == 0


@pytest.fixture
def ledger_dir(tmp_path: Path, capsys) -> tuple[Path, list[str]]:
    data_dir = tmp_path / "ledger"
    assert cli("admin", "partner-add", "greenbike", "bike_share", "--address",
               "0x" + "ab" * 20, "--data-dir", data_dir) == 0
    citizens = []
    for _ in range(3):
        assert cli("admin", "citizen-add", "--data-dir", data_dir) == 0
        citizens.append(capsys.readouterr().out.strip().splitlines()[-1])
    return data_dir, citizens


def test_records_to_verified_proofs_over_json_rpc_and_across_a_node_restart(
        ledger_dir, tmp_path: Path, capsys) -> None:
    data_dir, citizens = ledger_dir
    submit(data_dir, tmp_path, citizens, 6, "day1")
    with ManagedAnvil(data_dir / "anvil") as node:
        assert cli("seal", "--rpc", node.url, "--data-dir", data_dir) == 0
        first = entries(data_dir)
        bundles = []
        for k, entry_id in enumerate(first):
            path = tmp_path / f"bundle-{k}.json"
            assert cli("proof", entry_id, "--out", path, "--data-dir", data_dir) == 0
            bundles.append(path)
        descriptor = tmp_path / "ledger.json"
        assert cli("ledger", "descriptor", "--out", descriptor, "--data-dir", data_dir) == 0
        capsys.readouterr()
        assert cli("verify", bundles[0], "--rpc", node.url, "--ledger", descriptor) == 0
        said = capsys.readouterr()
        assert "PINNED on first use" in said.err and said.out.startswith("OK: entry ")
        assert f"pinned by descriptor {descriptor}" in said.out
        for path in bundles:  # pinned now: the endpoint alone names the ledger
            assert cli("verify", path, "--rpc", node.url) == 0
            said = capsys.readouterr()
            assert said.out.startswith("OK: entry ") and "PINNED" not in said.err

    # A new node process on the same state: anchors survived, the contract is the same.
    with ManagedAnvil(data_dir / "anvil") as node:
        assert cli("verify", bundles[0], "--rpc", node.url) == 0
        submit(data_dir, tmp_path, citizens, 2, "day2")
        assert cli("seal", "--rpc", node.url, "--data-dir", data_dir) == 0
        assert "batch 2: 2 entries" in capsys.readouterr().out
        second = tmp_path / "second.json"
        assert cli("proof", entries(data_dir)[-1], "--out", second, "--data-dir", data_dir) == 0
        assert cli("verify", second, "--rpc", node.url) == 0
        assert cli("chain", "check", "--rpc", node.url, "--data-dir", data_dir) == 0


def mutated(path: Path, tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    bundle = json.loads(path.read_text())
    change(bundle)
    out = tmp_path / "mutated.json"
    out.write_text(json.dumps(bundle))
    return out


def test_verify_fails_with_the_reason_for_each_kind_of_lie(ledger_dir, tmp_path, capsys) -> None:
    data_dir, citizens = ledger_dir
    with ManagedAnvil(data_dir / "anvil") as node:
        submit(data_dir, tmp_path, citizens, 3, "a")
        assert cli("seal", "--rpc", node.url, "--data-dir", data_dir) == 0
        submit(data_dir, tmp_path, citizens, 3, "b")
        assert cli("seal", "--rpc", node.url, "--data-dir", data_dir) == 0
        good = tmp_path / "good.json"
        assert cli("proof", entries(data_dir)[0], "--out", good, "--data-dir", data_dir) == 0

        def values(b):  # a changed value: more grams than were anchored
            b["values"][5] = str(int(b["values"][5]) + 1)

        def root(b):  # another batch's anchored root is not this proof's root
            b["batchId"] = 2

        def claimed_root(b):
            b["root"] = "0x" + "77" * 32

        def batch(b):
            b["batchId"] = 99

        def tx(b):
            b["txHash"] = "0x" + "12" * 32

        def block(b):
            b["blockNumber"] = b["blockNumber"] + 1

        expected = {values: "(fold): values:", root: "(batch): root:",
                    claimed_root: "(fold): values:", batch: "(batch): batchId:",
                    tx: "(transaction): txHash:", block: "(transaction): blockNumber:"}
        contract = json.loads(good.read_text())["contract"]  # this test's own deployment
        assert cli("ledger", "pin", "--rpc", node.url, "--contract", contract) == 0
        capsys.readouterr()
        for change, said in expected.items():
            assert cli("verify", mutated(good, tmp_path, change), "--rpc", node.url) == 1
            err = capsys.readouterr().err
            assert said in err, (change.__name__, err)
            assert "Traceback" not in err


def test_export_is_accepted_by_openzeppelins_own_library(ledger_dir, tmp_path, capsys) -> None:
    data_dir, citizens = ledger_dir
    submit(data_dir, tmp_path, citizens, 9, "x")
    with ManagedAnvil(data_dir / "anvil") as node:
        assert cli("seal", "--rpc", node.url, "--data-dir", data_dir) == 0
    dump = tmp_path / "batch-1.json"
    assert cli("batch", "export", "1", "--out", dump, "--data-dir", data_dir) == 0
    root = Path(__file__).resolve().parents[1]
    checked = subprocess.run(["node", str(root / "scripts" / "oz_vectors.mjs"), "check", str(dump)],
                             capture_output=True, text=True, cwd=root, check=False)
    assert checked.returncode == 0, checked.stderr
    ours = json.loads(dump.read_text())["tree"][0]
    report = json.loads(checked.stdout.strip().splitlines()[-1])
    assert (report["root"], report["ok"]) == (ours, True)
    assert len(json.loads(dump.read_text())["values"]) == 9


def test_demo_on_the_managed_node_runs_twice_on_one_data_dir(tmp_path, capsys) -> None:
    data_dir = tmp_path / "demo"
    assert cli("demo", "--citizens", "25", "--seed", "3", "--data-dir", data_dir) == 0
    first = capsys.readouterr().out
    assert cli("demo", "--citizens", "25", "--seed", "4", "--data-dir", data_dir) == 0
    second = capsys.readouterr().out
    contract = first.split("contract ")[1].split(",")[0]
    assert contract in second, "the contract is deployed once per data dir"
    batches = [[int(n) for n in re.findall(r"#(\d+) \(\d+ entries\)", said)]
               for said in (first, second)]
    assert batches[0] and batches[1][0] == batches[0][-1] + 1, "batch ids continue across runs"
    assert "proofs verified on chain" in second


def test_node_command_serves_other_commands_while_it_runs(ledger_dir, tmp_path) -> None:
    data_dir, citizens = ledger_dir
    submit(data_dir, tmp_path, citizens, 2, "n")
    proc = subprocess.Popen([sys.executable, "-c", "from api.cli.main import run; run()", "node",
                             "--data-dir", str(data_dir)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert cli("seal", "--data-dir", data_dir) == 0  # finds the node through node.json
        bundle = tmp_path / "b.json"
        assert cli("proof", entries(data_dir)[0], "--out", bundle, "--data-dir", data_dir) == 0
        descriptor = tmp_path / "ledger.json"
        assert cli("ledger", "descriptor", "--out", descriptor, "--data-dir", data_dir) == 0
        assert cli("verify", bundle, "--rpc", url, "--ledger", descriptor) == 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert not (data_dir / "node.json").exists()
