"""The 10-question test of a pattern: drawn once, answered in any order, graded at the end.

A test is a row with its items (question, the version and variant shown, the answer saved
so far). Nothing is graded — and no feedback shown — until the learner finishes; finishing
grades every answer into an ordinary attempt (so tests count toward mastery and reviews) in
one write transaction that first checks the test is still open: finishing twice records one
result. An open test is resumed, from any browser, where the learner left it.
"""

from __future__ import annotations

import copy
import random
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

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
from app.checking import grading, runstore
from app.checking.runs import Runs
from app.db import begin_write
from app.errors import Conflict, Invalid, NotFound
from app.learning import answering
from app.learning.answering import Recorded
from app.learning.learners import Visitor, ensure_learner
from app.models import Attempt, Exam, ExamItem, Learner, Pattern, utcnow
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
    """The live questions of a pattern that may appear in its test (none if the pattern
    offers no test)."""
    if Mode.TEST not in pattern.file.modes:
        return []
    return [q for q in bank.list_questions(session, pattern) if Mode.TEST in q.question.modes]


def open_exams(session: Session, *, learner: Learner | None, pattern: PatternView) -> list[Exam]:
    """The learner's unfinished tests of this pattern, newest first (usually one; two after
    a log-in brought a guest's open test into an account that had one)."""
    if learner is None:
        return []
    query = (
        select(Exam)
        .where(
            Exam.learner_id == learner.id,
            Exam.pattern_id == pattern.id,
            Exam.finished_at.is_(None),
        )
        .order_by(Exam.id.desc())
    )
    return list(session.scalars(query.execution_options(populate_existing=True)))


def start_exam(session: Session, *, visitor: Visitor, pattern: PatternView) -> Exam:
    """The learner's open test of this pattern, or a new one drawn now."""
    pool = test_pool(session, pattern)
    if not pool:
        raise Invalid(f"{pattern.file.title} has no test questions yet.", field="pattern")
    drawn = draw(pool, random.Random(secrets.randbits(64)))
    variants = [answering.other_variant(session, visitor=visitor, question=q) for q in drawn]
    begin_write(session)
    learner = ensure_learner(session, visitor)
    open_ones = open_exams(session, learner=learner, pattern=pattern)
    if open_ones:
        exam = open_ones[0]
    else:
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
        """The question to resume at (1-based): where the learner was, unless that one is
        answered and an earlier or later one is not."""
        here = min(self.exam.position, self.total - 1) + 1
        if not self.questions[here - 1].answered:
            return here
        later = [n for n in self.unanswered if n > here]
        return (later or self.unanswered or [here])[0]

    def question(self, number: int) -> ExamQuestion:
        """Question `number` (1-based), or NotFound."""
        if not 1 <= number <= self.total:
            raise NotFound(f"This test has {_numbers(self.total)}, not {number}.")
        return self.questions[number - 1]


def _numbers(total: int) -> str:
    """The numbers of a test's questions, in words."""
    return "question 1 only" if total == 1 else f"questions 1–{total}"


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
    pinned = bank.get_pinned(session, [(i.question_id, i.question_version) for i in items])
    return ExamView(exam, _pattern_of(session, exam), [_exam_question(i, pinned) for i in items])


def _exam_question(
    item: ExamItem, pinned: dict[tuple[str, int], bank.LiveQuestion]
) -> ExamQuestion:
    question = pinned.get((item.question_id, item.question_version))
    if question is None:  # versions are never deleted
        raise NotFound(f"There is no version {item.question_version} of {item.question_id!r}.")
    shown = answering.shown(question.question, item.variant_index)
    return ExamQuestion(item.position + 1, item, question, shown)


def exam_question(session: Session, exam: Exam, number: int) -> ExamQuestion:
    """Question `number` (1-based) of a test, or NotFound — without the rest of the test."""
    item = session.get(ExamItem, (exam.id, number - 1)) if number >= 1 else None
    if item is None:
        total = session.scalar(select(func.count()).where(ExamItem.exam_id == exam.id))
        raise NotFound(f"This test has {_numbers(total or 0)}, not {number}.")
    key = (item.question_id, item.question_version)
    return _exam_question(item, bank.get_pinned(session, [key]))


def _checked_answer(question: Question, answer: object) -> object:
    """An answer in the form it is saved, or Invalid; None (an empty answer) clears it."""
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return None
    if isinstance(question, ChoiceQuestion):
        return grading.parse_choice(question, answer)
    if isinstance(question, CodeQuestion):
        code = grading.parse_code_answer(answer)
        # The starting code as given (the editor's, sent with the page) is no answer yet.
        return None if grading.not_yet_an_answer(question, code) else code
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
    target = exam_question(session, exam, number)
    saved = _checked_answer(target.shown, answer)
    begin_write(session)
    _move_open_exam(session, exam.id, number)
    item = session.get(ExamItem, (exam.id, number - 1), populate_existing=True)
    assert item is not None  # items are never deleted
    item.answer = saved
    item.answered_at = utcnow() if saved is not None else None
    if time_taken_ms is not None:
        spent = max(0, min(time_taken_ms, answering.MAX_TIME_TAKEN_MS))
        item.time_taken_ms = (item.time_taken_ms or 0) + spent
    session.commit()
    return ExamQuestion(target.number, item, target.question, target.shown)


def _move_open_exam(session: Session, exam_id: int, number: int) -> None:
    """Set where the learner is in a test, only if it is still open — one statement that
    waits for (and then sees) a finish under way, on any database; else Conflict."""
    moved: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Exam)
        .where(Exam.id == exam_id, Exam.finished_at.is_(None))
        .values(position=number - 1)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        session.rollback()
        raise Conflict("This test is finished: its answers can no longer change.")


def move_to(session: Session, *, visitor: Visitor, exam_id: int, number: int) -> None:
    """Remember question `number` as where the learner is (to resume there)."""
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    exam_question(session, exam, number)  # NotFound for a number the test lacks
    begin_write(session)
    _move_open_exam(session, exam.id, number)
    session.commit()


def finish_exam(session: Session, *, visitor: Visitor, exam_id: int, runs: Runs | None) -> Exam:
    """Grade every saved answer into an attempt and close the test; a test already finished
    is returned as it is (a double submit, a second tab, a retried request)."""
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if exam.finished_at is not None:
        return exam
    if runs is not None:
        # Graded whatever is left of the learner's budget of running time: the answers are
        # saved already, and a refusal could leave the test never to be finished.
        runs = runs.for_owner(runs.owner.without_budget())
    view = exam_view(session, exam)
    graded = {
        q.item.position: (
            q,
            copy.deepcopy(q.item.answer),  # what is graded: checked again before it counts
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
    }
    begin_write(session)
    # Close the test first, in one statement that only an open test matches: of two
    # requests finishing at once — on any database — exactly one goes on.
    closed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Exam)
        .where(Exam.id == exam_id, Exam.finished_at.is_(None))
        .values(finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    exam = get_exam_or_raise(session, exam_id, learner=visitor.learner)
    if closed.rowcount != 1:  # finished by another request while this one graded
        session.rollback()
        return get_exam_or_raise(session, exam_id, learner=visitor.learner)
    learner = session.get(Learner, exam.learner_id)
    assert learner is not None
    items = session.scalars(
        select(ExamItem)
        .where(ExamItem.exam_id == exam.id)
        .order_by(ExamItem.position)
        .execution_options(populate_existing=True)
    ).all()
    if {i.position for i in items if i.answer is not None} != set(graded) or any(
        graded[i.position][1] != i.answer for i in items if i.answer is not None
    ):
        session.rollback()  # an answer was saved while this request graded
        raise Conflict("An answer changed while the test was being finished; finish again.")
    correct = 0
    for item in items:
        if item.position not in graded:  # unanswered: its solution is shown with the result
            answering.record_reveal(
                session, learner=learner, question=view.questions[item.position].question
            )
            continue
        q, _, grade = graded[item.position]
        attempt = answering.store_attempt(
            session,
            learner=learner,
            question=q.question,
            graded=grade,
            seen=_help_seen_in_a_test(session, learner, q.question),
            time_taken_ms=item.time_taken_ms,
            time_measured=True,  # summed from the signed times of the test's own pages
        )
        item.attempt_id = attempt.id
        correct += int(attempt.correct)
        if not attempt.correct:  # the result shows every solution: this one is seen now
            answering.record_reveal(session, learner=learner, question=q.question, attempt=attempt)
    exam.score = correct / len(items) if items else 0.0
    session.commit()
    return exam


def _help_seen_in_a_test(
    session: Session, learner: Learner, question: LiveQuestion
) -> answering.Standing:
    """Where the learner stands with a test's question as its answer is graded, with the
    help that answer had: no hint. A test shows none (its pages have none; `reveal_hint`
    refuses while it is open), so a hint seen in practice before neither flags the answer
    nor makes it Hard; a solution seen lately still does."""
    seen = answering.standing(session, learner=learner, question_id=question.id)
    return replace(seen, hint_seen=False)


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    """One question of a finished test: as shown, and its graded attempt (None: unanswered).
    Unanswered output questions come with the stored run behind their key, to show it."""

    question: ExamQuestion
    recorded: Recorded | None
    key_run: RunResult[None] | None = None

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
            "fall due" + (", and look again at what you missed." if missed else "."),
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


def exam_result(session: Session, view: ExamView, *, runs: Runs) -> ExamResult:
    """A finished test with every answer, the right answer and the worked solution."""
    if not view.finished:
        raise Conflict("This test is not finished yet.")
    items = []
    for q in view.questions:
        attempt = session.get(Attempt, q.item.attempt_id) if q.item.attempt_id else None
        # A finished test shows every key and solution, answered right or not.
        recorded = None
        if attempt is not None:
            recorded = replace(answering.attempt_details(session, attempt), revealed=True)
        key_run = None
        if recorded is None and isinstance(q.question.question, OutputQuestion):
            job = runs.variant_job(q.question.question, q.item.variant_index)
            found = runstore.find(session, job)
            key_run = found.result if found is not None else None
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
    return ExamResult(view, items, breakdown, verdict(view.exam.score or 0.0, breakdown))


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
    """The test page of a pattern: the open tests to resume, the size of a new one, the
    learner's past results."""

    pattern: PatternView
    open: list[ExamView]
    size: int  # questions a new test would have
    by_difficulty: dict[Difficulty, int]
    past: list[PastExam]


def landing(session: Session, *, learner: Learner | None, pattern: PatternView) -> Landing:
    """What the pattern's test page shows this learner."""
    drawn = draw(test_pool(session, pattern), random.Random(0))
    return Landing(
        pattern=pattern,
        open=[
            exam_view(session, exam)
            for exam in open_exams(session, learner=learner, pattern=pattern)
        ],
        size=len(drawn),
        by_difficulty={d: sum(1 for q in drawn if q.question.difficulty == d) for d in Difficulty},
        past=past_exams(session, learner=learner, pattern=pattern),
    )
