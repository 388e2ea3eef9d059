"""monitoring history and team server tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('monitoring_records',
    sa.Column('record_id', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=1000), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=True),
    sa.Column('window_start', sa.BigInteger(), nullable=True),
    sa.Column('window_end', sa.BigInteger(), nullable=True),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.Column('end_time', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('dataset_drift', sa.Float(), nullable=True),
    sa.Column('dataset_drifted', sa.Boolean(), nullable=False),
    sa.Column('prediction_drift', sa.Float(), nullable=True),
    sa.Column('features', sa.Text(), nullable=False),
    sa.Column('drifted', sa.Text(), nullable=False),
    sa.Column('quality', sa.Text(), nullable=False),
    sa.Column('metrics', sa.Text(), nullable=False),
    sa.Column('estimated', sa.Text(), nullable=False),
    sa.Column('alerts', sa.Text(), nullable=False),
    sa.Column('clock', sa.Text(), nullable=False),
    sa.Column('report', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('record_id')
    )
    with op.batch_alter_table('monitoring_records', schema=None) as batch_op:
        batch_op.create_index('ix_monitoring_records_creation', ['creation_time'], unique=False)
        batch_op.create_index('ix_monitoring_records_model_end', ['model', 'end_time'], unique=False)

    op.create_table('api_tokens',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    sa.UniqueConstraint('secret_sha256')
    )


def downgrade() -> None:
    op.drop_table('api_tokens')
    with op.batch_alter_table('monitoring_records', schema=None) as batch_op:
        batch_op.drop_index('ix_monitoring_records_model_end')
        batch_op.drop_index('ix_monitoring_records_creation')

    op.drop_table('monitoring_records')
