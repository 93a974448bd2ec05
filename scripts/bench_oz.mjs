// Time OpenZeppelin's StandardMerkleTree.of over N random leaves of our leaf encoding.
// Usage: node scripts/bench_oz.mjs N   ->   prints {"n": N, "seconds": S, "root": "0x..."}
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { randomBytes } from "node:crypto";

const ENCODING = ["bytes32", "bytes32", "uint8", "bytes32", "uint64", "uint64", "uint64",
  "uint32", "uint64", "bytes32", "address"];
const n = Number(process.argv[2] ?? 100000);
const hex = (k) => "0x" + randomBytes(k).toString("hex");
const values = [];
for (let i = 0; i < n; i++) {
  values.push([hex(32), hex(32), "1", hex(32), "3200", "155", "155", "1", "1700000000",
    hex(32), hex(20)]);
}
const start = process.hrtime.bigint();
const tree = StandardMerkleTree.of(values, ENCODING);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ n, seconds, root: tree.root }));
