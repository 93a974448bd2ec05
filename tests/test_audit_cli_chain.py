"""`carbon-ledger audit` holds the recomputed batch against the chain, as `chain check`
reads it (the configured RPC, else the managed node), on a real anvil: a batch whose
anchor a reorg took away is named; ``--no-chain`` recomputes only."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account

from api.cli.main import main
from tests.conftest import needs_anvil
from tests.fault_support import Entries, anvil_call, anvil_sealer

pytestmark = needs_anvil()


def audit(capsys, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    code = main(["audit", "1", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


def test_the_cli_audit_names_a_batch_the_chain_does_not_hold(
        db, node, tmp_path: Path, monkeypatch, capsys) -> None:
    entries = Entries(db)
    entries.add(3)
    anvil_sealer(db, node.url, Account.create(), confirmations=1).seal()
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    at = ["--rpc", node.url, "--data-dir", str(tmp_path / "cli")]

    code, out = audit(capsys, *at)
    assert code == 0, out
    assert "not held against the chain" not in out
    assert audit(capsys, *at, "--json")[1].count('"heldAgainstChain": true') == 1

    anvil_call(node.url, "anvil_reorg", [1, []])  # the batch's anchor is gone
    code, out = audit(capsys, *at)
    assert code == 1 and "batch 1 is not on chain" in out, out
    code, out = audit(capsys, *at, "--no-chain")
    assert code == 0 and "not held against the chain: --no-chain" in out, out
