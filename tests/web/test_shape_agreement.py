"""The two verifiers read bundles alike: thousands of generated variants of a real bundle
(each member changed to values of every JSON type, hex of other lengths and cases,
members dropped, added or named twice, escapes, whitespace, numbers in other spellings)
parsed by the Python verifier (ledger.bundle) and by the browser verifier in node
(web/src/verifier), which must refuse the same ones with the same check and member."""

from __future__ import annotations

import base64
import json
import random
import subprocess
from pathlib import Path
from typing import Any

from ledger.bundle import ProofBundle
from ledger.errors import VerificationError

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "tests/data/bundle_corpus/cases/001-good-credit.json").read_bytes()
HEX = "0123456789abcdefABCDEF"


def odd_values(rng: random.Random, like: Any) -> list[Any]:
    """Values a member might be given instead of ``like``."""
    base: list[Any] = [None, True, 0, -1, 1, 1.0, 1.5, 2**53, 2**53 - 1, 2**64, "", "0", "01",
                       "1", "18446744073709551616", "anchored", [], {}, [1], {"a": 1}, 1e300]
    if isinstance(like, str) and like.startswith("0x"):
        digits = like[2:]
        base += ["0x" + digits.upper(), "0X" + digits, digits, like + "0", like[:-1],
                 like[:10] + " " + like[11:], "0x" + "".join(rng.choice(HEX) for _ in digits),
                 like.lower(), like[:2] + digits.swapcase()]
    if isinstance(like, int):
        base += [like + 1, float(like), str(like), -like]
    return base


def variants(rng: random.Random) -> list[bytes]:
    good = json.loads(GOOD)
    out: list[bytes] = []
    for name in list(good):
        for value in odd_values(rng, good[name]):
            out.append(json.dumps({**good, name: value}).encode())
        out.append(json.dumps({k: v for k, v in good.items() if k != name}).encode())
    for i, item in enumerate(good["values"]):
        for value in odd_values(rng, item):
            values = list(good["values"])
            values[i] = value
            out.append(json.dumps({**good, "values": values}).encode())
    for i in range(len(good["proof"])):
        for value in odd_values(rng, good["proof"][i]):
            proof = list(good["proof"])
            proof[i] = value
            out.append(json.dumps({**good, "proof": proof}).encode())
    for extra in ("leaf", "Format", "zzz", "\u00e9", "\U0001f600", "__proto__", "constructor"):
        out.append(json.dumps({**good, extra: 1}).encode())
    text = GOOD.decode()
    for _ in range(300):  # text-level edits: duplicates, escapes, whitespace, junk
        edit = rng.randrange(6)
        at = rng.randrange(len(text))
        if edit == 0:
            mutated = text[:-1] + ',"batchId":1}'
        elif edit == 1:
            mutated = text.replace('"format"', '"form\\u0061t"', 1)
        elif edit == 2:
            mutated = text[:at] + rng.choice([" ", "\t", "\n", "\u00a0", "\\"]) + text[at:]
        elif edit == 3:
            mutated = text[:at] + text[at + 1:]
        elif edit == 4:
            escaped = rng.choice(['"\\ud800"', '"\\u0061nchored"', '"anchored\\u0000"'])
            mutated = text.replace('"anchored"', escaped)
        else:
            mutated = text[:at] + rng.choice(["[", "{", "]", "}", ",", ":", '"', "1e999"]) + text[at:]
        out.append(mutated.encode("utf-8", "surrogatepass"))
    return out


def python_verdict(raw: bytes) -> list[Any]:
    try:
        ProofBundle.from_bytes(raw)
    except VerificationError as exc:
        return ["refused", exc.check, exc.field]
    return ["ok"]


def test_the_python_and_browser_verifiers_parse_every_variant_alike() -> None:
    docs = variants(random.Random(18))
    assert len(docs) > 600
    done = subprocess.run(["node", "web/test/shape-cli.mjs"], cwd=ROOT, capture_output=True,
                          input=json.dumps([base64.b64encode(d).decode() for d in docs]).encode(),
                          timeout=300, check=True)
    js = json.loads(done.stdout)
    disagreements = [(d[:160], py, j) for d, py, j in zip(docs, map(python_verdict, docs), js, strict=True)
                     if py != j]
    assert disagreements == [], f"{len(disagreements)} of {len(docs)} differ, e.g. {disagreements[:5]}"
    assert sum(v == ["ok"] for v in js) >= 5  # some variants are still good bundles
