"""Campaigns, bonuses and rankings (#21): campaign versions and their publication, their
partner offers, bonus entries and the caps' totals, opted-in participants, and closed
rankings with their ranks. New tables only; nothing to fill.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('campaign_id', sa.String(length=24), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rules', sa.Text(), nullable=False),
    sa.Column('rules_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('starts_at', sa.BigInteger(), nullable=False),
    sa.Column('ends_at', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tx_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('raw_tx', sa.LargeBinary(), nullable=True),
    sa.Column('chain_id', sa.BigInteger(), nullable=True),
    sa.Column('contract_address', sa.String(length=42), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('gas_used', sa.BigInteger(), nullable=True),
    sa.Column('published_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('key'),
    sa.UniqueConstraint('campaign_id', 'version', name='uq_campaigns_id_version')
    )
    op.create_table('campaign_bonus_totals',
    sa.Column('campaign_id', sa.String(length=24), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('behaviour', sa.String(length=32), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], ),
    sa.PrimaryKeyConstraint('campaign_id', 'citizen_id', 'behaviour')
    )
    op.create_table('campaign_bonuses',
    sa.Column('campaign_id', sa.String(length=24), nullable=False),
    sa.Column('earned_by', sa.LargeBinary(length=32), nullable=False),
    sa.Column('campaign_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.LargeBinary(length=32), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_key'], ['campaigns.key'], ),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], ),
    sa.PrimaryKeyConstraint('campaign_id', 'earned_by')
    )
    with op.batch_alter_table('campaign_bonuses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_bonuses_citizen_id'), ['citizen_id'], unique=False)

    op.create_table('campaign_offers',
    sa.Column('reward_id', sa.Integer(), nullable=False),
    sa.Column('campaign_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_key'], ['campaigns.key'], ),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], ),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], ),
    sa.PrimaryKeyConstraint('reward_id')
    )
    op.create_table('campaign_participants',
    sa.Column('campaign_id', sa.String(length=24), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('nickname', sa.String(length=32), nullable=False),
    sa.Column('joined_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], ),
    sa.PrimaryKeyConstraint('campaign_id', 'citizen_id'),
    sa.UniqueConstraint('campaign_id', 'nickname', name='uq_campaign_participants_nickname')
    )
    op.create_table('campaign_rankings',
    sa.Column('campaign_id', sa.String(length=24), nullable=False),
    sa.Column('campaign_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('through_batch_id', sa.BigInteger(), nullable=False),
    sa.Column('leaf_count', sa.BigInteger(), nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('nodes', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('closed_at', sa.BigInteger(), nullable=False),
    sa.Column('tx_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('raw_tx', sa.LargeBinary(), nullable=True),
    sa.Column('chain_id', sa.BigInteger(), nullable=True),
    sa.Column('contract_address', sa.String(length=42), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('gas_used', sa.BigInteger(), nullable=True),
    sa.Column('anchored_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_key'], ['campaigns.key'], ),
    sa.PrimaryKeyConstraint('campaign_id')
    )
    op.create_table('campaign_ranks',
    sa.Column('campaign_id', sa.String(length=24), nullable=False),
    sa.Column('rank', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=False),
    sa.Column('account', sa.LargeBinary(length=32), nullable=False),
    sa.Column('metric', sa.BigInteger(), nullable=False),
    sa.Column('reached_at', sa.BigInteger(), nullable=False),
    sa.Column('prize', sa.BigInteger(), nullable=False),
    sa.Column('prize_entry_id', sa.LargeBinary(length=32), nullable=True),
    sa.Column('leaf', sa.LargeBinary(length=160), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign_rankings.campaign_id'], ),
    sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], ),
    sa.PrimaryKeyConstraint('campaign_id', 'rank')
    )
    with op.batch_alter_table('campaign_ranks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_ranks_citizen_id'), ['citizen_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('campaign_ranks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_ranks_citizen_id'))

    op.drop_table('campaign_ranks')
    op.drop_table('campaign_rankings')
    op.drop_table('campaign_participants')
    op.drop_table('campaign_offers')
    with op.batch_alter_table('campaign_bonuses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_bonuses_citizen_id'))

    op.drop_table('campaign_bonuses')
    op.drop_table('campaign_bonus_totals')
    op.drop_table('campaigns')
