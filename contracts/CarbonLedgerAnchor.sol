// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ICarbonLedgerAnchor} from "./ICarbonLedgerAnchor.sol";

/// @title CarbonLedgerAnchor
/// @notice Keeps the Merkle root of every sealed batch of the carbon ledger. Only holders
///         of `ANCHORER_ROLE` anchor; ids run 1, 2, 3, ... strictly; anyone reads and verifies.
contract CarbonLedgerAnchor is AccessControl, ICarbonLedgerAnchor {
    /// @notice The role allowed to anchor batch roots.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    mapping(uint256 batchId => Batch) private _batches;

    /// @inheritdoc ICarbonLedgerAnchor
    uint256 public latestBatchId;

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
        uint256 expected = latestBatchId + 1;
        if (batchId < expected) revert BatchAlreadyAnchored(batchId);
        if (batchId > expected) revert BatchIdGap(batchId, expected);
        if (root == bytes32(0)) revert ZeroRoot(batchId);
        if (leafCount == 0) revert EmptyBatch(batchId);

        latestBatchId = batchId;
        _batches[batchId] = Batch({
            root: root,
            contentHash: contentHash,
            leafCount: leafCount,
            anchoredAt: uint64(block.timestamp),
            blockNumber: uint64(block.number)
        });
        emit BatchAnchored(batchId, root, leafCount, contentHash, msg.sender);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function batch(uint256 batchId) external view returns (Batch memory) {
        if (batchId == 0 || batchId > latestBatchId) revert UnknownBatch(batchId);
        return _batches[batchId];
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function verify(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        if (batchId == 0 || batchId > latestBatchId) revert UnknownBatch(batchId);
        return MerkleProof.verifyCalldata(proof, _batches[batchId].root, leaf);
    }
}
