// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ICarbonLedgerAnchor} from "./ICarbonLedgerAnchor.sol";

/// @title CarbonLedgerAnchor
/// @notice Keeps the Merkle root of every sealed batch of the carbon ledger, and of every
///         month's statement tree (each account's totals). Only holders of `ANCHORER_ROLE`
///         anchor; batch ids run 1, 2, 3, ... and statement months one after another,
///         strictly; anyone reads and verifies. Holders of `ISSUER_ROLE` sign green-credit
///         credentials off chain and revoke them here.
/// @dev One new storage slot per batch (its root) and one rewritten (the id counter): the
///      root already commits to every leaf, so the leaf count and content hash are only
///      emitted, where the anchoring transaction's receipt keeps them.
contract CarbonLedgerAnchor is AccessControl, ICarbonLedgerAnchor {
    /// @notice The role allowed to anchor batch and statement roots.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");
    /// @notice The role whose EIP-712 signatures issue green-credit credentials, and which
    ///         revokes them; a verifier checks the issuer's address holds it.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");

    /// @dev The last anchored statement, packed in one slot that every statement rewrites.
    struct LastStatement {
        uint32 period;
        uint64 throughBatchId;
    }

    mapping(uint256 batchId => bytes32 root) private _roots;

    /// @dev The id the next anchor must carry. It starts at 1, so no anchor (the first
    ///      included) pays to write this slot from zero.
    uint256 private _nextBatchId = 1;

    mapping(uint32 period => bytes32 root) private _statementRoots;
    LastStatement private _lastStatement;
    /// @dev Revoked status indices, 256 to a word.
    mapping(uint256 word => uint256 bits) private _revoked;
    /// @dev Campaigns' pinned rules hashes and their rankings' roots (#21).
    mapping(bytes32 campaign => bytes32 rulesHash) private _campaignRules;
    mapping(bytes32 campaign => bytes32 root) private _rankingRoots;

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (grants and revokes anchorers and issuers).
    /// @param anchorer Receives `ANCHORER_ROLE` and `ISSUER_ROLE`.
    constructor(address admin, address anchorer) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
        _grantRole(ISSUER_ROLE, anchorer);
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

    /// @inheritdoc ICarbonLedgerAnchor
    function anchorStatement(
        uint32 period, bytes32 root, uint64 leafCount, uint64 throughBatchId, bytes32 contentHash
    ) external onlyRole(ANCHORER_ROLE) {
        uint32 month = period % 100;
        if (month == 0 || month > 12 || period < 197001) revert InvalidPeriod(period);
        LastStatement memory last = _lastStatement;
        if (last.period != 0) {
            if (period <= last.period) revert StatementAlreadyAnchored(period);
            uint32 expected = last.period % 100 == 12 ? (last.period / 100 + 1) * 100 + 1 : last.period + 1;
            if (period != expected) revert StatementPeriodGap(period, expected);
        }
        uint256 latestBatch = _nextBatchId - 1;
        if (throughBatchId > latestBatch || throughBatchId < last.throughBatchId) {
            revert StatementBatchOutOfRange(throughBatchId, latestBatch, last.throughBatchId);
        }
        if (root == bytes32(0)) revert ZeroRoot(period);
        if (leafCount == 0) revert EmptyBatch(period);

        _lastStatement = LastStatement(period, throughBatchId);
        _statementRoots[period] = root;
        emit StatementAnchored(period, root, leafCount, throughBatchId, contentHash, msg.sender);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function statementRoot(uint32 period) external view returns (bytes32) {
        return _anchoredStatementRoot(period);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function latestStatement() external view returns (uint32 period, uint64 throughBatchId) {
        LastStatement memory last = _lastStatement;
        return (last.period, last.throughBatchId);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function verifyStatement(uint32 period, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return MerkleProof.verifyCalldata(proof, _anchoredStatementRoot(period), leaf);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function revokeCredentials(uint256[] calldata indices) external onlyRole(ISSUER_ROLE) {
        for (uint256 i = 0; i < indices.length; ++i) {
            uint256 index = indices[i];
            _revoked[index >> 8] |= uint256(1) << (index & 0xff);
            emit CredentialRevoked(index, msg.sender);
        }
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function credentialRevoked(uint256 index) external view returns (bool) {
        return (_revoked[index >> 8] >> (index & 0xff)) & 1 == 1;
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function publishCampaign(bytes32 campaign, bytes32 rulesHash, uint64 startsAt)
        external
        onlyRole(ANCHORER_ROLE)
    {
        if (rulesHash == bytes32(0)) revert ZeroRoot(uint256(campaign));
        if (_campaignRules[campaign] != bytes32(0)) revert CampaignAlreadyPublished(campaign);
        if (startsAt <= block.timestamp) revert CampaignAlreadyStarted(campaign, startsAt);
        _campaignRules[campaign] = rulesHash;
        emit CampaignPublished(campaign, rulesHash, startsAt, msg.sender);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function campaignRules(bytes32 campaign) external view returns (bytes32 rulesHash) {
        rulesHash = _campaignRules[campaign];
        if (rulesHash == bytes32(0)) revert UnknownCampaign(campaign);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function anchorRanking(bytes32 campaign, bytes32 root, uint64 leafCount, bytes32 contentHash)
        external
        onlyRole(ANCHORER_ROLE)
    {
        if (_campaignRules[campaign] == bytes32(0)) revert UnknownCampaign(campaign);
        if (_rankingRoots[campaign] != bytes32(0)) revert RankingAlreadyAnchored(campaign);
        if (root == bytes32(0)) revert ZeroRoot(uint256(campaign));
        if (leafCount == 0) revert EmptyBatch(uint256(campaign));
        _rankingRoots[campaign] = root;
        emit RankingAnchored(campaign, root, leafCount, contentHash, msg.sender);
    }

    /// @inheritdoc ICarbonLedgerAnchor
    function rankingRoot(bytes32 campaign) external view returns (bytes32 root) {
        root = _rankingRoots[campaign];
        if (root == bytes32(0)) revert UnknownRanking(campaign);
    }

    function _anchoredStatementRoot(uint32 period) private view returns (bytes32 root) {
        root = _statementRoots[period];
        if (root == bytes32(0)) revert UnknownStatement(period);
    }

    /// @dev Anchoring refuses a zero root, so a zero slot is a batch never anchored.
    function _anchoredRoot(uint256 batchId) private view returns (bytes32 root) {
        root = _roots[batchId];
        if (root == bytes32(0)) revert UnknownBatch(batchId);
    }
}
