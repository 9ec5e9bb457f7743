"""Output questions: cached sandbox runs, the variant an attempt answered, learners' variants.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 18:25:47.829294
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sandbox_runs',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('torch_version', sa.String(length=40), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False, comment='the RunResult as JSON'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_sandbox_runs'))
    )
    op.create_table('learner_variants',
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.String(length=80), nullable=False),
    sa.Column('variant_index', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['learner_id'], ['learners.id'], name=op.f('fk_learner_variants_learner_id_learners')),
    sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_learner_variants_question_id_questions')),
    sa.PrimaryKeyConstraint('learner_id', 'question_id', name=op.f('pk_learner_variants'))
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('variant_index', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('variant', sa.JSON(), nullable=True, comment='parameter values of the variant answered (output questions)'))



def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('variant')
        batch_op.drop_column('variant_index')

    op.drop_table('learner_variants')
    op.drop_table('sandbox_runs')
