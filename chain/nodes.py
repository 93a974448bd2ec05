"""The chains we connect to: in-process eth-tester, any JSON-RPC URL, a managed anvil.

The managed anvil keeps its state in the data dir (``anvil/state.json``, dumped every
second and on exit), so anchors survive a restart. ``carbon-ledger node`` runs it in the
foreground and writes ``node.json`` so other commands connect to it while it runs;
otherwise a command starts its own for as long as it needs one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from chain.compiler import NODE_MODULES
from ledger.errors import ChainError

NODE_FILE = "node.json"
ANVIL_CHAIN_ID = 31337


def in_process_web3() -> Web3:
    """A fresh in-process chain (py-evm); gone when the process ends."""
    return Web3(EthereumTesterProvider())


def rpc_web3(url: str, *, timeout: float = 10.0, retries: int = 4,
             backoff: float = 0.25) -> Web3:
    """A JSON-RPC connection whose requests are retried, with exponential backoff, when the
    node refuses the connection, times out or answers 5xx (web3's default list names the
    builtin ``ConnectionError``, which ``requests`` does not raise). Re-sending a raw
    transaction is safe: the node answers "already known" or "nonce too low"."""
    if not url.startswith(("http://", "https://")):
        raise ChainError(f"{url!r} is not an http(s) JSON-RPC URL", field="rpc_url")
    retry = ExceptionRetryConfiguration(
        errors=(requests.ConnectionError, requests.Timeout, requests.HTTPError),
        retries=retries, backoff_factor=backoff) if retries > 0 else None
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout},
                                  exception_retry_configuration=retry))


def is_reachable(url: str) -> bool:
    try:
        return rpc_web3(url, timeout=2.0, retries=0).is_connected()
    except ChainError:
        return False


def anvil_binary() -> Path:
    local = NODE_MODULES / ".bin" / "anvil"
    if local.exists():
        return local
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ChainError("anvil not found: run `npm ci` (package @foundry-rs/anvil-linux-amd64)",
                     field="anvil")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedAnvil:
    """An anvil process on loopback whose state lives in ``state_dir``."""

    def __init__(self, state_dir: Path, *, port: int | None = None) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.state_dir / "anvil.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(
                [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
                 "--chain-id", str(ANVIL_CHAIN_ID), "--state", str(self.state_dir / "state.json"),
                 "--state-interval", "1", "--preserve-historical-states"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                umask=0o077)  # its state file: owner-only, like the rest of the data dir
        deadline = time.monotonic() + timeout
        while not is_reachable(self.url):
            if self._proc.poll() is not None:
                raise ChainError(f"anvil exited with {self._proc.returncode}; see "
                                 f"{self.state_dir / 'anvil.log'}", field="anvil")
            if time.monotonic() > deadline:
                self.stop()
                raise ChainError(f"anvil did not answer on {self.url}", field="anvil")
            time.sleep(0.1)

    def stop(self, *, timeout: float = 15.0) -> None:
        """SIGTERM, so anvil dumps its state; SIGKILL only if it will not go."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: the node dies as in a crash, its state only as of the last periodic dump."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def __enter__(self) -> ManagedAnvil:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_node_file(data_dir: Path) -> str | None:
    """The URL of a running ``carbon-ledger node`` for this data dir, if it answers."""
    try:
        info = json.loads((data_dir / NODE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    url = info.get("url")
    return url if isinstance(url, str) and is_reachable(url) else None


@contextmanager
def managed_node_url(data_dir: Path) -> Iterator[str]:
    """A running node's URL: the foreground ``node`` if one serves this data dir, else a
    node started here and stopped (its state dumped) when the block exits."""
    url = read_node_file(data_dir)
    if url:
        yield url
        return
    with ManagedAnvil(data_dir / "anvil") as node:
        yield node.url


@contextmanager
def node_file(data_dir: Path, url: str) -> Iterator[None]:
    path = data_dir / NODE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
