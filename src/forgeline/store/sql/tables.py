"""The relational schema, as SQLAlchemy Core tables.

Migrations in ``migrations/versions`` create exactly this schema; a test compares them.
NaN metric values are stored as NULL (SQLite cannot store NaN); ±inf are stored as is.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

experiments = Table(
    "experiments", metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("creation_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags", metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("heartbeat_time", BigInteger, nullable=False),
    Column("parent_run_id", String(32)),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_status_heartbeat", "status", "heartbeat_time"),
    Index("ix_runs_parent", "parent_run_id"),
)

# One row per (run, metric key): its integer id keys the points, and it holds the latest
# point, which search filters and sorts on.
latest_metrics = Table(
    "latest_metrics", metadata,
    Column("series_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    # points logged, counted by the rollup (blocks.py); NULL: logged before it existed
    Column("n_points", BigInteger),
    UniqueConstraint("run_id", "key", name="uq_latest_metrics_run_key"),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

# Every logged point, keyed by a small integer so that appends stay cheap.
metrics = Table(
    "metrics", metadata,
    Column("series_id", Integer, nullable=False),  # no FK: a lookup per point in SQLite
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_series_step", "series_id", "step"),
)

# The rollup of each series: its points in blocks of 1,024 as logged (see blocks.py).
metric_blocks = Table(
    "metric_blocks", metadata,
    Column("series_id", Integer, primary_key=True),
    Column("block", BigInteger, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("first_ts", BigInteger, nullable=False),
    Column("first_value", Float),
    Column("last_step", BigInteger, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("last_value", Float),
    Column("low", Float),
    Column("low_step", BigInteger),
    Column("high", Float),
    Column("high_step", BigInteger),
)

params = Table(
    "params", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("num_value", Float),  # the value as a number when it is one: numeric filters
    Index("ix_params_key_num", "key", "num_value"),
)

run_tags = Table(
    "run_tags", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_tags_key", "key"),
)

run_artifacts = Table(
    "run_artifacts", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
)

datasets = Table(
    "datasets", metadata,
    Column("digest", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("source", Text, nullable=False),
    Column("num_rows", BigInteger),
    Column("num_columns", Integer),
    Column("schema", Text, nullable=False),  # JSON
    Column("creation_time", BigInteger, nullable=False),
)

run_datasets = Table(
    "run_datasets", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("digest", String(64), ForeignKey("datasets.digest"), primary_key=True),
    Column("context", String(64), primary_key=True),
)

registered_models = Table(
    "registered_models", metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags", metadata,
    Column("name", String(128), ForeignKey("registered_models.name"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions", metadata,
    Column("name", String(128), ForeignKey("registered_models.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.run_id")),
    Column("artifact_path", String(1000), nullable=False),
    Column("description", Text, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
)

model_version_tags = Table(
    "model_version_tags", metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),
)

model_aliases = Table(
    "model_aliases", metadata,
    Column("name", String(128), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),
)

# Every change of an alias, newest last (by id): ``version`` NULL when it was deleted,
# ``previous_version`` NULL when it was new. No foreign key to model_versions: the history
# outlives the versions it names (a version may be deleted once no alias points at it).
model_alias_events = Table(
    "model_alias_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), ForeignKey("registered_models.name"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version", Integer),
    Column("previous_version", Integer),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(256)),
    Index("ix_model_alias_events_name_alias", "name", "alias"),
)

# One row per monitoring run. ``end_time`` is the window's end, else the creation time: the
# history is cut and ordered on it. The dict and tuple fields are JSON.
monitoring_records = Table(
    "monitoring_records", metadata,
    Column("record_id", String(32), primary_key=True),
    Column("model", String(1000), nullable=False),
    Column("version", String(64)),
    Column("window_start", BigInteger),
    Column("window_end", BigInteger),
    Column("creation_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("source", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("dataset_drift", Float),  # NULL is NaN, as for metrics
    Column("dataset_drifted", Boolean, nullable=False),
    Column("prediction_drift", Float),
    Column("features", Text, nullable=False),
    Column("drifted", Text, nullable=False),
    Column("quality", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("estimated", Text, nullable=False),
    Column("alerts", Text, nullable=False),
    Column("clock", Text, nullable=False),
    Column("report", Text),
    Index("ix_monitoring_records_model_end", "model", "end_time"),
    Index("ix_monitoring_records_creation", "creation_time"),
)

# Team server tokens: only the sha256 of a secret is kept, never the secret.
api_tokens = Table(
    "api_tokens", metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("creation_time", BigInteger, nullable=False),
)
