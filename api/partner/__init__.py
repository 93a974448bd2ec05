"""A partner's side of the ledger: :class:`Client` signs records (EIP-712, docs/signing.md),
sends them with safe retries and checks the operator's receipt; ``carbon-ledger partner``
is the same from the command line (docs/partners.md)."""

from api.partner.client import (
    Client,
    PartnerClientError,
    PreparedSubmission,
    ReceiptInvalid,
    SubmissionResult,
    record_hashes,
)

__all__ = ["Client", "PartnerClientError", "PreparedSubmission", "ReceiptInvalid",
           "SubmissionResult", "record_hashes"]
