"""One store of runs: every run — snippet, code, pipeline, LR-only — in `sandbox_runs`, with
its kind; `traces` goes.

Runs are now stored under one key for every kind of job (app.checking.jobs.run_key). The
rows of `traces` were a cache nothing else refers to: a pattern's pipeline is recorded again
by the next import, a playground run when it is next asked for. The rows of `sandbox_runs`
stay: attempts name the run their key came from.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sandbox_runs") as batch:
        batch.add_column(
            sa.Column(
                "kind",
                sa.String(length=10),
                nullable=False,
                server_default="snippet",
                comment="snippet | code | pipeline | lr-only",
            )
        )
    if op.get_bind().dialect.name == "postgresql":
        has_data = "(result -> 'data')::text <> 'null'"
    else:
        has_data = "json_extract(result, '$.data') IS NOT NULL"
    op.execute(f"UPDATE sandbox_runs SET kind = 'code' WHERE {has_data}")
    op.create_index("ix_sandbox_runs_kind", "sandbox_runs", ["kind"])
    op.drop_table("traces")


def downgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False, comment="pipeline | lr-only"),
        sa.Column("torch_version", sa.String(length=40), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False, comment="the validated spec that was run"),
        sa.Column("data", sa.JSON(), nullable=False, comment="what the run recorded"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_traces")),
    )
    op.drop_index("ix_sandbox_runs_kind", table_name="sandbox_runs")
    op.execute("DELETE FROM sandbox_runs WHERE kind IN ('pipeline', 'lr-only')")
    with op.batch_alter_table("sandbox_runs") as batch:
        batch.drop_column("kind")
