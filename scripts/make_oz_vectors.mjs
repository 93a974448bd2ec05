// Write test vectors from OpenZeppelin's own StandardMerkleTree, one JSON file per case,
// into tests/data/oz_vectors/. Deterministic (a seeded generator), so re-running gives
// the same files. Usage: node scripts/make_oz_vectors.mjs
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { keccak256 } from "ethereum-cryptography/keccak.js";
import { writeFileSync, mkdirSync } from "node:fs";

const ENCODING = ["bytes32", "bytes32", "uint8", "bytes32", "uint64", "uint64", "uint64",
  "uint32", "uint64", "bytes32", "address"];
const OUT = new URL("../tests/data/oz_vectors/", import.meta.url);
mkdirSync(OUT, { recursive: true });

let state = new TextEncoder().encode("carbon-ledger vectors");
function bytes(n) {  // keccak in counter mode: deterministic pseudo-random bytes
  const out = [];
  while (out.length < n) { state = keccak256(state); out.push(...state); }
  return Uint8Array.from(out.slice(0, n));
}
const hex = (b) => "0x" + Buffer.from(b).toString("hex");
const uint = (max) => (BigInt(hex(bytes(8))) % max).toString();
function checksum(addr) {
  const lower = addr.slice(2).toLowerCase();
  const h = Buffer.from(keccak256(new TextEncoder().encode(lower))).toString("hex");
  return "0x" + [...lower].map((c, i) => (parseInt(h[i], 16) >= 8 ? c.toUpperCase() : c)).join("");
}
function value() {
  return [hex(bytes(32)), hex(bytes(32)), uint(3n), hex(bytes(32)), uint(2n ** 64n),
    uint(2n ** 64n), uint(2n ** 64n), uint(2n ** 32n), uint(2n ** 64n), hex(bytes(32)),
    checksum(hex(bytes(20)))];
}

for (const n of [1, 2, 3, 4, 5, 7, 8, 33]) {
  const values = Array.from({ length: n }, value);
  const tree = StandardMerkleTree.of(values, ENCODING);
  const cases = [...tree.entries()].map(([i, v]) => ({
    value: v, leafHash: tree.leafHash(v), proof: tree.getProof(i) }));
  const first = cases[0];
  const mutations = [];
  if (first.proof.length) {
    const flipped = [...first.proof];
    flipped[0] = flipped[0].slice(0, -1) + ((parseInt(flipped[0].slice(-1), 16) ^ 1).toString(16));
    mutations.push({ name: "flipped bit in a proof item", value: first.value, proof: flipped });
    mutations.push({ name: "missing proof item", value: first.value, proof: first.proof.slice(1) });
  }
  mutations.push({ name: "extra proof item", value: first.value, proof: [...first.proof, hex(bytes(32))] });
  const changed = [...first.value];
  changed[5] = (BigInt(changed[5]) ^ 1n).toString();
  mutations.push({ name: "changed value", value: changed, proof: first.proof });
  for (const m of mutations) m.ozVerifies = StandardMerkleTree.verify(tree.root, ENCODING, m.value, m.proof);
  writeFileSync(new URL(`tree-${String(n).padStart(2, "0")}.json`, OUT), JSON.stringify(
    { leafEncoding: ENCODING, root: tree.root, dump: tree.dump(), cases, mutations }, null, 1) + "\n");
}
console.log("wrote", OUT.pathname);
