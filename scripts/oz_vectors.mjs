// Cross-check our Merkle code against OpenZeppelin's own StandardMerkleTree.
//
//   node scripts/oz_vectors.mjs generate OUTDIR
//       Write deterministic test vectors, one JSON file per case, into OUTDIR
//       (tests/data/merkle_vectors): trees of several sizes with OZ's root, dump,
//       leaf hashes and proofs, and mutated proofs that OZ itself rejects.
//       The same bytes come out on every run, so regenerating gives no diff.
//
//   node scripts/oz_vectors.mjs check DUMP.json
//       Load an OZ dump written by our Python side, validate it with OZ's library and
//       print {"root": "0x...", "ok": true}; exit 1 with OZ's error otherwise.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { keccak256 } from "ethereum-cryptography/keccak.js";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// Must equal ledger.leaf.LEAF_ENCODING; the Python test checks every file's copy.
const LEAF_ENCODING = ["bytes32", "bytes32", "uint8", "bytes32", "uint64", "uint64", "uint64",
  "uint32", "uint64", "bytes32", "address"];
const TREE_SIZES = [1, 2, 3, 4, 5, 7, 8, 33];
const BEHAVIOURS = ["CYCLING", "NEV_DRIVING", "NO_TABLEWARE", "EFFICIENT_APPLIANCE", "BUS",
  "METRO", "GREEN_DELIVERY", "E_TICKET"];
const OZ_VERSION = JSON.parse(readFileSync(
  new URL("../node_modules/@openzeppelin/merkle-tree/package.json", import.meta.url), "utf8")).version;

const toHex = (bytes) => "0x" + Buffer.from(bytes).toString("hex");
const fromHex = (hex) => Uint8Array.from(Buffer.from(hex.slice(2), "hex"));

/** A reproducible byte stream: keccak256(label || counter), so a case never depends on another. */
class Stream {
  constructor(label) {
    this.label = label;
    this.counter = 0;
    this.pool = new Uint8Array(0);
  }

  bytes(n) {
    while (this.pool.length < n) {
      const block = keccak256(new TextEncoder().encode(`${this.label}/${this.counter++}`));
      this.pool = Uint8Array.from([...this.pool, ...block]);
    }
    const out = this.pool.slice(0, n);
    this.pool = this.pool.slice(n);
    return out;
  }

  /** A uint of a random byte width up to ``maxBytes``, so small and full-width values both occur. */
  uint(maxBytes) {
    const width = 1 + (this.bytes(1)[0] % maxBytes);
    return BigInt(toHex(this.bytes(width))).toString();
  }

  pick(items) {
    return items[this.bytes(1)[0] % items.length];
  }
}

/** EIP-55: uppercase a hex letter where the matching nibble of keccak(lowercase hex) is >= 8. */
function checksumAddress(bytes) {
  const lower = Buffer.from(bytes).toString("hex");
  const digest = keccak256(new TextEncoder().encode(lower));
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (digest[i >> 1] >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += nibble >= 8 ? lower[i].toUpperCase() : lower[i];
  }
  return out;
}

function behaviourCode(code) {
  const padded = new Uint8Array(32);
  padded.set(new TextEncoder().encode(code));
  return toHex(padded);
}

/** One leaf's values in the forms ledger.leaf.leaf_values_to_json writes. */
function randomValues(stream) {
  const kind = stream.pick(["1", "1", "2"]);
  const credit = kind === "1";
  return [
    toHex(stream.bytes(32)),
    toHex(stream.bytes(32)),
    kind,
    behaviourCode(stream.pick(BEHAVIOURS)),
    stream.uint(8),
    credit ? stream.uint(8) : "0",
    stream.uint(8),
    stream.uint(4),
    stream.uint(8),
    credit ? toHex(stream.bytes(32)) : toHex(new Uint8Array(32)),
    checksumAddress(stream.bytes(20)),
  ];
}

// The extremes of every type, put into the largest tree.
const ALL_ZERO = [toHex(new Uint8Array(32)), toHex(new Uint8Array(32)), "0", toHex(new Uint8Array(32)),
  "0", "0", "0", "0", "0", toHex(new Uint8Array(32)), checksumAddress(new Uint8Array(20))];
const ALL_MAX = [toHex(new Uint8Array(32).fill(255)), toHex(new Uint8Array(32).fill(255)), "255",
  toHex(new Uint8Array(32).fill(255)), "18446744073709551615", "18446744073709551615",
  "18446744073709551615", "4294967295", "18446744073709551615", toHex(new Uint8Array(32).fill(255)),
  checksumAddress(new Uint8Array(20).fill(255))];

function treeValues(size) {
  const stream = new Stream(`carbon-ledger/merkle-vectors/tree-${size}`);
  const values = Array.from({ length: size }, () => randomValues(stream));
  if (size >= 33) values.splice(5, 2, ALL_ZERO, ALL_MAX);
  return values;
}

function treeCase(size) {
  const values = treeValues(size);
  const tree = StandardMerkleTree.of(values, LEAF_ENCODING);
  const dump = tree.dump();
  return {
    description: `OZ StandardMerkleTree of ${size} leaf value(s): root, dump, and each leaf's hash and proof`,
    expect: "valid",
    leafEncoding: LEAF_ENCODING,
    root: tree.root,
    leaves: values.map((value, i) => ({
      value,
      leafHash: dump.tree[dump.values[i].treeIndex],
      treeIndex: dump.values[i].treeIndex,
      proof: tree.getProof(i),
    })),
    dump,
  };
}

function flipBit(hex, bit) {
  const bytes = fromHex(hex);
  bytes[bit >> 3] ^= 0x80 >> (bit % 8);
  return toHex(bytes);
}

/** Proofs that must fail: each starts from a valid proof of one leaf in the 33-leaf tree. */
function mutationCases() {
  const tree = StandardMerkleTree.of(treeValues(33), LEAF_ENCODING);
  const otherRoot = StandardMerkleTree.of(treeValues(8), LEAF_ENCODING).root;
  const index = 11;
  const value = tree.at(index);
  const proof = tree.getProof(index);
  const extra = toHex(new Stream("carbon-ledger/merkle-vectors/extra").bytes(32));
  const withValue = (field, replacement) => value.map((v, k) => (k === field ? replacement : v));
  const bumped = (decimal) => (BigInt(decimal) + 1n).toString();
  const cases = {
    flipped_bit_first_proof_item: ["one bit flipped in the first proof item", value,
      [flipBit(proof[0], 0), ...proof.slice(1)], tree.root],
    flipped_bit_last_proof_item: ["one bit flipped in the last proof item", value,
      [...proof.slice(0, -1), flipBit(proof.at(-1), 255)], tree.root],
    missing_first_proof_item: ["the first proof item left out", value, proof.slice(1), tree.root],
    missing_last_proof_item: ["the last proof item left out", value, proof.slice(0, -1), tree.root],
    extra_proof_item: ["one proof item too many", value, [...proof, extra], tree.root],
    reordered_proof_items: ["the first two proof items swapped", value,
      [proof[1], proof[0], ...proof.slice(2)], tree.root],
    changed_value_points: ["points raised by one", withValue(6, bumped(value[6])), proof, tree.root],
    changed_value_kind: ["kind changed from credit to debit", withValue(2, value[2] === "1" ? "2" : "1"),
      proof, tree.root],
    changed_value_entry_id: ["one bit flipped in the entry id", withValue(0, flipBit(value[0], 100)),
      proof, tree.root],
    changed_value_partner: ["another partner address",
      withValue(10, checksumAddress(fromHex(flipBit(value[10], 159)))), proof, tree.root],
    wrong_root: ["a valid proof checked against another tree's root", value, proof, otherRoot],
  };
  return Object.entries(cases).map(([name, [description, mutatedValue, mutatedProof, root]]) => {
    if (StandardMerkleTree.verify(root, LEAF_ENCODING, mutatedValue, mutatedProof)) {
      throw new Error(`mutation ${name} still verifies with OZ`);
    }
    return [name, {
      description,
      expect: "invalid",
      leafEncoding: LEAF_ENCODING,
      root,
      value: mutatedValue,
      // a one-leaf tree's root is its leaf hash (OZ does not export standardLeafHash)
      leafHash: StandardMerkleTree.of([mutatedValue], LEAF_ENCODING).root,
      proof: mutatedProof,
    }];
  });
}

function generate(outDir) {
  mkdirSync(outDir, { recursive: true });
  const generatedBy = `scripts/oz_vectors.mjs generate, @openzeppelin/merkle-tree ${OZ_VERSION}`;
  const cases = [
    ...TREE_SIZES.map((size) => [`tree_${String(size).padStart(2, "0")}_leaves`, treeCase(size)]),
    ...mutationCases().map(([name, body]) => [`mutation_${name}`, body]),
  ];
  for (const [name, body] of cases) {
    const file = join(outDir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ case: name, generatedBy, ...body }, null, 2) + "\n");
  }
  console.log(JSON.stringify({ written: cases.length, outDir }));
}

function check(file) {
  const tree = StandardMerkleTree.load(JSON.parse(readFileSync(file, "utf8")));
  tree.validate();
  console.log(JSON.stringify({ root: tree.root, ok: true }));
}

const [command, path] = process.argv.slice(2);
try {
  if (command === "generate" && path) generate(path);
  else if (command === "check" && path) check(path);
  else throw new Error("usage: node scripts/oz_vectors.mjs generate OUTDIR | check DUMP.json");
} catch (err) {
  console.error(String(err));
  process.exit(1);
}
