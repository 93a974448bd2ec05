// The leaf and the fold, OpenZeppelin StandardMerkleTree (standard-v1) and MerkleProof.sol:
// leaf = keccak256(bytes.concat(keccak256(abi.encode(values)))), pairs hashed sorted.
// viem does the ABI encoding and keccak; this file only orders the calls.

import { concat, encodeAbiParameters, keccak256 } from 'viem';
import { LEAF_ENCODING } from './bundle.js';

const LEAF_TYPES = LEAF_ENCODING.map((type) => ({ type }));

/** OZ's standard leaf of `values` ABI-encoded as `types` ([{type}]). */
export function standardLeaf(types, values) {
  return keccak256(keccak256(encodeAbiParameters(types, values)));
}

/** The leaf hash of parsed values (bytes32 as 0x-hex, integers as BigInt, the address). */
export const leafHash = (values) => standardLeaf(LEAF_TYPES, values);

/** OZ's processProof: fold the proof from the leaf up; the root it gives, lower-case hex. */
export function rootFromProof(leaf, proof) {
  let node = leaf.toLowerCase();
  for (const sibling of proof) {
    const other = sibling.toLowerCase();
    node = keccak256(node < other ? concat([node, other]) : concat([other, node]));
  }
  return node;
}
