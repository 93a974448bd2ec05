"""The verifier's pins: which ledger (chain id → anchor contract) this user trusts.

Kept in the user's configuration, not in any ledger's data dir: ``$CARBON_LEDGER_CONFIG_DIR``
or ``$XDG_CONFIG_HOME/carbon-ledger`` or ``~/.config/carbon-ledger``, file
``trusted-ledgers.json`` (0600). One ledger per chain id, like an SSH known host: a
different contract for a pinned chain is refused until the user unpins it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from api.cli.files import write_atomically
from ledger.errors import Conflict, InvalidInput
from ledger.json_input import read_json_file
from ledger.verification import TrustRoot

PINS_FILE = "trusted-ledgers.json"


def config_dir() -> Path:
    explicit = os.environ.get("CARBON_LEDGER_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carbon-ledger"


@dataclass(frozen=True)
class Pin:
    chain_id: int
    contract: str
    source: str
    pinned_at: str
    rpc: str | None = None
    deployment_tx: str | None = None
    deployment_block: int | None = None

    def trust_root(self) -> TrustRoot:
        return TrustRoot(self.chain_id, self.contract, f"the pin of {self.pinned_at} ({self.source})")


class TrustStore:
    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or config_dir()) / PINS_FILE

    def pins(self) -> dict[int, Pin]:
        if not self.path.exists():
            return {}
        data = read_json_file(self.path, field=str(self.path), max_bytes=1024 * 1024)
        try:
            return {int(k): Pin(**v) for k, v in data.items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"not a pins file this version wrote: {exc}; move it away",
                               field=str(self.path)) from None

    def get(self, chain_id: int) -> Pin | None:
        return self.pins().get(chain_id)

    def pin(self, root: TrustRoot, *, rpc: str | None, deployment: tuple[str, int] | None = None
            ) -> tuple[Pin, bool]:
        """Pin ``root`` unless its chain is pinned already; returns the pin and whether it
        is new. A different contract for a pinned chain is a :class:`Conflict`."""
        pins = self.pins()
        known = pins.get(root.chain_id)
        if known is not None:
            if known.contract.lower() != root.contract.lower():
                raise Conflict(f"chain {root.chain_id} is pinned to the ledger at {known.contract} "
                               f"({known.source}, {known.pinned_at}); refusing {root.contract}. "
                               "If the ledger really moved, check it out of band, then "
                               f"`carbon-ledger ledger unpin {root.chain_id}`", field="contract")
            return known, False
        pin = Pin(root.chain_id, root.contract, root.source,
                  time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), rpc,
                  deployment[0] if deployment else None, deployment[1] if deployment else None)
        pins[root.chain_id] = pin
        self._write(pins)
        return pin, True

    def unpin(self, chain_id: int) -> Pin | None:
        pins = self.pins()
        gone = pins.pop(chain_id, None)
        if gone is not None:
            self._write(pins)
        return gone

    def _write(self, pins: dict[int, Pin]) -> None:
        data: dict[str, Any] = {str(k): asdict(v) for k, v in sorted(pins.items())}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.path, json.dumps(data, indent=2) + "\n", mode=0o600)
