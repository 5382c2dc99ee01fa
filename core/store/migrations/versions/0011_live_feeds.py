"""live feeds: where each running dialer serves its calls' live events for the wallboard

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 02:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'live_feeds',
        sa.Column('owner', sa.String(length=64), nullable=False),
        sa.Column('url', sa.String(length=256), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('owner', name='pk_live_feeds'),
    )


def downgrade() -> None:
    op.drop_table('live_feeds')
