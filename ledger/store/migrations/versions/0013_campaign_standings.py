"""Campaigns' running standings (``campaign_standings``, #21): per campaign and citizen,
the metric of the credits the bonus step has looked at and when the latest occurred, so
the provisional leaderboard reads these rows instead of every entry of the period.

The standings of credits already looked at are counted here, from each campaign's latest
published version's ranking; the step counts the rest as it looks at them. The local day
(UTC+8) is written out, not imported: this migration must keep doing what it did.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_LOCAL = timedelta(hours=8)
_KIND_CREDIT = 1

_campaigns = sa.table("campaigns", sa.column("campaign_id", sa.String()),
                      sa.column("version", sa.Integer()), sa.column("rules", sa.Text()),
                      sa.column("status", sa.String()))
_bonuses = sa.table("campaign_bonuses", sa.column("campaign_id", sa.String()),
                    sa.column("earned_by", sa.LargeBinary()))
_entries = sa.table("ledger_entries", sa.column("entry_id", sa.LargeBinary()),
                    sa.column("citizen_id", sa.Integer()), sa.column("kind", sa.Integer()),
                    sa.column("behaviour", sa.String()), sa.column("occurred_at", sa.BigInteger()),
                    sa.column("reduction_grams", sa.BigInteger()))
_standings = sa.table("campaign_standings", sa.column("campaign_id", sa.String()),
                      sa.column("citizen_id", sa.Integer()), sa.column("metric", sa.BigInteger()),
                      sa.column("reached_at", sa.BigInteger()))


def _midnight(day: str, *, days: int = 0) -> int:
    d = date.fromisoformat(day) + timedelta(days=days)
    return int((datetime(d.year, d.month, d.day, tzinfo=UTC) - _LOCAL).timestamp())


def upgrade() -> None:
    op.create_table(
        "campaign_standings",
        sa.Column("campaign_id", sa.String(length=24), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.BigInteger(), nullable=False),
        sa.Column("reached_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"]),
        sa.PrimaryKeyConstraint("campaign_id", "citizen_id"),
    )
    op.create_index("ix_campaign_standings_metric", "campaign_standings",
                    ["campaign_id", "metric"])
    conn = op.get_bind()
    latest: dict[str, str] = {}
    for cid, rules in conn.execute(sa.select(_campaigns.c.campaign_id, _campaigns.c.rules)
                                   .where(_campaigns.c.status == "published")
                                   .order_by(_campaigns.c.campaign_id, _campaigns.c.version)):
        latest[cid] = rules
    for cid, rules in latest.items():
        ranking = json.loads(rules).get("ranking")
        if not ranking:
            continue
        e = _entries
        counted = (sa.select(sa.literal(cid), e.c.citizen_id, sa.func.sum(e.c.reduction_grams),
                             sa.func.max(e.c.occurred_at))
                   .join(_bonuses, _bonuses.c.earned_by == e.c.entry_id)
                   .where(_bonuses.c.campaign_id == cid, e.c.kind == _KIND_CREDIT,
                          e.c.behaviour.in_(ranking["behaviours"]), e.c.reduction_grams > 0,
                          e.c.occurred_at >= _midnight(ranking["starts"]),
                          e.c.occurred_at < _midnight(ranking["ends"], days=1))
                   .group_by(e.c.citizen_id))
        conn.execute(sa.insert(_standings).from_select(
            ["campaign_id", "citizen_id", "metric", "reached_at"], counted))


def downgrade() -> None:
    op.drop_index("ix_campaign_standings_metric", table_name="campaign_standings")
    op.drop_table("campaign_standings")
