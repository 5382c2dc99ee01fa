"""hl7 feed: each control id an ADT feed took, with its acknowledgement, so a message sent
again is answered the same and not applied twice; patients.merged_into_id for merges (A40)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 11:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hl7_messages',
        sa.Column('source', sa.String(length=256), nullable=False),
        sa.Column('control_id', sa.String(length=64), nullable=False),
        sa.Column('event', sa.String(length=8), nullable=False),
        sa.Column('ack_code', sa.String(length=2), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('detail', sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint('source', 'control_id', name=op.f('pk_hl7_messages')),
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.BigInteger().with_variant(
            sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key('fk_patients_merged_into_id_patients', 'patients',
                                    ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_constraint('fk_patients_merged_into_id_patients', type_='foreignkey')
        batch_op.drop_column('merged_into_id')
    op.drop_table('hl7_messages')
