"""A partner's client for a carbon ledger's HTTP API: sign records (EIP-712, version 2,
docs/signing.md), send them, retry safely, and check the operator's signed receipt.

    from api.partner import Client

    client = Client.from_keystore("greenbike.json", password, url="https://ledger.example",
                                  api_key=os.environ["CARBON_LEDGER_API_KEY"],
                                  partner="greenbike")
    result = client.submit(records)          # a list of dicts, in the order to sign them
    print(result.summary())                  # and result.answer, result.receipt

**Retries are safe.** A submission is signed once, with a random nonce, and that same body
and those same headers are what every retry sends: the ledger records a nonce once. If an
attempt timed out after the ledger recorded it, the retry is answered ``409
replayed-submission`` naming the submission, and the client fetches its receipt
(``GET /v1/submissions/{id}``) instead: the records are never credited twice and never
signed again under a new nonce. Retried: connection errors, timeouts, 429, 502, 503, 504
(after ``Retry-After`` when the server sends one), while the signed deadline allows.

**The receipt is checked**: signed by the operator's key (``operator=`` pins the address,
e.g. from the ledger descriptor's ``operatorKeys``; otherwise the one ``GET /v1/info``
names), in this ledger's domain, for this partner, committing to exactly the records the
answer says were accepted.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_utils import to_checksum_address

from ledger.hashing import keccak
from ledger.records import canonical_json
from ledger.signing import receipt_signer, records_hash, sign_submission

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_SUBMISSION_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_SERVER_HASH = re.compile(r"recordsHash (0x[0-9a-fA-F]{64}) over (\d+) records")


class PartnerClientError(Exception):
    """A submission that failed: ``status`` (HTTP, or None if no answer came), the
    problem ``code`` and ``field`` the ledger named, and the problem body."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 field: str | None = None, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field
        self.problem = problem or {}


class ReceiptInvalid(PartnerClientError):
    """The answer's receipt does not hold: not the operator's signature, or not what the
    answer says was accepted. Keep the answer: it is evidence."""


@dataclass(frozen=True)
class PreparedSubmission:
    """One signed submission, ready to send (and to send again, unchanged)."""

    body: bytes
    headers: dict[str, str]
    records_hash: bytes
    record_hashes: list[bytes]
    count: int
    nonce: bytes
    deadline: int


@dataclass
class SubmissionResult:
    """The ledger's answer: ``answer`` as sent (every record's outcome, when this attempt
    was the one recorded), the checked ``receipt``, and ``replayed`` when an earlier attempt
    had been recorded (then ``answer`` is the stored submission: counts and receipt)."""

    answer: dict[str, Any]
    receipt: dict[str, Any]
    attempts: int
    replayed: bool = False
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def submission_id(self) -> str:
        return str(self.answer["submissionId"])

    def summary(self) -> str:
        a = self.answer
        note = " (recorded by an earlier attempt)" if self.replayed else ""
        return (f"submission {a['submissionId']}: {a.get('accepted', 0)} accepted, "
                f"{a.get('duplicate', 0)} duplicate, {a.get('rejected', 0)} rejected; "
                f"{a.get('reductionGrams', 0)} g CO2e{note}; receipt signed by "
                f"{self.receipt['signer']}, anchor by {self.receipt['message']['anchorBy']}")


def record_hashes(records: Sequence[Any]) -> list[bytes]:
    """keccak256 of each record's RFC 8785 JSON, in order (docs/signing.md)."""
    return [keccak(canonical_json(r)) for r in records]


class Client:
    """A partner's connection to one ledger (its base ``url``)."""

    def __init__(self, url: str, *, api_key: str, partner: str, private_key: bytes | str,
                 operator: str | None = None, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 0.5, valid_for: int = 600,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self.partner = partner
        self.account = Account.from_key(private_key)
        self.operator = to_checksum_address(operator) if operator else None
        self.timeout, self.retries, self.backoff, self.valid_for = timeout, retries, backoff, valid_for
        self.http = session or requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"
        self._sleep = sleep
        self._info: dict[str, Any] | None = None

    @classmethod
    def from_keystore(cls, path: str | Path, password: str, **kwargs: Any) -> Client:
        """A client signing with the key in an encrypted keystore (``partner keygen``);
        the partner code recorded in it is used unless ``partner=`` is given."""
        keystore = json.loads(Path(path).read_text())
        key = Account.decrypt(keystore, password)
        kwargs["partner"] = kwargs.get("partner") or keystore.get("carbonLedgerPartner")
        if not kwargs["partner"]:
            raise PartnerClientError("no partner code: give partner= (the code the operator "
                                     "registered) or record it in the keystore at keygen")
        return cls(private_key=bytes(key), **kwargs)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def info(self) -> dict[str, Any]:
        """``GET /v1/info``: the chain, contract, operator and what to sign (read once)."""
        if self._info is None:
            answer = self._request("GET", "/v1/info", retry_until=time.time() + self.timeout)
            self._info = answer.json()
        return self._info

    def prepare(self, records: Sequence[Any], *, nonce: bytes | None = None,
                deadline: int | None = None) -> PreparedSubmission:
        """Sign ``records`` for this ledger: the body (a JSON array) and its headers."""
        records = list(records)
        info = self.info()
        hashes = record_hashes(records)
        digest = records_hash(hashes)
        nonce = secrets.token_bytes(32) if nonce is None else nonce
        deadline = int(time.time()) + self.valid_for if deadline is None else deadline
        signature = sign_submission(self.account.key, chain_id=int(info["chainId"]),
                                    contract=info["contract"], partner=self.partner,
                                    digest=digest, count=len(records), nonce=nonce,
                                    deadline=deadline)
        eip712 = info.get("eip712", {}).get("headers") or {
            "signature": "X-Signature", "nonce": "X-Nonce", "deadline": "X-Deadline"}
        headers = {eip712["signature"]: signature, eip712["nonce"]: "0x" + nonce.hex(),
                   eip712["deadline"]: str(deadline), "Content-Type": "application/json"}
        body = json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode()
        return PreparedSubmission(body, headers, digest, hashes, len(records), nonce, deadline)

    def submit(self, records: Sequence[Any]) -> SubmissionResult:
        """Sign and send ``records``; see :meth:`send`."""
        return self.send(self.prepare(records))

    def send(self, prepared: PreparedSubmission) -> SubmissionResult:
        """Send a prepared submission, retrying the same request while its deadline lasts;
        check the receipt. Raises :class:`PartnerClientError` (naming the part that
        failed) or :class:`ReceiptInvalid`."""
        attempts = 0

        def counted(attempt: int) -> None:
            nonlocal attempts
            attempts = attempt

        answer = self._request("POST", "/v1/submissions", data=prepared.body,
                               headers=prepared.headers, retry_until=prepared.deadline - 5,
                               on_attempt=counted, ok=(200, 409, 403))
        if answer.status_code == 403:
            raise self._signature_failure(answer, prepared)
        if answer.status_code == 409:
            problem = _problem(answer)
            if attempts < 2 or not problem.get("type", "").endswith("replayed-submission"):
                raise _failure(answer, problem)
            # an earlier attempt was recorded: its receipt, not a second submission
            found = _SUBMISSION_ID.search(problem.get("detail", ""))
            if found is None:
                raise _failure(answer, problem)
            stored = self._request("GET", f"/v1/submissions/{found.group(0)}",
                                   retry_until=time.time() + self.timeout).json()
            self._check_receipt(stored["receipt"], prepared, stored, accepted_hashes=None)
            return SubmissionResult(stored, stored["receipt"], attempts, replayed=True)
        body = answer.json()
        accepted = [prepared.record_hashes[o["index"]] for o in body["records"]
                    if o.get("status") == "accepted"]
        self._check_receipt(body["receipt"], prepared, body, accepted_hashes=accepted)
        return SubmissionResult(body, body["receipt"], attempts,
                                rejected=[o for o in body["records"] if o.get("status") == "rejected"])

    def submission(self, submission_id: str) -> dict[str, Any]:
        """A submission this partner made, with its receipt (``GET /v1/submissions/{id}``)."""
        return dict(self._request("GET", f"/v1/submissions/{submission_id}",
                                  retry_until=time.time() + self.timeout).json())

    # -- the parts --------------------------------------------------------------------------

    def _check_receipt(self, receipt: dict[str, Any], prepared: PreparedSubmission,
                       answer: dict[str, Any], *, accepted_hashes: list[bytes] | None) -> None:
        info = self.info()
        operator = self.operator or to_checksum_address(info["operator"])
        try:
            signer = receipt_signer(receipt)
        except Exception as exc:  # noqa: BLE001 - any malformed receipt is an invalid one
            raise ReceiptInvalid(f"the receipt's signature does not recover: {exc}") from exc
        problems = []
        if signer != operator:
            problems.append(f"signed by {signer}, not the operator {operator}")
        if receipt.get("signer") and to_checksum_address(receipt["signer"]) != signer:
            problems.append(f"names signer {receipt['signer']} but recovers to {signer}")
        domain = receipt.get("domain", {})
        if (int(domain.get("chainId", -1)) != int(info["chainId"])
                or str(domain.get("verifyingContract", "")).lower() != info["contract"].lower()):
            problems.append(f"signed for chain {domain.get('chainId')} contract "
                            f"{domain.get('verifyingContract')}, not this ledger's")
        message = receipt.get("message", {})
        if message.get("partner") != self.partner:
            problems.append(f"for partner {message.get('partner')!r}, not {self.partner!r}")
        if message.get("submissionId") != answer.get("submissionId"):
            problems.append("for another submission id than the answer's")
        if int(message.get("accepted", -1)) != int(answer.get("accepted", -2)):
            problems.append(f"commits to {message.get('accepted')} accepted records, the "
                            f"answer says {answer.get('accepted')}")
        if accepted_hashes is not None and message.get("acceptedHash") != (
                "0x" + records_hash(accepted_hashes).hex()):
            problems.append("its acceptedHash is not the hash of the records the answer "
                            "says were accepted")
        if answer.get("recordsHash") not in (None, "0x" + prepared.records_hash.hex()):
            problems.append(f"the ledger recorded recordsHash {answer.get('recordsHash')}, "
                            f"this client signed 0x{prepared.records_hash.hex()}")
        if problems:
            raise ReceiptInvalid("the receipt does not hold: " + "; ".join(problems))

    def _signature_failure(self, answer: requests.Response,
                           prepared: PreparedSubmission) -> PartnerClientError:
        """Which part of a refused signature differs, as far as the answer tells."""
        problem = _problem(answer)
        detail = problem.get("detail", "")
        if not problem.get("type", "").endswith("wrong-signer"):
            return _failure(answer, problem)
        ours = "0x" + prepared.records_hash.hex()
        server = _SERVER_HASH.search(detail)
        if server and (server.group(1).lower() != ours or int(server.group(2)) != prepared.count):
            part = (f"recordsHash mismatch: the ledger computed {server.group(1)} over "
                    f"{server.group(2)} records, this client signed {ours} over "
                    f"{prepared.count}: the records were hashed differently (RFC 8785 per "
                    "record, keccak256, concatenated: docs/signing.md)")
        else:
            part = (f"wrong signer: the records' hash agrees ({ours}), so the key "
                    f"({self.address}), the partner code ({self.partner!r}) or the domain "
                    f"differs from what the ledger registered: {detail}")
        return PartnerClientError(part, status=answer.status_code, code="wrong-signer",
                                  field=problem.get("field"), problem=problem)

    def _request(self, method: str, path: str, *, retry_until: float,
                 ok: tuple[int, ...] = (200,),
                 on_attempt: Callable[[int], None] | None = None,
                 **kwargs: Any) -> requests.Response:
        """One request, sent again unchanged after a transient failure (connection error,
        timeout, 429/502/503/504) while ``retry_until`` (unix seconds) allows."""
        attempt = 0
        while True:
            attempt += 1
            if on_attempt is not None:
                on_attempt(attempt)
            wait = self.backoff * 2 ** (attempt - 1)
            try:
                answer = self.http.request(method, self.url + path, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure: PartnerClientError = PartnerClientError(
                    f"{method} {path}: no answer ({type(exc).__name__}: {exc})")
            else:
                if answer.status_code in ok:
                    return answer
                if answer.status_code not in RETRY_STATUSES:
                    raise _failure(answer, _problem(answer))
                failure = _failure(answer, _problem(answer))
                after = answer.headers.get("Retry-After", "")
                wait = max(wait, float(after)) if after.isdigit() else wait
            if attempt > self.retries or time.time() + wait >= retry_until:
                raise failure
            self._sleep(wait)


def _problem(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {"detail": answer.text[:300]}
    return body if isinstance(body, dict) else {"detail": str(body)[:300]}


def _failure(answer: requests.Response, problem: dict[str, Any]) -> PartnerClientError:
    code = str(problem.get("type", "")).rsplit(":", 1)[-1] or None
    where = f"{problem['field']}: " if problem.get("field") else ""
    return PartnerClientError(f"{answer.status_code} {code or answer.reason}: {where}"
                              f"{problem.get('detail') or problem.get('title') or ''}".rstrip(": "),
                              status=answer.status_code, code=code, field=problem.get("field"),
                              problem=problem)
