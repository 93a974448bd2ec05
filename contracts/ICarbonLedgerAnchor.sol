// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The carbon ledger's anchoring interface
/// @notice Batch roots of citizens' ledger entries, anchored in strict id order so that
///         anyone can check an entry's inclusion proof against the chain. State keeps only
///         what a verifier must read from it, each batch's root; the rest of a batch (its
///         leaf count, content hash, anchorer) is in the `BatchAnchored` event, read from
///         the anchoring transaction's receipt, and its block and time are the receipt's.
interface ICarbonLedgerAnchor {
    /// @notice Batch `batchId` was anchored with `root`.
    /// @param leafCount How many entries the batch holds; never zero.
    /// @param contentHash keccak256 of the batch's leaf hashes in entry order.
    /// @param anchorer The account that anchored it.
    event BatchAnchored(
        uint256 indexed batchId, bytes32 indexed root, uint64 leafCount, bytes32 contentHash, address anchorer
    );

    /// @notice The id is above the next expected one: a gap.
    error BatchIdGap(uint256 batchId, uint256 expected);
    /// @notice The id was anchored already: a replay.
    error BatchAlreadyAnchored(uint256 batchId);
    /// @notice A zero root cannot commit to anything.
    error ZeroRoot(uint256 batchId);
    /// @notice A batch must hold at least one leaf.
    error EmptyBatch(uint256 batchId);
    /// @notice No batch with this id has been anchored.
    error UnknownBatch(uint256 batchId);

    /// @notice Anchor batch `batchId`, which must be exactly `latestBatchId() + 1`.
    /// @dev Stores `root` only; `leafCount` and `contentHash` go to the event.
    /// @param batchId The batch's id: 1, 2, 3, ... with no gap and no replay.
    /// @param root The Merkle root (OpenZeppelin StandardMerkleTree, standard-v1).
    /// @param leafCount How many entries the batch holds; never zero.
    /// @param contentHash keccak256 of the batch's leaf hashes in entry order.
    function anchor(uint256 batchId, bytes32 root, uint64 leafCount, bytes32 contentHash) external;

    /// @notice The root anchored for batch `batchId`; reverts with `UnknownBatch` if there is none.
    function batchRoot(uint256 batchId) external view returns (bytes32);

    /// @notice The id of the last anchored batch, 0 before the first.
    function latestBatchId() external view returns (uint256);

    /// @notice Whether `proof` links `leaf` to batch `batchId`'s anchored root.
    /// @dev `leaf` must be the double-hashed leaf of a StandardMerkleTree; a 64-byte
    ///      preimage hashed once could otherwise pass as an inner node.
    function verify(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool);
}
