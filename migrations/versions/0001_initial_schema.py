"""Initial schema: patterns, questions with versions, learners, attempts, reveals.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 18:06:09.785859
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('learners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_learners')),
    sa.UniqueConstraint('token', name=op.f('uq_learners_token'))
    )
    op.create_table('patterns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False, comment='the validated pattern file'),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patterns')),
    sa.UniqueConstraint('slug', name=op.f('uq_patterns_slug'))
    )
    op.create_table('questions',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('pattern_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pattern_id'], ['patterns.id'], name=op.f('fk_questions_pattern_id_patterns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questions'))
    )
    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_questions_pattern_id'), ['pattern_id'], unique=False)

    op.create_table('question_versions',
    sa.Column('question_id', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('difficulty', sa.String(length=10), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False, comment='the validated question file'),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_question_versions_question_id_questions')),
    sa.PrimaryKeyConstraint('question_id', 'version', name=op.f('pk_question_versions'))
    )
    op.create_table('attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.String(length=80), nullable=False),
    sa.Column('question_version', sa.Integer(), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=False, comment='the answer as the learner gave it'),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('feedback', sa.JSON(), nullable=False, comment='what the learner was told'),
    sa.Column('hint_seen', sa.Boolean(), nullable=False),
    sa.Column('solution_seen', sa.Boolean(), nullable=False),
    sa.Column('time_taken_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['learner_id'], ['learners.id'], name=op.f('fk_attempts_learner_id_learners')),
    sa.ForeignKeyConstraint(['question_id', 'question_version'], ['question_versions.question_id', 'question_versions.version'], name='fk_attempts_question_version'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts'))
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_learner_question', ['learner_id', 'question_id'], unique=False)

    op.create_table('reveals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.String(length=80), nullable=False),
    sa.Column('question_version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False, comment='hint | solution'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['learner_id'], ['learners.id'], name=op.f('fk_reveals_learner_id_learners')),
    sa.ForeignKeyConstraint(['question_id', 'question_version'], ['question_versions.question_id', 'question_versions.version'], name='fk_reveals_question_version'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reveals'))
    )
    with op.batch_alter_table('reveals', schema=None) as batch_op:
        batch_op.create_index('ix_reveals_learner_question', ['learner_id', 'question_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reveals', schema=None) as batch_op:
        batch_op.drop_index('ix_reveals_learner_question')

    op.drop_table('reveals')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_learner_question')

    op.drop_table('attempts')
    op.drop_table('question_versions')
    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_questions_pattern_id'))

    op.drop_table('questions')
    op.drop_table('patterns')
    op.drop_table('learners')
