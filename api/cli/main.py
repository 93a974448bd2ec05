"""The ``carbon-ledger`` command line. ``main(argv) -> int`` so tests call it directly.

Errors become one line on stderr and an exit code, never a traceback: each error class
carries its exit code (``ledger/errors.py`` lists them); a usage mistake exits 2, an
interrupted command 130, an unexpected failure 70.
"""

from __future__ import annotations

import os
import sys

import typer

# The registry: importing each command module registers its commands on ``base.app``.
# A new command module is added here, and nowhere else.
from api.cli import (  # noqa: F401
    campaign,
    commands,
    credential,
    demo,
    listing,
    partner,
    reports,
    verify,
)
from api.cli.base import app, err, size_output
from ledger.errors import LedgerError, VerificationError


def main(argv: list[str] | None = None) -> int:
    size_output()
    try:
        app(args=argv, prog_name="carbon-ledger", standalone_mode=False)
    except VerificationError as exc:
        err.print(f"[red]refused[/red] ({exc.check}): {exc}", highlight=False)
        return 1
    except LedgerError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc}", highlight=False)
        return exc.exit_code
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


