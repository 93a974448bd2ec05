"""What every command module shares: the typer apps the commands register on, the consoles,
common options and output helpers. Imports no command module, so nothing cycles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.cli.files import write_atomically

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
batch_app = typer.Typer(no_args_is_help=True, help="Sealed batches: list and export.")
admin_app = typer.Typer(no_args_is_help=True, help="Operator tasks: partners, citizens, rewards.")
chain_app = typer.Typer(no_args_is_help=True, help="The anchoring chain.")
db_app = typer.Typer(no_args_is_help=True, help="The database's schema: migrations.")
app.add_typer(batch_app, name="batch")
app.add_typer(admin_app, name="admin")
app.add_typer(chain_app, name="chain")
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="state folder "
                                              "[env CARBON_LEDGER_DATA_DIR; default ./.carbon-ledger]")]
Chain = Annotated[str | None, typer.Option("--chain", help="anvil | tester | rpc")]
RpcUrl = Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the chain")]


def emit_json(data: Any, target: Path | None) -> None:
    text = json.dumps(data, indent=2)
    if target is None:
        print(text)
    else:
        write_atomically(target, text + "\n")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"carbon-ledger {version('carbon-ledger')}")
        raise typer.Exit()


@app.callback()
def _options(_version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="print the version and exit")] = False
             ) -> None:
    """A blockchain-anchored personal carbon ledger."""


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t
