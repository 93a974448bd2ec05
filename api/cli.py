"""The ``carbon-ledger`` command line. ``main(argv) -> int`` so tests call it directly.

Errors become one line on stderr and an exit code, never a traceback:
1 a proof does not hold / other failure, 2 bad input, 3 not found, 4 conflict, 5 chain,
6 the database is unreachable or its schema is not this version's (`db upgrade`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.composition import Container
from api.files import write_atomically
from api.settings import Settings
from ledger.errors import (
    ChainError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    LedgerError,
    NotFound,
    VerificationError,
)

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

EXIT_CODES: list[tuple[type[LedgerError], int]] = [
    (VerificationError, 1), (InvalidInput, 2), (NotFound, 3), (Conflict, 4), (ChainError, 5),
    (DatabaseUnavailable, 6),
]


def container(data_dir: Path | None, chain: str | None = None, rpc: str | None = None,
              **overrides: Any) -> Container:
    given = {"data_dir": data_dir, "chain": chain, "rpc_url": rpc, **overrides}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise InvalidInput(str(exc).splitlines()[1] if "\n" in str(exc) else str(exc),
                           field="settings") from exc
    return Container(settings)


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


def main(argv: list[str] | None = None) -> int:
    # Importing the command modules registers their commands on ``app``.
    from api import commands, demo, report_commands, verify_commands  # noqa: F401

    try:
        app(args=argv, prog_name="carbon-ledger", standalone_mode=False)
    except VerificationError as exc:
        err.print(f"[red]refused[/red] ({exc.check}): {exc}", highlight=False)
        return 1
    except LedgerError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc}", highlight=False)
        return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # click's usage errors, as typer vendors click
        return _usage_error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback to a user
        if os.environ.get("CARBON_LEDGER_DEBUG"):
            raise
        err.print(f"[red]internal error[/red]: {type(exc).__name__}: {str(exc)[:300]} "
                  "(CARBON_LEDGER_DEBUG=1 shows the trace)", highlight=False)
        return 70
    return 0


def _usage_error(exc: Exception) -> int:
    """One line: the error (with click's "did you mean"), and where help is."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    if not message:  # no arguments: the help was printed, that is the answer
        return int(getattr(exc, "exit_code", 2))
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path} --help" if ctx is not None else "carbon-ledger --help"
    err.print(f"[red]usage[/red]: {message} (see `{where}`)", highlight=False)
    return int(getattr(exc, "exit_code", 2))


def run() -> None:
    sys.exit(main())


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t
