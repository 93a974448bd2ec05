// The anchor contract's ABI, only what a verifier reads. A node test holds these entries
// equal to the committed artifact (contracts/CarbonLedgerAnchor.json), so they cannot drift.

export const ANCHOR_ABI = [
  {
    "inputs": [
      {
        "internalType": "uint256",
        "name": "batchId",
        "type": "uint256"
      }
    ],
    "name": "batchRoot",
    "outputs": [
      {
        "internalType": "bytes32",
        "name": "",
        "type": "bytes32"
      }
    ],
    "stateMutability": "view",
    "type": "function"
  },
  {
    "inputs": [],
    "name": "latestBatchId",
    "outputs": [
      {
        "internalType": "uint256",
        "name": "",
        "type": "uint256"
      }
    ],
    "stateMutability": "view",
    "type": "function"
  },
  {
    "inputs": [
      {
        "internalType": "uint256",
        "name": "batchId",
        "type": "uint256"
      },
      {
        "internalType": "bytes32",
        "name": "leaf",
        "type": "bytes32"
      },
      {
        "internalType": "bytes32[]",
        "name": "proof",
        "type": "bytes32[]"
      }
    ],
    "name": "verify",
    "outputs": [
      {
        "internalType": "bool",
        "name": "",
        "type": "bool"
      }
    ],
    "stateMutability": "view",
    "type": "function"
  }
];

export const BATCH_ANCHORED = {
  "anonymous": false,
  "inputs": [
    {
      "indexed": true,
      "internalType": "uint256",
      "name": "batchId",
      "type": "uint256"
    },
    {
      "indexed": true,
      "internalType": "bytes32",
      "name": "root",
      "type": "bytes32"
    },
    {
      "indexed": false,
      "internalType": "uint64",
      "name": "leafCount",
      "type": "uint64"
    },
    {
      "indexed": false,
      "internalType": "bytes32",
      "name": "contentHash",
      "type": "bytes32"
    },
    {
      "indexed": false,
      "internalType": "address",
      "name": "anchorer",
      "type": "address"
    }
  ],
  "name": "BatchAnchored",
  "type": "event"
};
