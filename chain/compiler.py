"""Compile the anchoring contract and keep its committed artifact honest.

The compiler is a native ``solc`` through py-solc-x when one is installed, else the npm
``solc`` package's ``solcjs --standard-json`` (which prints a line before its JSON).
Imports are resolved here, so the standard-JSON input is self-contained and both
compilers see the same bytes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import ChainError
from ledger.hashing import keccak

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
NODE_MODULES = PROJECT_ROOT / "node_modules"
CONTRACT_NAME = "CarbonLedgerAnchor"
MAIN_SOURCE = f"contracts/{CONTRACT_NAME}.sol"
ARTIFACT_PATH = CONTRACTS_DIR / f"{CONTRACT_NAME}.json"

# "paris" (no PUSH0) so the bytecode runs on consortium chains that lag mainnet forks.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "paris",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

_IMPORT = re.compile(r'^\s*import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"\s*;', re.MULTILINE)


@dataclass(frozen=True)
class Compiler:
    kind: str  # "solc" (native, via py-solc-x) or "solcjs" (npm)
    path: Path
    version: str


def find_compiler() -> Compiler:
    """A native solc if one is installed, else the pinned npm solcjs."""
    native = shutil.which("solc")
    if native:
        import solcx

        version = str(solcx.wrapper.get_solc_version(native, with_commit_hash=True))
        return Compiler("solc", Path(native), version)
    solcjs = NODE_MODULES / ".bin" / "solcjs"
    if not solcjs.exists():
        raise ChainError("no solc found: install a native solc or run `npm ci` for solcjs",
                         field="compiler")
    out = subprocess.run([str(solcjs), "--version"], capture_output=True, text=True, check=True)
    return Compiler("solcjs", solcjs, out.stdout.strip().splitlines()[-1])


def _resolve(import_path: str, importer: str) -> str:
    if import_path.startswith("."):
        return str(Path(importer).parent.joinpath(import_path).resolve().relative_to(PROJECT_ROOT))
    return import_path


def _read_source(unit: str) -> str:
    base = NODE_MODULES if unit.startswith("@") else PROJECT_ROOT
    return (base / unit).read_text()


def collect_sources(main: str = MAIN_SOURCE) -> dict[str, str]:
    """Every source unit the contract needs, keyed by its import path."""
    sources: dict[str, str] = {}
    todo = [main]
    while todo:
        unit = todo.pop()
        if unit in sources:
            continue
        text = _read_source(unit)
        sources[unit] = text
        todo.extend(_resolve(imp, unit) for imp in _IMPORT.findall(text))
    return dict(sorted(sources.items()))


def source_hash(sources: dict[str, str]) -> str:
    """One hash over every unit's path and text: changes when any of them does."""
    digest = keccak(json.dumps(sources, sort_keys=True).encode())
    return "0x" + digest.hex()


def standard_input(sources: dict[str, str]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": SETTINGS,
    }


def run_compiler(compiler: Compiler, input_json: dict[str, Any]) -> dict[str, Any]:
    if compiler.kind == "solc":
        import solcx

        return solcx.compile_standard(input_json, solc_binary=compiler.path)  # type: ignore[no-any-return]
    proc = subprocess.run([str(compiler.path), "--standard-json"], input=json.dumps(input_json),
                          capture_output=True, text=True, check=False)
    # solcjs prints a line (a licence/"Loading" notice) before the JSON document.
    start = proc.stdout.find("{")
    if proc.returncode != 0 or start < 0:
        raise ChainError(f"solcjs failed: {proc.stderr.strip() or proc.stdout.strip()}",
                         field="compiler")
    return json.loads(proc.stdout[start:])  # type: ignore[no-any-return]


def compile_contract() -> dict[str, Any]:
    """Compile the contract and return the artifact that :data:`ARTIFACT_PATH` holds."""
    compiler = find_compiler()
    sources = collect_sources()
    output = run_compiler(compiler, standard_input(sources))
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ChainError("; ".join(e["formattedMessage"] for e in errors), field="contract")
    contract = output["contracts"][MAIN_SOURCE][CONTRACT_NAME]
    return {
        "generatedBy": "carbon-ledger compile (chain/compiler.py); do not edit by hand",
        "contractName": CONTRACT_NAME,
        "compiler": {"version": compiler.version.split("+")[0], "build": compiler.version},
        "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
        "sourceHash": source_hash(sources),
        "sources": sorted(sources),
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


def write_artifact(path: Path = ARTIFACT_PATH) -> dict[str, Any]:
    artifact = compile_contract()
    path.write_text(json.dumps(artifact, indent=2) + "\n")
    return artifact


def load_artifact(path: Path = ARTIFACT_PATH) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError as exc:
        raise ChainError(f"{path} is missing: run `carbon-ledger compile`", field="artifact") from exc
