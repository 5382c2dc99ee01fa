"""live operations: campaign holds (pause/resume), the do-not-call list, scheduled
callbacks on tasks, and each user's remembered extension

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'campaign_holds',
        sa.Column('id', BigId, nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('department_id', BigId, nullable=True),
        sa.Column('script_id', sa.String(length=64), nullable=True),
        sa.Column('reason', sa.String(length=256), nullable=False),
        sa.Column('held_by', sa.String(length=64), nullable=False),
        sa.Column('held_at', sa.DateTime(), nullable=False),
        sa.Column('released_by', sa.String(length=64), nullable=True),
        sa.Column('released_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name='fk_campaign_holds_department_id_departments'),
        sa.PrimaryKeyConstraint('id', name='pk_campaign_holds'),
    )
    op.create_index('ix_campaign_holds_released_at', 'campaign_holds', ['released_at'])
    op.create_table(
        'do_not_call',
        sa.Column('id', BigId, nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=24), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('note', sa.String(length=256), nullable=False),
        sa.Column('patient_id', BigId, nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('added_by', sa.String(length=64), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.Column('removed_by', sa.String(length=64), nullable=True),
        sa.Column('removed_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                                name='fk_do_not_call_patient_id_patients'),
        sa.PrimaryKeyConstraint('id', name='pk_do_not_call'),
    )
    op.create_index('ix_do_not_call_phone', 'do_not_call', ['phone'])
    with op.batch_alter_table('followup_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extension', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('extension')
    with op.batch_alter_table('followup_tasks', schema=None) as batch_op:
        batch_op.drop_column('callback_at')
    op.drop_index('ix_do_not_call_phone', table_name='do_not_call')
    op.drop_table('do_not_call')
    op.drop_index('ix_campaign_holds_released_at', table_name='campaign_holds')
    op.drop_table('campaign_holds')
