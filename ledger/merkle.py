"""Merkle trees byte-compatible with OpenZeppelin's ``StandardMerkleTree`` (standard-v1).

Pure functions over bytes: no database, no I/O. A tree of ``n`` leaves is one buffer of
``2n - 1`` nodes of 32 bytes in heap order (node ``i`` has children ``2i+1`` and
``2i+2``; the root is node 0). The leaves sit at the end in reverse order, as OZ lays
them, and pairs are hashed sorted, so OZ's ``MerkleProof.verify`` accepts our proofs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ledger.errors import InvalidInput, InvalidProof
from ledger.hashing import keccak

NODE = 32


def hash_leaf(encoded_values: bytes) -> bytes:
    """OZ's leaf: ``keccak256(bytes.concat(keccak256(abi.encode(values))))``.

    Hashing twice keeps a 64-byte leaf preimage from passing as an inner node.
    """
    return keccak(keccak(encoded_values))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """The parent of two nodes: keccak of the pair in ascending byte order."""
    return keccak(a + b) if a < b else keccak(b + a)


def build_tree(sorted_leaves: Sequence[bytes]) -> bytes:
    """Lay ``sorted_leaves`` (ascending, as OZ sorts them) into a tree buffer."""
    n = len(sorted_leaves)
    if n == 0:
        raise InvalidInput("a tree needs at least one leaf", field="leaves")
    for i, leaf in enumerate(sorted_leaves):
        if len(leaf) != NODE:
            raise InvalidInput(f"leaf {i} is {len(leaf)} bytes, not 32", field="leaves")
    nodes: list[bytes] = [b""] * (n - 1) + list(reversed(sorted_leaves))
    fill_inner_nodes(nodes)
    return b"".join(nodes)


def fill_inner_nodes(nodes: list[bytes]) -> None:
    """Hash every inner node of a heap-ordered list whose last ``(len+1)/2`` are leaves."""
    for i in range((len(nodes) + 1) // 2 - 2, -1, -1):
        left, right = nodes[2 * i + 1], nodes[2 * i + 2]
        nodes[i] = keccak(left + right) if left < right else keccak(right + left)


def node(tree: bytes | bytearray | memoryview, index: int) -> bytes:
    """Node ``index`` of a tree buffer."""
    return bytes(tree[index * NODE : (index + 1) * NODE])


def root(tree: bytes | bytearray | memoryview) -> bytes:
    return node(tree, 0)


def leaf_count(tree: bytes | bytearray | memoryview) -> int:
    return (len(tree) // NODE + 1) // 2


def find_leaf(tree: bytes | bytearray | memoryview, leaf: bytes) -> int | None:
    """The tree index of ``leaf``, by binary search over the sorted leaf region."""
    n = leaf_count(tree)
    lo, hi = 0, n  # positions in ascending sorted order; sorted i lives at 2n-2-i
    while lo < hi:
        mid = (lo + hi) // 2
        if node(tree, 2 * n - 2 - mid) < leaf:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and node(tree, 2 * n - 2 - lo) == leaf:
        return 2 * n - 2 - lo
    return None


def inclusion_proof(tree: bytes | bytearray | memoryview, tree_index: int) -> list[bytes]:
    """The sibling path from leaf ``tree_index`` up to the root."""
    return [node(tree, i) for i in proof_indices(leaf_count(tree), tree_index)]


def proof_indices(n: int, tree_index: int) -> list[int]:
    """The tree indices of leaf ``tree_index``'s siblings up to the root, in proof order.

    Index arithmetic only, so a stored tree can fetch just these nodes (one per level)."""
    if not n - 1 <= tree_index < 2 * n - 1:
        raise InvalidInput(f"index {tree_index} is not a leaf of a {n}-leaf tree", field="index")
    siblings = []
    i = tree_index
    while i > 0:
        siblings.append(i + 1 if i % 2 == 1 else i - 1)
        i = (i - 1) // 2
    return siblings


def leaf_index(n: int, position: int) -> int:
    """The tree index of the leaf at ``position`` in ascending order (OZ lays the sorted
    leaves at the end of the buffer, last first)."""
    return 2 * n - 2 - position


def root_from_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """Fold ``proof`` over ``leaf`` as OZ's ``MerkleProof.processProof`` does."""
    if len(leaf) != NODE:
        raise InvalidInput(f"leaf is {len(leaf)} bytes, not 32", field="leaf")
    computed = leaf
    for k, sibling in enumerate(proof):
        if len(sibling) != NODE:
            raise InvalidInput(f"proof item {k} is {len(sibling)} bytes, not 32", field="proof")
        computed = hash_pair(computed, sibling)
    return computed


def verify_inclusion(leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> None:
    """Raise :class:`InvalidProof`, naming both roots, unless ``proof`` links leaf to root."""
    computed = root_from_proof(leaf, proof)
    if computed != expected_root:
        raise InvalidProof(computed, expected_root)


def sorted_root(hashes: bytearray, *,
                elsewhere: Callable[[Callable[[], bytes]], Callable[[], bytes]] | None = None
                ) -> bytes:
    """The OZ tree's root over leaf hashes (32 bytes each, concatenated), as
    :func:`ledger.merkle.build_tree` lays it out, without storing the tree: the hashes are
    sorted in place (bytewise, as OZ sorts them) and the inner nodes hashed depth first,
    each kept only until its parent is hashed. With ``elsewhere`` the root's two subtrees
    are hashed at once: ``elsewhere(compute)`` starts the left one (in a forked child, say)
    and returns what waits for its hash, while this one hashes the right."""
    n = len(hashes) // 32
    if n == 0 or len(hashes) % 32:
        raise InvalidInput("a tree needs whole 32-byte leaves, at least one", field="leaves")
    np.frombuffer(hashes, dtype="S32").sort()  # fixed-width bytes compare as memcmp
    leaves = memoryview(hashes)
    last, first_leaf = 2 * n - 2, n - 1  # heap order; sorted leaf k is node 2n-2-k

    def node(i: int) -> bytes:
        if i >= first_leaf:
            k = last - i
            return bytes(leaves[32 * k:32 * k + 32])
        a, b = node(2 * i + 1), node(2 * i + 2)
        return keccak(a + b) if a < b else keccak(b + a)

    if elsewhere is None or n < 2:
        return node(0)
    left = elsewhere(lambda: node(1))
    right = node(2)  # meanwhile
    a, b = left(), right
    return keccak(a + b) if a < b else keccak(b + a)
