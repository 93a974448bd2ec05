"""The sealer killed with SIGKILL anywhere between choosing a batch's entries and its
anchor's confirmation, on a real anvil that outlives it; a restarted sealer finishes.

Kills land at each named step (the sealer stops there, announced on stderr, when
``CARBON_LEDGER_FAULT_PAUSE`` names it) and at random times. Afterwards: every entry is
in exactly one batch, ids run 1..n on chain with no gap and no replay, every proof
verifies against the chain, and the anchoring key sent one transaction per batch.
``scripts/fault_sigkill.py --rounds N`` runs more rounds.
"""

from __future__ import annotations

from tests.conftest import needs_anvil
from tests.fault_support import (
    KILL_POINTS,
    Entries,
    SealProcess,
    assert_ledger_matches_chain,
    seal_env,
    sigkill_rounds,
)

pytestmark = needs_anvil()



def test_sigkill_at_every_step_and_at_random_loses_and_doubles_nothing(db, node, tmp_path) -> None:
    entries = Entries(db)
    report = sigkill_rounds(db, node.url, tmp_path, rounds=28, seed=20261125, entries=entries)
    assert report.kills >= 21, report  # 21 at named steps, each reached; 7 more at random
    assert all(report.by_point.get(point, 0) >= 3 for point in KILL_POINTS), report
    batches = assert_ledger_matches_chain(db, node.url, other_txs=1)
    assert sum(b.leaf_count for b in batches) == entries.added


def test_sigkill_of_a_real_carbon_ledger_seal_process(db, node, tmp_path) -> None:
    """The same, through the console script's entry point in a fresh interpreter: the
    environment hook and the exit code as an operator's cron job would see them."""
    entries = Entries(db)
    key = "0x" + "5e" * 32
    log = tmp_path / "sealer.log"
    assert SealProcess(seal_env(db, node.url, tmp_path, key), log, exec_cli=True).wait() == 0
    for point in ("recorded", "mined"):
        entries.add(2)
        proc = SealProcess(seal_env(db, node.url, tmp_path, key,
                                    CARBON_LEDGER_FAULT_PAUSE=point), log, exec_cli=True)
        assert proc.wait_for_pause() == point
        assert proc.kill()
    final = SealProcess(seal_env(db, node.url, tmp_path, key), log, exec_cli=True)
    assert final.wait() == 0, final.output()
    assert "Traceback" not in final.output()
    assert [b.leaf_count for b in assert_ledger_matches_chain(db, node.url, other_txs=1)] == [2, 2]
