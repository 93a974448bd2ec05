"""The anchoring key: from the environment or an encrypted keystore, never from code.

On a dev chain with neither configured, a key is made once per data dir and kept as
an encrypted keystore there (0600), its password in a 0600 file beside it, so a demo
needs no set-up. The key itself is never printed or logged; only its address is.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.errors import ChainError

DEV_KEYSTORE = "anchor-keystore.json"
DEV_PASSWORD = "anchor-keystore.password"
_KDF_ITERATIONS = 100_000  # pbkdf2: seconds matter at every start; the file never leaves


def load_signer(*, private_key: str | None, keystore: Path | None, password: str | None,
                data_dir: Path, allow_dev_key: bool) -> LocalAccount:
    if private_key:
        try:
            return Account.from_key(private_key)
        except (ValueError, TypeError):  # the cause may quote the key: leave it out
            raise ChainError("the anchoring key is not a 32-byte hex private key",
                             field="anchor_key") from None
    if keystore is not None:
        return _decrypt(keystore, password)
    if not allow_dev_key:
        raise ChainError("no anchoring key: set CARBON_LEDGER_ANCHOR_KEY or "
                         "CARBON_LEDGER_KEYSTORE (+ CARBON_LEDGER_KEYSTORE_PASSWORD)",
                         field="anchor_key")
    return _dev_signer(data_dir)


def _decrypt(keystore: Path, password: str | None) -> LocalAccount:
    if password is None:
        raise ChainError("set CARBON_LEDGER_KEYSTORE_PASSWORD to unlock the keystore",
                         field="keystore_password")
    try:
        key = Account.decrypt(json.loads(keystore.read_text()), password)
    except FileNotFoundError as exc:
        raise ChainError(f"no keystore at {keystore}", field="keystore") from exc
    except ValueError as exc:  # wrong password or a corrupt file
        raise ChainError(f"cannot unlock {keystore}: {exc}", field="keystore") from exc
    return Account.from_key(key)


def _dev_signer(data_dir: Path) -> LocalAccount:
    path, pw_path = data_dir / DEV_KEYSTORE, data_dir / DEV_PASSWORD
    if path.exists():
        return _decrypt(path, pw_path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    account = Account.create()
    password = secrets.token_urlsafe(24)
    _write_private(pw_path, password + "\n")
    encrypted = Account.encrypt(account.key, password, kdf="pbkdf2", iterations=_KDF_ITERATIONS)
    _write_private(path, json.dumps(encrypted) + "\n")
    return account


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner may read (0600 from its creation on)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
