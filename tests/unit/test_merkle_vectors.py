"""Our leaves, trees and proofs agree byte for byte with OpenZeppelin's ``StandardMerkleTree``.

The vectors in ``tests/data/merkle_vectors/`` were written by OZ's own library
(``node scripts/oz_vectors.mjs generate tests/data/merkle_vectors``): one file per
case, either a whole tree (``"expect": "valid"``) or a mutated proof that OZ rejects
(``"expect": "invalid"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.errors import InvalidProof
from ledger.leaf import LEAF_ENCODING, leaf_values_from_json

VECTORS = Path(__file__).parents[1] / "data" / "merkle_vectors"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))


def from_hex(text: str) -> bytes:
    assert text.startswith("0x"), text
    return bytes.fromhex(text[2:])


def our_leaf_hash(value: list[Any]) -> bytes:
    values = leaf_values_from_json(value)
    assert values.to_json() == value, "OZ's value forms are the ones we write"
    return merkle.hash_leaf(values.encode())


def check_tree_case(case: dict[str, Any]) -> None:
    leaves = case["leaves"]
    hashes = [our_leaf_hash(leaf["value"]) for leaf in leaves]
    assert ["0x" + h.hex() for h in hashes] == [leaf["leafHash"] for leaf in leaves]

    tree = merkle.build_tree(sorted(hashes))
    root = merkle.root(tree)
    assert "0x" + root.hex() == case["root"] == case["dump"]["tree"][0]
    size = len(tree) // merkle.NODE
    assert ["0x" + merkle.node(tree, i).hex() for i in range(size)] == case["dump"]["tree"]
    assert merkle.leaf_count(tree) == len(leaves)

    for leaf, leaf_hash, dumped in zip(leaves, hashes, case["dump"]["values"], strict=True):
        assert dumped == {"value": leaf["value"], "treeIndex": leaf["treeIndex"]}
        index = merkle.find_leaf(tree, leaf_hash)
        assert index is not None and index == leaf["treeIndex"]
        proof = merkle.inclusion_proof(tree, index)
        assert ["0x" + p.hex() for p in proof] == leaf["proof"]
        merkle.verify_inclusion(leaf_hash, proof, root)


def check_mutation_case(case: dict[str, Any]) -> None:
    leaf_hash = our_leaf_hash(case["value"])
    assert "0x" + leaf_hash.hex() == case["leafHash"]
    proof = [from_hex(p) for p in case["proof"]]
    expected_root = from_hex(case["root"])
    with pytest.raises(InvalidProof) as caught:
        merkle.verify_inclusion(leaf_hash, proof, expected_root)
    assert caught.value.expected == expected_root
    assert caught.value.computed == merkle.root_from_proof(leaf_hash, proof)


def test_vectors_are_present() -> None:
    names = {path.stem for path in VECTOR_FILES}
    assert {"tree_01_leaves", "tree_33_leaves", "mutation_wrong_root"} <= names


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.stem for p in VECTOR_FILES])
def test_we_agree_with_openzeppelin_on(path: Path) -> None:
    case = json.loads(path.read_text())
    assert case["leafEncoding"] == list(LEAF_ENCODING)
    if case["expect"] == "valid":
        check_tree_case(case)
    else:
        assert case["expect"] == "invalid"
        check_mutation_case(case)
