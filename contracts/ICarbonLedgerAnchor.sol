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

    /// @notice Month `period`'s statement tree was anchored with `root`.
    /// @param period The local month, as yyyymm (202611 for November 2026).
    /// @param leafCount How many accounts the statement holds a leaf for; never zero.
    /// @param throughBatchId The last entry batch the statement counts: every entry of a
    ///        batch up to it that occurred before the month's end and no earlier statement counted.
    /// @param contentHash keccak256 of the statement's leaf hashes in account order.
    /// @param anchorer The account that anchored it.
    event StatementAnchored(
        uint32 indexed period,
        bytes32 indexed root,
        uint64 leafCount,
        uint64 throughBatchId,
        bytes32 contentHash,
        address anchorer
    );

    /// @notice The green-credit credential with status index `index` was revoked.
    event CredentialRevoked(uint256 indexed index, address issuer);

    /// @notice `period` is not a month written yyyymm.
    error InvalidPeriod(uint32 period);
    /// @notice A statement's period must be the month right after the last one anchored.
    error StatementPeriodGap(uint32 period, uint32 expected);
    /// @notice The month's statement is anchored already: a replay.
    error StatementAlreadyAnchored(uint32 period);
    /// @notice A statement may count only anchored batches, and never fewer than the last one.
    error StatementBatchOutOfRange(uint64 throughBatchId, uint256 latestBatchId, uint64 previous);
    /// @notice No statement has been anchored for this month.
    error UnknownStatement(uint32 period);

    /// @notice Campaign `campaign` (keccak256 of its id and version) was published: its
    ///         rules file's hash is `rulesHash`, pinned before the campaign starts at `startsAt`.
    event CampaignPublished(bytes32 indexed campaign, bytes32 rulesHash, uint64 startsAt, address anchorer);
    /// @notice Campaign `campaign`'s ranking tree was anchored with `root`.
    /// @param leafCount How many ranked participants it holds; never zero.
    /// @param contentHash keccak256 of the ranking's leaf hashes in rank order.
    event RankingAnchored(bytes32 indexed campaign, bytes32 indexed root, uint64 leafCount, bytes32 contentHash,
        address anchorer);

    /// @notice A campaign's rules are pinned once: a correction is a new version.
    error CampaignAlreadyPublished(bytes32 campaign);
    /// @notice Rules must be pinned before the campaign starts.
    error CampaignAlreadyStarted(bytes32 campaign, uint64 startsAt);
    /// @notice No campaign with this key has been published.
    error UnknownCampaign(bytes32 campaign);
    /// @notice A campaign's ranking is anchored once.
    error RankingAlreadyAnchored(bytes32 campaign);
    /// @notice No ranking has been anchored for this campaign.
    error UnknownRanking(bytes32 campaign);

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

    /// @notice Anchor month `period`'s statement tree: the month right after the last
    ///         statement's (any month for the first), counting batches up to `throughBatchId`.
    /// @param period The local month as yyyymm.
    /// @param root The statement tree's Merkle root (StandardMerkleTree, standard-v1).
    /// @param leafCount How many account leaves it holds; never zero.
    /// @param throughBatchId The last batch counted: anchored, and not below the last statement's.
    /// @param contentHash keccak256 of the leaf hashes in account order.
    function anchorStatement(
        uint32 period, bytes32 root, uint64 leafCount, uint64 throughBatchId, bytes32 contentHash
    ) external;

    /// @notice The statement root anchored for `period`; reverts with `UnknownStatement` if none.
    function statementRoot(uint32 period) external view returns (bytes32);

    /// @notice The last month whose statement is anchored (0 before the first) and the last
    ///         batch it counts.
    function latestStatement() external view returns (uint32 period, uint64 throughBatchId);

    /// @notice Whether `proof` links `leaf` to month `period`'s anchored statement root.
    /// @dev As `verify`: `leaf` must be a double-hashed StandardMerkleTree leaf.
    function verifyStatement(uint32 period, bytes32 leaf, bytes32[] calldata proof) external view returns (bool);

    /// @notice Revoke the green-credit credentials at these status indices (issuers only).
    function revokeCredentials(uint256[] calldata indices) external;

    /// @notice Whether the credential with status index `index` is revoked.
    function credentialRevoked(uint256 index) external view returns (bool);

    /// @notice Pin campaign `campaign`'s rules file hash, strictly before it starts.
    /// @param campaign keccak256 of the campaign's id and version (see docs/campaigns.md).
    /// @param rulesHash keccak256 of the RFC 8785 form of the campaign file; never zero.
    /// @param startsAt The campaign's start, unix seconds; must be after this block's time.
    function publishCampaign(bytes32 campaign, bytes32 rulesHash, uint64 startsAt) external;

    /// @notice The rules hash pinned for `campaign`; reverts with `UnknownCampaign` if none.
    function campaignRules(bytes32 campaign) external view returns (bytes32);

    /// @notice Anchor a published campaign's ranking tree, once.
    /// @param root The ranking tree's Merkle root (StandardMerkleTree, standard-v1).
    /// @param leafCount How many participants it ranks; never zero.
    /// @param contentHash keccak256 of its leaf hashes in rank order.
    function anchorRanking(bytes32 campaign, bytes32 root, uint64 leafCount, bytes32 contentHash) external;

    /// @notice The ranking root anchored for `campaign`; reverts with `UnknownRanking` if none.
    function rankingRoot(bytes32 campaign) external view returns (bytes32);
}
