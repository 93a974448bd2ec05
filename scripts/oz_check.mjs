// Load a batch export with OpenZeppelin's own library and validate it.
// Usage: node scripts/oz_check.mjs DUMP.json  ->  {"root": "0x...", "leaves": N, "ok": true}
// Exit 1 with OZ's error when the dump does not load or validate.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { readFileSync } from "node:fs";

try {
  const tree = StandardMerkleTree.load(JSON.parse(readFileSync(process.argv[2], "utf8")));
  tree.validate();
  let leaves = 0;
  for (const [i, v] of tree.entries()) {
    tree.verify(i, tree.getProof(i)) || (() => { throw new Error(`proof ${i} fails`); })();
    leaves++;
  }
  console.log(JSON.stringify({ root: tree.root, leaves, ok: true }));
} catch (err) {
  console.error(String(err));
  process.exit(1);
}
