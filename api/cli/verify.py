"""`verify` and `ledger …`: check a bundle against a pinned ledger; publish and pin ledgers.

The verifier takes its trust root from outside the bundle: ``--contract`` (with the chain
the ``--rpc`` endpoint serves, checked against ``--chain-id`` when given), or ``--ledger``
with the descriptor the operator publishes, or the pin saved by an earlier run. With
nothing pinned it refuses; it never falls back to the contract the bundle names, never
starts a node and never creates a data dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.base import DataDir, Json, app, emit_json, err, out
from api.cli.files import write_atomically
from api.cli.trust_store import Pin, TrustStore
from api.composition import container, contract_reader, served_chain_id
from ledger.bundle import MAX_BUNDLE_BYTES, ProofBundle, address
from ledger.descriptor import MAX_DESCRIPTOR_BYTES, LedgerDescriptor, check_on_chain, descriptor_for
from ledger.errors import (
    BundleRefused,
    ChainError,
    DescriptorRefused,
    InvalidInput,
    TooLarge,
    VerificationError,
)
from ledger.json_input import read_bounded
from ledger.verification import TrustRoot, check_claims_against_pin, verify_bundle

ledger_app = typer.Typer(no_args_is_help=True, help="Which ledger to trust: publish its "
                         "descriptor (operator), pin it, list and remove pins (verifiers).")
app.add_typer(ledger_app, name="ledger")

Rpc = Annotated[str | None, typer.Option("--rpc", help="the chain's JSON-RPC URL")]
ContractOpt = Annotated[str | None, typer.Option(
    "--contract", help="pin this anchor contract (on the chain --rpc serves)")]
ChainIdOpt = Annotated[int | None, typer.Option(
    "--chain-id", min=1, help="refuse an --rpc endpoint that serves another chain")]
LedgerOpt = Annotated[str | None, typer.Option(
    "--ledger", help="pin the ledger this descriptor names (a file, or an http(s) URL)")]
SaveOpt = Annotated[bool, typer.Option(help="save a new pin in the user's config")]


def _load_descriptor(where: str) -> LedgerDescriptor:
    if where.startswith(("http://", "https://")):
        import requests

        try:
            with requests.get(where, timeout=10, stream=True) as answer:
                answer.raise_for_status()
                raw = answer.raw.read(MAX_DESCRIPTOR_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise ChainError(f"cannot fetch the descriptor {where}: {exc}", field="ledger") from None
        if len(raw) > MAX_DESCRIPTOR_BYTES:
            raise DescriptorRefused(f"over {MAX_DESCRIPTOR_BYTES} bytes", field="descriptor")
    else:
        raw = read_bounded(Path(where), field="ledger", max_bytes=MAX_DESCRIPTOR_BYTES)
    return LedgerDescriptor.from_bytes(raw)


def _announce(pin: Pin, store: TrustStore) -> None:
    err.print(f"[bold yellow]PINNED on first use[/bold yellow]: chain {pin.chain_id}, anchor "
              f"contract {pin.contract} ({pin.source}), saved to {store.path}. Every later "
              "check of this chain trusts it: compare it now with the descriptor your city "
              "publishes out of band.", highlight=False)


def pin_trust_root(*, rpc: str | None, contract: str | None, chain_id: int | None,
                   ledger: str | None, save: bool, store: TrustStore,
                   bundle_chain: int | None = None) -> tuple[TrustRoot, str]:
    """The trust root for this run and the endpoint to read it through."""
    if contract and ledger:
        raise InvalidInput("give --contract or --ledger, not both", field="contract")
    if ledger:
        descriptor = _load_descriptor(ledger)
        url = rpc or (descriptor.rpc_urls[0] if descriptor.rpc_urls else None)
        if url is None:
            raise InvalidInput("no chain endpoint: give --rpc URL (the descriptor names none)",
                               field="rpc")
        check_on_chain(descriptor, contract_reader(url, descriptor.contract))
        root = descriptor.trust_root(f"descriptor {ledger}")
        deployment = ("0x" + descriptor.deployment_tx.hex(), descriptor.deployment_block)
    elif contract:
        if rpc is None:
            raise InvalidInput("--contract needs --rpc URL: the chain it is on", field="rpc")
        url, pinned = rpc, address(contract, "contract")
        reader = contract_reader(url, pinned)
        if not reader.has_code():
            raise DescriptorRefused(f"no contract code at {pinned} on chain {reader.chain_id}",
                                    field="contract")
        root, deployment = TrustRoot(reader.chain_id, pinned, "--contract"), None
    else:
        return _saved_pin(rpc, store, bundle_chain)
    if chain_id is not None and chain_id != root.chain_id:
        raise VerificationError(f"the endpoint serves chain {root.chain_id}, not --chain-id "
                                f"{chain_id}", field="chainId", check="node")
    if save:
        pin, new = store.pin(root, rpc=url, deployment=deployment)
        if new:
            _announce(pin, store)
    return root, url


def _saved_pin(rpc: str | None, store: TrustStore, bundle_chain: int | None) -> tuple[TrustRoot, str]:
    how = ("pin the ledger first: `carbon-ledger verify BUNDLE --rpc URL --contract ADDRESS`, "
           "or `--ledger FILE|URL` with the descriptor the operator publishes (GET /v1/ledger)")
    if rpc is not None:
        served = served_chain_id(rpc)
        pin = store.get(served)
        if pin is None:
            raise InvalidInput(f"no ledger is pinned for chain {served}: {how}", field="ledger")
        return pin.trust_root(), rpc
    pin = store.get(bundle_chain) if bundle_chain is not None else None
    if pin is None:
        raise InvalidInput(f"no ledger is pinned for chain {bundle_chain} (and no --rpc "
                           f"given): {how}", field="ledger")
    if pin.rpc is None:  # never a node of our own: it would hold nothing of this ledger
        raise InvalidInput(f"no chain endpoint: chain {bundle_chain} is pinned ({pin.contract}, "
                           f"from {pin.source}) but neither --rpc nor the pin names a JSON-RPC "
                           "URL: give --rpc URL", field="rpc")
    return pin.trust_root(), pin.rpc


@app.command()
def verify(bundle_file: Annotated[Path, typer.Argument(help="a proof bundle (JSON)")],
           rpc: Rpc = None, contract: ContractOpt = None, chain_id: ChainIdOpt = None,
           ledger: LedgerOpt = None, save: SaveOpt = True) -> None:
    """Check a bundle against a pinned ledger and the chain alone.

    Exit 0: the entry is in a batch the pinned contract anchored. 1: the bundle is refused
    (the message names the failed check). 2: bad input or nothing pinned. 4: the pin for
    this chain names another contract. 5: the chain could not be read."""
    try:
        raw = read_bounded(bundle_file, field="bundle", max_bytes=MAX_BUNDLE_BYTES)
    except TooLarge as exc:
        raise BundleRefused(exc.message, field="bundle", check="parse") from None
    bundle = ProofBundle.from_bytes(raw)
    store = TrustStore()
    trusted, url = pin_trust_root(rpc=rpc, contract=contract, chain_id=chain_id, ledger=ledger,
                                  save=save, store=store, bundle_chain=bundle.chain_id)
    check_claims_against_pin(bundle, trusted)  # before any read of the chain
    print(verify_bundle(bundle, contract_reader(url, trusted.contract), trusted=trusted).line())


@ledger_app.command("descriptor")
def ledger_descriptor(data_dir: DataDir = None,
                      out_file: Annotated[Path | None, typer.Option("--out")] = None,
                      api_url: Annotated[str | None, typer.Option(help="the API's public URL")] = None,
                      public_rpc: Annotated[str | None, typer.Option(
                          help="a JSON-RPC URL verifiers may use (a hint, never trusted)")] = None,
                      ) -> None:
    """Print this ledger's descriptor (operator): publish it out of band as well."""
    import json

    c = container(data_dir)
    with c.db.session() as s:
        descriptor = descriptor_for(s, receipt_signer=c.signer.address, api_url=api_url,
                                    rpc_urls=[public_rpc] if public_rpc else [])
    text = json.dumps(descriptor.to_json(), indent=2) + "\n"
    if out_file is None:
        print(text, end="")
    else:
        write_atomically(out_file, text)


@ledger_app.command("pin")
def ledger_pin(rpc: Rpc = None, contract: ContractOpt = None, chain_id: ChainIdOpt = None,
               ledger: LedgerOpt = None) -> None:
    """Pin a ledger without verifying a bundle (checked against the chain first)."""
    if not (contract or ledger):
        raise InvalidInput("give --contract ADDRESS (with --rpc) or --ledger FILE|URL",
                           field="ledger")
    store = TrustStore()
    root, _ = pin_trust_root(rpc=rpc, contract=contract, chain_id=chain_id, ledger=ledger,
                             save=True, store=store)
    out.print(f"chain {root.chain_id}: {root.contract} is pinned ({store.path})", highlight=False)


@ledger_app.command("pins")
def ledger_pins(as_json: Json = False) -> None:
    """List the pinned ledgers."""
    store = TrustStore()
    pins = store.pins()
    if as_json:
        emit_json([{"chainId": p.chain_id, "contract": p.contract, "source": p.source,
                    "pinnedAt": p.pinned_at, "rpc": p.rpc, "deploymentTx": p.deployment_tx,
                    "deploymentBlock": p.deployment_block} for p in pins.values()], None)
        return
    if not pins:
        out.print(f"nothing pinned ({store.path})", highlight=False)
    for pin in pins.values():
        out.print(f"chain {pin.chain_id}: {pin.contract}  pinned {pin.pinned_at} from "
                  f"{pin.source}; rpc {pin.rpc or '-'}", highlight=False, soft_wrap=True)


@ledger_app.command("unpin")
def ledger_unpin(chain_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Forget the ledger pinned for a chain."""
    gone = TrustStore().unpin(chain_id)
    if gone is None:
        raise InvalidInput(f"nothing is pinned for chain {chain_id}", field="chain_id")
    out.print(f"chain {chain_id}: {gone.contract} unpinned", highlight=False)
