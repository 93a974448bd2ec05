"""What the fault tests share: a ledger with entries to seal, raw calls to a real anvil,
the sealer killed with SIGKILL at named steps, and the checks every fault must leave true.

Used by tests/test_fault_*.py and by ``scripts/fault_sigkill.py`` (more rounds).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select

from chain.client import ChainKind, EvmAnchor
from chain.connect import connect_anchor, open_reader
from chain.nodes import rpc_web3
from ledger import accounts
from ledger.anchor_audit import anchored_batch
from ledger.bundle import ProofBundle
from ledger.intake.service import submit_records
from ledger.proofs import TreeCache, proof_bundle
from ledger.sealing import STEPS, Sealer, SealOptions
from ledger.store.database import Database
from ledger.store.models import Batch, LedgerEntry, Partner
from ledger.verification import TrustRoot, Verdict, verify_bundle
from tests.conftest import a_record

ROOT = Path(__file__).resolve().parents[1]
#: Between "entries chosen" and "anchor confirmed": every step the sealer announces.
KILL_POINTS = STEPS


def anvil_call(url: str, method: str, params: Sequence[Any] = ()) -> Any:
    """One raw JSON-RPC call (anvil's own methods: reorgs, mining, base fee)."""
    answer = rpc_web3(url).provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in answer:
        raise AssertionError(f"{method}: {answer['error']}")
    return answer.get("result")


class Entries:
    """Credits to seal: each record from a new citizen, so no cap or de-duplication
    rule holds one back."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.session(write_lock=True) as s:
            self.partner: Partner = accounts.create_partner(
                s, code="greenbike", name="greenbike", kind="bike_share",
                signing_address=bytes.fromhex(Account.create().address[2:]))
        self.added = 0

    def add(self, n: int) -> None:
        with self.db.session(write_lock=True) as s:
            citizens = [accounts.create_citizen(s, pseudonym=None).pseudonym for _ in range(n)]
        records = [a_record(c, quantity=1000 + self.added + i, hours_ago=1.0)
                   for i, c in enumerate(citizens)]
        with self.db.session(write_lock=True) as s:
            result = submit_records(s, partner=s.merge(self.partner), records=records)
        assert result.count("accepted") == n, [o for o in result.outcomes if o.status != "accepted"]
        self.added += n


def anvil_sealer(db: Database, url: str, signer: LocalAccount | None = None, *,
                 rpc: dict[str, Any] | None = None, **options: Any) -> Sealer:
    """A sealer in this process, anchoring on the anvil at ``url`` (deployed once per
    ledger), polling fast; ``options`` as :class:`SealOptions`, ``rpc`` as rpc_web3's."""
    anchor = connect_anchor(rpc_web3(url, **(rpc or {})), ChainKind.ANVIL,
                            signer or Account.create(), db)
    options = {"workers": 1, "poll_interval": 0.05, "receipt_timeout": 60.0, **options}
    return Sealer(db, anchor, SealOptions(**options))


def chain_reader(db: Database, url: str) -> EvmAnchor:
    reader = open_reader(rpc_web3(url), db)
    assert reader is not None, "the ledger never deployed to this chain"
    return reader


def anchor_events(reader: EvmAnchor) -> list[int]:
    """Batch ids of every ``BatchAnchored`` event the contract ever emitted, in order."""
    logs = reader._contract.events.BatchAnchored().get_logs(from_block=0)
    return [int(log["args"]["batchId"]) for log in logs]


def assert_batches_partition_entries(db: Database) -> list[Batch]:
    """Batch ids 1..n; their ranges disjoint, contiguous, in order; the entries they cover
    exist. (The tail after the last batch may be unbatched.)"""
    with db.session() as s:
        batches = list(s.scalars(select(Batch).order_by(Batch.id)))
        seqs = list(s.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)))
    assert [b.id for b in batches] == list(range(1, len(batches) + 1))
    covered = [seq for b in batches for seq in seqs if b.first_seq <= seq <= b.last_seq]
    assert covered == sorted(set(covered)), "an entry is in two batches"
    assert covered == seqs[:len(covered)], "an entry was skipped"
    for a, b in zip(batches, batches[1:], strict=False):
        assert a.last_seq < b.first_seq
    return batches


def assert_ledger_matches_chain(db: Database, url: str, *, other_txs: int | None = None,
                                ) -> list[Batch]:
    """Every entry in exactly one anchored batch; ids 1..n on chain, each once, with the
    ledger's roots; every proof verifies against the chain alone. With ``other_txs``
    (e.g. 1, the deployment), the anchoring key sent exactly one transaction per batch
    beyond those: no anchor went out twice."""
    batches = assert_batches_partition_entries(db)
    with db.session() as s:
        entries = int(s.scalar(select(func.count()).select_from(LedgerEntry)) or 0)
        ids = list(s.scalars(select(LedgerEntry.entry_id).order_by(LedgerEntry.seq)))
    assert sum(b.leaf_count for b in batches) == entries, "some entry is in no batch"
    assert all(b.status == "anchored" for b in batches), [(b.id, b.status) for b in batches]
    reader = chain_reader(db, url)
    assert reader.latest_batch_id() == len(batches)
    assert anchor_events(reader) == [b.id for b in batches], "a batch anchored twice or not at all"
    for b in batches:
        on_chain = anchored_batch(reader, b.id)
        assert on_chain is not None
        assert (on_chain.root, on_chain.leaf_count, on_chain.content_hash, on_chain.tx_hash,
                on_chain.block_number) == (b.root, b.leaf_count, b.content_hash, b.tx_hash,
                                           b.block_number)
    cache = TreeCache(size=len(batches) + 1)
    for entry_id in ids:
        with db.session() as s:
            bundle = proof_bundle(s, entry_id, cache=cache)
        verify_own_bundle(bundle, reader)
    if other_txs is not None and batches:
        assert batches[-1].tx_hash is not None
        sender = reader.w3.eth.get_transaction(batches[-1].tx_hash)["from"]  # type: ignore[arg-type]
        assert reader.w3.eth.get_transaction_count(sender) == len(batches) + other_txs
    return batches


def verify_own_bundle(bundle: dict, reader: Any) -> Verdict:  # type: ignore[type-arg]
    """Verify a bundle of the ledger under test, pinning the deployment the test made."""
    trusted = TrustRoot(reader.chain_id, reader.contract_address, "the test's deployment")
    return verify_bundle(ProofBundle.from_json(bundle), reader, trusted=trusted)


# -- the sealer as a process that can be killed ------------------------------------------


def seal_env(db: Database, url: str, data_dir: Path, key: str, **extra: str) -> dict[str, str]:
    """The environment of a `carbon-ledger seal` against ``url`` and ``db``."""
    return {"CARBON_LEDGER_DATA_DIR": str(data_dir), "CARBON_LEDGER_DATABASE_URL": db.url,
            "CARBON_LEDGER_CHAIN": "anvil", "CARBON_LEDGER_RPC_URL": url,
            "CARBON_LEDGER_ANCHOR_KEY": key, "CARBON_LEDGER_CONFIRMATIONS": "2",
            "CARBON_LEDGER_SEAL_WORKERS": "1", **extra}


def _forked_seal(env: dict[str, str], log_path: str) -> None:
    """In a forked child: `carbon-ledger seal` as the console script runs it, its stderr
    (where the fault hook speaks) to ``log_path``."""
    from api.cli.main import main

    os.environ.update(env)
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - the process ends with it
    os.dup2(log.fileno(), 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stderr, sys.stdout = log, open(os.devnull, "w")  # noqa: SIM115
    os._exit(main(["seal"]))


class SealProcess:
    """One `carbon-ledger seal`, forked from this (already imported) interpreter, or, with
    ``exec_cli``, a fresh Python running the console script's entry point."""

    def __init__(self, env: dict[str, str], log_path: Path, *, exec_cli: bool = False) -> None:
        self.log_path = log_path
        self._start = log_path.stat().st_size if log_path.exists() else 0
        if exec_cli:
            with log_path.open("ab") as log:
                self._popen: subprocess.Popen[bytes] | None = subprocess.Popen(
                    [sys.executable, "-c", "from api.cli.main import run; run()", "seal"],
                    env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
            self._fork = None
            self.pid = self._popen.pid
        else:
            self._popen = None
            self._fork = multiprocessing.get_context("fork").Process(
                target=_forked_seal, args=(env, str(log_path)), daemon=True)
            self._fork.start()
            assert self._fork.pid is not None
            self.pid = self._fork.pid

    def output(self) -> str:
        with self.log_path.open() as f:
            f.seek(self._start)
            return f.read()

    def exit_code(self) -> int | None:
        if self._popen is not None:
            return self._popen.poll()
        assert self._fork is not None
        return self._fork.exitcode

    def wait_for_pause(self, timeout: float = 60.0) -> str | None:
        """The step it stopped at, or None if it ended without stopping."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if line.startswith("fault-pause: "):
                    return line.split()[1]
            if self.exit_code() is not None:
                return None
            time.sleep(0.01)
        raise AssertionError(f"the sealer neither paused nor ended in {timeout}s:\n{self.output()}")

    def kill(self) -> bool:
        """SIGKILL; True if it was still running."""
        alive = self.exit_code() is None
        if alive:
            os.kill(self.pid, signal.SIGKILL)
        self.wait()
        return alive

    def wait(self, timeout: float = 120.0) -> int:
        if self._popen is not None:
            return self._popen.wait(timeout)
        assert self._fork is not None
        self._fork.join(timeout)
        assert self._fork.exitcode is not None, "the sealer did not end"
        return self._fork.exitcode


@dataclass
class KillReport:
    rounds: int = 0
    kills: int = 0
    by_point: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    seconds: float = 0.0


def sigkill_rounds(db: Database, url: str, data_dir: Path, *, rounds: int, seed: int,
                   entries: Entries, random_every: int = 4, exec_cli: bool = False,
                   after_each: Callable[[], None] | None = None) -> KillReport:
    """``rounds`` times: add a few entries, start a sealer, SIGKILL it at the next named
    step in turn (every ``random_every``-th round: after a random time within one seal's
    length instead), check what must hold even mid-way. Ends with one sealer left to
    finish."""
    rng = random.Random(seed)
    key = "0x" + rng.randbytes(32).hex()
    log_path = data_dir / "sealer.log"
    report, started = KillReport(), time.monotonic()
    assert SealProcess(seal_env(db, url, data_dir, key), log_path, exec_cli=exec_cli).wait() == 0
    entries.add(2)
    timed = time.monotonic()
    assert SealProcess(seal_env(db, url, data_dir, key), log_path, exec_cli=exec_cli).wait() == 0
    window = time.monotonic() - timed  # one whole seal, start-up included
    named = 0
    for k in range(rounds):
        entries.add(rng.randint(1, 3))
        point = None
        if random_every <= 0 or k % random_every != random_every - 1:
            point, named = KILL_POINTS[named % len(KILL_POINTS)], named + 1
        extra = {"CARBON_LEDGER_FAULT_PAUSE": point} if point else {}
        proc = SealProcess(seal_env(db, url, data_dir, key, **extra), log_path, exec_cli=exec_cli)
        if point is not None:
            label = proc.wait_for_pause() or "completed"
        else:
            time.sleep(rng.uniform(0.0, window))
            label = "random"
        if proc.kill():
            report.kills += 1
            report.by_point[label] = report.by_point.get(label, 0) + 1
        else:
            report.completed += 1
            assert proc.exit_code() == 0, proc.output()
        report.rounds += 1
        assert_batches_partition_entries(db)
        if after_each is not None:
            after_each()
    final = SealProcess(seal_env(db, url, data_dir, key), log_path, exec_cli=exec_cli)
    assert final.wait() == 0, final.output()
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
