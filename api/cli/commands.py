"""The CLI's commands, each a thin call into a ledger service."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.base import (
    Chain,
    DataDir,
    Json,
    RpcUrl,
    admin_app,
    app,
    batch_app,
    chain_app,
    db_app,
    emit_json,
    err,
    local_time,
    option_names,
    out,
    print_table,
    table,
)
from api.cli.files import atomic_writer, read_records
from api.composition import Container, chain_head, compile_contract, container
from ledger import accounts, listings, views
from ledger.backoff import retry_unavailable
from ledger.entries import parse_entry_id
from ledger.errors import AnchorMismatch, InvalidInput
from ledger.intake.service import outcome_json, submit_records
from ledger.methodology import partner_kinds, submission_window
from ledger.proofs import write_oz_dump
from ledger.redemption import redeem
from ledger.statements import period_label
from ledger.store.models import Batch, Reward, Statement


@app.command()
def compile(data_dir: DataDir = None) -> None:  # noqa: A001 - the command's name
    """Recompile contracts/CarbonLedgerAnchor.sol and rewrite its committed artifact."""
    path, artifact = compile_contract()
    out.print(f"wrote {path} (solc {artifact['compiler']['build']}, "
              f"sources {artifact['sourceHash'][:18]}…)")


@app.command()
def node(data_dir: DataDir = None,
         port: Annotated[int | None, typer.Option(
             help="port on 127.0.0.1 (default: a free port, printed at start)")] = None) -> None:
    """Run the managed local anvil node in the foreground; its state stays in the data dir."""
    c = container(data_dir)
    # SIGTERM ends the node like Ctrl-C: its state is dumped and node.json removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt), c.foreground_node(port) as anvil:
        print(anvil.url, flush=True)
        anvil.wait()


class _LogToStderr(logging.Handler):
    """The sealer's warnings (retries, replacements, re-anchoring) as lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"{record.levelname.lower()}: {record.getMessage()}", highlight=False)


def _log_to_stderr() -> None:
    logger = logging.getLogger("carbon_ledger")
    if not any(isinstance(h, _LogToStderr) for h in logger.handlers):
        logger.addHandler(_LogToStderr(logging.INFO))
    logger.setLevel(logging.INFO)


@app.command()
def seal(data_dir: DataDir = None, chain: Chain = None, rpc: RpcUrl = None) -> None:
    """Seal every unbatched entry into the next batch and anchor its root.

    A node that does not answer is tried again, with backoff, for CARBON_LEDGER_SEAL_RETRY_FOR
    seconds: what is done is in the database, so nothing is lost or sent twice."""
    c = container(data_dir, chain, rpc)
    _log_to_stderr()

    def seal_once() -> tuple[list[Batch], list[int], list[int]]:
        with c.anchor() as anchor:
            sealer = c.sealer(anchor)
            return sealer.seal(), sealer.reanchored, sealer.moved

    batches, reanchored, moved = retry_unavailable(
        seal_once, retry_for=c.settings.seal_retry_for, what="sealing")
    if reanchored:
        out.print(f"batches {reanchored[0]}..{reanchored[-1]} had gone missing on chain and "
                  "were anchored again under the same ids")
    if moved:
        out.print(f"batches {', '.join(map(str, moved))}: a reorg mined their anchor again in "
                  "another block; their proofs now name it")
    if not batches:
        out.print("nothing to seal")
    for b in batches:
        out.print(f"batch {b.id}: {b.leaf_count} entries, root 0x{b.root.hex()}, "
                  f"tx 0x{b.tx_hash.hex() if b.tx_hash else '-'} in block {b.block_number}")


@app.command()
def proof(entry_id: Annotated[str, typer.Argument(help="0x-hex entry id, as the dump prints it")],
          data_dir: DataDir = None,
          out_file: Annotated[Path | None, typer.Option("--out")] = None) -> None:
    """Print an entry's self-contained proof bundle."""
    c = container(data_dir)
    emit_json(c.proof_service().bundle(parse_entry_id(entry_id)), out_file)


@app.command()
def serve(data_dir: DataDir = None, chain: Chain = None, rpc: RpcUrl = None,
          host: Annotated[str, typer.Option()] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000,
          sealer: Annotated[bool, typer.Option(help="seal and anchor in the background")] = True,
          access_log: Annotated[bool, typer.Option(help="log every request")] = True,
          workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1
          ) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and seal in the background.

    Each worker is its own process over the same database and chain, watched by a parent
    that starts a new one if a worker dies (one worker too), so a crash costs the requests
    in flight, not the service. The managed node (if no --rpc is given) is started here
    once and shared by all of them."""
    import os

    import uvicorn

    c = container(data_dir, chain, rpc)
    c.db  # noqa: B018 - refuse a schema not at head (exit 6) before anything starts
    # httptools and uvloop (pinned): the C parser and loop cost a fraction of h11's and
    # asyncio's per request. httptools bounds no header, so the protocol is uvicorn's
    # httptools one with a bound on a request's head (431 past 64 KiB, api.http.limits).
    options = {"host": host, "port": port, "log_level": "info", "access_log": access_log,
               "http": "api.http.limits:BoundedHttpTools", "loop": "uvloop"}
    if c.settings.chain == "tester":
        if workers != 1:
            raise InvalidInput("an in-process chain cannot be shared by several workers",
                               field="workers")
        _serve_in_process(c, sealer, options)  # tests only: the chain dies with the process
        return
    os.environ.update({"CARBON_LEDGER_DATA_DIR": str(c.settings.data_dir),
                       "CARBON_LEDGER_CHAIN": c.settings.chain,
                       "CARBON_LEDGER_RUN_SEALER": "1" if sealer else "0"})
    if c.settings.database_url:
        os.environ["CARBON_LEDGER_DATABASE_URL"] = c.settings.database_url
    c.signer  # noqa: B018 - make the dev key once, before the workers race to
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(c.node_url())
        os.environ["CARBON_LEDGER_RPC_URL"] = url
        shared = container(c.settings.data_dir, c.settings.chain, url)
        with shared.anchor():  # deploy (once) here, so the workers never race to deploy
            pass
        # A spawned worker re-imports the CLI before it can answer the supervisor's first
        # health check; on a busy host that took over uvicorn's default 5 s, and every
        # worker was killed and replaced as it started (seen in the walkthroughs' runs).
        _supervise(uvicorn.Config("api.http.app:app_from_environment", factory=True,
                                  workers=workers, timeout_worker_healthcheck=60,
                                  **options))  # type: ignore[arg-type]


def _serve_in_process(c: Container, sealer: bool, options: dict[str, Any]) -> None:
    import uvicorn

    from api.http.app import create_app, settle_heap

    served = create_app(c, run_sealer=sealer)
    settle_heap()
    uvicorn.run(served, **options)


def _supervise(config: Any) -> None:
    """uvicorn's own supervisor (what ``uvicorn.run`` uses for several workers), for one
    worker as well: it replaces a worker that dies or stops answering its health check."""
    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


@admin_app.command("key-add")
def key_add(role: Annotated[str, typer.Argument(help="partner | auditor")],
            partner: Annotated[str | None, typer.Option(help="partner code")] = None,
            data_dir: DataDir = None) -> None:
    """Issue an API key (printed once; only its hash is kept)."""
    from ledger.credentials import issue_api_key

    c = container(data_dir)
    with option_names(partner="--partner"), c.db.session(write_lock=True) as s:
        owner = accounts.get_partner(s, partner) if partner else None
        print(issue_api_key(s, role=role, partner=owner))


@admin_app.command("token-add")
def token_add(citizen: str, data_dir: DataDir = None) -> None:
    """Issue a citizen's bearer token (printed once; only its hash is kept)."""
    from ledger.credentials import issue_citizen_token

    c = container(data_dir)
    with c.db.session(write_lock=True) as s:
        print(issue_citizen_token(s, citizen=accounts.get_citizen(s, citizen)))


@admin_app.command("revoke")
def revoke_cmd(key: str, data_dir: DataDir = None) -> None:
    """Revoke an API key or citizen token (by the credential or its key id)."""
    from ledger.credentials import revoke

    c = container(data_dir)
    with c.db.session(write_lock=True) as s:
        revoke(s, key)
    out.print("revoked")


@batch_app.command("list")
def batch_list(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List batches: id, entries, status, block, sealed and anchored (local time), root, tx."""
    c = container(data_dir)
    with c.db.session(snapshot=True) as s:
        batches = [views.batch_view(b) for b in views.all_batches(s)]
    if as_json:
        emit_json(batches, None)
        return
    print_table(f"batches ({len(batches)})",
                ["id", "entries", "status", "block", "sealed", "anchored", "root", "tx"],
                [[b["batchId"], b["leafCount"], b["status"], b["blockNumber"],
                  local_time(b["sealedAt"]), local_time(b["anchoredAt"]), b["root"], b["txHash"]]
                 for b in batches], ids=("root", "tx"))


@batch_app.command("export")
def batch_export(batch_id: Annotated[int, typer.Argument(min=1, max=2**62)],
                 out_file: Annotated[Path, typer.Option("--out")],
                 data_dir: DataDir = None) -> None:
    """Write a batch as OpenZeppelin's StandardMerkleTree dump JSON (whole, or not at all)."""
    c = container(data_dir)
    with c.db.session(snapshot=True) as s, atomic_writer(out_file) as f:
        n = write_oz_dump(s, batch_id, f)
    out.print(f"wrote batch {batch_id} ({n} leaves) to {out_file}")


@app.command()
def submit(partner: Annotated[str, typer.Option(help="partner code")],
           records_file: Annotated[Path, typer.Argument(help="JSON array or .ndjson of records")],
           data_dir: DataDir = None, as_json: Json = False) -> None:
    """Submit a partner's activity records (as the operator, on the partner's behalf).

    Prints the summary first, then each rejected record by its line (NDJSON) or its
    place in the array (from 1); --json prints every record's outcome."""
    c = container(data_dir)
    records, numbers, unit = read_records(records_file, c.settings.max_body_bytes)
    with c.db.session(write_lock=True) as s:
        with option_names(partner="--partner"):
            who = accounts.get_partner(s, partner)
        result = submit_records(s, partner=who, records=records,
                                window=submission_window(int(time.time())))
    if as_json:
        emit_json({**result.counts, "reductionGrams": result.grams,
                   "records": [{**outcome_json(o), unit: numbers[o.index]}
                               for o in result.outcomes]}, None)
        return
    out.print(f"{result.count('accepted')} accepted, {result.count('duplicate')} duplicate, "
              f"{result.count('rejected')} rejected; {result.grams} g CO2e credited",
              highlight=False)
    for o in result.outcomes:
        if o.status == "rejected":
            out.print(f"{unit} {numbers[o.index]} ({o.record_id or 'no record_id'}): rejected, "
                      f"{o.field}: {o.reason}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def balance(citizen: Annotated[str, typer.Argument(help="the citizen's pseudonym")],
            data_dir: DataDir = None,
            rpc: Annotated[str | None, typer.Option(
                "--rpc", help="a JSON-RPC URL of the chain: each anchored entry's "
                              "confirmations too (env CARBON_LEDGER_RPC_URL)")] = None,
            as_json: Json = False) -> None:
    """A citizen's points and entries (local time), each with its status: pending (not yet
    sealed), sealed, submitted or anchored (in a block; with --rpc, its confirmations); a
    redemption is a debit naming its reward. The entry id is what `proof` takes."""
    c = container(data_dir, rpc=rpc)
    with c.db.session(snapshot=True) as s:
        who = accounts.get_citizen(s, citizen)
        entries = listings.citizen_ledger(s, who.id)
        points = accounts.balance(s, who.id)
    if c.settings.rpc_url and any(e["blockNumber"] for e in entries):
        head = chain_head(c.settings.rpc_url)
        for e in entries:
            if e["blockNumber"]:
                e["confirmations"] = max(0, head - e["blockNumber"] + 1)
    if as_json:
        emit_json({"citizen": citizen, "points": points, "entries": entries}, None)
        return
    offset = local_time(0)[-6:]
    rows = [[local_time(e["occurredAt"])[:-6], e["kind"],
             e["reward"]["title"] if "reward" in e else e["behaviour"],
             e["reductionGrams"] if e["kind"] == "credit" else "",
             f"{e['points']:+}",
             e["status"] + (f", block {e['blockNumber']}" if e["blockNumber"] else "")
             + (f", {e['confirmations']} conf." if "confirmations" in e else ""), e["entryId"]]
            for e in entries]
    print_table(f"{citizen}: {points} points", [f"when (UTC{offset})", "kind", "what", "g CO2e",
                                                "points", "status", "entry"], rows, ids=("entry",))


@app.command("redeem")
def redeem_cmd(citizen: str, reward: str,
               key: Annotated[str, typer.Option(help="idempotency key")],
               data_dir: DataDir = None) -> None:
    """Redeem a reward for a citizen (the same --key never debits twice)."""
    c = container(data_dir)
    operator = c.operator_address
    with option_names(idempotency_key="--key"), c.db.session(write_lock=True) as s:
        who = accounts.get_citizen(s, citizen)
        r, replay = redeem(s, citizen=who, reward_code=reward, idempotency_key=key,
                           operator_address=operator)
        title, left = s.get_one(Reward, r.reward_id).title, accounts.balance(s, who.id)
    out.print(f"{'replayed' if replay else 'redeemed'}: {title}, a debit of {r.points} points "
              f"(balance {left}), entry 0x{r.entry_id.hex()}", highlight=False, soft_wrap=True)


@admin_app.command("partner-add")
def partner_add(code: Annotated[str, typer.Argument(help="the partner's code (lower case)")],
                kind: Annotated[str, typer.Argument(
                    help=f"one of: {', '.join(partner_kinds())}")],
                address: Annotated[str, typer.Option(
                    help="the partner's Ethereum signing address, 0x + 40 hex digits "
                         "(`carbon-ledger partner keygen` prints one)")],
                name: Annotated[str | None, typer.Option()] = None,
                data_dir: DataDir = None) -> None:
    """Register a partner with its Ethereum signing address."""
    c = container(data_dir)
    with c.db.session(write_lock=True) as s:
        accounts.create_partner(s, code=code, name=name or code, kind=kind,
                                signing_address=accounts.parse_address(address))
    out.print(f"partner {code} registered")


@admin_app.command("citizen-add")
def citizen_add(pseudonym: Annotated[str | None, typer.Argument()] = None,
                data_dir: DataDir = None) -> None:
    """Open a citizen account under a pseudonym (random if none is given)."""
    c = container(data_dir)
    with c.db.session(write_lock=True) as s:
        print(accounts.create_citizen(s, pseudonym=pseudonym).pseudonym)


@admin_app.command("citizen-erase")
def citizen_erase(pseudonym: str, data_dir: DataDir = None,
                  yes: Annotated[bool, typer.Option("--yes", "-y",
                                                    help="do not ask for confirmation")] = False
                  ) -> None:
    """Erase a citizen: their salt and pseudonym go, their leaves stay (unlinkable).
    Cannot be undone; asks first unless --yes."""
    c = container(data_dir)
    with c.db.session(snapshot=True) as s:
        accounts.get_citizen(s, pseudonym)  # a typo is "not found" before any question
    if not yes and not typer.confirm(f"erase citizen {pseudonym}? Their entries can never be "
                                     "linked to them again", err=True):
        raise typer.Abort()
    with c.db.session(write_lock=True) as s:
        accounts.erase_citizen(s, accounts.get_citizen(s, pseudonym))
    out.print(f"citizen {pseudonym} erased")


@admin_app.command("reward-set")
def reward_set(code: str, title: str,
               cost: Annotated[int, typer.Option(help="its cost in points")],
               stock: Annotated[int, typer.Option(help="how many are left")],
               data_dir: DataDir = None) -> None:
    """Add a reward to the catalogue or change its cost and stock."""
    c = container(data_dir)
    with option_names(points_cost="--cost", stock="--stock", title="TITLE", code="CODE"), \
            c.db.session(write_lock=True) as s:
        accounts.upsert_reward(s, code=code, title=title, points_cost=cost, stock=stock)
    out.print(f"reward {code}: {cost} points, stock {stock}")


@chain_app.command("check")
def chain_check(data_dir: DataDir = None, chain: Chain = None, rpc: RpcUrl = None,
                as_json: Json = False) -> None:
    """List every anchored batch, month statement, published campaign version and ranking
    root whose on-chain record is missing or differs (or whose anchoring transaction is
    gone); exit 5 if there is any.

    Reads only: no key is needed and nothing is deployed. `carbon-ledger seal` anchors
    again a missing tail (a deep reorg, a node restored from an older state)."""
    from api.composition import campaign_reader, statement_reader
    from ledger.anchor_audit import BatchProblem, chain_problems
    from ledger.campaign_anchoring import campaign_chain_problems
    from ledger.statement_audit import StatementProblem, statement_chain_problems, stored_statements

    c = container(data_dir, chain, rpc)
    if c.settings.chain == "tester":
        raise InvalidInput("an in-process chain lives only as long as one command: there is "
                           "nothing to check", field="chain")

    def stored() -> tuple[list[Batch], list[Statement]]:
        with c.db.session() as s:
            return views.all_batches(s), stored_statements(s)

    def check(url: str) -> tuple[list[Batch], list[Statement], list[BatchProblem],
                                 list[StatementProblem], tuple[int, list[tuple[str, str]]]]:
        reader = c.ledger_reader(url)
        if reader is None or not reader.has_code():
            why = ("this ledger never deployed to the node's chain" if reader is None else
                   f"the contract {reader.contract_address} has no code: the node lost its state")
            batches, statements = stored()
            return (batches, statements, chain_problems(None, batches, why_missing=why),
                    statement_chain_problems(None, statements),
                    campaign_chain_problems(c.db, None))
        month_reader = statement_reader(url, reader.contract_address)
        # the chain's tails first, then the ledger: a running server may anchor meanwhile
        batch_tail, month_tail = reader.latest_batch_id(), month_reader.latest_statement()[0]
        batches, statements = stored()
        return (batches, statements, chain_problems(reader, batches, chain_tail=batch_tail),
                statement_chain_problems(month_reader, statements, chain_tail=month_tail),
                campaign_chain_problems(c.db, campaign_reader(url, reader.contract_address)))

    with c.node_url() as url:
        batches, statements, problems, month_problems, (pinned, campaign_problems) = check(url)
    anchored = sum(1 for b in batches if b.status == "anchored")
    waiting = len(batches) - anchored
    note = f" ({waiting} more not anchored yet)" if waiting else ""
    months = sum(1 for st in statements if st.status == "anchored")
    if as_json:
        emit_json({"anchored": anchored, "notAnchoredYet": waiting,
                   "problems": [{"batchId": p.batch_id, "problem": p.problem}
                                for p in problems],
                   "statements": {"anchored": months, "problems": [
                       {"month": period_label(p.period), "problem": p.problem}
                       for p in month_problems]},
                   "campaigns": {"anchored": pinned, "problems": [
                       {"anchor": label, "problem": problem}
                       for label, problem in campaign_problems]}}, None)
    else:
        if problems:
            out.print(table("batches not matching the chain", ["batch", "problem"],
                            [[p.batch_id, p.problem] for p in problems]))
        if month_problems:
            out.print(table("month statements not matching the chain", ["month", "problem"],
                            [[period_label(p.period), p.problem] for p in month_problems]))
        if campaign_problems:
            out.print(table("campaign anchors not matching the chain", ["anchor", "problem"],
                            [list(p) for p in campaign_problems]))
    count = len(problems) + len(month_problems) + len(campaign_problems)
    if count:
        raise AnchorMismatch(f"{count} problem(s) with the {anchored} anchored batches{note}, "
                             f"{months} month statements and {pinned} campaign anchors: the "
                             "chain does not hold them as the ledger says", field="batches")
    if not as_json:
        out.print(f"all {anchored} anchored batches match the chain{note}")
        out.print(f"all {months} anchored month statements match the chain")
        out.print(f"all {pinned} campaign versions and ranking roots match the chain")


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Migrate the database's schema to this version's head (after an update, before serve)."""
    from ledger.store.database import make_engine
    from ledger.store.schema import upgrade_schema

    engine = make_engine(container(data_dir).settings.db_url)
    try:
        before, after = upgrade_schema(engine)
    finally:
        engine.dispose()
    if before.current == after.current:
        out.print(f"already at head {after.head}")
    else:
        out.print(f"upgraded from {before.current or 'an empty database'} to {after.current}")


@db_app.command("current")
def db_current(data_dir: DataDir = None) -> None:
    """Print the database's schema revision and this version's head; exit 6 unless equal."""
    from ledger.errors import SchemaOutOfDate
    from ledger.store.database import make_engine
    from ledger.store.schema import schema_status

    engine = make_engine(container(data_dir).settings.db_url)
    try:
        status = schema_status(engine)
    finally:
        engine.dispose()
    print(f"{engine.url.render_as_string(hide_password=True)}: current {status.current or '-'}, "
          f"head {status.head}")  # one unwrapped line, for scripts
    if not status.up_to_date:
        raise SchemaOutOfDate(f"the database is {status.describe()}: run `carbon-ledger db upgrade`",
                              field="schema")
