"""Practice that adapts: which question a learner practises next, from what they have done.

The rules, in the order they apply:

1. **What a test missed comes first.** After a test, the questions it missed (answered wrong
   or not at all) come first, in the test's order, each until it has been tried once since.
2. **Open before done.** Questions never answered, or answered wrong last time, come before
   those answered right last time (which come back lowest mastery first).
3. **Difficulty follows results.** A level walks up and down the difficulties with the
   learner's answers in the pattern, oldest first: it starts at easy, each right answer moves
   it up STEP_UP (half of that if the answer was helped or slow: its review rating was Hard),
   each wrong one down STEP_DOWN; the questions nearest the level's difficulty come first.
   Two right answers to climb, one wrong to fall: a learner settles where they are mostly
   right (a "2-up, 1-down" staircase, which holds at about 70 % right).
4. **Misconceptions come back.** A wrong answer shows a misconception: the question's tags
   and, where its feedback names one, the mistake (a choice's `mistake`, a code check's
   diagnosed mistake). Among questions as near the level, those sharing more of the
   misconceptions shown in the learner's last MISCONCEPTION_MEMORY attempts come first —
   a question answered wrong shares all of its own, so it comes back too.
5. **Light before heavy.** Then reading before predicting before writing code: a new learner
   starts on easy choice questions, not on writing a scheduler.
6. **A solution just read rests.** A question whose solution was shown in the last
   review.LEARNING_STEP (10 minutes) comes after every other one (but those a test missed):
   asked again at once, it would be copied, not recalled.

The question just done (`after`) is never next, unless it is the only one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank.schema import ChoiceQuestion, Difficulty, Mode, Question
from app.bank.service import LiveQuestion
from app.learning.progress import QuestionState, fold_states
from app.learning.review import LEARNING_STEP, Rating
from app.models import REVEAL_SOLUTION, Attempt, Exam, ExamItem, Learner, Reveal, utcnow

DIFFICULTIES = list(Difficulty)  # easy → hard: a level is an index into it
HIGHEST_LEVEL = float(len(DIFFICULTIES) - 1)
STEP_UP = 0.5  # a right answer: two in a row move up one difficulty
STEP_DOWN = 1.0  # a wrong answer: one moves down one difficulty
# A right answer rated Hard (helped by a hint or the solution, or slow) climbs half as far.
HELPED_STEP = {Rating.Hard: 0.5}
MISCONCEPTION_MEMORY = 20  # latest attempts in the pattern whose misconceptions are favoured
# How much effort a kind of question asks: read and pick, predict a value, write code.
KIND_EFFORT = {"choice": 0, "output": 1, "steps": 1, "code": 2, "fix": 2}
UNKNOWN_KIND_EFFORT = max(KIND_EFFORT.values())  # a kind added later counts as writing code
CHOICE_MISTAKE = "mistake:"  # prefix of a choice's misconception (tags cannot hold a colon)


@dataclass(frozen=True)
class PracticeRecord:
    """What practice knows of a learner in one pattern."""

    states: dict[str, QuestionState] = field(default_factory=dict)
    level: float = 0.0  # 0 = easy … HIGHEST_LEVEL = hard, see the module docstring
    misconceptions: Counter[str] = field(default_factory=Counter)  # concept → times shown
    missed: list[str] = field(default_factory=list)  # in the last test, not tried since
    resting: set[str] = field(default_factory=set)  # their solution was just shown (rule 6)

    @property
    def difficulty(self) -> Difficulty:
        """The difficulty the level stands on."""
        return DIFFICULTIES[int(self.level)]


def climb(level: float, *, correct: bool, rating: int | None) -> float:
    """The level after one answer (see the module docstring)."""
    if not correct:
        return max(0.0, level - STEP_DOWN)
    helped = HELPED_STEP.get(Rating(rating), 1.0) if rating is not None else 1.0
    return min(HIGHEST_LEVEL, level + STEP_UP * helped)


def level_of(results: Iterable[tuple[bool, int | None]]) -> float:
    """The level after these answers — (correct, review rating), oldest first — from easy."""
    level = 0.0
    for correct, rating in results:
        level = climb(level, correct=correct, rating=rating)
    return level


def concepts(question: Question) -> set[str]:
    """What a question practises: its tags, its choices' misconceptions, and the mistakes
    its code check is proven to diagnose (a question kind that adds any: likewise)."""
    found = set(question.tags)
    if isinstance(question, ChoiceQuestion):
        found.update(CHOICE_MISTAKE + c.mistake for c in question.choices if c.mistake)
    for test in getattr(question, "self_tests", []):
        if test.mistake:
            found.add(test.mistake)
    return found


def shown_misconceptions(question: Question, feedback: dict[str, object]) -> set[str]:
    """The misconceptions a wrong answer to `question` showed: its tags, and the mistake its
    feedback names (a choice's misconception text, a code check's mistake name)."""
    found = set(question.tags)
    mistake = feedback.get("mistake")
    if isinstance(mistake, str) and mistake:
        found.add(CHOICE_MISTAKE + mistake if feedback.get("kind") == "choice" else mistake)
    return found


def practice_order(questions: list[LiveQuestion], record: PracticeRecord) -> list[LiveQuestion]:
    """Practice questions (those in practice mode), the one to practise next first: see the
    module docstring."""
    practice = [q for q in questions if Mode.PRACTICE in q.question.modes]
    by_id = {q.id: q for q in practice}
    first = [by_id[qid] for qid in dict.fromkeys(record.missed) if qid in by_id]
    first_ids = {q.id for q in first}
    target = DIFFICULTIES.index(record.difficulty)

    def rank(question: LiveQuestion) -> tuple[float, ...]:
        return (question.id in record.resting, *weigh(question))

    def weigh(question: LiveQuestion) -> tuple[float, ...]:
        state = record.states.get(question.id)
        distance = abs(DIFFICULTIES.index(question.question.difficulty) - target)
        related = sum(record.misconceptions[c] for c in concepts(question.question))
        effort = KIND_EFFORT.get(question.question.kind, UNKNOWN_KIND_EFFORT)
        if state is None or not state.last_correct:  # open: unseen, or wrong last time
            unseen = 1 if state is None else 0
            return (0, distance, -related, unseen, effort, question.position)
        last = state.last_at.timestamp() if state.last_at else 0.0
        return (1, distance, -related, state.mastery, last, effort, question.position)

    rest = sorted((q for q in practice if q.id not in first_ids), key=rank)
    return first + rest


def missed_in_last_test(session: Session, *, learner: Learner, pattern_id: int) -> list[str]:
    """The questions the learner's last finished test of this pattern missed (answered
    wrong or not at all), in the test's order, leaving out those tried since it ended."""
    exam = session.scalars(
        select(Exam)
        .where(
            Exam.learner_id == learner.id,
            Exam.pattern_id == pattern_id,
            Exam.finished_at.is_not(None),
        )
        .order_by(Exam.id.desc())
        .limit(1)
    ).first()
    if exam is None:
        return []
    items = session.execute(
        select(ExamItem.question_id, ExamItem.attempt_id, Attempt.correct)
        .outerjoin(Attempt, Attempt.id == ExamItem.attempt_id)
        .where(ExamItem.exam_id == exam.id)
        .order_by(ExamItem.position)
    ).all()
    missed = [qid for qid, _, correct in items if not correct]
    if not missed:
        return []
    own = [attempt_id for _, attempt_id, _ in items if attempt_id is not None]
    tried_since = set(
        session.scalars(
            select(Attempt.question_id).where(
                Attempt.learner_id == learner.id,
                Attempt.question_id.in_(missed),
                Attempt.created_at >= exam.finished_at,
                Attempt.id.not_in(own),
            )
        )
    )
    return [qid for qid in missed if qid not in tried_since]


def practice_record(
    session: Session,
    *,
    learner: Learner | None,
    pattern: bank.PatternView,
    questions: list[LiveQuestion],
) -> PracticeRecord:
    """What practice knows of this learner in this pattern (`questions`: its live ones)."""
    if learner is None:
        return PracticeRecord()
    by_id = {q.id: q for q in questions}
    rows = session.execute(
        select(Attempt.id, Attempt.question_id, Attempt.correct, Attempt.rating, Attempt.created_at)
        .where(Attempt.learner_id == learner.id, Attempt.question_id.in_(by_id))
        .order_by(Attempt.id.desc())
    ).all()
    states = fold_states((qid, aid, correct, rating, at) for aid, qid, correct, rating, at in rows)
    level = level_of((correct, rating) for _, _, correct, rating, _ in reversed(rows))
    recent_wrong = [aid for aid, _, correct, _, _ in rows[:MISCONCEPTION_MEMORY] if not correct]
    misconceptions: Counter[str] = Counter()
    if recent_wrong:  # feedback is read only for these few: a code answer's can be long
        for qid, feedback in session.execute(
            select(Attempt.question_id, Attempt.feedback).where(Attempt.id.in_(recent_wrong))
        ):
            misconceptions.update(shown_misconceptions(by_id[qid].question, feedback))
    missed = missed_in_last_test(session, learner=learner, pattern_id=pattern.id)
    resting = set(
        session.scalars(
            select(Reveal.question_id).where(
                Reveal.learner_id == learner.id,
                Reveal.kind == REVEAL_SOLUTION,
                Reveal.question_id.in_(by_id),
                Reveal.created_at >= utcnow() - LEARNING_STEP,
            )
        )
    )
    return PracticeRecord(states, level, misconceptions, missed, resting)


def next_practice(
    session: Session,
    *,
    pattern: bank.PatternView,
    learner: Learner | None,
    after: str | None = None,
) -> LiveQuestion | None:
    """The practice question this learner should do next (not `after`, the one just done,
    unless it is the only one): see the module docstring."""
    if Mode.PRACTICE not in pattern.file.modes:
        return None
    questions = bank.list_questions(session, pattern)
    record = practice_record(session, learner=learner, pattern=pattern, questions=questions)
    ordered = practice_order(questions, record)
    for question in ordered:
        if question.id != after:
            return question
    return ordered[0] if ordered else None
