"""Traces: recorded training and LR-only runs by spec hash.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 19:17:13.912514
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('traces',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False, comment='pipeline | lr-only'),
    sa.Column('torch_version', sa.String(length=40), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False, comment='the validated spec that was run'),
    sa.Column('data', sa.JSON(), nullable=False, comment='what the run recorded'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_traces'))
    )


def downgrade() -> None:
    op.drop_table('traces')
