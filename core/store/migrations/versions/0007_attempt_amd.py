"""attempt amd: answering-machine detection's verdict and cause on each answered attempt

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 20:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amd_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('amd_cause', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.drop_column('amd_cause')
        batch_op.drop_column('amd_status')
