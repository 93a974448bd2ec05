"""Property tests for the Merkle tree and the leaf encoding (hypothesis)."""

from __future__ import annotations

import pytest
from eth_abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import InvalidInput, InvalidProof
from ledger.leaf import LEAF_ENCODING, LeafValues, decode_leaf, encode_leaf, leaf_values_from_json

b32 = st.binary(min_size=32, max_size=32)
leaf_values = st.builds(
    LeafValues, b32, b32, st.integers(0, 255), b32, st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1), b32, st.binary(min_size=20, max_size=20))
leaf_sets = st.lists(b32, min_size=1, max_size=300, unique=True)


def tree_of(leaves: list[bytes]) -> bytes:
    return merkle.build_tree(sorted(leaves))


@settings(max_examples=150, deadline=None)
@given(leaf_sets)
def test_every_members_proof_verifies(leaves: list[bytes]) -> None:
    tree = tree_of(leaves)
    root = merkle.root(tree)
    for leaf in leaves:
        index = merkle.find_leaf(tree, leaf)
        assert index is not None
        merkle.verify_inclusion(leaf, merkle.inclusion_proof(tree, index), root)


@settings(max_examples=150, deadline=None)
@given(leaf_sets, st.data())
def test_any_altered_proof_item_or_leaf_fails(leaves: list[bytes], data: st.DataObject) -> None:
    tree = tree_of(leaves)
    leaf = data.draw(st.sampled_from(leaves))
    proof = merkle.inclusion_proof(tree, merkle.find_leaf(tree, leaf))  # type: ignore[arg-type]
    bit = data.draw(st.integers(0, 255))
    flipped = bytes(b ^ (1 << (bit % 8)) if i == bit // 8 else b for i, b in enumerate(leaf))
    with pytest.raises(InvalidProof):
        merkle.verify_inclusion(flipped, proof, merkle.root(tree))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = bytes(b ^ 1 if i == 0 else b for i, b in enumerate(bad[k]))
        with pytest.raises(InvalidProof):
            merkle.verify_inclusion(leaf, bad, merkle.root(tree))


@settings(max_examples=100, deadline=None)
@given(leaf_sets, b32)
def test_a_non_member_is_not_found_and_borrows_no_proof(leaves: list[bytes], stranger: bytes) -> None:
    if stranger in leaves:
        return
    tree = tree_of(leaves)
    assert merkle.find_leaf(tree, stranger) is None
    for leaf in leaves[:10]:
        proof = merkle.inclusion_proof(tree, merkle.find_leaf(tree, leaf))  # type: ignore[arg-type]
        assert merkle.root_from_proof(stranger, proof) != merkle.root(tree)


@settings(max_examples=200, deadline=None)
@given(leaf_values)
def test_struct_encoder_equals_eth_abi_and_round_trips(values: LeafValues) -> None:
    encoded = values.encode()
    assert encoded == encode(list(LEAF_ENCODING), list(values.as_tuple()))
    assert decode_leaf(encoded) == values
    assert leaf_values_from_json(values.to_json()) == values


@settings(max_examples=100, deadline=None)
@given(leaf_values, st.integers(0, 10), st.data())
def test_changing_any_value_changes_the_leaf(values: LeafValues, which: int,
                                             data: st.DataObject) -> None:
    items = list(values.as_tuple())
    if isinstance(items[which], bytes):
        items[which] = bytes([items[which][0] ^ 1]) + items[which][1:]
    else:
        limit = 2**8 if which == 2 else 2**32 if which == 7 else 2**64
        items[which] = (items[which] + data.draw(st.integers(1, 1000))) % limit
    assert LeafValues(*items).leaf_hash() != values.leaf_hash()


@pytest.mark.parametrize(("index", "bad", "field"), [
    (2, 256, "kind"), (4, -1, "quantity"), (5, 2**64, "reductionGrams"),
    (7, 2**32, "methodology"), (0, b"\0" * 31, "entryId"), (10, b"\0" * 32, "partner"),
    (6, True, "points")])
def test_out_of_range_values_are_refused_naming_the_field(index: int, bad: object,
                                                          field: str) -> None:
    values = [b"\1" * 32, b"\2" * 32, 1, b"\3" * 32, 1, 1, 1, 1, 1, b"\4" * 32, b"\5" * 20]
    values[index] = bad
    with pytest.raises(InvalidInput) as info:
        encode_leaf(tuple(values))
    assert info.value.field == field


def test_an_empty_tree_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least one leaf"):
        merkle.build_tree([])


def test_proof_items_of_the_wrong_width_are_refused() -> None:
    with pytest.raises(InvalidInput, match="proof item 0"):
        merkle.root_from_proof(b"\0" * 32, [b"\0" * 31])


@settings(max_examples=60, deadline=None)
@given(leaf_sets)
def test_the_fast_batch_builder_lays_the_same_tree(leaves: list[bytes]) -> None:
    from ledger.batch_builder import tree_from_leaf_hashes

    built = tree_from_leaf_hashes(b"".join(leaves))
    assert built.nodes == tree_of(leaves)
    assert built.leaf_count == len(leaves)
