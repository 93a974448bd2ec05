"""The ledger's public face: where it anchors and who signs (``/v1/info``), and the
server-side bundle check for auditors (``/v1/verify``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from api.http.deps import AuditorDep, StateDep
from ledger.errors import VerificationError
from ledger.methodology import available_versions
from ledger.proofs import verify_bundle
from ledger.signing import submission_typed_data

router = APIRouter(prefix="/v1")


@router.get("/info", tags=["public"])
def info(state: StateDep) -> dict[str, Any]:
    """Where this ledger anchors, who signs receipts, and what partners sign."""
    return {"chainId": state.chain_id, "contract": state.anchor.contract_address,
            "operator": state.container.signer.address,
            "eip712": submission_typed_data(state.chain_id),
            "methodologies": list(available_versions())}

@router.post("/verify", tags=["auditors"])
def verify(bundle: Annotated[dict[str, Any], Body()], state: StateDep,
           who: AuditorDep) -> dict[str, Any]:
    """Check a bundle against the chain server-side (the CLI verifier is the independent path)."""
    try:
        verdict = verify_bundle(bundle, state.anchor.reader())
    except VerificationError as exc:
        return {"valid": False, "field": exc.field, "reason": exc.message}
    return {"valid": True, "verdict": verdict.line()}
