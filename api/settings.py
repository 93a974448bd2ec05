"""One settings object, from CLI options and ``CARBON_LEDGER_*`` environment variables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARBON_LEDGER_", extra="ignore")

    data_dir: Path = Field(Path(".carbon-ledger"), description="where the ledger keeps its state")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data dir")
    chain: Literal["anvil", "tester", "rpc"] = Field(
        "anvil", description="anvil: managed local node (or rpc_url if it is an anvil); "
                             "tester: in-process, ephemeral; rpc: any EVM JSON-RPC at rpc_url")
    rpc_url: str | None = None
    public_rpc_url: str | None = Field(None, description="a JSON-RPC URL the ledger descriptor "
                                       "names for verifiers (a hint, never trusted); default: "
                                       "rpc_url")
    confirmations: int = Field(1, ge=1, le=1000)
    anchor_key: SecretStr | None = None
    keystore: Path | None = None
    keystore_password: SecretStr | None = None
    seal_workers: int = Field(2, ge=1, le=64)
    receipt_timeout: float = Field(120.0, gt=0)
    max_fee_gwei: Decimal = Field(Decimal(200), gt=0, description="the most any transaction "
                                  "of the anchoring key pays per gas (EIP-1559 max fee: batch "
                                  "anchors, statements, revocations, campaigns); a dearer "
                                  "network is refused")
    replace_after: float = Field(60.0, gt=0, description="replace an anchor not mined after this "
                                 "many seconds: same nonce, fees up by at least 12.5%")
    replace_after_blocks: int = Field(0, ge=0, description="... or after this many new blocks "
                                      "(0: seconds only)")
    seal_retry_for: float = Field(300.0, ge=0, description="seal: keep retrying a node that does "
                                  "not answer for this long (s)")
    fault_pause: str | None = Field(None, description="fault tests only: the sealer stops at "
                                    "this step (ledger.sealing.STEPS) until it is killed")
    seal_interval: float = Field(30.0, gt=0, description="serve: seal at least this often (s)")
    seal_pending: int = Field(10_000, ge=1, description="serve: seal once this many are pending")
    seal_max_batch: int = Field(1_000_000, ge=1, description="seal and serve: the most entries "
                                "one batch holds; a larger backlog becomes several batches")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    rate_limit: str = Field("1200/minute", description="per credential, `limits` syntax")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="web origins (scheme://host[:port]) whose pages may "
        "call the public and citizen routes (CORS); comma-separated; none by default")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        """A comma-separated list from the environment; each an origin, nothing more."""
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for origin in value if isinstance(value, list) else ():
            parts = urlsplit(origin) if isinstance(origin, str) else None
            if (parts is None or parts.scheme not in ("http", "https") or not parts.netloc
                    or parts.path or parts.query or parts.fragment or origin.endswith("/")):
                raise ValueError(f"{origin!r} is not an origin like https://bank.example")
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ledger.db'}"
