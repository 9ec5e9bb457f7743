"""Accounts, 10-question tests (exams) and FSRS review cards.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:34:21.045384
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False, comment='stored lowercased'),
    sa.Column('password_hash', sa.String(length=255), nullable=False, comment='argon2id'),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('session_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('session_token', name=op.f('uq_users_session_token'))
    )
    op.create_table('exams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('pattern_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False, comment='where the learner is'),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('score', sa.Float(), nullable=True, comment='0–1, once finished'),
    sa.ForeignKeyConstraint(['learner_id'], ['learners.id'], name=op.f('fk_exams_learner_id_learners')),
    sa.ForeignKeyConstraint(['pattern_id'], ['patterns.id'], name=op.f('fk_exams_pattern_id_patterns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exams'))
    )
    with op.batch_alter_table('exams', schema=None) as batch_op:
        batch_op.create_index('ix_exams_learner_pattern', ['learner_id', 'pattern_id'], unique=False)

    op.create_table('review_cards',
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.String(length=80), nullable=False),
    sa.Column('card', sa.JSON(), nullable=False, comment='fsrs.Card.to_dict()'),
    sa.Column('due', sa.DateTime(), nullable=False),
    sa.Column('reviews', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['learner_id'], ['learners.id'], name=op.f('fk_review_cards_learner_id_learners')),
    sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_review_cards_question_id_questions')),
    sa.PrimaryKeyConstraint('learner_id', 'question_id', name=op.f('pk_review_cards'))
    )
    with op.batch_alter_table('review_cards', schema=None) as batch_op:
        batch_op.create_index('ix_review_cards_learner_due', ['learner_id', 'due'], unique=False)

    op.create_table('exam_items',
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.String(length=80), nullable=False),
    sa.Column('question_version', sa.Integer(), nullable=False),
    sa.Column('variant_index', sa.Integer(), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=True, comment='saved, not graded until the test is finished'),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('time_taken_ms', sa.Integer(), nullable=True, comment='time spent on this page, summed over visits'),
    sa.Column('attempt_id', sa.Integer(), nullable=True, comment='the graded attempt, once finished'),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name=op.f('fk_exam_items_attempt_id_attempts')),
    sa.ForeignKeyConstraint(['exam_id'], ['exams.id'], name=op.f('fk_exam_items_exam_id_exams')),
    sa.ForeignKeyConstraint(['question_id', 'question_version'], ['question_versions.question_id', 'question_versions.version'], name='fk_exam_items_question_version'),
    sa.PrimaryKeyConstraint('exam_id', 'position', name=op.f('pk_exam_items'))
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rating', sa.Integer(), nullable=True, comment='the FSRS rating it gave: 1 again, 2 hard, 3 good, 4 easy'))

    with op.batch_alter_table('learners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True, comment='set once the learner has an account'))
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True, comment="a guest whose progress moved into an account's learner on log-in"))
        batch_op.create_unique_constraint(batch_op.f('uq_learners_user_id'), ['user_id'])
        batch_op.create_foreign_key(batch_op.f('fk_learners_user_id_users'), 'users', ['user_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_learners_merged_into_id_learners'), 'learners', ['merged_into_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('learners', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_learners_merged_into_id_learners'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_learners_user_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_learners_user_id'), type_='unique')
        batch_op.drop_column('merged_into_id')
        batch_op.drop_column('user_id')

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('rating')

    op.drop_table('exam_items')
    with op.batch_alter_table('review_cards', schema=None) as batch_op:
        batch_op.drop_index('ix_review_cards_learner_due')

    op.drop_table('review_cards')
    with op.batch_alter_table('exams', schema=None) as batch_op:
        batch_op.drop_index('ix_exams_learner_pattern')

    op.drop_table('exams')
    op.drop_table('users')
