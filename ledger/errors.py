"""One error root for the project and the precise failures the outside faces translate.

The HTTP layer maps each class to a problem type and status, the CLI to an exit code.
Every error carries the field or entity at fault where there is one.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error this project raises on purpose."""

    #: A stable short code, used as the problem ``type`` suffix and in CLI messages.
    code = "ledger-error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(LedgerError):
    """A value given to the ledger is malformed or out of range."""

    code = "invalid-input"


class TooLarge(InvalidInput):
    """An input over its size limit (a body, a file, a header)."""

    code = "too-large"


class UnsupportedMediaType(InvalidInput):
    """A body sent as a type the route does not read."""

    code = "unsupported-media-type"


class NotFound(LedgerError):
    """An entity named by the caller does not exist."""

    code = "not-found"


class Conflict(LedgerError):
    """The request contradicts the ledger's state (a duplicate, a taken id)."""

    code = "conflict"


class InsufficientPoints(Conflict):
    """A debit larger than the citizen's balance."""

    code = "insufficient-points"


class OutOfStock(Conflict):
    """A reward whose stock is exhausted."""

    code = "out-of-stock"


class MethodologyError(LedgerError):
    """A methodology file is malformed or names something it does not define."""

    code = "methodology-error"


class ChainError(LedgerError):
    """The chain could not be reached or answered something unexpected."""

    code = "chain-error"


class AnchorMismatch(ChainError):
    """What the chain holds for a batch differs from what the ledger sealed."""

    code = "anchor-mismatch"


class VerificationError(LedgerError):
    """A proof bundle does not hold; the message says which claim failed, ``check``
    which of the verifier's checks it was (the stable ids docs/proof-bundle.md lists)."""

    code = "verification-failed"

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


class DatabaseUnavailable(LedgerError):
    """The database cannot be reached or opened."""

    code = "database-unavailable"


class SchemaOutOfDate(DatabaseUnavailable):
    """The database's schema is not the version this code expects (``db upgrade``)."""

    code = "schema-out-of-date"
