"""metric blocks: a rollup of each series kept as points are logged

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Series logged before this revision keep n_points NULL: they have no blocks and are
    # read point by point, as before.
    with op.batch_alter_table('latest_metrics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('n_points', sa.BigInteger(), nullable=True))
    op.create_table('metric_blocks',
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('first_step', sa.BigInteger(), nullable=False),
    sa.Column('first_ts', sa.BigInteger(), nullable=False),
    sa.Column('first_value', sa.Float(), nullable=True),
    sa.Column('last_step', sa.BigInteger(), nullable=False),
    sa.Column('last_ts', sa.BigInteger(), nullable=False),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('low', sa.Float(), nullable=True),
    sa.Column('low_step', sa.BigInteger(), nullable=True),
    sa.Column('high', sa.Float(), nullable=True),
    sa.Column('high_step', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('series_id', 'block')
    )


def downgrade() -> None:
    op.drop_table('metric_blocks')
    with op.batch_alter_table('latest_metrics', schema=None) as batch_op:
        batch_op.drop_column('n_points')
