"""What every command module shares: the typer apps the commands register on, the consoles,
common options and output helpers. Imports no command module, so nothing cycles."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from api.cli.files import write_atomically
from ledger import errors
from ledger.methodology import local_day_offset

#: Wide enough that nothing a command prints to a pipe or a file is wrapped or cut.
PIPED_WIDTH = 10_000


def _exit_codes() -> str:
    """The exit codes, each read from the error class that carries it (ledger/errors.py)."""
    meaning = [(0, "done"),
               (errors.VerificationError.exit_code, "a proof or audit does not hold (the "
                                                    "message names the failed check)"),
               (errors.InvalidInput.exit_code, "bad input, or a usage mistake (unknown "
                                               "command or option, missing argument)"),
               (errors.NotFound.exit_code, "not found (partner, citizen, entry, batch…)"),
               (errors.Conflict.exit_code, "conflict with the ledger's state (taken id, "
                                           "too few points, out of stock, a pin for "
                                           "another contract)"),
               (errors.ChainError.exit_code, "the chain cannot be read or does not hold "
                                             "what the ledger says"),
               (errors.DatabaseUnavailable.exit_code, "the database is unreachable or its "
                                                      "schema is not this version's"),
               (70, "an unexpected failure (CARBON_LEDGER_DEBUG=1 shows the trace)"),
               (130, "interrupted")]
    return "Exit codes: " + "; ".join(f"{code} {what}" for code, what in meaning) + "."


EXIT_CODES = _exit_codes()

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  epilog=EXIT_CODES)
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
                                              "(env CARBON_LEDGER_DATA_DIR; default: ./.carbon-ledger)")]
Chain = Annotated[str | None, typer.Option("--chain", help="anvil | tester | rpc "
                                            "(env CARBON_LEDGER_CHAIN; default: anvil)")]
RpcUrl = Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the chain (env "
                                            "CARBON_LEDGER_RPC_URL; default: the data dir's "
                                            "managed anvil)")]
Json = Annotated[bool, typer.Option("--json", help="print JSON (full ids) instead of a table")]


def size_output() -> None:
    """Before each command: the terminal's width on a terminal (or $COLUMNS); no width
    limit on a pipe or a file, so no line is wrapped and no table cell cut."""
    columns = os.environ.get("COLUMNS", "")
    out.width = (int(columns) if columns.isdigit() else
                 None if out.is_terminal else PIPED_WIDTH)  # type: ignore[assignment]


def local_time(unix: int | None) -> str:
    """A time as people read it where the ledger's days are counted: local, with offset."""
    if unix is None:
        return "-"
    return datetime.fromtimestamp(unix, timezone(local_day_offset())).isoformat(
        sep=" ", timespec="minutes")


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


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                ids: Sequence[str] = ()) -> None:
    """A table whose ``ids`` columns (ids a later command takes) are never cut: when they
    do not fit beside the rest, the table is shown without them and each row's ids
    follow it, one a line, in full (``#`` numbers the rows)."""
    if not rows:
        out.print(f"{title}: none", highlight=False)
        return
    t = _table(title, columns, rows, ids)
    unbounded = out.options.update(width=PIPED_WIDTH)
    if not ids or Measurement.get(out, unbounded, t).minimum <= out.width:
        out.print(t)
        return
    keep = [i for i, c in enumerate(columns) if c not in ids]
    t = _table(title, ["#", *(columns[i] for i in keep)],
               [[n, *(r[i] for i in keep)] for n, r in enumerate(rows, 1)], ())
    out.print(t)
    width = max(len(c) for c in ids)
    for n, r in enumerate(rows, 1):
        for k, c in enumerate(ids):
            label = f"#{n}" if k == 0 else ""
            name = f"{c:<{width}}  " if len(ids) > 1 else ""
            out.print(f"{label:<5} {name}{r[columns.index(c)]}", highlight=False, soft_wrap=True)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
           ids: Sequence[str]) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD)
    for c in columns:
        t.add_column(c, no_wrap=c in ids or c == "#")
    for r in rows:
        t.add_row(*["-" if v is None else str(v) for v in r])
    return t


@contextmanager
def option_names(**names: str) -> Iterator[None]:
    """Errors raised inside name the command's options (``--cost``), not the domain's
    parameters (``points_cost``)."""
    try:
        yield
    except errors.LedgerError as exc:
        if exc.field in names:
            exc.field = names[exc.field]
        raise
