"""voicemail: the patient's consent to a call-back message on an answering machine, and
whether an attempt left one

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:55:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voicemail_ok', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voicemail_left', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.drop_column('voicemail_left')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_column('voicemail_ok')
