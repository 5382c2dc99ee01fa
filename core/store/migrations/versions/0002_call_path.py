"""call path: tickets get a response deadline; clips and recordings may wait in a spool;
the unread resume_from columns go

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clip_spool', sa.String(length=512), nullable=True))
    with op.batch_alter_table('followup_tasks', schema=None) as batch_op:
        batch_op.drop_column('resume_from')
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recording_spool', sa.String(length=512), nullable=True))
        batch_op.drop_column('resume_from')


def downgrade() -> None:
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resume_from', sa.String(length=128), nullable=True))
        batch_op.drop_column('recording_spool')
    with op.batch_alter_table('followup_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resume_from', sa.String(length=128), nullable=True))
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_column('clip_spool')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('due_at')
