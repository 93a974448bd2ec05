"""The layering docs/architecture.md describes, checked on the source's imports (every
import statement, module level or not): the domain knows no face and no chain library, the
faces reach ``chain/`` only through the composition root, and no two modules import each
other round a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "chain", "api")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Module → every module it imports (``from p import m`` counts ``p.m`` when that
    is a module of ours)."""
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
             if "migrations" not in p.parts]
    ours = {_module(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names
                             if f"{node.module}.{a.name}" in ours)
        graph[_module(path)] = found
    return graph


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_domain_imports_no_face_no_chain_and_no_web_or_cli_library() -> None:
    banned = {"api", "chain", "fastapi", "starlette", "typer", "rich", "web3", "uvicorn"}
    leaks = {m: sorted(i for i in imported if _top(i) in banned)
             for m, imported in _imports().items() if _top(m) == "ledger"}
    assert not {m: i for m, i in leaks.items() if i}


def test_the_chain_adapter_imports_no_face() -> None:
    leaks = {m: sorted(i for i in imported if _top(i) in {"api", "fastapi", "typer"})
             for m, imported in _imports().items() if _top(m) == "chain"}
    assert not {m: i for m, i in leaks.items() if i}


def test_only_the_composition_root_of_the_faces_imports_chain() -> None:
    leaks = {m: sorted(i for i in imported if _top(i) in {"chain", "web3"})
             for m, imported in _imports().items()
             if _top(m) == "api" and m != "api.composition"}
    assert not {m: i for m, i in leaks.items() if i}


def test_the_http_app_does_not_import_the_cli_which_only_starts_it() -> None:
    graph = _imports()
    started = {"api.http.app", "api.http.web"}  # `serve`, and the demo's sign-in lines
    assert not {m: sorted(i for i in imported if i.startswith("api.http") and i not in started)
                for m, imported in graph.items() if m.startswith("api.cli")
                and any(i.startswith("api.http") and i not in started for i in imported)}
    assert not {m for m, imported in graph.items()
                if m.startswith("api.http") and any(i.startswith("api.cli") for i in imported)}


def test_no_module_of_ours_is_part_of_an_import_cycle() -> None:
    graph = _imports()
    edges = {m: {i for i in imported if i in graph and i != m} for m, imported in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles
