"""docs/green-credit.md's worked example works exactly as written: its ``sh`` blocks, in
order, in one bash session (``set -euo pipefail``), from an empty directory, with
``.venv/bin`` on the PATH and ``PORT`` a free one: a demo ledger's months stated and
audited, a credential asked over HTTP, presented, verified, replayed, revoked.

It takes two minutes or more (forty demo days and a dozen CLI starts), beyond what the
suite can spend on one document, so it runs when ``CARBON_LEDGER_DOC_EXAMPLES=1`` (after
a change to the document, the credential commands or the demo)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chain.nodes import free_port
from tests.test_walkthrough import shell_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "green-credit.md"


@pytest.mark.skipif(shutil.which("curl") is None, reason="the example uses curl")
@pytest.mark.skipif(os.environ.get("CARBON_LEDGER_DOC_EXAMPLES") != "1",
                    reason="two minutes: set CARBON_LEDGER_DOC_EXAMPLES=1 to run it")
def test_the_green_credit_example_runs_as_written(tmp_path: Path) -> None:
    blocks = shell_blocks(DOC.read_text())
    assert len(blocks) == 5
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CARBON_LEDGER_")},
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PORT": str(free_port()), "COLUMNS": "200", "NO_COLOR": "1"}
    log = tmp_path / "example.log"
    with log.open("w") as output:
        process = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, text=True,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    out = log.read_text()
    assert process.returncode == 0, out[-8000:]
    assert re.search(r"statement \d{4}-\d\d: 20 accounts, batches 1-\d+, root 0x[0-9a-f]{64} "
                     r"anchored", out), out[-8000:]
    assert re.search(r"\d{4}-\d\d: 20 accounts, \d+ entries recomputed: ok", out), out[-8000:]
    assert re.search(r"all \d+ anchored month statements match the chain", out), out[-8000:]
    assert re.search(r"verified: holder 0x[0-9a-fA-F]{40}, credential 1, for 'Suzhou Green "
                     r"Bank'", out), out[-8000:]
    assert re.search(r"total: \d+ g CO2e", out), out[-8000:]
    assert "refused (challenge)" in out and "a replay" in out, out[-8000:]
    assert "refused (revocation)" in out and "credential 1 is revoked on chain" in out, out[-8000:]
    assert out.count("exit 1") == 2, out[-8000:]
