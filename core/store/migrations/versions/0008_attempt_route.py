"""attempt route: the trunk that carried each call and the Asterisk server that placed it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trunk', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('server', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.drop_column('server')
        batch_op.drop_column('trunk')
