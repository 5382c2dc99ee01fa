"""fhir outbox: resources for the hospital's FHIR server, kept until it takes them (or
refuses them, with its answer)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:10:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'fhir_outbox',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=True),
        sa.Column('resource_type', sa.String(length=32), nullable=False),
        sa.Column('resource_id', sa.String(length=64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_try_at', sa.DateTime(), nullable=False),
        sa.Column('last_error', sa.String(length=1024), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['task_id'], ['followup_tasks.id'],
                                name='fk_fhir_outbox_task_id_followup_tasks'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fhir_outbox')),
        sa.UniqueConstraint('resource_type', 'resource_id',
                            name='uq_fhir_outbox_resource_type'),
    )
    with op.batch_alter_table('fhir_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_outbox_due', ['status', 'next_try_at'], unique=False)
        batch_op.create_index('ix_fhir_outbox_task_id', ['task_id'], unique=False)


def downgrade() -> None:
    op.drop_table('fhir_outbox')
