"""The 10-question test of a pattern: drawn once, answered in any order, graded at the end.

A test is a row with its items (question, the version and variant shown, the answer saved
so far). Nothing is graded — and no feedback shown — until the learner finishes; finishing
grades every answer into an ordinary attempt (so tests count toward mastery and reviews) in
one write transaction that first checks the test is still open: finishing twice records one
result. An open test is resumed, from any browser, where the learner left it.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import grading
from app.bank import service as bank
from app.bank.schema import (
    ChoiceQuestion,
    CodeQuestion,
    Difficulty,
    Mode,
    OutputQuestion,
    Question,
)
from app.bank.service import LiveQuestion, PatternView
from app.db import begin_write
from app.errors import Conflict, Invalid, NotFound
from app.learning import answering
from app.learning.answering import Recorded
from app.learning.learners import Visitor, ensure_learner
from app.models import Attempt, Exam, ExamItem, Learner, Pattern, utcnow
from app.runs import QuestionRuns, stored
from app.sandbox.protocol import RunResult

# How many questions of each difficulty a test draws; a pattern with fewer of one difficulty
# fills the gap from its neighbours, and a pattern with fewer in all gets a shorter test.
DRAW = {Difficulty.EASY: 3, Difficulty.MEDIUM: 4, Difficulty.HARD: 3}
STRONG, DEVELOPING = 0.8, 0.5  # score from which the verdict is "strong" / "developing"
PAST_TESTS_SHOWN = 10


# --- drawing and starting -------------------------------------------------------------------


def draw(pool: list[LiveQuestion], rng: random.Random) -> list[LiveQuestion]:
    """Questions for a test: DRAW of each difficulty where the pool has them, the gaps
    filled from the nearest difficulty; ordered easy to hard, shuffled within each."""
    by_difficulty = {d: [q for q in pool if q.question.difficulty == d] for d in Difficulty}
    for questions in by_difficulty.values():
        rng.shuffle(questions)
    order = list(Difficulty)
    quota = dict(DRAW)
    for difficulty in order:  # move what a difficulty lacks to its neighbours
        short = quota[difficulty] - len(by_difficulty[difficulty])
        if short <= 0:
            continue
        quota[difficulty] -= short
        index = order.index(difficulty)
        neighbours = sorted(order, key=lambda d: (abs(order.index(d) - index), -order.index(d)))
        for neighbour in neighbours[1:]:
            spare = len(by_difficulty[neighbour]) - quota[neighbour]
            take = max(0, min(short, spare))
            quota[neighbour] += take
            short -= take
    return [q for d in order for q in by_difficulty[d][: quota[d]]]


def test_pool(session: Session, pattern: PatternView) -> list[LiveQuestion]:
    """The live questions of a pattern that may appear in its test."""
    return [q for q in bank.list_questions(session, pattern) if Mode.TEST in q.question.modes]


def open_exam(session: Session, *, learner: Learner | None, pattern: PatternView) -> Exam | None:
    """The learner's unfinished test of this pattern, if there is one."""
    if learner is None:
        return None
    query = (
        select(Exam)
        .where(
            Exam.learner_id == learner.id,
            Exam.pattern_id == pattern.id,
            Exam.finished_at.is_(None),
        )
        .order_by(Exam.id.desc())
    )
    return session.scalars(query.execution_options(populate_existing=True)).first()


def _fresh_variant(session: Session, visitor: Visitor, question: LiveQuestion) -> int:
    """A variant other than the one the learner is on (where there is another)."""
    total = answering.variant_count(question.question)
    if total == 1:
        return 0
    current = answering.current_variant(session, visitor=visitor, question=question)
    return (current + 1 + secrets.randbelow(total - 1)) % total


def start_exam(session: Session, *, visitor: Visitor, pattern: PatternView) -> Exam:
    """The learner's open test of this pattern, or a new one drawn now."""
    pool = test_pool(session, pattern)
    if not pool:
        raise Invalid(f"{pattern.file.title} has no test questions yet.", field="pattern")
    drawn = draw(pool, random.Random(secrets.randbits(64)))
    variants = [_fresh_variant(session, visitor, q) for q in drawn]
    begin_write(session)
    learner = ensure_learner(session, visitor)
    exam = open_exam(session, learner=learner, pattern=pattern)
    if exam is None:
        exam = Exam(learner_id=learner.id, pattern_id=pattern.id, position=0)
        session.add(exam)
        session.flush()
        session.add_all(
            ExamItem(
                exam_id=exam.id,
                position=position,
                question_id=question.id,
                question_version=question.version,
                variant_index=variant,
            )
            for position, (question, variant) in enumerate(zip(drawn, variants, strict=True))
        )
    session.commit()
    return exam


# --- one test -------------------------------------------------------------------------------


def get_exam_or_raise(session: Session, exam_id: int, *, learner: Learner | None) -> Exam:
    """One of this learner's tests; anyone else's is NotFound, as if it did not exist."""
    exam = session.get(Exam, exam_id, populate_existing=True)
    if exam is None or learner is None or exam.learner_id != learner.id:
        raise NotFound(f"There is no test {exam_id} of yours here.")
    return exam


@dataclass(frozen=True)
class ExamQuestion:
    """A question of a test as the learner sees it: the version and variant drawn."""

    number: int  # 1-based
    item: ExamItem
    question: LiveQuestion  # at the version drawn
    shown: Question  # as the variant drawn shows it

    @property
    def answered(self) -> bool:
        """Whether an answer is saved."""
        return self.item.answer is not None

    @property
    def given(self) -> str:
        """The saved answer as the form shows it."""
        return "" if self.item.answer is None else str(self.item.answer)


@dataclass(frozen=True)
class ExamView:
    """A test and its questions."""

    exam: Exam
    pattern: PatternView
    questions: list[ExamQuestion]

    @property
    def total(self) -> int:
        """How many questions the test has."""
        return len(self.questions)

    @property
    def answered(self) -> int:
        """How many have an answer saved."""
        return sum(1 for q in self.questions if q.answered)

    @property
    def unanswered(self) -> list[int]:
        """Numbers of the questions without an answer."""
        return [q.number for q in self.questions if not q.answered]

    @property
    def finished(self) -> bool:
        """Whether the test is finished (and graded)."""
        return self.exam.finished_at is not None

    @property
    def resume_number(self) -> int:
        """The question to resume at (1-based)."""
        return min(self.exam.position, self.total - 1) + 1

    def question(self, number: int) -> ExamQuestion:
        """Question `number` (1-based), or NotFound."""
        if not 1 <= number <= self.total:
            raise NotFound(f"This test has questions 1–{self.total}, not {number}.")
        return self.questions[number - 1]


def _pattern_of(session: Session, exam: Exam) -> PatternView:
    slug = session.scalar(select(Pattern.slug).where(Pattern.id == exam.pattern_id))
    if slug is None:
        raise NotFound("The pattern of this test is gone.")
    return bank.get_pattern_or_raise(session, slug)


def exam_view(session: Session, exam: Exam) -> ExamView:
    """A test with each question at the version and variant drawn for it."""
    items = session.scalars(
        select(ExamItem).where(ExamItem.exam_id == exam.id).order_by(ExamItem.position)
    ).all()
    questions = []
    for item in items:
        question = bank.get_pinned_or_raise(session, item.question_id, item.question_version)
        shown = answering.shown(question.question, item.variant_index)
        questions.append(ExamQuestion(item.position + 1, item, question, shown))
    return ExamView(exam, _pattern_of(session, exam), questions)


def _checked_answer(question: Question, answer: object) -> object:
    """An answer in the form it is saved, or Invalid; None (an empty answer) clears it."""
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return None
    if isinstance(question, ChoiceQuestion):
        return grading.parse_choice(question, answer)
    if isinstance(question, CodeQuestion):
        return grading.parse_code_answer(answer)
    return grading.parse_output_answer(answer)


def save_answer(
    session: Session,
    *,
    visitor: Visitor,
    exam_id: int,
    number: int,
    answer: object,
    time_taken_ms: int | None = None,
) -> ExamQuestion:
    """Save (or clear, with an empty answer) the answer to question `number`, ungraded, and
    remember it as where the learner is."""
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    view = exam_view(session, exam)
    target = view.question(number)
    saved = _checked_answer(target.shown, answer)
    begin_write(session)
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if exam.finished_at is not None:
        session.rollback()
        raise Conflict("This test is finished: its answers can no longer change.")
    item = session.get(ExamItem, (exam.id, number - 1), populate_existing=True)
    assert item is not None  # items are never deleted
    item.answer = saved
    item.answered_at = utcnow() if saved is not None else None
    if time_taken_ms is not None:
        spent = max(0, min(time_taken_ms, answering.MAX_TIME_TAKEN_MS))
        item.time_taken_ms = (item.time_taken_ms or 0) + spent
    exam.position = number - 1
    session.commit()
    return ExamQuestion(target.number, item, target.question, target.shown)


def move_to(session: Session, *, visitor: Visitor, exam_id: int, number: int) -> None:
    """Remember question `number` as where the learner is (to resume there)."""
    begin_write(session)
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if exam.finished_at is None and exam.position != number - 1:
        exam.position = number - 1
    session.commit()


def finish_exam(
    session: Session, *, visitor: Visitor, exam_id: int, runs: QuestionRuns | None
) -> Exam:
    """Grade every saved answer into an attempt and close the test; a test already finished
    is returned as it is (a double submit, a second tab, a retried request)."""
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if exam.finished_at is not None:
        return exam
    view = exam_view(session, exam)
    graded = [
        (
            q,
            answering.grade_answer(
                session,
                visitor=visitor,
                question=q.question,
                answer=q.item.answer,
                runs=runs,
                variant=q.item.variant_index,
            ),
        )
        for q in view.questions
        if q.answered
    ]
    begin_write(session)
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if exam.finished_at is not None:  # finished by another request while this one graded
        session.commit()
        return exam
    learner = session.get(Learner, exam.learner_id)
    assert learner is not None
    correct = 0
    for q, grade in graded:
        item = session.get(ExamItem, (exam.id, q.item.position), populate_existing=True)
        assert item is not None
        if item.answer != q.item.answer:  # changed while grading: the test was not finished
            session.rollback()
            raise Conflict("An answer changed while the test was being finished; finish again.")
        attempt = answering.store_attempt(
            session,
            learner=learner,
            question=q.question,
            graded=grade,
            time_taken_ms=item.time_taken_ms,
        )
        item.attempt_id = attempt.id
        correct += int(attempt.correct)
    exam.finished_at = utcnow()
    exam.score = correct / view.total if view.total else 0.0
    session.commit()
    return exam


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    """One question of a finished test: as shown, and its graded attempt (None: unanswered).
    Unanswered output questions come with the stored run behind their key, to show it."""

    question: ExamQuestion
    recorded: Recorded | None
    key_run: RunResult | None = None

    @property
    def expected(self) -> str | None:
        """What an unanswered output question's code gave (its key)."""
        shown = self.question.shown
        if self.key_run is None or not isinstance(shown, OutputQuestion):
            return None
        return grading.expected_output(shown, self.key_run)

    @property
    def correct(self) -> bool:
        """Whether the answer was right."""
        return self.recorded is not None and self.recorded.attempt.correct


@dataclass(frozen=True)
class DifficultyScore:
    """How a test went on one difficulty."""

    difficulty: Difficulty
    correct: int
    total: int


@dataclass(frozen=True)
class Verdict:
    """How strong the pattern is, and what to do next."""

    level: Literal["strong", "developing", "weak"]
    title: str
    advice: str


@dataclass(frozen=True)
class ExamResult:
    """A finished test: score, per-difficulty breakdown, each answer with its solution."""

    view: ExamView
    items: list[ItemResult]
    breakdown: list[DifficultyScore]
    verdict: Verdict

    @property
    def correct(self) -> int:
        """How many answers were right."""
        return sum(1 for item in self.items if item.correct)

    @property
    def percent(self) -> int:
        """The score, 0–100."""
        return round(100 * self.correct / len(self.items)) if self.items else 0

    @property
    def missed(self) -> list[ItemResult]:
        """The questions answered wrong or not at all."""
        return [item for item in self.items if not item.correct]


def verdict(score: float, breakdown: list[DifficultyScore]) -> Verdict:
    """The verdict on a pattern from a test's score and where the misses were."""
    missed = [b for b in breakdown if b.correct < b.total]
    weakest = min(breakdown, key=lambda b: b.correct / b.total if b.total else 1.0, default=None)
    where = f" — above all the {weakest.difficulty.value} ones" if weakest and missed else ""
    if score >= STRONG and all(b.total - b.correct <= 1 for b in breakdown):
        return Verdict(
            "strong",
            "Strong",
            "You can trace this pattern. Keep it that way: answer your reviews when they "
            "fall due" + (", and look again at the one you missed." if missed else "."),
        )
    if score >= DEVELOPING:
        return Verdict(
            "developing",
            "Getting there",
            f"Practise the questions you missed{where}: use the hints, then read the worked "
            "solution step by step. Take the test again once they feel easy.",
        )
    return Verdict(
        "weak",
        "Not yet",
        "Start from the pipeline trace and the key insight, then work through practice mode "
        f"one question at a time{where}. Take the test again after.",
    )


def exam_result(session: Session, exam: Exam, *, runs: QuestionRuns) -> ExamResult:
    """A finished test with every answer, the right answer and the worked solution."""
    if exam.finished_at is None:
        raise Conflict("This test is not finished yet.")
    view = exam_view(session, exam)
    items = []
    for q in view.questions:
        attempt = session.get(Attempt, q.item.attempt_id) if q.item.attempt_id else None
        recorded = answering.attempt_details(session, attempt) if attempt else None
        key_run = None
        if recorded is None and isinstance(q.question.question, OutputQuestion):
            key_run = stored(session, runs.key_of(q.question.question, q.item.variant_index))
        items.append(ItemResult(q, recorded, key_run))
    breakdown = [
        DifficultyScore(
            d,
            sum(1 for i in items if i.question.shown.difficulty == d and i.correct),
            sum(1 for i in items if i.question.shown.difficulty == d),
        )
        for d in Difficulty
    ]
    breakdown = [b for b in breakdown if b.total]
    return ExamResult(view, items, breakdown, verdict(exam.score or 0.0, breakdown))


@dataclass(frozen=True)
class PastExam:
    """A test in the list of a learner's tests of a pattern."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    score: float | None


def past_exams(
    session: Session, *, learner: Learner | None, pattern: PatternView
) -> list[PastExam]:
    """The learner's finished tests of this pattern, newest first."""
    if learner is None:
        return []
    query = (
        select(Exam.id, Exam.started_at, Exam.finished_at, Exam.score)
        .where(
            Exam.learner_id == learner.id,
            Exam.pattern_id == pattern.id,
            Exam.finished_at.is_not(None),
        )
        .order_by(Exam.id.desc())
        .limit(PAST_TESTS_SHOWN)
    )
    return [PastExam(*row) for row in session.execute(query)]


@dataclass(frozen=True)
class Landing:
    """The test page of a pattern: the open test to resume, the size of a new one, the
    learner's past results."""

    pattern: PatternView
    open: ExamView | None
    size: int  # questions a new test would have
    by_difficulty: dict[Difficulty, int]
    past: list[PastExam]


def landing(session: Session, *, learner: Learner | None, pattern: PatternView) -> Landing:
    """What the pattern's test page shows this learner."""
    exam = open_exam(session, learner=learner, pattern=pattern)
    drawn = draw(test_pool(session, pattern), random.Random(0))
    return Landing(
        pattern=pattern,
        open=exam_view(session, exam) if exam else None,
        size=len(drawn),
        by_difficulty={d: sum(1 for q in drawn if q.question.difficulty == d) for d in Difficulty},
        past=past_exams(session, learner=learner, pattern=pattern),
    )
