"""OpenZeppelin's own library, run live, accepts the trees we build.

Needs ``node`` and ``node_modules/@openzeppelin/merkle-tree``; skipped without them.
"""

from __future__ import annotations

import filecmp
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.leaf import LEAF_ENCODING, LeafValues, behaviour_code

pytestmark = pytest.mark.node

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT / "scripts" / "oz_vectors.mjs"
VECTORS = PROJECT / "tests" / "data" / "merkle_vectors"
NODE = shutil.which("node")
OZ_PACKAGE = PROJECT / "node_modules" / "@openzeppelin" / "merkle-tree"

if NODE is None:
    pytest.skip("node is not on PATH", allow_module_level=True)
if not OZ_PACKAGE.is_dir():
    pytest.skip(f"{OZ_PACKAGE.relative_to(PROJECT)} is missing (run npm ci)", allow_module_level=True)


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run([NODE, str(SCRIPT), *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=120, check=False)


def random_leaf(rng: random.Random) -> LeafValues:
    credit = rng.random() < 0.7
    return LeafValues(
        entry_id=rng.randbytes(32), account=rng.randbytes(32), kind=1 if credit else 2,
        behaviour=behaviour_code(rng.choice(["CYCLING", "BUS", "METRO", "NEV_DRIVING"])),
        quantity=rng.randrange(2**64), reduction_grams=rng.randrange(2**64) if credit else 0,
        points=rng.randrange(2**64), methodology=rng.randrange(2**32),
        occurred_at=rng.randrange(2**64), record_hash=rng.randbytes(32) if credit else bytes(32),
        partner=rng.randbytes(20))


def oz_dump(leaves: list[LeafValues]) -> tuple[dict[str, Any], bytes]:
    """The dump an exporter writes: the tree in heap order, values in their original order."""
    hashes = [leaf.leaf_hash() for leaf in leaves]
    tree = merkle.build_tree(sorted(hashes))
    dump = {
        "format": "standard-v1",
        "leafEncoding": list(LEAF_ENCODING),
        "tree": ["0x" + merkle.node(tree, i).hex() for i in range(len(tree) // merkle.NODE)],
        "values": [{"value": leaf.to_json(), "treeIndex": merkle.find_leaf(tree, h)}
                   for leaf, h in zip(leaves, hashes, strict=True)],
    }
    return dump, merkle.root(tree)


def test_openzeppelin_loads_and_validates_our_50_leaf_tree(tmp_path: Path) -> None:
    leaves = [random_leaf(random.Random(f"oz-live-{i}")) for i in range(50)]
    dump, root = oz_dump(leaves)
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump))

    result = run_script("check", str(path))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"root": "0x" + root.hex(), "ok": True}


def test_openzeppelin_rejects_a_dump_with_one_tampered_node(tmp_path: Path) -> None:
    leaves = [random_leaf(random.Random(f"oz-tamper-{i}")) for i in range(5)]
    dump, _ = oz_dump(leaves)
    dump["tree"][1] = "0x" + "00" * 32
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump))

    result = run_script("check", str(path))

    assert result.returncode != 0
    assert "invalid" in result.stderr.lower()


def test_regenerating_the_vectors_gives_no_diff(tmp_path: Path) -> None:
    result = run_script("generate", str(tmp_path))

    assert result.returncode == 0, result.stderr
    committed = sorted(p.name for p in VECTORS.glob("*.json"))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == committed
    _, mismatch, errors = filecmp.cmpfiles(VECTORS, tmp_path, committed, shallow=False)
    assert (mismatch, errors) == ([], [])
