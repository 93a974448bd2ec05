"""Hooks for the schemathesis runs of tests/api/test_schemathesis.py (loaded through
``SCHEMATHESIS_HOOKS``): what a real client does that no schema can say.

- NDJSON bodies are the records one per line (the document gives NDJSON the records'
  array schema: OpenAPI 3.1 has no schema for a line).
- A positive submission is signed as the partner signs it (``ST_PARTNER_KEY``): its
  signature, nonce and deadline depend on the body and the clock. A case missing one of
  the headers, or negative, is sent as generated.
- A positive report window meets the rules that relate ``from`` and ``to`` (not before it,
  at most ``MAX_DAYS``), which the parameters' descriptions state and JSON Schema cannot.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from typing import Any

import schemathesis

from ledger.intake.signed import record_hashes
from ledger.reports import EARLIEST, LATEST, MAX_DAYS
from ledger.signing import HEADERS, records_hash, submission_headers


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    if isinstance(value, list):
        return b"".join(json.dumps(v).encode() + b"\n" for v in value)
    return json.dumps(value).encode()


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _sign(case: Any) -> None:
    headers = case.headers or {}
    if not all(name in headers for name in HEADERS.values()) or not isinstance(case.body, list):
        return
    try:
        digest = records_hash(record_hashes(case.body))
    except Exception:  # noqa: BLE001 - a body the server refuses itself
        return
    signed = submission_headers(os.environ["ST_PARTNER_KEY"], chain_id=int(os.environ["ST_CHAIN_ID"]),
                                contract=os.environ["ST_CONTRACT"], partner="greenbike",
                                digest=digest, count=len(case.body))
    case.headers = {**headers, **signed}


def _window(case: Any) -> None:
    query = case.query or {}
    try:
        first, last = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
    except (KeyError, TypeError, ValueError):
        return
    first = min(max(first, EARLIEST), LATEST)
    last = min(max(last, first), LATEST, first + timedelta(days=MAX_DAYS - 1))
    case.query = {**query, "from": first.isoformat(), "to": last.isoformat()}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if not _positive(case):
        return
    path, method = case.operation.path, case.operation.method.upper()
    if (method, path) == ("POST", "/v1/submissions") and "ST_PARTNER_KEY" in os.environ:
        _sign(case)
    elif path in ("/v1/me/statement", "/v1/contribution", "/v1/reports/city"):
        _window(case)
