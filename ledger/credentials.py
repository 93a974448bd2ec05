"""API keys (partners, auditors) and citizens' bearer tokens.

A credential is ``<prefix>_<key id>.<secret>``; the key id finds the row, the secret's
SHA-256 is compared in constant time. Secrets are 256-bit random, so a fast hash is
enough; the plain secret is shown once, when issued, and never stored. A server keeps
what key ids resolve to for a few seconds (:class:`CredentialCache`) and still checks the
secret on every request. A credential not of that shape (a key id of 16 hex digits, a
secret of at most :data:`MAX_SECRET` URL-safe characters) is refused before any lookup,
so nothing an anonymous caller sends is kept beyond its bounded share of the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import InvalidInput, NotFound, Unauthenticated
from ledger.lru import Lru
from ledger.store.models import ApiKey, Citizen, CitizenToken, Partner

ROLES = ("partner", "auditor")

#: The longest secret accepted (ours are 43 characters): longer is malformed, unread.
MAX_SECRET = 128
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_SECRET}}}")


@dataclass(frozen=True)
class Principal:
    role: str  # partner | auditor | citizen
    partner_id: int | None = None
    citizen_id: int | None = None
    key_id: str | None = None  # of the credential presented

    @property
    def subject(self) -> str:
        """Who is calling, for limits counted per caller: the partner or the citizen
        whichever of their credentials is used, an auditor by their key."""
        if self.role == "partner":
            return f"partner:{self.partner_id}"
        if self.role == "citizen":
            return f"citizen:{self.citizen_id}"
        return f"{self.role}:{self.key_id}"


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
    key_id = head[len(prefix) + 1:]
    if (not head.startswith(prefix + "_") or not _KEY_ID.fullmatch(key_id)
            or not _SECRET.fullmatch(secret)):
        raise Unauthenticated("malformed credential", field="authorization")
    return key_id, secret


@dataclass(frozen=True)
class StoredCredential:
    """What a key id stands for: its secret's hash and, unless revoked, its principal."""

    secret_hash: bytes
    principal: Principal | None  # None: revoked


def _parse(presented: str) -> tuple[Any, str, str]:
    """The model a credential lives in, its key id and its secret."""
    model: Any = CitizenToken if presented.startswith("clt_") else ApiKey
    key_id, secret = _split(presented, "clt" if model is CitizenToken else "clk")
    return model, key_id, secret


def _stored(session: Session, model: Any, key_id: str) -> StoredCredential | None:
    row = session.execute(select(model).where(model.key_id == key_id)).scalar_one_or_none()
    if row is None:
        return None
    if row.revoked_at is not None:
        return StoredCredential(row.secret_hash, None)
    if isinstance(row, CitizenToken):
        return StoredCredential(row.secret_hash, Principal("citizen", citizen_id=row.citizen_id,
                                                           key_id=key_id))
    return StoredCredential(row.secret_hash, Principal(row.role, partner_id=row.partner_id,
                                                       key_id=key_id))


def _check(stored: StoredCredential | None, secret: str) -> Principal:
    if stored is None or stored.principal is None or not hmac.compare_digest(
            stored.secret_hash, _hash(secret)):
        raise Unauthenticated("unknown or revoked credential", field="authorization")
    return stored.principal


def authenticate(session: Session, presented: str) -> Principal:
    """The principal a presented API key or citizen token stands for."""
    model, key_id, secret = _parse(presented)
    return _check(_stored(session, model, key_id), secret)


class CredentialCache:
    """Key id → stored credential (hash and principal) for at most ``ttl`` seconds, in a
    bounded LRU: a revoked credential stops working within ``ttl``. The secret is still
    hashed and compared in constant time on every request.

    Key ids found in the database and key ids that are not are kept apart, each in an LRU
    of its own bound (``size``, ``unknown_size``): anyone can make up well-formed key ids,
    and a flood of them must neither grow the cache nor push out the credentials in use.
    """

    def __init__(self, ttl: float = 5.0, size: int = 10_000, unknown_size: int = 1_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._known = Lru[tuple[str, str], _Cached](size)
        self._unknown = Lru[tuple[str, str], _Cached](unknown_size)
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    def authenticate(self, presented: str,
                     open_session: Callable[[], AbstractContextManager[Session]]) -> Principal:
        """:func:`authenticate`, reading the database only for a key id not seen within
        ``ttl`` (``open_session`` opens a read session then)."""
        model, key_id, secret = _parse(presented)
        key, now = (model.__tablename__, key_id), self._clock()
        with self._lock:
            hit = self._known.get(key) or self._unknown.get(key)
        if hit is None or now - hit[0] >= self.ttl:
            with open_session() as session:
                stored = _stored(session, model, key_id)
            hit = (now, stored)
            with self._lock:
                (self._known if stored is not None else self._unknown).put(key, hit)
                (self._unknown if stored is not None else self._known).drop(key)
        return _check(hit[1], secret)


_Cached = tuple[float, StoredCredential | None]


def revoke(session: Session, presented_or_key_id: str) -> None:
    key_id = presented_or_key_id.split(".")[0].split("_")[-1]
    models: tuple[Any, ...] = (ApiKey, CitizenToken)
    for model in models:
        row = session.scalar(select(model).where(model.key_id == key_id))
        if row is not None:
            row.revoked_at = int(time.time())
            return
    raise NotFound(f"no credential {key_id!r}", field="key")
