"""model alias history

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Alias moves made before this revision were not recorded: the history starts empty.
    op.create_table('model_alias_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('previous_version', sa.Integer(), nullable=True),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('actor', sa.String(length=256), nullable=True),
    sa.ForeignKeyConstraint(['name'], ['registered_models.name'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_alias_events', schema=None) as batch_op:
        batch_op.create_index('ix_model_alias_events_name_alias', ['name', 'alias'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_alias_events', schema=None) as batch_op:
        batch_op.drop_index('ix_model_alias_events_name_alias')

    op.drop_table('model_alias_events')
