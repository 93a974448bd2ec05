"""Cross-check against OpenZeppelin's own JS library: vectors written by
``node scripts/make_oz_vectors.mjs`` from ``StandardMerkleTree`` (tests/data/oz_vectors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import merkle
from ledger.errors import InvalidProof
from ledger.leaf import leaf_values_from_json

VECTORS = sorted((Path(__file__).parent / "data" / "oz_vectors").glob("*.json"))


def unhex(text: str) -> bytes:
    return bytes.fromhex(text[2:])


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_our_tree_leaves_and_proofs_equal_openzeppelins(path: Path) -> None:
    vector = json.loads(path.read_text())
    leaves = [leaf_values_from_json(c["value"]).leaf_hash() for c in vector["cases"]]
    assert ["0x" + leaf.hex() for leaf in leaves] == [c["leafHash"] for c in vector["cases"]]
    tree = merkle.build_tree(sorted(leaves))
    assert ["0x" + merkle.node(tree, i).hex() for i in range(len(tree) // 32)] == vector["dump"]["tree"]
    assert "0x" + merkle.root(tree).hex() == vector["root"]
    for leaf, case in zip(leaves, vector["cases"], strict=True):
        proof = merkle.inclusion_proof(tree, merkle.find_leaf(tree, leaf))  # type: ignore[arg-type]
        assert ["0x" + p.hex() for p in proof] == case["proof"]
        merkle.verify_inclusion(leaf, proof, merkle.root(tree))


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_mutations_openzeppelin_rejects_we_reject(path: Path) -> None:
    vector = json.loads(path.read_text())
    root = unhex(vector["root"])
    for mutation in vector["mutations"]:
        assert mutation["ozVerifies"] is False, mutation["name"]
        leaf = leaf_values_from_json(mutation["value"]).leaf_hash()
        with pytest.raises(InvalidProof):
            merkle.verify_inclusion(leaf, [unhex(p) for p in mutation["proof"]], root)


def test_vectors_cover_odd_even_and_single_leaf_trees() -> None:
    sizes = {len(json.loads(p.read_text())["cases"]) for p in VECTORS}
    assert {1, 2, 3, 8, 33} <= sizes
