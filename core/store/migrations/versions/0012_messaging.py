"""messaging: SMS messages, their delivery reports, inbound messages, and the one-time
links to the patient's web questionnaire

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 05:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'web_links',
        sa.Column('id', BigId, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('patient_id', BigId, nullable=False),
        sa.Column('task_id', BigId, nullable=False),
        sa.Column('attempt_id', BigId, nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('verified_at', sa.DateTime(), nullable=True),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('locked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                                name='fk_web_links_patient_id_patients'),
        sa.ForeignKeyConstraint(['task_id'], ['followup_tasks.id'],
                                name='fk_web_links_task_id_followup_tasks'),
        sa.ForeignKeyConstraint(['attempt_id'], ['call_attempts.id'],
                                name='fk_web_links_attempt_id_call_attempts'),
        sa.PrimaryKeyConstraint('id', name='pk_web_links'),
        sa.UniqueConstraint('token_hash', name='uq_web_links_token_hash'),
    )
    op.create_index('ix_web_links_patient_id', 'web_links', ['patient_id'])
    op.create_index('ix_web_links_task_id', 'web_links', ['task_id'])
    op.create_table(
        'sms_messages',
        sa.Column('id', BigId, nullable=False),
        sa.Column('patient_id', BigId, nullable=False),
        sa.Column('department_id', BigId, nullable=True),
        sa.Column('task_id', BigId, nullable=True),
        sa.Column('ticket_id', BigId, nullable=True),
        sa.Column('link_id', BigId, nullable=True),
        sa.Column('plan_key', sa.String(length=160), nullable=True),
        sa.Column('purpose', sa.String(length=24), nullable=False),
        sa.Column('template', sa.String(length=64), nullable=False),
        sa.Column('locale', sa.String(length=16), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('encoding', sa.String(length=8), nullable=False),
        sa.Column('segments', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('block_reason', sa.String(length=24), nullable=True),
        sa.Column('detail', sa.String(length=256), nullable=True),
        sa.Column('gateway', sa.String(length=32), nullable=True),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('next_try_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('submitted_at', sa.DateTime(), nullable=True),
        sa.Column('final_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                                name='fk_sms_messages_patient_id_patients'),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name='fk_sms_messages_department_id_departments'),
        sa.ForeignKeyConstraint(['task_id'], ['followup_tasks.id'],
                                name='fk_sms_messages_task_id_followup_tasks'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name='fk_sms_messages_ticket_id_tickets'),
        sa.ForeignKeyConstraint(['link_id'], ['web_links.id'],
                                name='fk_sms_messages_link_id_web_links'),
        sa.PrimaryKeyConstraint('id', name='pk_sms_messages'),
        sa.UniqueConstraint('plan_key', name='uq_sms_messages_plan_key'),
    )
    op.create_index('ix_sms_messages_due', 'sms_messages', ['status', 'next_try_at'])
    op.create_index('ix_sms_messages_patient', 'sms_messages', ['patient_id', 'created_at'])
    op.create_index('ix_sms_messages_task_id', 'sms_messages', ['task_id'])
    op.create_table(
        'sms_parts',
        sa.Column('id', BigId, nullable=False),
        sa.Column('message_id', BigId, nullable=False),
        sa.Column('part', sa.Integer(), nullable=False),
        sa.Column('gateway', sa.String(length=32), nullable=False),
        sa.Column('gateway_message_id', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=True),
        sa.Column('reported_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['sms_messages.id'],
                                name='fk_sms_parts_message_id_sms_messages'),
        sa.PrimaryKeyConstraint('id', name='pk_sms_parts'),
    )
    op.create_index('ix_sms_parts_message_id', 'sms_parts', ['message_id'])
    op.create_index('ix_sms_parts_gateway_id', 'sms_parts', ['gateway', 'gateway_message_id'])
    op.create_table(
        'sms_receipts',
        sa.Column('id', BigId, nullable=False),
        sa.Column('gateway', sa.String(length=32), nullable=False),
        sa.Column('gateway_message_id', sa.String(length=64), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=True),
        sa.Column('error', sa.String(length=16), nullable=True),
        sa.Column('raw', sa.Text(), nullable=False),
        sa.Column('part_id', BigId, nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['part_id'], ['sms_parts.id'],
                                name='fk_sms_receipts_part_id_sms_parts'),
        sa.PrimaryKeyConstraint('id', name='pk_sms_receipts'),
    )
    op.create_index('ix_sms_receipts_gateway_message_id', 'sms_receipts',
                    ['gateway_message_id'])
    op.create_table(
        'sms_inbound',
        sa.Column('id', BigId, nullable=False),
        sa.Column('gateway', sa.String(length=32), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('patient_id', BigId, nullable=True),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('ticket_id', BigId, nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                                name='fk_sms_inbound_patient_id_patients'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name='fk_sms_inbound_ticket_id_tickets'),
        sa.PrimaryKeyConstraint('id', name='pk_sms_inbound'),
    )
    op.create_index('ix_sms_inbound_patient_id', 'sms_inbound', ['patient_id'])


def downgrade() -> None:
    op.drop_index('ix_sms_inbound_patient_id', table_name='sms_inbound')
    op.drop_table('sms_inbound')
    op.drop_index('ix_sms_receipts_gateway_message_id', table_name='sms_receipts')
    op.drop_table('sms_receipts')
    op.drop_index('ix_sms_parts_gateway_id', table_name='sms_parts')
    op.drop_index('ix_sms_parts_message_id', table_name='sms_parts')
    op.drop_table('sms_parts')
    for name in ('ix_sms_messages_task_id', 'ix_sms_messages_patient',
                 'ix_sms_messages_due'):
        op.drop_index(name, table_name='sms_messages')
    op.drop_table('sms_messages')
    op.drop_index('ix_web_links_task_id', table_name='web_links')
    op.drop_index('ix_web_links_patient_id', table_name='web_links')
    op.drop_table('web_links')
