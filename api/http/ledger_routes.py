"""The ledger's public face: where it anchors and who signs (``/v1/info``), and the
server-side bundle check for auditors (``/v1/verify``), and the ledger descriptor a
verifier pins (``/v1/ledger``)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.http.bodies import read_body
from api.http.deps import AuditorDep, StateDep
from api.http.responses import JSON
from api.http.schemas import VERDICT, Info, LedgerDescriptor, body, ok, problems
from ledger.bundle import MAX_BUNDLE_BYTES, ProofBundle
from ledger.descriptor import descriptor_for
from ledger.errors import BundleRefused, InvalidInput, VerificationError
from ledger.methodology import available_versions
from ledger.signing import submission_typed_data
from ledger.verification import TrustRoot, verify_bundle

router = APIRouter(prefix="/v1")


@router.get("/info", tags=["public"], response_model=None, responses=ok(Info, problems()))
def info(state: StateDep) -> dict[str, Any]:
    """Where this ledger anchors, who signs receipts, what partners sign, and how the
    sealer is doing (its state and how long the oldest unanchored entry has waited)."""
    return {"chainId": state.chain_id, "contract": state.anchor.contract_address,
            "operator": state.container.signer.address,
            "eip712": submission_typed_data(state.chain_id, state.anchor.contract_address),
            "methodologies": list(available_versions()),
            "sealer": state.scheduler.status()}

@router.get("/ledger", tags=["public"], response_model=None, responses=ok(
    LedgerDescriptor, problems(503), headers={"Cache-Control": {"schema": {"type": "string"}}}))
def ledger_descriptor(request: Request, state: StateDep) -> Response:
    """The ledger descriptor: what a verifier pins (chain, contract, deployment, formats,
    the operator's receipt key). Compare it with the copy the city publishes out of band."""
    settings = state.container.settings
    rpc = settings.public_rpc_url or (settings.rpc_url if settings.chain != "tester" else None)
    with state.container.db.session() as s:
        descriptor = descriptor_for(s, chain_id=state.chain_id,
                                    receipt_signer=state.container.signer.address,
                                    api_url=str(request.base_url).rstrip("/"),
                                    rpc_urls=[rpc] if rpc else [])
    return Response(orjson.dumps(descriptor.to_json()), media_type=JSON,
                    headers={"Cache-Control": "public, max-age=3600"})


_VERIFY_BODY = body({"$ref": "#/components/schemas/ProofBundle"},
                    description="a proof bundle (docs/proof-bundle.md); one that is not of "
                                "the format is answered `valid: false` naming the check")


@router.post("/verify", tags=["auditors"], openapi_extra=_VERIFY_BODY, response_model=None,
             responses=ok(VERDICT, "the verdict", problems(401, 403, 422, 503)))
async def verify(request: Request, state: StateDep, who: AuditorDep) -> dict[str, Any]:
    """Check a bundle against this server's ledger (its own chain and contract).

    A convenience for auditors: the independent check is `carbon-ledger verify` (or the
    browser verifier) with the ledger pinned from its descriptor."""
    raw = await read_body(request, MAX_BUNDLE_BYTES)
    trusted = TrustRoot(state.chain_id, state.anchor.contract_address, "this server's ledger")
    try:
        bundle = ProofBundle.from_bytes(raw)
    except BundleRefused as exc:
        if exc.check == "parse":  # not a JSON document within bounds: a bad request body
            raise InvalidInput(exc.message, field="body") from None
        return {"valid": False, "check": exc.check, "field": exc.field, "reason": exc.message}

    def check() -> dict[str, Any]:
        try:
            verdict = verify_bundle(bundle, state.anchor.reader(), trusted=trusted)
        except VerificationError as exc:
            return {"valid": False, "check": exc.check, "field": exc.field, "reason": exc.message}
        return {"valid": True, "verdict": verdict.line()}

    return await run_in_threadpool(check)
