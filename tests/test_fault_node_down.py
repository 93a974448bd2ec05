"""The node goes away during sealing: stopped, killed, answering 5xx, too slow, or back
without its state. Real anvil processes; failures on the wire come from a real HTTP
proxy in front of the node.

A node that comes back with its state: sealing resumes, nothing lost or sent twice. A
node that comes back without it: reported (``AnchorMismatch``), and ``chain check``
lists every batch the chain no longer holds.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select

from api.cli.main import main
from chain.client import ChainKind
from chain.connect import connect_anchor
from chain.nodes import ManagedAnvil, free_port, rpc_web3
from ledger.backoff import retry_unavailable
from ledger.errors import AnchorMismatch, ChainUnavailable
from ledger.store.models import Batch
from tests.conftest import needs_anvil
from tests.fault_support import (
    Entries,
    SealProcess,
    anvil_sealer,
    assert_ledger_matches_chain,
    seal_env,
)

pytestmark = needs_anvil()



def restart_later(node: ManagedAnvil, seconds: float, state_dir: Path | None = None
                  ) -> threading.Thread:
    """Start a node on the same port after ``seconds``: on the same state, or another."""
    def start() -> None:
        time.sleep(seconds)
        if state_dir is not None:
            node.state_dir = state_dir
        node.start()

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("step", ["recorded", "broadcast", "mined"])
def test_a_node_stopped_mid_seal_and_back_with_its_state_lets_sealing_resume(
        db, node, step, caplog) -> None:
    entries, key = Entries(db), Account.create()
    entries.add(2)
    anvil_sealer(db, node.url, key, confirmations=2).seal()
    entries.add(3)
    stopped: list[threading.Thread] = []

    def stop_the_node(at: str, _batch_id: int) -> None:
        if at == step and not stopped:
            node.stop()  # SIGTERM: anvil dumps its state on the way out
            stopped.append(restart_later(node, 3.0))

    sealer = anvil_sealer(db, node.url, key, confirmations=2, on_step=stop_the_node)
    with caplog.at_level("WARNING", logger="carbon_ledger.chain"):
        done = retry_unavailable(sealer.seal, retry_for=60, what="sealing", first_wait=0.5)
    assert stopped and "the node did not answer" in caplog.text
    assert [b.id for b in done] == [2]
    stopped[0].join()
    assert_ledger_matches_chain(db, node.url, other_txs=1)


def test_a_node_killed_outright_restarts_from_its_last_dump_and_nothing_is_lost(db, node) -> None:
    """SIGKILL: the node keeps only its last periodic dump (once a second), so its newest
    blocks may be gone: a batch whose anchor went with them is sent again."""
    entries, key = Entries(db), Account.create()
    entries.add(2)
    anvil_sealer(db, node.url, key, confirmations=1).seal()
    time.sleep(1.5)  # batch 1 is in a dump now
    for _ in range(2):
        entries.add(2)
        anvil_sealer(db, node.url, key, confirmations=1).seal()
    node.kill()
    node.start()
    entries.add(1)
    anvil_sealer(db, node.url, key, confirmations=1).seal()
    assert_ledger_matches_chain(db, node.url, other_txs=1)


def test_seal_waits_for_a_node_that_is_down_when_it_starts(db, node, tmp_path) -> None:
    entries = Entries(db)
    key = "0x" + "7a" * 32
    log = tmp_path / "sealer.log"
    assert SealProcess(seal_env(db, node.url, tmp_path, key), log).wait() == 0
    entries.add(3)
    node.stop()
    comeback = restart_later(node, 4.0)
    proc = SealProcess(seal_env(db, node.url, tmp_path, key,
                                CARBON_LEDGER_SEAL_RETRY_FOR="60"), log)
    assert proc.wait() == 0, proc.output()
    comeback.join()
    assert "trying again in" in proc.output()
    assert_ledger_matches_chain(db, node.url, other_txs=1)


def test_seal_gives_up_on_a_node_that_stays_down_with_exit_5(db, tmp_path, capsys,
                                                               monkeypatch) -> None:
    Entries(db).add(1)
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    monkeypatch.setenv("CARBON_LEDGER_SEAL_RETRY_FOR", "2")
    down = f"http://127.0.0.1:{free_port()}"
    code = main(["seal", "--rpc", down, "--data-dir", str(tmp_path / "cli")])
    err = capsys.readouterr().err
    assert code == 5, err
    assert "chain-unavailable" in err and "connection refused" in err and "gave up" in err
    assert "Traceback" not in err


def test_a_node_back_without_its_state_is_reported_and_chain_check_lists_the_lost_batches(
        db, node, tmp_path, capsys, monkeypatch) -> None:
    entries, key = Entries(db), Account.create()
    sealer = anvil_sealer(db, node.url, key, confirmations=1)
    for _ in range(2):
        entries.add(2)
        sealer.seal()
    node.stop()
    restart_later(node, 0.0, state_dir=tmp_path / "amnesiac").join()  # same port, no state

    entries.add(1)
    with pytest.raises(AnchorMismatch, match="has no code .* lost its state"):
        sealer.seal()
    with pytest.raises(AnchorMismatch, match="lost its state"):
        connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, key, db)
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    capsys.readouterr()
    assert main(["chain", "check", "--rpc", node.url, "--data-dir", str(tmp_path / "cli")]) == 5
    captured = capsys.readouterr()
    report = captured.out + captured.err
    assert "anchor-mismatch" in report and "Traceback" not in report
    for batch_id in (1, 2):
        assert f"│ {batch_id}     │ missing on chain (the contract" in report, report
    with db.session() as s:  # nothing was papered over
        assert [b.status for b in s.scalars(select(Batch).order_by(Batch.id))] == [
            "anchored", "anchored"]


# -- failures on the wire: a proxy in front of the node -----------------------------------


class FlakyProxy:
    """Forwards JSON-RPC to the node; can answer 503 for a while, or forward a request
    and then answer too late (the client times out, the node did the work)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail_until = 0.0
        self.slow_methods: set[str] = set()
        self.seen: dict[str, int] = {"503": 0, "slow": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if time.monotonic() < proxy.fail_until:
                    proxy.seen["503"] += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                method = json.loads(body).get("method")
                request = urllib.request.Request(proxy.upstream, body,
                                                 {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    data = answer.read()
                if method in proxy.slow_methods:
                    proxy.slow_methods.discard(method)
                    proxy.seen["slow"] += 1
                    time.sleep(2.0)  # past the client's timeout: it will ask again
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_5xx_answers_and_timeouts_are_retried_without_losing_or_doubling_an_anchor(
        db, node) -> None:
    proxy = FlakyProxy(node.url)
    try:
        entries, key = Entries(db), Account.create()
        rpc = {"timeout": 1.0, "retries": 4, "backoff": 0.1}
        entries.add(2)
        anvil_sealer(db, proxy.url, key, rpc=rpc, confirmations=2).seal()

        entries.add(2)
        proxy.slow_methods.add("eth_sendRawTransaction")  # sent, but the answer is late

        def blip(step: str, _batch_id: int) -> None:
            if step == "broadcast":
                proxy.fail_until = time.monotonic() + 0.5  # within the provider's retries

        anvil_sealer(db, proxy.url, key, rpc=rpc, confirmations=2, on_step=blip).seal()
        assert proxy.seen["slow"] == 1 and proxy.seen["503"] > 0

        entries.add(2)
        outage: list[bool] = []

        def long_outage(step: str, _batch_id: int) -> None:
            if step == "recorded" and not outage:
                outage.append(True)
                proxy.fail_until = time.monotonic() + 5.0  # longer than the provider retries

        sealer = anvil_sealer(db, proxy.url, key, rpc=rpc, confirmations=2, on_step=long_outage)
        with pytest.raises(ChainUnavailable, match="HTTP 503"):
            sealer.seal()
        retry_unavailable(sealer.seal, retry_for=60, what="sealing", first_wait=0.5)
    finally:
        proxy.close()
    assert_ledger_matches_chain(db, node.url, other_txs=1)
