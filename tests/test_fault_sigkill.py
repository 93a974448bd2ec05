"""The sealing process killed with SIGKILL between "entries chosen" and "anchor
confirmed", again and again, on a real node: after each restart every entry is in exactly
one batch, the chain's batch ids run 1..n with no gap, and every proof verifies.

Each round runs ``carbon-ledger seal`` as its own process against one anvil that outlives
it. Most rounds stop it at a named fault point (``CARBON_LEDGER_FAULT_PAUSE``: the
sealer says where it is and waits) and kill it there; the others kill it after a random
delay, wherever it happens to be. ``scripts/fault_sigkill.py --rounds N`` runs more.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.cli import main
from chain.client import ChainKind, EvmAnchor
from chain.nodes import ManagedAnvil, anvil_binary, rpc_web3
from ledger.db import Database
from ledger.models import Batch, ChainDeployment, LedgerEntry
from ledger.proofs import proof_bundle, verify_bundle
from tests.conftest import a_record

try:
    anvil_binary()
except Exception:  # noqa: BLE001
    pytest.skip("anvil is not installed (run `npm ci`)", allow_module_level=True)

pytestmark = pytest.mark.anvil

POINTS = ["entries_chosen", "sealed", "before_broadcast", "after_broadcast",
          "before_confirmations", "before_anchored"]
ROOT = Path(__file__).resolve().parents[1]


class Ledger:
    """A data dir with a partner and citizens, and an anvil that outlives every sealer."""

    def __init__(self, data_dir: Path, node: ManagedAnvil) -> None:
        self.data_dir, self.node, self.counter = data_dir, node, 0
        self.db = Database(f"sqlite:///{data_dir / 'ledger.db'}")
        self.citizens: list[str] = []

    def cli(self, *args: object) -> int:
        return main([str(a) for a in (*args, "--data-dir", self.data_dir)])

    def setup(self, capsys) -> None:  # type: ignore[no-untyped-def]
        assert self.cli("admin", "partner-add", "greenbike", "bike_share",
                        "--address", "0x" + "cd" * 20) == 0
        for _ in range(4):
            assert self.cli("admin", "citizen-add") == 0
            self.citizens.append(capsys.readouterr().out.strip().splitlines()[-1])

    def setup_quietly(self) -> None:
        """:meth:`setup` without pytest: citizens made through the ledger directly."""
        from ledger import accounts
        from ledger.db import create_schema

        assert self.cli("admin", "partner-add", "greenbike", "bike_share",
                        "--address", "0x" + "cd" * 20) == 0
        create_schema(self.db.engine)
        with self.db.session(write_lock=True) as s:
            self.citizens = [accounts.create_citizen(s).pseudonym for _ in range(4)]

    def submit(self, n: int) -> None:
        records = []
        for _ in range(n):
            self.counter += 1
            records.append(a_record(self.citizens[self.counter % 4], quantity=1000 + self.counter,
                                    record_id=f"k-{self.counter}", hours_ago=1 + self.counter / 1000))
        path = self.data_dir / f"records-{self.counter}.json"
        path.write_text(json.dumps(records))
        assert self.cli("submit", "--partner", "greenbike", path) == 0

    def sealer_process(self, point: str | None) -> subprocess.Popen[str]:
        env = {**os.environ, "CARBON_LEDGER_CONFIRMATIONS": "2"}
        env.pop("CARBON_LEDGER_FAULT_PAUSE", None)
        if point is not None:
            env["CARBON_LEDGER_FAULT_PAUSE"] = point
        return subprocess.Popen(
            [sys.executable, "-c", "from api.cli import run; run()", "seal", "--rpc", self.node.url,
             "--data-dir", str(self.data_dir)], cwd=ROOT, env=env, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def anchor(self) -> EvmAnchor | None:
        with self.db.session() as s:
            address = s.scalars(select(ChainDeployment.address)).first()
        if address is None:  # killed before the contract's deployment was recorded
            return None
        return EvmAnchor(rpc_web3(self.node.url), ChainKind.RPC, address, signer=None)

    def check_invariants(self, *, all_anchored: bool) -> None:
        """Batches tile the entries with no overlap and no gap; the chain holds ids 1..k
        with the ledger's roots, k being every batch the ledger has anchored or sent."""
        with self.db.session() as s:
            batches = s.scalars(select(Batch).order_by(Batch.id)).all()
            newest = s.scalar(select(func.max(LedgerEntry.seq))) or 0
        assert [b.id for b in batches] == list(range(1, len(batches) + 1))
        expected_first = 1
        for b in batches:
            assert b.first_seq == expected_first and b.last_seq >= b.first_seq
            expected_first = b.last_seq + 1
        anchor = self.anchor()
        if anchor is None:
            assert not batches
            return
        latest = anchor.latest_batch_id()
        anchored = [b for b in batches if b.status == "anchored"]
        assert latest >= len(anchored) and latest <= len(batches)
        for b in batches[:latest]:
            on_chain = anchor.anchored_batch(b.id)
            assert (on_chain.root, on_chain.leaf_count) == (b.root, b.leaf_count)
        if all_anchored:
            assert len(anchored) == len(batches) == latest
            assert expected_first == newest + 1  # every entry in exactly one batch
            with self.db.session() as s:
                ids = s.scalars(select(LedgerEntry.entry_id)).all()
                for entry_id in ids:
                    verify_bundle(proof_bundle(s, entry_id), anchor)


def kill_rounds(ledger: Ledger, rounds: int, rng: random.Random) -> dict[str, int]:
    """Kill a sealer ``rounds`` times; return how many kills landed at each point."""
    landed: dict[str, int] = {}
    for i in range(rounds):
        if i % 2 == 0:
            ledger.submit(rng.randint(1, 6))
        point = POINTS[i % len(POINTS)] if i % 5 != 4 else None  # every fifth: a random moment
        proc = ledger.sealer_process(point)
        try:
            if point is not None:
                deadline = time.monotonic() + 60
                line = ""
                while f"fault point {point}" not in line:
                    line = proc.stderr.readline() if proc.stderr else ""
                    if not line and proc.poll() is not None:
                        break  # finished without reaching it (nothing to do at that point)
                    assert time.monotonic() < deadline, f"sealer never reached {point}"
                reached = point if f"fault point {point}" in line else "finished first"
            else:
                time.sleep(rng.uniform(0.5, 3.0))
                reached = "random moment" if proc.poll() is None else "finished first"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        landed[reached] = landed.get(reached, 0) + 1
        ledger.check_invariants(all_anchored=False)
        # The killed sealer's lease stays behind; the next one sees its process is gone.
    return landed


def test_twenty_kills_at_every_point_then_a_clean_run(tmp_path: Path, capsys) -> None:
    data_dir = tmp_path / "ledger"
    with ManagedAnvil(tmp_path / "anvil") as node:
        ledger = Ledger(data_dir, node)
        ledger.setup(capsys)
        landed = kill_rounds(ledger, 20, random.Random(20261125))
        print("kills landed:", landed)
        assert sum(landed.values()) == 20
        assert sum(n for p, n in landed.items() if p in POINTS) >= 12, landed
        assert ledger.cli("seal", "--rpc", node.url) == 0  # the restart after the last kill
        ledger.check_invariants(all_anchored=True)
    ledger.db.engine.dispose()
