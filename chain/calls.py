"""One chain request at a time, its failure named: web3's errors wrapped in
:class:`~ledger.errors.ChainError` (a contract's custom error decoded by name) and the
transport's in :class:`~ledger.errors.ChainUnavailable`, so callers can tell "try again
later" from "the chain said no"."""

from __future__ import annotations

import ast
import re
from typing import Any

import requests
from web3.exceptions import (
    ContractCustomError,
    ProviderConnectionError,
    TimeExhausted,
    Web3Exception,
)

from ledger.errors import ChainError, ChainUnavailable

TRANSPORT_ERRORS = (requests.RequestException, ProviderConnectionError, TimeExhausted, OSError)

def call_chain(fn: Any, what: str) -> Any:
    """Run one chain request, wrapping web3's errors in ChainError and the transport's
    (after the provider's own retries) in ChainUnavailable."""
    try:
        return fn()
    except ContractCustomError as exc:
        raise ChainError(f"{what}: reverted ({exc.data})", field=what) from exc
    except TRANSPORT_ERRORS as exc:
        raise ChainUnavailable(f"the node did not answer ({what}): {_transport_reason(exc)}",
                               field="chain") from exc
    except (Web3Exception, ValueError) as exc:
        raise ChainError(f"{what}: {exc}", field=what) from exc


def _transport_reason(exc: BaseException) -> str:
    """The short cause of a transport failure (requests nests it deeply)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for reason in ("Connection refused", "Connection reset", "Remote end closed",
                   "Name or service not known"):
        if reason in text:
            return reason.lower()
    return text[:200]


_REVERT_BYTES = re.compile(r"execution reverted: (b(['\"]).*\2)$", re.DOTALL)


def revert_data(exc: BaseException) -> str | None:
    """The 0x-hex revert data of a failed call, from web3 or from eth-tester."""
    if isinstance(exc, ContractCustomError) and isinstance(exc.data, str):
        return exc.data
    text = str(exc.args[0]) if exc.args else ""
    match = _REVERT_BYTES.search(text)  # eth-tester: "execution reverted: b'...'"
    if match:
        return "0x" + ast.literal_eval(match.group(1)).hex()
    return None


def decode_custom_error(abi: Any, data: str) -> str:
    """Name a custom error from its revert data, e.g. ``BatchIdGap(5, 3)``."""
    from eth_abi import decode
    from eth_utils import function_signature_to_4byte_selector

    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
        if raw[:4] == selector:
            args = decode(types, raw[4:])
            return f"{item['name']}({', '.join(str(a) for a in args)})"
    return data
