"""What the docs state that the code decides, checked against the code: the migration
head, every setting and its default, the shape of `submit`'s summary, and the members of
the answers and bodies the HTTP reference names. (The walkthrough runs whole:
tests/test_walkthrough.py.)"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from api.http.schemas import Audit, Redemption, RedemptionRequest
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def text(name: str) -> str:
    return (ROOT / name).read_text()


def test_the_migration_head_the_docs_name_is_the_head() -> None:
    versions = ROOT / "ledger" / "store" / "migrations" / "versions"
    head = max(p.name[:4] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    named = [(doc.name, m) for doc in DOCS for m in re.findall(
        r"(?:current|head|empty database to) (\d{4})\b", doc.read_text())]
    assert named, "no migration revision named in the docs"
    assert all(m == head for _, m in named), (head, named)


def _shown(value: object) -> str:
    if isinstance(value, Path):
        return f"./{value}"
    if isinstance(value, Decimal):
        return str(int(value)) if value == int(value) else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_every_setting_is_in_the_table_with_its_default() -> None:
    rows = {}
    for line in text("docs/settings.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`CARBON_LEDGER_"):
            names = re.findall(r"`CARBON_LEDGER_([A-Z_]+)`", cells[0])
            defaults = [d.strip(" `") for d in cells[1].split(",")] if "," in cells[1] else [cells[1]]
            for i, name in enumerate(names):
                rows[name.lower()] = defaults[min(i, len(defaults) - 1)].strip("`")
    fields = Settings.model_fields
    assert set(fields) == set(rows), (set(fields) ^ set(rows))
    for name, field in fields.items():
        default = field.get_default(call_default_factory=True)
        documented = rows[name]
        if default is None or default == []:
            assert documented == "—" or "<" in documented or documented.isupper(), (name, documented)
        elif name == "max_body_bytes":
            assert documented == f"{default // 2**20} MiB", (name, documented)
        else:
            assert documented == _shown(default), (name, documented, default)


def test_submits_summary_in_the_docs_has_the_shape_the_command_prints() -> None:
    source = text("api/cli/commands.py")
    assert "rejected; {result.grams} g CO2e credited" in source
    shape = re.compile(r"#\s+\d+ accepted, \d+ duplicate, \d+ rejected; \d+ g CO2e credited$")
    shown = [line.strip() for doc in DOCS for line in doc.read_text().splitlines()
             if "accepted," in line and "g CO2e credited" in line]
    assert shown and all(shape.fullmatch(line) for line in shown), shown


def test_the_http_reference_names_the_members_the_answers_have() -> None:
    reference = text("docs/http-api.md")
    audit_row = next(line for line in reference.splitlines() if "/audit` |" in line)
    assert set(re.findall(r"`([a-zA-Z]+)`", audit_row)) >= set(Audit.model_fields)
    redemption_row = next(line for line in reference.splitlines() if "POST /v1/redemptions" in line)
    assert '{"reward": "<code>"}' in redemption_row and set(RedemptionRequest.model_fields) == {"reward"}
    assert '"replayed": true' in redemption_row and "replayed" in Redemption.model_fields
    entries_row = next(line for line in reference.splitlines() if "`GET /v1/me/entries`" in line)
    assert "unix seconds" in entries_row
