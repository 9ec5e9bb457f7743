"""Patterns can be retired: a folder that left the bank is hidden, its history kept.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 19:29:40.277593
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('patterns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(), nullable=True, comment='set when its folder left the bank: hidden, history kept'))



def downgrade() -> None:
    with op.batch_alter_table('patterns', schema=None) as batch_op:
        batch_op.drop_column('retired_at')

