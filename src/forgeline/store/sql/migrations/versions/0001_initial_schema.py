"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('num_rows', sa.BigInteger(), nullable=True),
    sa.Column('num_columns', sa.Integer(), nullable=True),
    sa.Column('schema', sa.Text(), nullable=False),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('digest')
    )
    op.create_table('experiments',
    sa.Column('experiment_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('experiment_id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('metrics',
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('step', sa.BigInteger(), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False)
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index('ix_metrics_series_step', ['series_id', 'step'], unique=False)

    op.create_table('registered_models',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.Column('last_updated_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('experiment_tags',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.experiment_id'], ),
    sa.PrimaryKeyConstraint('experiment_id', 'key')
    )
    op.create_table('registered_model_tags',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['name'], ['registered_models.name'], ),
    sa.PrimaryKeyConstraint('name', 'key')
    )
    op.create_table('runs',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('start_time', sa.BigInteger(), nullable=False),
    sa.Column('end_time', sa.BigInteger(), nullable=True),
    sa.Column('heartbeat_time', sa.BigInteger(), nullable=False),
    sa.Column('parent_run_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.experiment_id'], ),
    sa.PrimaryKeyConstraint('run_id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_experiment_start', ['experiment_id', 'start_time'], unique=False)
        batch_op.create_index('ix_runs_parent', ['parent_run_id'], unique=False)
        batch_op.create_index('ix_runs_status_heartbeat', ['status', 'heartbeat_time'], unique=False)

    op.create_table('latest_metrics',
    sa.Column('series_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('step', sa.BigInteger(), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('series_id'),
    sa.UniqueConstraint('run_id', 'key', name='uq_latest_metrics_run_key')
    )
    with op.batch_alter_table('latest_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_latest_metrics_key_value', ['key', 'value'], unique=False)

    op.create_table('model_versions',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('artifact_path', sa.String(length=1000), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('creation_time', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['name'], ['registered_models.name'], ),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('name', 'version')
    )
    op.create_table('params',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('num_value', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('run_id', 'key')
    )
    with op.batch_alter_table('params', schema=None) as batch_op:
        batch_op.create_index('ix_params_key_num', ['key', 'num_value'], unique=False)

    op.create_table('run_artifacts',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('run_id', 'path')
    )
    op.create_table('run_datasets',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('context', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['digest'], ['datasets.digest'], ),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('run_id', 'digest', 'context')
    )
    op.create_table('run_tags',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('run_id', 'key')
    )
    with op.batch_alter_table('run_tags', schema=None) as batch_op:
        batch_op.create_index('ix_run_tags_key', ['key'], unique=False)

    op.create_table('model_aliases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['name', 'version'], ['model_versions.name', 'model_versions.version'], ),
    sa.PrimaryKeyConstraint('name', 'alias')
    )
    op.create_table('model_version_tags',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['name', 'version'], ['model_versions.name', 'model_versions.version'], ),
    sa.PrimaryKeyConstraint('name', 'version', 'key')
    )


def downgrade() -> None:
    op.drop_table('model_version_tags')
    op.drop_table('model_aliases')
    with op.batch_alter_table('run_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_run_tags_key')

    op.drop_table('run_tags')
    op.drop_table('run_datasets')
    op.drop_table('run_artifacts')
    with op.batch_alter_table('params', schema=None) as batch_op:
        batch_op.drop_index('ix_params_key_num')

    op.drop_table('params')
    op.drop_table('model_versions')
    with op.batch_alter_table('latest_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_latest_metrics_key_value')

    op.drop_table('latest_metrics')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_status_heartbeat')
        batch_op.drop_index('ix_runs_parent')
        batch_op.drop_index('ix_runs_experiment_start')

    op.drop_table('runs')
    op.drop_table('registered_model_tags')
    op.drop_table('experiment_tags')
    op.drop_table('registered_models')
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_metrics_series_step')

    op.drop_table('metrics')
    op.drop_table('experiments')
    op.drop_table('datasets')
