"""The written format's JSON Schema (docs/proof-bundle.schema.json) against what the
ledger emits and what the corpus holds. The schema cannot say everything the prose says:
those cases are listed here by name, each with the rule the schema cannot express."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
from sqlalchemy import select

from api.cli.main import main
from api.composition import Container
from api.settings import Settings
from ledger.bundle import ProofBundle
from ledger.leaf import KIND_BONUS, KIND_CREDIT, KIND_DEBIT
from ledger.proofs import proof_bundle
from ledger.store.models import LedgerEntry

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = jsonschema_rs.validator_for(json.loads((ROOT / "docs" / "proof-bundle.schema.json")
                                                .read_text()))
CORPUS = ROOT / "tests" / "data" / "bundle_corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())

BEYOND_A_SCHEMA = {
    "shape-entry-id-not-the-leafs": "entryId equals values[0]",
    "shape-contract-bad-checksum": "EIP-55 checksums",
    "shape-partner-bad-checksum": "EIP-55 checksums",
    "shape-value-over-uint64": "a value's ABI width",
}


def test_every_bundle_the_demo_produces_passes_the_schema_and_the_parser(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    assert main(["demo", "--citizens", "30", "--seed", "5", "--chain", "tester",
                 "--data-dir", str(data_dir)]) == 0
    c = Container(Settings(data_dir=data_dir, chain="tester"))
    with c.db.session() as s:
        ids = s.scalars(select(LedgerEntry.entry_id)).all()
        bundles = [proof_bundle(s, entry_id) for entry_id in ids]
    # credits, debits, and the season's bonuses and prizes (kind 3, #21)
    assert len(bundles) > 30 and {b["values"][2] for b in bundles} == {"1", "2", "3"}
    for bundle in bundles:
        errors = [e.message for e in SCHEMA.iter_errors(bundle)]
        assert not errors, errors
        assert ProofBundle.from_json(bundle).to_json() == bundle


@pytest.mark.parametrize("case", [c for c in MANIFEST["cases"]
                                  if c["expect"] == "valid" or c.get("check") == "shape"],
                         ids=lambda c: c["kind"])
def test_the_schema_agrees_with_the_corpus_where_a_schema_can(case: dict) -> None:
    document = json.loads((CORPUS / case["file"]).read_bytes())
    valid = SCHEMA.is_valid(document)
    if case["expect"] == "valid":
        assert valid
    elif case["kind"] in BEYOND_A_SCHEMA:
        assert valid, "the schema learned a rule: drop the case from BEYOND_A_SCHEMA"
    else:
        assert not valid


def test_the_schema_and_the_format_doc_name_every_entry_kind_the_ledger_writes() -> None:
    schema = json.loads((ROOT / "docs" / "proof-bundle.schema.json").read_text())
    described = schema["properties"]["values"]["prefixItems"][2]["description"]
    row = next(line for line in (ROOT / "docs" / "formats.md").read_text().splitlines()
               if line.startswith("| 2 | kind |"))
    for kind, name in ((KIND_CREDIT, "credit"), (KIND_DEBIT, "debit"),
                       (KIND_BONUS, "campaign points")):
        assert f"{kind} {name}" in described and f"{kind} {name}" in row, (kind, described, row)
