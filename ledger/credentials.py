"""API keys (partners, auditors) and citizens' bearer tokens.

A credential is ``<prefix>_<key id>.<secret>``; the key id finds the row, the secret's
SHA-256 is compared in constant time. Secrets are 256-bit random, so a fast hash is
enough; the plain secret is shown once, when issued, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.models import ApiKey, Citizen, CitizenToken, Partner

ROLES = ("partner", "auditor")


class Unauthenticated(LedgerError):
    """No credential, or one that does not match."""

    code = "unauthenticated"


class Forbidden(LedgerError):
    """A valid credential without the right to this resource."""

    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    role: str  # partner | auditor | citizen
    partner_id: int | None = None
    citizen_id: int | None = None


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _new_credential(prefix: str) -> tuple[str, str, str]:
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return f"{prefix}_{key_id}.{secret}", key_id, secret


def issue_api_key(session: Session, *, role: str, partner: Partner | None = None) -> str:
    if role not in ROLES:
        raise InvalidInput(f"one of {', '.join(ROLES)}", field="role")
    if (role == "partner") != (partner is not None):
        raise InvalidInput("a partner key names its partner; an auditor key none", field="partner")
    plain, key_id, secret = _new_credential("clk")
    session.add(ApiKey(key_id=key_id, secret_hash=_hash(secret), role=role,
                       partner_id=partner.id if partner else None, created_at=int(time.time())))
    return plain


def issue_citizen_token(session: Session, *, citizen: Citizen) -> str:
    plain, key_id, secret = _new_credential("clt")
    session.add(CitizenToken(key_id=key_id, secret_hash=_hash(secret), citizen_id=citizen.id,
                             created_at=int(time.time())))
    return plain


def _split(presented: str, prefix: str) -> tuple[str, str]:
    head, _, secret = presented.partition(".")
    if not head.startswith(prefix + "_") or not secret:
        raise Unauthenticated("malformed credential", field="authorization")
    return head[len(prefix) + 1:], secret


def authenticate(session: Session, presented: str) -> Principal:
    """The principal a presented API key or citizen token stands for."""
    model: Any = CitizenToken if presented.startswith("clt_") else ApiKey
    key_id, secret = _split(presented, "clt" if model is CitizenToken else "clk")
    row = session.scalar(select(model).where(model.key_id == key_id))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(
            row.secret_hash, _hash(secret)):
        raise Unauthenticated("unknown or revoked credential", field="authorization")
    if isinstance(row, CitizenToken):
        return Principal("citizen", citizen_id=row.citizen_id)
    return Principal(row.role, partner_id=row.partner_id)


def revoke(session: Session, presented_or_key_id: str) -> None:
    key_id = presented_or_key_id.split(".")[0].split("_")[-1]
    models: tuple[Any, ...] = (ApiKey, CitizenToken)
    for model in models:
        row = session.scalar(select(model).where(model.key_id == key_id))
        if row is not None:
            row.revoked_at = int(time.time())
            return
    raise NotFound(f"no credential {key_id!r}", field="key")
