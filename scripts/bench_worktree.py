"""Another revision's code beside this checkout, for the benchmarks that measure before
against after: one place that checks it out and removes it. Imports nothing of the
ledger, so a script that picks which checkout's ledger it imports can use it first."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def is_commit(rev: str) -> bool:
    """Whether ``rev`` names a commit of this repository."""
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          cwd=ROOT, capture_output=True).returncode == 0


@contextmanager
def worktree(rev: str, into: Path) -> Iterator[Path]:
    """``rev`` checked out, detached, at ``into`` for the block, and removed after. The
    built web pages are not in git: the worktree links this checkout's, so a server
    started from it serves them."""
    subprocess.run(["git", "worktree", "add", "--detach", str(into), rev], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        dist = into / "web" / "dist"
        if dist.parent.is_dir() and not dist.exists() and (ROOT / "web" / "dist").is_dir():
            dist.symlink_to(ROOT / "web" / "dist")
        yield into
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(into)], cwd=ROOT,
                       check=False, capture_output=True)
