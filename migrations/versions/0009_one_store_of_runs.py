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

import json

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
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE sandbox_runs SET kind = 'code' WHERE (result -> 'data')::text <> 'null'")
    else:
        op.execute(
            "UPDATE sandbox_runs SET kind = 'code' WHERE CASE WHEN json_valid(result) "
            "THEN json_extract(result, '$.data') IS NOT NULL ELSE 0 END"
        )
        # Rows written before non-finite floats were tagged hold a bare Infinity or NaN,
        # which SQLite's JSON functions refuse: read those as Python does.
        refused = bind.execute(sa.text("SELECT key, result FROM sandbox_runs WHERE NOT json_valid(result)"))
        for key, text in refused.all():
            if json.loads(text).get("data") is not None:
                bind.execute(
                    sa.text("UPDATE sandbox_runs SET kind = 'code' WHERE key = :key"), {"key": key}
                )
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
