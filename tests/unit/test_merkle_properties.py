"""Properties of leaves, trees and proofs that hold for any input, checked with hypothesis."""

from __future__ import annotations

import dataclasses

import eth_abi
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import InvalidInput, InvalidProof
from ledger.leaf import (
    LEAF_ENCODING,
    LEAF_FIELDS,
    LeafValues,
    decode_leaf,
    encode_leaf,
    leaf_values_from_json,
    leaf_values_to_json,
)

BOUNDED = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=50, deadline=None)

# LeafValues attribute for each ABI field name, in LEAF_ENCODING order.
ATTRIBUTES = tuple(f.name for f in dataclasses.fields(LeafValues))
UINT_BITS = {"uint8": 8, "uint32": 32, "uint64": 64}
BYTE_WIDTHS = {"bytes32": 32, "address": 20}


def value_of(abi_type: str) -> st.SearchStrategy[int | bytes]:
    if abi_type in UINT_BITS:
        return st.integers(min_value=0, max_value=2 ** UINT_BITS[abi_type] - 1)
    width = BYTE_WIDTHS[abi_type]
    return st.binary(min_size=width, max_size=width)


leaf_values = st.builds(LeafValues, *(value_of(t) for t in LEAF_ENCODING))
leaf_hashes = st.binary(min_size=32, max_size=32)
leaf_hash_sets = st.lists(leaf_hashes, min_size=1, max_size=300, unique=True)


def tree_of(leaves: list[bytes]) -> bytes:
    return merkle.build_tree(sorted(leaves))


def proof_of(tree: bytes, leaf: bytes) -> list[bytes]:
    index = merkle.find_leaf(tree, leaf)
    assert index is not None
    return merkle.inclusion_proof(tree, index)


@FEW
@given(leaf_hash_sets)
def test_the_fast_batch_builder_lays_the_same_tree(leaves: list[bytes]) -> None:
    from ledger.batch_builder import tree_from_leaf_hashes

    built = tree_from_leaf_hashes(b"".join(leaves))
    assert built.nodes == tree_of(leaves)
    assert built.leaf_count == len(leaves)


def test_an_empty_tree_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least one leaf"):
        merkle.build_tree([])


def test_proof_items_of_the_wrong_width_are_refused() -> None:
    with pytest.raises(InvalidInput, match="proof item 0"):
        merkle.root_from_proof(b"\0" * 32, [b"\0" * 31])


@BOUNDED
@given(leaf_hash_sets)
def test_every_member_proof_verifies_against_the_root(leaves: list[bytes]) -> None:
    tree = tree_of(leaves)
    assert merkle.leaf_count(tree) == len(leaves)
    for leaf in leaves:
        merkle.verify_inclusion(leaf, proof_of(tree, leaf), merkle.root(tree))


@BOUNDED
@given(st.lists(leaf_values, min_size=1, max_size=20, unique_by=lambda v: v.entry_id), st.data())
def test_altering_any_single_value_of_a_leaf_breaks_its_proof(
        members: list[LeafValues], data: st.DataObject) -> None:
    tree = tree_of([m.leaf_hash() for m in members])
    member = data.draw(st.sampled_from(members))
    position = data.draw(st.integers(min_value=0, max_value=len(LEAF_FIELDS) - 1))
    attribute = ATTRIBUTES[position]
    old = getattr(member, attribute)
    new = data.draw(value_of(LEAF_ENCODING[position]).filter(lambda v: v != old))
    altered = dataclasses.replace(member, **{attribute: new})  # type: ignore[arg-type]

    with pytest.raises(InvalidProof):
        merkle.verify_inclusion(altered.leaf_hash(), proof_of(tree, member.leaf_hash()),
                                merkle.root(tree))


proof_mutations = st.sampled_from(["flip a bit", "replace", "drop", "insert", "swap with next"])


@BOUNDED
@given(st.lists(leaf_hashes, min_size=2, max_size=300, unique=True), st.data())
def test_altering_any_proof_item_breaks_the_proof(leaves: list[bytes], data: st.DataObject) -> None:
    tree = tree_of(leaves)
    leaf = data.draw(st.sampled_from(leaves))
    proof = proof_of(tree, leaf)
    k = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    mutation = data.draw(proof_mutations)
    altered = list(proof)
    if mutation == "flip a bit":
        bit = data.draw(st.integers(min_value=0, max_value=255))
        item = bytearray(proof[k])
        item[bit // 8] ^= 0x80 >> (bit % 8)
        altered[k] = bytes(item)
    elif mutation == "replace":
        altered[k] = data.draw(leaf_hashes.filter(lambda h: h != proof[k]))
    elif mutation == "drop":
        del altered[k]
    elif mutation == "insert":
        altered.insert(k, data.draw(leaf_hashes))
    else:
        assume(k + 1 < len(proof) and proof[k] != proof[k + 1])
        altered[k], altered[k + 1] = proof[k + 1], proof[k]

    with pytest.raises(InvalidProof):
        merkle.verify_inclusion(leaf, altered, merkle.root(tree))


@FEW
@given(leaf_hash_sets, leaf_hashes)
def test_a_non_member_is_not_found_and_no_member_proof_admits_it(
        members: list[bytes], outsider: bytes) -> None:
    assume(outsider not in members)
    tree = tree_of(members)
    assert merkle.find_leaf(tree, outsider) is None
    for member in members:
        with pytest.raises(InvalidProof):
            merkle.verify_inclusion(outsider, proof_of(tree, member), merkle.root(tree))


@BOUNDED
@given(leaf_values)
def test_struct_encoder_equals_eth_abi_encode_and_decodes_back(values: LeafValues) -> None:
    encoded = values.encode()
    assert encoded == eth_abi.encode(list(LEAF_ENCODING), list(values.as_tuple()))
    assert decode_leaf(encoded) == values


@BOUNDED
@given(leaf_values)
def test_json_values_read_back_unchanged(values: LeafValues) -> None:
    assert leaf_values_from_json(values.to_json()) == values
    assert leaf_values_from_json(leaf_values_to_json(values.as_tuple())) == values


def out_of_range(abi_type: str) -> st.SearchStrategy[object]:
    if abi_type in UINT_BITS:
        return st.one_of(st.integers(max_value=-1),
                         st.integers(min_value=2 ** UINT_BITS[abi_type], max_value=2**300),
                         st.booleans(), st.binary(max_size=8))
    width = BYTE_WIDTHS[abi_type]
    return st.one_of(st.binary(max_size=width - 1), st.binary(min_size=width + 1, max_size=64),
                     st.integers(), st.text(max_size=4))


@st.composite
def values_with_one_bad_field(draw: st.DrawFn) -> tuple[tuple[object, ...], int]:
    good = draw(leaf_values).as_tuple()
    position = draw(st.integers(min_value=0, max_value=len(LEAF_FIELDS) - 1))
    bad = draw(out_of_range(LEAF_ENCODING[position]))
    return good[:position] + (bad,) + good[position + 1:], position


@BOUNDED
@given(values_with_one_bad_field())
def test_an_out_of_range_value_is_rejected_naming_its_field(case: tuple[tuple[object, ...], int]) -> None:
    values, position = case
    with pytest.raises(InvalidInput) as caught:
        encode_leaf(values)
    assert caught.value.field == LEAF_FIELDS[position]


@BOUNDED
@given(leaf_values, st.data())
def test_malformed_json_value_is_rejected_naming_its_field(
        values: LeafValues, data: st.DataObject) -> None:
    items: list[object] = list(values.to_json())
    position = data.draw(st.integers(min_value=0, max_value=len(LEAF_FIELDS) - 1))
    if LEAF_ENCODING[position] in BYTE_WIDTHS:
        items[position] = data.draw(st.sampled_from(["", "0xzz", "12", "0x123"]) | st.none())
    else:
        items[position] = data.draw(st.sampled_from(["", "0x10", "1.5", "one"]) | st.none()
                                    | st.booleans() | st.floats() | st.lists(st.integers(), max_size=1))
    with pytest.raises(InvalidInput) as caught:
        leaf_values_from_json(items)
    assert caught.value.field == f"values.{LEAF_FIELDS[position]}"


@BOUNDED
@given(leaf_values, st.data())
def test_out_of_range_json_value_is_rejected_naming_its_field(
        values: LeafValues, data: st.DataObject) -> None:
    items = list(values.to_json())
    position = data.draw(st.integers(min_value=0, max_value=len(LEAF_FIELDS) - 1))
    abi_type = LEAF_ENCODING[position]
    if abi_type in UINT_BITS:
        items[position] = str(data.draw(st.sampled_from([-1, 2 ** UINT_BITS[abi_type]])))
    else:
        items[position] = "0x" + "ab" * (BYTE_WIDTHS[abi_type] + 1)
    with pytest.raises(InvalidInput) as caught:
        leaf_values_from_json(items)
    assert caught.value.field == f"values.{LEAF_FIELDS[position]}"


@pytest.mark.parametrize("text", ["1_000", " 7 ", "+3", "007"])
def test_integers_in_json_must_be_plain_decimal(text: str) -> None:
    items = list(LeafValues(b"\1" * 32, b"\2" * 32, 1, b"\3" * 32, 1, 1, 1, 1, 1, b"\4" * 32,
                            b"\5" * 20).to_json())
    items[4] = text
    with pytest.raises(InvalidInput) as caught:
        leaf_values_from_json(items)
    assert caught.value.field == "values.quantity"


def test_a_stored_leaf_with_non_zero_padding_is_refused() -> None:
    encoded = bytearray(LeafValues(b"\1" * 32, b"\2" * 32, 1, b"\3" * 32, 1, 1, 1, 1, 1,
                                   b"\4" * 32, b"\5" * 20).encode())
    encoded[64] = 1  # top byte of the uint8 kind word
    with pytest.raises(InvalidInput, match="canonical"):
        decode_leaf(bytes(encoded))
