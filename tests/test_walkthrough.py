"""docs/walkthrough.md works exactly as written: its ``sh`` blocks, in order, in one bash
session (``set -euo pipefail``), from an empty directory, with ``.venv/bin`` on the PATH
as the walkthrough asks and ``PORT`` a free one. Every command must succeed; a few of
their answers are checked here too. Takes about half a minute (a demo ledger on the
managed anvil node, the server, a partner's signed submission, a seal)."""

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

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", markdown, re.S | re.M)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = shell_blocks(WALKTHROUGH.read_text())
    assert len(blocks) >= 8
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CARBON_LEDGER_")},
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PORT": str(free_port()), "COLUMNS": "200", "NO_COLOR": "1"}
    log = tmp_path / "walkthrough.log"
    with log.open("w") as output:  # a file: the server it starts in the background keeps its copy
        process = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, text=True,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=600)
        finally:  # whatever it started goes with its session (the server stops its node)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    out = log.read_text()
    assert process.returncode == 0, out[-8000:]
    assert "current 0006, head 0006" in out or re.search(r"current (\d+), head \1", out), out
    assert re.search(r"OK: entry 0x[0-9a-f]{64} is in batch \d+", out), out[-8000:]
    assert re.search(r'"reward":"coffee-voucher","points":\d+,"balance":\d+,"replayed":false', out), out
    assert "is open to other users" not in out, out
    assert '"valid":true' in out, out[-8000:]
