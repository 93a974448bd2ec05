"""Every error this project raises on purpose, in one hierarchy, with how each face shows it.

Each class carries a stable short ``code`` (the problem ``type`` suffix over HTTP, and the
CLI's message prefix), its HTTP status (``http_status``) and the CLI's exit code
(``exit_code``), inherited from the nearest parent that sets them. The faces read those
attributes and map nothing themselves. Every error carries the field or entity at fault
where there is one.

CLI exit codes: 1 a proof does not hold / other failure, 2 bad input, 3 not found,
4 conflict, 5 chain, 6 the database is unreachable or its schema is not this version's.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error this project raises on purpose."""

    #: A stable short code, used as the problem ``type`` suffix and in CLI messages.
    code = "ledger-error"
    http_status = 400
    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# -- the caller's input ---------------------------------------------------------------------

class InvalidInput(LedgerError):
    """A value given to the ledger is malformed or out of range."""

    code = "invalid-input"
    http_status = 422
    exit_code = 2


class TooLarge(InvalidInput):
    """An input over its size limit (a body, a file, a header)."""

    code = "too-large"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    """A body sent as a type the route does not read."""

    code = "unsupported-media-type"
    http_status = 415


class MalleableSignature(InvalidInput):
    """A signature whose ``s`` is in the upper half of the curve order (refused, EIP-2)."""

    code = "malleable-signature"


class RetiredSigningVersion(InvalidInput):
    """A submission signed as version 1 of the struct (no nonce, deadline or contract)."""

    code = "retired-signing-version"


class MethodologyError(LedgerError):
    """A methodology file is malformed or names something it does not define."""

    code = "methodology-error"


# -- who is asking ----------------------------------------------------------------------------

class Unauthenticated(LedgerError):
    """No credential, or one that does not match."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(LedgerError):
    """A valid credential without the right to this resource."""

    code = "forbidden"
    http_status = 403


class WrongSigner(Forbidden):
    """The submission is signed, but not by the partner's registered address."""

    code = "wrong-signer"


# -- the ledger's state -----------------------------------------------------------------------

class NotFound(LedgerError):
    """An entity named by the caller does not exist."""

    code = "not-found"
    http_status = 404
    exit_code = 3


class Conflict(LedgerError):
    """The request contradicts the ledger's state (a duplicate, a taken id)."""

    code = "conflict"
    http_status = 409
    exit_code = 4


class InsufficientPoints(Conflict):
    """A debit larger than the citizen's balance."""

    code = "insufficient-points"


class OutOfStock(Conflict):
    """A reward whose stock is exhausted."""

    code = "out-of-stock"


class IdempotencyKeyReused(Conflict):
    """An idempotency key sent again with another reward than it was first used for."""

    code = "idempotency-key-reused"


class Replayed(Conflict):
    """A submission whose nonce this partner has used before."""

    code = "replayed-submission"


class AnchoringTurnTaken(Conflict):
    """Another process holds the anchoring key's turn (the sealer's lease): try shortly."""

    code = "anchoring-turn-taken"


class NotAnchored(Conflict):
    """The entry exists but its batch is not (yet) anchored."""

    code = "not-anchored"


# -- the chain --------------------------------------------------------------------------------

class ChainError(LedgerError):
    """The chain could not be reached or answered something unexpected."""

    code = "chain-error"
    http_status = 503
    exit_code = 5


class ChainUnavailable(ChainError):
    """The node did not answer (refused, timed out, 5xx): worth trying again later."""

    code = "chain-unavailable"


class FeeAboveCeiling(ChainError):
    """The network asks for more per gas than the operator allows (``max_fee_gwei``)."""

    code = "fee-above-ceiling"


class FeeTooLow(ChainError):
    """The node refuses a transaction whose max fee is now below the base fee: only a
    replacement (same nonce, re-priced) can go."""

    code = "fee-too-low"


class AnchorMismatch(ChainError):
    """What the chain holds for a batch differs from what the ledger sealed."""

    code = "anchor-mismatch"


# -- verification -----------------------------------------------------------------------------

class VerificationError(LedgerError):
    """A proof bundle does not hold; the message says which claim failed, ``check``
    which of the verifier's checks it was (the stable ids docs/proof-bundle.md lists)."""

    code = "verification-failed"
    http_status = 422
    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None, check: str = "claim") -> None:
        super().__init__(message, field=field)
        self.check = check


class InvalidProof(VerificationError):
    """A Merkle proof folds to a root other than the expected one."""

    code = "invalid-proof"

    def __init__(self, computed: bytes, expected: bytes) -> None:
        super().__init__(
            f"proof folds to root 0x{computed.hex()}, expected 0x{expected.hex()}", field="proof"
        )
        self.computed = computed
        self.expected = expected


class BundleRefused(VerificationError):
    """The document is not a bundle of the written format (checked before any hashing)."""

    code = "bundle-refused"

    def __init__(self, message: str, *, field: str | None = None, check: str = "shape") -> None:
        super().__init__(message, field=field, check=check)


class DescriptorRefused(VerificationError):
    """Not a descriptor of the written format, or one the chain contradicts."""

    code = "descriptor-refused"

    def __init__(self, message: str, *, field: str | None = None, check: str = "descriptor") -> None:
        super().__init__(message, field=field, check=check)


# -- the database -----------------------------------------------------------------------------

class DatabaseUnavailable(LedgerError):
    """The database cannot be reached or opened (or another writer held SQLite past the
    timeout)."""

    code = "database-unavailable"
    http_status = 503
    exit_code = 6


class Contended(LedgerError):
    """A write that lost its race with other writers of the same rows again and again
    (PostgreSQL): nothing was written; sending it again is safe."""

    code = "contended"
    http_status = 503
    exit_code = 6


class SchemaOutOfDate(DatabaseUnavailable):
    """The database's schema is not the version this code expects (``db upgrade``)."""

    code = "schema-out-of-date"
