"""`campaign …`: green-life seasons (#21). The operator publishes a campaign file (its
rules hash pinned on chain before it starts), awards bonuses, closes and anchors the
ranking; a citizen joins under a nickname and follows their progress and rank; anyone
checks a file against the pinned hash, reads the board and audits the ranking
(docs/campaigns.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.base import Chain, DataDir, Json, RpcUrl, app, emit_json, out, print_table
from api.composition import campaign_reader, container
from ledger import accounts, campaign_anchoring, campaign_bonuses, campaigns, ranking_audit, rankings
from ledger.campaign_rules import MAX_CAMPAIGN_BYTES
from ledger.errors import InvalidInput, VerificationError
from ledger.green_credit_issue import anchoring_turn
from ledger.hashing import parse_hex32
from ledger.json_input import read_bounded, read_json_file

campaign_app = typer.Typer(no_args_is_help=True, help="Campaigns: publish, bonuses, close "
                           "the ranking (operator); join, progress, proof (citizen); list, "
                           "show, check, board, audit (anyone).")
ranking_app = typer.Typer(no_args_is_help=True, help="A campaign's ranking: close and "
                          "anchor it (operator), the public board, a citizen's proof.")
app.add_typer(campaign_app, name="campaign")
campaign_app.add_typer(ranking_app, name="ranking")

CampaignId = Annotated[str, typer.Argument(help="the campaign's id, as its file names it")]
Citizen = Annotated[str, typer.Argument(help="the citizen's pseudonym")]
CampaignFile = Annotated[Path, typer.Argument(help="the campaign file (JSON)")]


def _read(path: Path) -> bytes:
    return read_bounded(path, field="FILE", max_bytes=MAX_CAMPAIGN_BYTES)


@campaign_app.command("publish")
def publish_cmd(file: CampaignFile, data_dir: DataDir = None, chain: Chain = None,
                rpc: RpcUrl = None) -> None:
    """Publish a campaign version: store it, register its offers as rewards, and pin its
    rules hash on chain (refused once it has started, or if the version is pinned with
    other rules: a correction is a new version)."""
    text = _read(file)
    c = container(data_dir, chain, rpc)
    with c.anchor() as anchor, anchoring_turn(c.db):
        campaign = campaign_anchoring.publish(c.db, c.campaign_chain(anchor), text)
    out.print(f"campaign {campaign.id} v{campaign.version} published: key 0x{campaign.key.hex()}, "
              f"rules hash 0x{campaign.rules_hash.hex()}, {campaign.starts.isoformat()} to "
              f"{campaign.ends.isoformat()}", highlight=False, soft_wrap=True)


@campaign_app.command("list")
def list_cmd(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Every published campaign version: id, version, dates, title, rules hash."""
    c = container(data_dir)
    with c.db.session() as s:
        rows = campaigns.campaign_summaries(s)
    if as_json:
        emit_json(rows, None)
        return
    print_table("campaigns", ["id", "version", "starts", "ends", "title", "rules hash"],
                [[r["id"], r["version"], r["starts"], r["ends"],
                  f"{r['title']['zh-CN']} / {r['title']['en']}", r["rulesHash"]]  # type: ignore[index]
                 for r in rows], ids=["rules hash"])


@campaign_app.command("show")
def show_cmd(campaign_id: CampaignId, data_dir: DataDir = None) -> None:
    """A campaign's current rules (JSON, as published), its key, hash and publication."""
    c = container(data_dir)
    with c.db.session() as s:
        campaign = campaigns.current(s, campaign_id)
        row = s.get(campaigns.CampaignRow, campaign.key)
        emit_json(campaigns.summary(campaign, row), None)


@campaign_app.command("check")
def check_cmd(file: CampaignFile,
              rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain")],
              contract: Annotated[str, typer.Option(help="the anchor contract's address")]
              ) -> None:
    """Check a campaign file against the hash the contract pins for its id and version:
    exit 1 if it is not the published file."""
    campaign = campaign_anchoring.check_file(campaign_reader(rpc, contract), _read(file))
    out.print(f"{campaign.id} v{campaign.version}: rules hash 0x{campaign.rules_hash.hex()} "
              "is the one pinned on chain", highlight=False, soft_wrap=True)


@campaign_app.command("bonuses")
def bonuses_cmd(data_dir: DataDir = None) -> None:
    """Award the bonus points published campaigns owe for credits not looked at yet
    (serving processes also do it after each seal)."""
    c = container(data_dir)
    looked = campaign_bonuses.award_bonuses(c.db, c.operator_address)
    out.print(f"{looked} credit(s) looked at")


@campaign_app.command("join")
def join_cmd(campaign_id: CampaignId, citizen: Citizen,
             nickname: Annotated[str, typer.Option(help="the name shown on the public board "
                                                        "(no personal data)")],
             data_dir: DataDir = None) -> None:
    """Opt in to a campaign's public ranking under a nickname (again: change it)."""
    c = container(data_dir)
    with c.db.session(write_lock=True) as s:
        campaigns.join(s, campaign_id, accounts.get_citizen(s, citizen), nickname)
    out.print(f"{citizen} takes part in {campaign_id}'s ranking as {nickname!r}", highlight=False)


@campaign_app.command("leave")
def leave_cmd(campaign_id: CampaignId, citizen: Citizen, data_dir: DataDir = None) -> None:
    """Opt out of a campaign's public ranking: the nickname is deleted."""
    c = container(data_dir)
    with c.db.session(write_lock=True) as s:
        left = campaigns.leave(s, campaign_id, accounts.get_citizen(s, citizen))
    out.print(f"{citizen} {'left' if left else 'was not in'} {campaign_id}'s ranking",
              highlight=False)


@campaign_app.command("progress")
def progress_cmd(campaign_id: CampaignId, citizen: Citizen, data_dir: DataDir = None) -> None:
    """A citizen's bonus points in a campaign (and the caps), and their nickname (JSON)."""
    c = container(data_dir)
    with c.db.session() as s:
        emit_json(campaign_bonuses.progress(s, campaign_id, accounts.get_citizen(s, citizen)), None)


@campaign_app.command("audit")
def audit_cmd(campaign_id: CampaignId, data_dir: DataDir = None, chain: Chain = None,
              rpc: RpcUrl = None, as_json: Json = False) -> None:
    """Recompute a closed ranking from the published rules and the anchored entries, and
    read the pinned rules hash and ranking root from the chain; exit 1 naming what differs."""
    c = container(data_dir, chain, rpc)
    with c.node_url() as url:
        reader = c.ledger_reader(url)
        if reader is None:
            raise InvalidInput("this ledger never deployed on that chain", field="chain")
        report = ranking_audit.audit_ranking(c.db, campaign_id,
                                        campaign_reader(url, reader.contract_address))
    if as_json:
        emit_json(report.to_json(), None)
    else:
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        out.print(f"{campaign_id}: {report.ranked} ranked, root {report.root}: {verdict}",
                  highlight=False, soft_wrap=True)
        for p in report.problems:
            out.print(f"  {p}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise VerificationError(f"the ranking of {campaign_id} differs from its rules and the "
                                "anchored entries", field="ranking", check="ranking-audit")


# -- the ranking ----------------------------------------------------------------------------

@ranking_app.command("close")
def close_cmd(campaign_id: CampaignId, data_dir: DataDir = None, chain: Chain = None,
              rpc: RpcUrl = None) -> None:
    """After the ranking's period: rank the citizens who opted in over the anchored
    entries, credit the prizes, and anchor the ranking's root."""
    c = container(data_dir, chain, rpc)
    with c.anchor() as anchor, anchoring_turn(c.db):
        with c.db.session() as s:
            closed = s.get(rankings.CampaignRanking, campaign_id) is not None
        if not closed:
            row = rankings.close_ranking(c.db, campaign_id, c.operator_address)
            out.print(f"{campaign_id}: {row.leaf_count} ranked over batches "
                      f"1-{row.through_batch_id}, root 0x{row.root.hex()}", highlight=False)
        row = campaign_anchoring.anchor_ranking(c.db, c.campaign_chain(anchor), campaign_id)
    out.print(f"{campaign_id}: ranking root anchored in block {row.block_number}",
              highlight=False)


@ranking_app.command("board")
def board_cmd(campaign_id: CampaignId, data_dir: DataDir = None, as_json: Json = False,
              limit: Annotated[int, typer.Option(min=1, max=1000)] = 20) -> None:
    """The public board: nicknames of those who opted in, their metric and prize
    (provisional until the ranking is closed)."""
    c = container(data_dir)
    with c.db.session() as s:
        board = rankings.leaderboard(s, campaign_id, limit=limit)
    if as_json:
        emit_json(board, None)
        return
    title = (f"{campaign_id}: final, root {board['root']}" if board["final"]
             else f"{campaign_id}: provisional")
    print_table(title, ["rank", "nickname", board["metric"], "prize"],
                [[e["rank"], e["nickname"], e["metric"], e["prize"]] for e in board["entries"]])


@ranking_app.command("proof")
def proof_cmd(campaign_id: CampaignId, citizen: Citizen, data_dir: DataDir = None,
              out_file: Annotated[Path | None, typer.Option(
                  "--out", help="write the proof here (default: print it)")] = None) -> None:
    """A citizen's rank in a closed ranking and its Merkle proof (JSON)."""
    c = container(data_dir)
    with c.db.session() as s:
        proof = rankings.rank_proof(s, campaign_id, accounts.get_citizen(s, citizen))
    emit_json(proof, out_file)


@ranking_app.command("verify")
def verify_cmd(proof_file: Annotated[Path, typer.Argument(help="a proof from `ranking proof`")],
               rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain")],
               contract: Annotated[str, typer.Option(help="the anchor contract's address")]
               ) -> None:
    """Check a rank proof against the ranking root anchored on chain (exit 1 if it fails)."""
    proof = read_json_file(proof_file, field="PROOF", max_bytes=64 * 1024)
    if not isinstance(proof, dict) or not isinstance(proof.get("leaf"), dict):
        raise InvalidInput("not a rank proof", field="PROOF")
    key = parse_hex32(proof["leaf"].get("campaign"), field="leaf.campaign")
    root = campaign_reader(rpc, contract).ranking_root(key)
    if root is None:
        raise VerificationError("no ranking is anchored for this campaign on that contract",
                                field="campaign", check="ranking-root")
    leaf = rankings.verify_rank_proof(proof, root)
    out.print(f"rank {leaf.rank} with {leaf.metric} ({leaf.prize} prize points) is in the "
              f"ranking anchored as 0x{root.hex()}", highlight=False, soft_wrap=True)
