"""``carbon-ledger admin …-list``: what exists (partners, citizens, rewards with their
stock, keys and tokens, submissions), as tables or ``--json`` with full ids."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli.base import DataDir, Json, admin_app, emit_json, local_time, print_table
from api.composition import container
from ledger import accounts, listings

Limit = Annotated[int, typer.Option("--limit", min=1, max=listings.MAX_LIST,
                                    help="at most this many")]


def _show(items: list[dict[str, Any]], as_json: bool, title: str, columns: list[str],
          row: Any, ids: tuple[str, ...] = ()) -> None:
    if as_json:
        emit_json(items, None)
    else:
        print_table(f"{title} ({len(items)})", columns, [row(i) for i in items], ids=ids)


@admin_app.command("partner-list")
def partner_list(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List the partners: code, kind, signing address."""
    with container(data_dir).db.session() as s:
        items = listings.partners(s)
    _show(items, as_json, "partners", ["code", "kind", "name", "signing address", "since"],
          lambda p: [p["code"], p["kind"], p["name"], p["signingAddress"],
                     local_time(p["createdAt"])], ids=("signing address",))


@admin_app.command("citizen-list")
def citizen_list(data_dir: DataDir = None, limit: Limit = 1000, as_json: Json = False) -> None:
    """List the citizens (oldest first): pseudonym and points."""
    with container(data_dir).db.session() as s:
        items = listings.citizens(s, limit=limit)
    _show(items, as_json, "citizens", ["pseudonym", "points", "since"],
          lambda c: [c["pseudonym"], c["points"], local_time(c["createdAt"])],
          ids=("pseudonym",))


@admin_app.command("reward-list")
def reward_list(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List the rewards: code, title, cost in points, stock left."""
    with container(data_dir).db.session() as s:
        items = listings.rewards(s)
    _show(items, as_json, "rewards", ["code", "title", "points", "stock"],
          lambda r: [r["code"], r["title"], r["points"], r["stock"]], ids=("code",))


@admin_app.command("key-list")
def key_list(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List API keys and citizens' tokens: key id (what `admin revoke` takes), role and
    owner, never a secret."""
    with container(data_dir).db.session() as s:
        items = listings.credentials(s)
    _show(items, as_json, "keys and tokens", ["key id", "role", "owner", "issued", "revoked"],
          lambda k: [k["keyId"], k["role"], k["owner"] or "-", local_time(k["createdAt"]),
                     local_time(k["revokedAt"])], ids=("key id",))


@admin_app.command("submission-list")
def submission_list(partner: Annotated[str | None, typer.Option(help="only this partner's")] = None,
                    data_dir: DataDir = None, limit: Limit = 100, as_json: Json = False) -> None:
    """List partners' signed submissions, newest first."""
    with container(data_dir).db.session() as s:
        owner = accounts.get_partner(s, partner).id if partner else None
        items = listings.submissions(s, partner_id=owner, limit=limit)
    _show(items, as_json, "submissions",
          ["submission", "partner", "received", "records", "accepted", "dup.", "rejected", "g CO2e"],
          lambda x: [x["submissionId"], x["partner"], local_time(x["receivedAt"]), x["records"],
                     x["accepted"], x["duplicate"], x["rejected"], x["reductionGrams"]],
          ids=("submission",))
