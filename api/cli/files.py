"""Files the faces write for the user, whole or not at all; and the record files they
read (:func:`read_records`, with each record's line).

A command that writes ``--out FILE`` writes a temporary file beside it and renames it
into place only once everything is written, so a failure (an unknown batch, a full disk)
leaves an existing FILE as it was. A target that exists and is not a regular file (a
device such as ``/dev/stdout``, a pipe) is written directly: renaming over it would
replace the device itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ledger.errors import InvalidInput
from ledger.json_input import parse_json, parse_ndjson, read_bounded


def _refuse(path: Path, exc: OSError) -> InvalidInput:
    return InvalidInput(f"cannot write {path}: {exc.strerror or exc}", field="out")


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int | None = None) -> Iterator[IO[str]]:
    """Yield a text stream; on a clean exit its content replaces ``path`` at once."""
    if not str(path) or path.name in ("", ".", ".."):
        raise InvalidInput(f"{str(path)!r} is not a file name", field="out")
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _refuse(path, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{path} is a directory", field="out")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            with open(path, "w", encoding="utf-8") as direct:
                yield direct
        except OSError as exc:
            raise _refuse(path, exc) from None
        return
    folder = path.parent
    if not folder.is_dir():
        raise InvalidInput(f"no folder {folder} to write {path.name} in", field="out")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise _refuse(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(temp, path)
    except OSError as exc:
        raise _refuse(path, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def write_atomically(path: Path, text: str, *, mode: int | None = None) -> None:
    with atomic_writer(path, mode=mode) as out:
        out.write(text)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_LINE_POSITION = re.compile(r"line 1 column (\d+) \(char \d+\)$")


def read_records(path: Path, limit: int) -> tuple[list[object], list[int], str]:
    """A file of records (JSON array, or NDJSON by its suffix), read with the same bounds
    as an HTTP submission; with each record's number as the file shows it (its line in
    NDJSON, its place in an array, from 1) and what that number is."""
    data = read_bounded(path, field="records", max_bytes=limit)
    if path.suffix in (".ndjson", ".jsonl"):
        try:
            records = parse_ndjson(data, field="records", max_bytes=limit)
        except InvalidInput as exc:  # each line is parsed alone: its column, not "line 1"
            exc.message = _LINE_POSITION.sub(r"column \1", exc.message)
            raise
        lines = [n for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
        return records, lines, "line"
    records = parse_json(data, field="records", max_bytes=limit)
    if not isinstance(records, list):
        raise InvalidInput("expected a JSON array of records", field="records")
    return records, list(range(1, len(records) + 1)), "record"
