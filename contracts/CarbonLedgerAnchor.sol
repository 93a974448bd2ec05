// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ICarbonLedgerAnchor} from "./ICarbonLedgerAnchor.sol";

/// @title CarbonLedgerAnchor
/// @notice Keeps the Merkle root of every sealed batch of the carbon ledger. Only holders
///         of `ANCHORER_ROLE` anchor; ids run 1, 2, 3, ... strictly; anyone reads and verifies.
/// @dev One new storage slot per batch (its root) and one rewritten (the id counter): the
///      root already commits to every leaf, so the leaf count and content hash are only
///      emitted, where the anchoring transaction's receipt keeps them.
contract CarbonLedgerAnchor is AccessControl, ICarbonLedgerAnchor {
    /// @notice The role allowed to anchor batch roots.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    mapping(uint256 batchId => bytes32 root) private _roots;

    /// @dev The id the next anchor must carry. It starts at 1, so no anchor (the first
    ///      included) pays to write this slot from zero.
    uint256 private _nextBatchId = 1;

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (grants and revokes anchorers).
    /// @param anchorer Receives `ANCHORER_ROLE`.
    constructor(address admin, address anchorer) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function anchor(uint256 batchId, bytes32 root, uint64 leafCount, bytes32 contentHash)
        external
        onlyRole(ANCHORER_ROLE)
    {
        uint256 expected = _nextBatchId;
        if (batchId < expected) revert BatchAlreadyAnchored(batchId);
        if (batchId > expected) revert BatchIdGap(batchId, expected);
        if (root == bytes32(0)) revert ZeroRoot(batchId);
        if (leafCount == 0) revert EmptyBatch(batchId);

        _nextBatchId = batchId + 1;
        _roots[batchId] = root;
        emit BatchAnchored(batchId, root, leafCount, contentHash, msg.sender);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function batchRoot(uint256 batchId) external view returns (bytes32) {
        return _anchoredRoot(batchId);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function latestBatchId() external view returns (uint256) {
        return _nextBatchId - 1;
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function verify(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        return MerkleProof.verifyCalldata(proof, _anchoredRoot(batchId), leaf);
    }

    /// @dev Anchoring refuses a zero root, so a zero slot is a batch never anchored.
    function _anchoredRoot(uint256 batchId) private view returns (bytes32 root) {
        root = _roots[batchId];
        if (root == bytes32(0)) revert UnknownBatch(batchId);
    }
}
