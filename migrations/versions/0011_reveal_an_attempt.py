"""A solution is revealed for one attempt: `reveals.attempt_id`.

A wrong answer no longer shows its key and worked solution: the learner tries again, and
sees them when they ask (or after three wrong tries in a row). The reveal names the attempt
whose solution it showed, so that its page shows it from then on.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reveals") as batch:
        batch.add_column(
            sa.Column(
                "attempt_id",
                sa.Integer(),
                nullable=True,
                comment="a solution: the attempt whose key and worked solution it showed",
            )
        )
        batch.create_foreign_key(
            op.f("fk_reveals_attempt_id_attempts"), "attempts", ["attempt_id"], ["id"]
        )
        batch.create_index(op.f("ix_reveals_attempt_id"), ["attempt_id"])
    # Until now every wrong answer showed its key and worked solution with it: each one was
    # revealed, when it was given. Say so, so that those pages keep showing what was seen,
    # it still counts as help seen, and old wrong answers start no count of tries.
    op.execute(
        "INSERT INTO reveals (learner_id, question_id, question_version, kind, attempt_id, "
        "created_at) SELECT learner_id, question_id, question_version, 'solution', id, "
        "created_at FROM attempts WHERE NOT correct"
    )


def downgrade() -> None:
    with op.batch_alter_table("reveals") as batch:
        batch.drop_index(op.f("ix_reveals_attempt_id"))
        batch.drop_constraint(op.f("fk_reveals_attempt_id_attempts"), type_="foreignkey")
        batch.drop_column("attempt_id")
