"""The HTTP API's contract: every request and answer as a pydantic model, every error as a
problem, and the OpenAPI document built from them (``install``).

The routes keep answering with the dicts the ledger builds (orjson, no validation on the
hot path); these models describe those dicts exactly (``additionalProperties: false``),
and tests/api/test_schemathesis.py holds the served answers to them. A member marked
``Absent`` is left out rather than sent as null.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from ledger.records import ALLOWED_FIELDS, FUTURE_SKEW_SECONDS, MAX_DURATION_SECONDS, MAX_TEXT
from ledger.reports import EARLIEST, LATEST, MAX_DAYS
from ledger.signing import HEADERS, MAX_VALIDITY_SECONDS

PROBLEM = "application/problem+json"
JSON = "application/json"
NDJSON = "application/x-ndjson"

HEX32 = r"^0x[0-9a-fA-F]{64}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
UNIX_MAX = 2**62
ENTRY_ID_EXAMPLE = "0x2d0343621f73bcf652c29a9083f48d7d7179bfb48acb330d4d3403c09f7c61c2"
ADDRESS_EXAMPLE = "0x56Ad543910Ff0db4FF38B616518c339C604Cc956"

Hex32 = Annotated[str, Field(pattern=HEX32, examples=[ENTRY_ID_EXAMPLE])]
Address = Annotated[str, Field(pattern=ADDRESS, examples=[ADDRESS_EXAMPLE])]
Unix = Annotated[int, Field(ge=0, le=2**63 - 1, description="unix seconds")]
Count = Annotated[int, Field(ge=0)]
Grams = Annotated[int, Field(ge=0, description="grams CO2e")]
IsoDate = Annotated[str, Field(pattern=ISO_DATE, description="a local date (UTC+8), YYYY-MM-DD",
                               examples=["2026-12-04"])]


def _absent(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Members in ``cls.__absent__`` are left out when unset, never null: their schema is
    the non-null branch, without a default."""
    for name in getattr(cls, "__absent__", ()):
        prop = schema["properties"][name]
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:  # what the member's own Field says wins over its type's branch
            branch = branches[0] if len(branches) == 1 else {"anyOf": branches}
            prop.update({k: v for k, v in branch.items() if k not in prop})
        prop.pop("default", None)


class Shape(BaseModel):
    """An answer's or a body's shape: every member named, no other allowed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent)  # type: ignore[typeddict-item]


# -- errors -------------------------------------------------------------------------------

class Problem(Shape):
    """RFC 9457 problem details: the status, a stable ``type`` per kind of error (the
    error classes' codes, ledger/errors.py) and the field at fault."""

    __absent__ = ("detail", "field")
    type: str = Field(pattern=r"^urn:carbon-ledger:problem:[a-z0-9-]+$",
                      examples=["urn:carbon-ledger:problem:insufficient-points"])
    title: str = Field(examples=["InsufficientPoints"])
    status: int = Field(ge=400, le=599, examples=[409])
    detail: str | None = Field(None, examples=["balance is 284, 300 needed"])
    field: str | None = Field(None, description="the request member, parameter or header "
                              "at fault", examples=["reward"])


_STATUS_TEXT = {
    400: "Two `Authorization` headers (`duplicate-header`), or a request the ledger refuses",
    401: "No credential, or a wrong, made-up or revoked one (`unauthenticated`)",
    403: "The credential's role may not use this route (`forbidden`), or the submission is "
         "signed by another address than the partner's (`wrong-signer`)",
    404: "Nothing with that id (or it is another caller's) (`not-found`)",
    405: "Another method than the route's",
    409: "The request contradicts the ledger's state (`conflict` and its kinds)",
    413: "The body is over its limit (`too-large`)",
    415: "A body of another media type than the route reads (`unsupported-media-type`)",
    422: "A parameter, header or body that is malformed or out of range (`invalid-input` "
         "and its kinds), naming its `field`",
    429: "Over the rate limit (`rate-limited`): `Retry-After` says when to try again",
    431: "Headers too large (`header-too-large`)",
    503: "The database or the chain node cannot be reached: an outage, not a verdict; "
         "`Retry-After` says when to try again",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {
    "type": "string", "pattern": "^[0-9]+$"}}}
_STATUS_HEADERS = {401: {"WWW-Authenticate": {"description": "`Bearer`",
                                              "schema": {"type": "string"}}},
                   429: _RETRY_AFTER, 503: _RETRY_AFTER}
#: What any /v1 request may meet before its route (api/http/limits.py).
EVERY_REQUEST = (400, 413, 429, 431)


def problems(*statuses: int, conflict: str | None = None,
             not_found: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route's error statuses, each a :class:`Problem`."""
    text = {**_STATUS_TEXT}
    if conflict:
        text[409] = conflict
    if not_found:
        text[404] = not_found
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, *EVERY_REQUEST}):
        out[status] = {"description": text[status],
                       "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        if status in _STATUS_HEADERS:
            out[status]["headers"] = _STATUS_HEADERS[status]
    return out


def ok(model: type[BaseModel] | dict[str, Any], *parts: str | dict[int | str, Any],
       headers: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """A route's 200 answer (``application/json``; ``parts``: its description, then the
    error statuses from :func:`problems`)."""
    schema = model if isinstance(model, dict) else ref(model)
    description = next((p for p in parts if isinstance(p, str)), "OK")
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    out: dict[int | str, dict[str, Any]] = {200: answer}
    for part in parts:
        if isinstance(part, dict):
            out.update(part)
    return out


def body(schema: dict[str, Any], *, ndjson: bool = False, description: str = "") -> dict[str, Any]:
    """A route's request body, for ``openapi_extra`` (the routes read their bodies
    themselves, once the caller is known)."""
    content = {JSON: {"schema": schema}}
    if ndjson:
        content[NDJSON] = {"schema": schema}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


# -- parameters ---------------------------------------------------------------------------

EntryId = Annotated[str, Path(pattern=r"^(0x)?[0-9a-fA-F]{64}$", examples=[ENTRY_ID_EXAMPLE],
                              description="an entry id: 0x and 64 hex digits (the 0x may be "
                                          "left out)")]
SubmissionId = Annotated[str, Path(pattern=HEX32, description="a submission id, as its "
                                   "answer gave it: 0x and 64 hex digits")]
BatchId = Annotated[int, Path(ge=1, le=UNIX_MAX, description="a batch number", examples=[1])]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many")]
FromDate = Annotated[date, Query(alias="from", examples=["2026-11-01"],
                                 description=f"the first local date (UTC+8), YYYY-MM-DD, "
                                             f"{EARLIEST} to {LATEST}")]
ToDate = Annotated[date, Query(alias="to", examples=["2026-11-30"],
                               description=f"the last local date, inclusive: not before "
                                           f"`from`, a report spans at most {MAX_DAYS} days")]
Period = Annotated[Literal["day", "month"], Query(description="rows per local day or per "
                                                  "calendar month")]
SinceUnix = Annotated[int | None, Query(alias="from", ge=0, le=UNIX_MAX,
                                        description="entries that occurred at or after these "
                                                    "unix seconds", examples=[1796256000])]
UntilUnix = Annotated[int | None, Query(alias="to", ge=0, le=UNIX_MAX,
                                        description="entries that occurred before these unix "
                                                    "seconds", examples=[1796860800])]

#: The headers a signed submission travels with, as the OpenAPI document shows them (the
#: route takes them as optional strings, so that a missing one gets the ledger's own
#: message naming it: docs/signing.md).
SIGNING_HEADERS: list[dict[str, Any]] = [
    {"name": HEADERS["signature"], "in": "header", "required": True,
     "description": "the partner's EIP-712 signature of `Submission(partner, recordsHash, "
                    "count, nonce, deadline)` in the domain `GET /v1/info` publishes: 0x and "
                    "130 hex digits (r, s, v), `s` in the lower half of the curve order "
                    "(EIP-2)",
     "schema": {"type": "string", "pattern": r"^(0[xX])?[0-9a-fA-F]{130}$",
                "examples": ["0x" + "ab" * 64 + "1b"]}},
    {"name": HEADERS["nonce"], "in": "header", "required": True,
     "description": "32 random bytes, new for each submission (a nonce used before is a "
                    "409 `replayed-submission`)",
     "schema": {"type": "string", "pattern": HEX32, "examples": ["0x" + "5e" * 32]}},
    {"name": HEADERS["deadline"], "in": "header", "required": True,
     "description": f"unix seconds after which the signature is void: in the future, at most "
                    f"{MAX_VALIDITY_SECONDS} s ahead of the ledger's clock",
     "schema": {"type": "string", "pattern": "^[0-9]{1,20}$", "examples": ["1796450000"]}},
]


# -- bodies -------------------------------------------------------------------------------

SAFE_INT = 2**53 - 1  # RFC 8785 numbers are IEEE doubles: a record's are at most this
Timestamp = Annotated[int | str, Field(
    description="unix seconds, or an RFC 3339 time with its UTC offset",
    examples=[1796341422, "2026-12-04T08:30:00+08:00"])]
_TIMESTAMP: Any = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": SAFE_INT},
                        {"type": "string", "format": "date-time"}]}
#: Any JSON value whose numbers RFC 8785 can write (a record is hashed in that form).
JSON_VALUE = {"anyOf": [
    {"type": "string"}, {"type": "boolean"}, {"type": "null"},
    {"type": "number", "minimum": -SAFE_INT, "maximum": SAFE_INT},
    {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
    {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}],
    "description": "any JSON value; numbers within ±(2^53 − 1)"}


class ActivityRecord(Shape):
    """A partner's record, as sent (ledger/records.py checks it; docs/formats.md)."""

    __absent__ = ("ended_at", "details")
    record_id: str = Field(min_length=1, max_length=MAX_TEXT["record_id"],
                           description="the partner's own id for it, unique per partner (a "
                                       "repeat is a duplicate)",
                           examples=["ride-2026-12-04-0001"])
    citizen: str = Field(min_length=1, max_length=MAX_TEXT["citizen"],
                         description="the citizen's pseudonym", examples=["c_f1fd42a29755d4c1"])
    behaviour: str = Field(min_length=1, max_length=MAX_TEXT["behaviour"],
                           description="a behaviour code of the methodology in force",
                           examples=["CYCLING"])
    quantity: int = Field(ge=1, le=2**53 - 1, description="in the behaviour's unit (metres, "
                          "items, …)", examples=[1788])
    occurred_at: Timestamp = Field(description=f"when it happened or began: not more than "
                                   f"{FUTURE_SKEW_SECONDS} s in the future",
                                   json_schema_extra=_TIMESTAMP)
    ended_at: Timestamp | None = Field(None, description=f"when it ended: not before "
                                       f"`occurred_at`, at most {MAX_DURATION_SECONDS // 86400} "
                                       f"days after it", json_schema_extra=_TIMESTAMP)
    details: dict[str, Any] | None = Field(
        None, description="anything else the partner keeps (hashed with the record)")


assert set(ActivityRecord.model_fields) == ALLOWED_FIELDS, "ActivityRecord drifted from records.py"

RECORDS = {"type": "array", "minItems": 1, "items": ref(ActivityRecord),
           "description": "as JSON, an array of records; as NDJSON, one record per line"}


class RedemptionRequest(Shape):
    reward: str = Field(min_length=1, max_length=64, description="a reward's code "
                        "(`GET /v1/rewards`)", examples=["coffee-voucher"])


# -- answers: the public face ---------------------------------------------------------------

class TypedField(Shape):
    name: str
    type: str


class Eip712Domain(Shape):
    name: Literal["CarbonLedger"]
    version: str = Field(examples=["2"])
    chainId: int = Field(ge=1, examples=[31337])
    verifyingContract: Address


class SigningHeaders(Shape):
    signature: Literal["X-Signature"]
    nonce: Literal["X-Nonce"]
    deadline: Literal["X-Deadline"]


class SubmissionTypedData(Shape):
    """What a partner signs (docs/signing.md)."""

    domain: Eip712Domain
    types: dict[str, list[TypedField]]
    primaryType: Literal["Submission"]
    headers: SigningHeaders
    maxValiditySeconds: int


class SealerStatus(Shape):
    state: Literal["idle", "sealing", "lease-taken", "backing-off", "stopped"]
    lastAnchorAt: Unix | None = Field(description="when this process last anchored")
    oldestUnanchoredSeconds: int | None = Field(ge=0, description="how long the oldest "
                                                "unanchored entry has waited")
    databaseReadable: bool


class Info(Shape):
    chainId: int = Field(ge=1, examples=[31337])
    contract: Address
    operator: Address = Field(description="the key that signs receipts and anchors")
    eip712: SubmissionTypedData
    methodologies: list[int] = Field(examples=[[1, 2]])
    sealer: SealerStatus


class Deployment(Shape):
    txHash: Hex32
    blockNumber: int = Field(ge=0)


class Formats(Shape):
    proofBundle: list[str] = Field(examples=[["carbon-ledger-proof-v1"]])
    leaf: str = Field(examples=["oz-standard-v1"])


class OperatorKey(Shape):
    use: Literal["receipts"]
    address: Address


class Endpoints(Shape):
    __absent__ = ("api", "rpc")
    api: str | None = None
    rpc: list[str] | None = None


class LedgerDescriptor(Shape):
    """What a verifier pins (docs/ledger-descriptor.md)."""

    format: Literal["carbon-ledger-descriptor-v1"]
    chainId: int = Field(ge=1)
    contract: Address
    deployment: Deployment
    formats: Formats
    operatorKeys: list[OperatorKey]
    endpoints: Endpoints


class Methodology(BaseModel):
    """A published methodology file, exactly as the ledger uses it (ledger/methodologies/)."""

    model_config = ConfigDict(extra="allow")
    version: int = Field(ge=1)
    effective_from: str = Field(pattern=ISO_DATE)
    title: str


# -- answers: proofs --------------------------------------------------------------------------

def _proof_bundle_schema() -> dict[str, Any]:
    """docs/proof-bundle.schema.json, its ``$defs`` written in place."""
    path = FilePath(__file__).resolve().parents[2] / "docs" / "proof-bundle.schema.json"
    doc = json.loads(path.read_text())
    defs = doc.pop("$defs")

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            target = node.get("$ref", "")
            if target.startswith("#/$defs/"):
                rest = {k: inline(v) for k, v in node.items() if k != "$ref"}
                return {**defs[target.removeprefix("#/$defs/")], **rest}
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    doc.pop("$schema", None)
    doc.pop("$id", None)
    return inline(doc)  # type: ignore[no-any-return]


class ProofPending(Shape):
    """An entry whose batch is not anchored yet."""

    entryId: Hex32
    status: Literal["pending"]
    detail: str = Field(examples=["not sealed yet: the next batch takes it"])


PROOF = {"oneOf": [{"$ref": "#/components/schemas/ProofBundle"}, ref(ProofPending)]}


# -- answers: citizens ----------------------------------------------------------------------

class BehaviourTotal(Shape):
    behaviour: str = Field(examples=["CYCLING"])
    entries: Count
    reductionGrams: Grams
    points: Count


class CitizenSummary(Shape):
    points: int = Field(description="the balance", examples=[1482])
    pointsSpent: Count
    totals: list[BehaviourTotal] = Field(description="credits per behaviour")


class Entry(Shape):
    entryId: Hex32
    kind: Literal["credit", "debit", "bonus"]
    behaviour: str = Field(description="the behaviour, `REDEMPTION` for a debit, or "
                           "`BONUS/<campaign>` or `PRIZE/<campaign>` for campaign points")
    quantity: Count
    reductionGrams: Grams
    points: Count
    methodology: int = Field(ge=0)
    occurredAt: Unix


class EntryPage(Shape):
    entries: list[Entry]
    next: str | None = Field(description="pass as `after` for the next page; null on the last",
                             examples=["27"])


class Reward(Shape):
    code: str = Field(examples=["coffee-voucher"])
    title: str = Field(examples=["Coffee voucher"])
    points: Count = Field(description="its cost")
    stock: Count


class Redemption(Shape):
    entryId: Hex32 = Field(description="the debit entry")
    reward: str = Field(examples=["coffee-voucher"])
    points: Count = Field(examples=[150])
    balance: int = Field(description="points left after it", examples=[1332])
    replayed: bool = Field(description="true when the Idempotency-Key was seen before: this is "
                           "the first redemption's answer")
    createdAt: Unix


class DateWindow(Shape):
    from_: IsoDate = Field(alias="from")
    to: IsoDate


class ChartSeries(Shape):
    name: str
    values: list[int]


class Chart(Shape):
    """A series a page can draw as is: one value per ``x`` per series."""

    type: Literal["bar", "stackedBar"]
    unit: str = Field(examples=["g CO2e"])
    x: list[str]
    series: list[ChartSeries]


class Statement(Shape):
    period: DateWindow
    reductionGrams: Grams
    pointsEarned: Count
    pointsSpent: Count
    balance: int
    entries: Count
    entriesAnchored: Count
    behaviours: list[BehaviourTotal]
    chart: Chart


# -- answers: partners ----------------------------------------------------------------------

class RecordOutcome(Shape):
    __absent__ = ("record_id", "field", "reason", "entry_id", "duplicate_of")
    index: int = Field(ge=0, description="the record's place in the submission, from 0")
    record_id: str | None = None
    status: Literal["accepted", "duplicate", "rejected"]
    field: str | None = Field(None, description="a rejected record: the member at fault")
    reason: str | None = Field(None, description="a rejected or duplicate record: why")
    entry_id: Hex32 | None = Field(None, description="an accepted record: its ledger entry")
    reduction_grams: Grams
    points: Count
    capped: bool
    duplicate_of: str | None = Field(None, description="the record it repeats")


class ReceiptMessage(Shape):
    submissionId: Hex32
    partner: str
    acceptedHash: Hex32
    accepted: Count
    anchorBy: Unix


class SignedReceipt(Shape):
    """The operator's EIP-712 `Receipt`, signed by ``GET /v1/info``'s ``operator``."""

    domain: Eip712Domain
    types: dict[str, list[TypedField]]
    primaryType: Literal["Receipt"]
    message: ReceiptMessage
    signer: Address
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class SubmissionAnswer(Shape):
    submissionId: Hex32
    recordsHash: Hex32
    nonce: Hex32
    accepted: Count
    duplicate: Count
    rejected: Count
    reductionGrams: Grams
    records: list[RecordOutcome]
    receipt: SignedReceipt


class SubmissionSummary(Shape):
    submissionId: Hex32
    records: Count
    accepted: Count
    duplicate: Count
    rejected: Count
    reductionGrams: Grams
    recordsHash: Hex32
    receivedAt: Unix


class SubmissionDetail(SubmissionSummary):
    receipt: SignedReceipt


class ContributionRow(Shape):
    period: str = Field(description="a local date, or a month YYYY-MM")
    behaviour: str
    records: Count
    reductionGrams: Grams


class Contribution(Shape):
    period: DateWindow
    by: Literal["day", "month"]
    rows: list[ContributionRow]
    reductionGrams: Grams
    chart: Chart


class CityRow(Shape):
    period: str = Field(description="a local date, or a month YYYY-MM")
    behaviour: str
    citizens: Count | None = Field(description="null when withheld")
    entries: Count | None = Field(description="null when withheld")
    reductionGrams: Grams | None = Field(description="null when withheld")
    withheld: bool = Field(description="fewer than three citizens, or would show one by "
                           "difference")


class CityTotals(Shape):
    period: DateWindow = Field(description="the window, whole months when `by` is month")
    by: Literal["day", "month"]
    closedThrough: IsoDate = Field(description="the last final local date")
    rows: list[CityRow]
    reductionGrams: Grams = Field(description="the sum of the cells shown")
    citizens: Count
    chart: Chart


# -- answers: auditors ------------------------------------------------------------------------

class Batch(Shape):
    batchId: int = Field(ge=1)
    root: Hex32
    leafCount: int = Field(ge=1)
    contentHash: Hex32
    status: Literal["sealed", "submitted", "anchored"]
    txHash: Hex32 | None
    blockNumber: int | None
    chainId: int | None
    contract: Address | None
    sealedAt: Unix
    anchoredAt: Unix | None


class BatchPage(Shape):
    batches: list[Batch]
    next: str | None = Field(description="pass as `after` for the next page; null on the last")


class DumpValue(Shape):
    value: list[str]
    treeIndex: int = Field(ge=0)


class OzDump(Shape):
    """OpenZeppelin's StandardMerkleTree dump (``StandardMerkleTree.load`` reads it)."""

    format: Literal["standard-v1"]
    leafEncoding: list[str]
    tree: list[Hex32]
    values: list[DumpValue]


class BatchRoots(Shape):
    root: Hex32
    leafCount: Count
    contentHash: Hex32


class Audit(Shape):
    batchId: int = Field(ge=1)
    entries: Count
    credits: Count
    capped: Count
    reductionGrams: Grams
    ok: bool
    problems: list[str] = Field(description="each entry that does not hold, and why (the "
                                "first 1000)")
    problemCount: Count = Field(description="every problem found, listed or not")
    recomputed: BatchRoots | None = Field(description="the root, leaf count and content hash "
                                          "the partners' records give")
    sealed: BatchRoots | None = Field(description="... and what the ledger sealed")
    heldAgainstChain: bool = Field(description="whether the recomputation was held against "
                                   "what the chain holds for the batch (not on an in-process "
                                   "chain); a difference is among the problems")
    auditedAt: Unix = Field(description="when this recomputation was made")


class AuditJob(Shape):
    """A large batch's audit under way (ask again after `Retry-After` seconds)."""

    batchId: int = Field(ge=1)
    state: Literal["running"]
    entries: Count = Field(description="the batch's entries")
    entriesDone: Count = Field(description="how many are recomputed so far")
    startedAt: Unix


class AuditEntry(Shape):
    """One entry recomputed: what its leaf, raw record and the methodology give, beside
    what was credited."""

    seq: int = Field(ge=1)
    entryId: Hex32
    kind: int = Field(ge=0, le=255, description="1 a credit, 2 a debit (as recorded)")
    leafHash: Hex32 = Field(description="the leaf's hash, as the tree holds it")
    reductionGrams: int = Field(description="as credited")
    points: int = Field(description="as credited")
    recordHash: Hex32 | None = Field(description="keccak256 of the stored raw record; null "
                                     "for a debit, or a credit whose checks stopped before")
    methodology: int | None = Field(description="the version in force when it happened")
    fullGrams: int | None = Field(description="the factors' figure for the quantity, "
                                  "before caps")
    rulePoints: int | None = Field(description="the points the version's rule gives for "
                                   "the credited grams")
    capped: bool = Field(description="credited below the full figure, by a reached cap")
    problems: list[str] = Field(description="what does not hold; empty if it all does")


class AuditEntryPage(Shape):
    batchId: int = Field(ge=1)
    entries: list[AuditEntry]
    next: str | None = Field(description="pass as `after` for the next page; null on the "
                             "batch's last")


class Verified(Shape):
    valid: Literal[True]
    verdict: str


class NotVerified(Shape):
    valid: Literal[False]
    check: str = Field(description="which check failed (docs/proof-bundle.md)")
    field: str | None
    reason: str


VERDICT = {"oneOf": [ref(Verified), ref(NotVerified)]}

MODELS: list[type[BaseModel]] = [
    Problem, ActivityRecord, RedemptionRequest, Info, LedgerDescriptor, Methodology,
    ProofPending, CitizenSummary, EntryPage, Reward, Redemption, Statement, SubmissionAnswer,
    SubmissionSummary, SubmissionDetail, Contribution, CityTotals, BatchPage, OzDump, Audit,
    AuditJob, AuditEntryPage,
    Verified, NotVerified]


# -- the document -------------------------------------------------------------------------

def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with these models as its components, and the signing headers
    as they are required."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary,
                      description=app.description, routes=app.routes, servers=app.servers)
    _, defs = models_json_schema([(m, "serialization") for m in MODELS],
                                 ref_template="#/components/schemas/{model}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(defs.get("$defs", {}))
    schemas["ProofBundle"] = _proof_bundle_schema()
    schemas["JsonValue"] = JSON_VALUE
    schemas["ActivityRecord"]["properties"]["details"]["additionalProperties"] = {
        "$ref": "#/components/schemas/JsonValue"}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    submit = doc["paths"]["/v1/submissions"]["post"]
    names = {h["name"].lower() for h in SIGNING_HEADERS}
    submit["parameters"] = [p for p in submit.get("parameters", [])
                            if p["name"].lower() not in names] + SIGNING_HEADERS
    app.openapi_schema = doc
    return doc


class Operations:
    """Each documented path as a pattern, with its methods and tags: what the 405's
    ``Allow`` and the CORS scope read (FastAPI keeps included routers unflattened)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.paths = []
        for template, item in doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            tags = {t for op in item.values() for t in op.get("tags", ())}
            self.paths.append((pattern, {m.upper() for m in item}, tags))

    def methods(self, path: str) -> set[str]:
        return {m for pattern, methods, _ in self.paths if pattern.match(path) for m in methods}

    def tagged(self, path: str, tags: frozenset[str]) -> bool:
        return any(pattern.match(path) and found & tags for pattern, _, found in self.paths)


def operations(app: Any) -> Operations:
    found = getattr(app.state, "operations", None)
    if found is None:
        found = app.state.operations = Operations(app.openapi())
    return found  # type: ignore[no-any-return]


def install(app: FastAPI) -> None:
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]


DESCRIPTION = """The HTTP face of a blockchain-anchored personal carbon ledger
(docs/http-api.md). Partners submit signed records, citizens read their ledger and redeem
rewards, auditors check batches; anyone reads the city's totals and what the ledger
anchors to.

Send `Authorization: Bearer <credential>` where a route needs a caller: a partner's or an
auditor's API key, or a citizen's token. Every error is `application/problem+json`
(RFC 9457) with a stable `type` (`urn:carbon-ledger:problem:<code>`) and the `field` at
fault. Unix seconds are integers; report dates are local dates (UTC+8), `YYYY-MM-DD`."""
