"""The ways to learn a pattern — its modes —, where a learner stands in each, and which one to
do next.

MODES is the one registry: the lesson page draws its cards from it and the API lists it.
Each mode is a page of its own (`page`: the name of the route that serves it). Modes made of
questions (the quiz, practice, and the sequences by kind: predict the output, write the
code, fix the bug) count the learner's progress as the questions they have solved; the
trace and the playground are pages to read and play with, and record nothing.

The recommendation (`recommend`) reads the learner's standing in the pattern:

    a test started and not finished      → test: finish it
    nothing answered here yet            → trace (the run every question refers to)
    quiz questions not yet solved        → quiz
    reviews due in this pattern          → review
    questions the last test missed       → practice (they come first there)
    fewer than PRACTISED_BEFORE_TEST
      practice questions solved          → practice
    no test yet, or the last one weak    → test
    output / steps / code / fix left     → predict, step through, write, fix (the first with
                                           any left)
    practice questions left              → practice
    everything solved                    → playground (else practice)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank.schema import Difficulty, Mode, PatternFile, Question
from app.bank.service import LiveQuestion
from app.errors import NotFound
from app.learning import exams, practice
from app.learning.progress import OpenTest, PatternOverview, QuestionState, question_states
from app.models import Learner
from app.wording import plural

PRACTISED_BEFORE_TEST = 5  # half a test's questions solved in practice: a score says something
STRONG_TEST = exams.STRONG  # a last test at least this good needs no retake to move on


def _has_pipeline(file: PatternFile) -> bool:
    return file.pipeline is not None


def _offers(mode: Mode) -> Callable[[PatternFile], bool]:
    return lambda file: mode in file.modes


def _always(file: PatternFile) -> bool:
    return True


def _in_mode(mode: Mode) -> Callable[[Question], bool]:
    return lambda question: mode in question.modes


def _of_kind(kind: str) -> Callable[[Question], bool]:
    """Practice questions of one kind (by name: a kind added to the bank later counts too)."""
    return lambda question: question.kind == kind and Mode.PRACTICE in question.modes


@dataclass(frozen=True)
class LearningMode:
    """A way to learn a pattern, with a page of its own."""

    key: str
    title: str
    description: str
    page: str  # the name of the route serving its page
    offered_by: Callable[[PatternFile], bool]  # whether a pattern offers it
    per_pattern: bool = True  # False: one page across every pattern (review)
    # Modes made of questions: which ones; None: a page to read or play with.
    selects: Callable[[Question], bool] | None = None
    sequence: bool = False  # question by question, the next unsolved after each
    noun: str = "question"  # what its questions are called ("output question")

    def questions(self, questions: list[LiveQuestion]) -> list[LiveQuestion]:
        """Its questions among a pattern's, in the order it asks them (a sequence: easy
        first)."""
        if self.selects is None:
            return []
        chosen = [q for q in questions if self.selects(q.question)]
        if self.sequence:
            order = list(Difficulty)
            chosen.sort(key=lambda q: (order.index(q.question.difficulty), q.position))
        return chosen


TRACE = LearningMode(
    "trace",
    "Trace the pipeline",
    "A real training run, epoch by epoch: the data's shapes, the learning rate each epoch "
    "trained with, loss and accuracy, one prediction through the layers.",
    page="trace",
    offered_by=_has_pipeline,
)
QUIZ = LearningMode(
    "quiz",
    "Quiz",
    "The lesson's short quiz: check you followed the trace.",
    page="quiz",
    offered_by=_offers(Mode.QUIZ),
    selects=_in_mode(Mode.QUIZ),
    noun="quiz question",
)
PRACTICE = LearningMode(
    "practice",
    "Practice",
    "One question at a time at your level: harder as you get them right, easier when you "
    "slip, and what you got wrong comes back.",
    page="practice",
    offered_by=_offers(Mode.PRACTICE),
    selects=_in_mode(Mode.PRACTICE),
    noun="practice question",
)
PREDICT = LearningMode(
    "predict",
    "Predict the output",
    "Read a few lines of scheduler code and say what they print; the real run tells you "
    "whether you were right. One output question after another.",
    page="predict",
    offered_by=_offers(Mode.PRACTICE),
    selects=_of_kind("output"),
    sequence=True,
    noun="output question",
)
STEP_THROUGH = LearningMode(
    "step-through",
    "Step through",
    "Predict the learning rate of each next epoch; the real run reveals it before you "
    "predict the one after. One scenario after another.",
    page="step_through",
    offered_by=_offers(Mode.PRACTICE),
    selects=_of_kind("steps"),
    noun="scenario",
)
WRITE = LearningMode(
    "write",
    "Write the code",
    "Build the scheduler (or the training loop) yourself: it runs beside the reference "
    "and is compared epoch by epoch. One code question after another.",
    page="write",
    offered_by=_offers(Mode.PRACTICE),
    selects=_of_kind("code"),
    sequence=True,
    noun="code question",
)
FIX = LearningMode(
    "fix",
    "Fix the bug",
    "A training loop with a planted scheduler bug: find it and fix it, until every epoch "
    "trains at the right rate. One buggy loop after another.",
    page="fix",
    offered_by=_offers(Mode.PRACTICE),
    selects=_of_kind("fix"),
    sequence=True,
    noun="fix-the-bug question",
)
REVIEW = LearningMode(
    "review",
    "Review",
    "Questions you answered before, brought back when your memory of them is due to fade.",
    page="review",
    offered_by=_always,
    per_pattern=False,
)
TEST = LearningMode(
    "test",
    "Test this pattern",
    "Questions across easy, medium and hard, no feedback until the end — then your score, "
    "where you slipped, and every worked solution.",
    page="test",
    offered_by=_offers(Mode.TEST),
)
PLAYGROUND = LearningMode(
    "playground",
    "Scheduler playground",
    "Swap in any scheduler, change its parameters, and watch the real curves move against "
    "the lesson's.",
    page="playground",
    offered_by=_has_pipeline,
)

# In the order the lesson page lists them.
MODES: tuple[LearningMode, ...] = (
    TRACE,
    QUIZ,
    PRACTICE,
    PREDICT,
    STEP_THROUGH,
    WRITE,
    FIX,
    REVIEW,
    TEST,
    PLAYGROUND,
)
BY_KEY = {mode.key: mode for mode in MODES}
SEQUENCES = tuple(mode for mode in MODES if mode.sequence)
# The modes of one kind of question each, in the order they are recommended once practised.
BY_KIND = (PREDICT, STEP_THROUGH, WRITE, FIX)


def offered(pattern: bank.PatternView) -> list[LearningMode]:
    """The modes a pattern offers, in the lesson's order."""
    return [mode for mode in MODES if mode.offered_by(pattern.file)]


def get_offered_or_raise(pattern: bank.PatternView, key: str) -> LearningMode:
    """The mode `key` of this pattern, or NotFound if the pattern does not offer it."""
    mode = BY_KEY.get(key)
    if mode is None or not mode.offered_by(pattern.file):
        raise NotFound(f"{pattern.file.title} has no {key} mode.")
    return mode


def continuing(question: Question) -> list[LearningMode]:
    """The modes made of questions whose page a learner goes on to after answering this one
    (the quiz, and the sequence of its kind) — practice, offered everywhere, aside."""
    return [mode for mode in (QUIZ, *SEQUENCES) if mode.selects and mode.selects(question)]


# --- where a learner stands ---------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Questions of a mode: how many, and how many the learner has solved."""

    solved: int
    total: int

    @property
    def left(self) -> int:
        """How many are not solved yet."""
        return self.total - self.solved


def tally(questions: list[LiveQuestion], states: dict[str, QuestionState]) -> Tally:
    """How many of these questions the learner has solved."""
    solved = sum(1 for q in questions if q.id in states and states[q.id].solved)
    return Tally(solved, len(questions))


@dataclass(frozen=True)
class LastTest:
    """The learner's newest finished test of a pattern."""

    score: float  # 0–1
    missed_to_practise: int  # questions it missed, not tried since


@dataclass(frozen=True)
class Standing:
    """What the recommendation reads: where a learner stands in a pattern."""

    offered: frozenset[str]  # keys of the modes the pattern offers
    answered: int = 0  # questions of the pattern answered at least once
    due: int = 0  # reviews due now in the pattern
    open_test: OpenTest | None = None
    last_test: LastTest | None = None
    tallies: dict[str, Tally] = field(default_factory=dict)  # per mode made of questions

    def tally(self, key: str) -> Tally:
        """The tally of a mode made of questions (none: nothing to solve)."""
        return self.tallies.get(key, Tally(0, 0))


@dataclass(frozen=True)
class Recommendation:
    """The mode to do next, and why, in words."""

    key: str
    reason: str


def recommend(standing: Standing) -> Recommendation:
    """The mode to do next from the learner's standing (see the module docstring)."""
    offers = standing.offered.__contains__
    if standing.open_test and offers(TEST.key):
        test = standing.open_test
        return Recommendation(
            TEST.key,
            f"You started a test and answered {test.answered} of its "
            f"{plural(test.total, 'question')}: finish it to see your score.",
        )
    quiz = standing.tally(QUIZ.key)
    has_quiz = offers(QUIZ.key) and quiz.left > 0
    if standing.answered == 0:
        if offers(TRACE.key):
            return Recommendation(
                TRACE.key,
                "You have not answered anything here yet: start with the trace, the real "
                "training run every question refers to.",
            )
        if has_quiz:
            return Recommendation(QUIZ.key, "New here: start with the lesson's short quiz.")
    if has_quiz:
        return Recommendation(
            QUIZ.key,
            f"{plural(quiz.left, 'quiz question')} of {quiz.total} still to solve: check you "
            "followed the trace before practising.",
        )
    if standing.due and offers(REVIEW.key):
        return Recommendation(
            REVIEW.key,
            f"{plural(standing.due, 'question')} {'is' if standing.due == 1 else 'are'} due "
            "for review: answer them now, before you forget them.",
        )
    practice_tally = standing.tally(PRACTICE.key)
    last = standing.last_test
    if offers(PRACTICE.key):
        if last and last.missed_to_practise:
            return Recommendation(
                PRACTICE.key,
                f"Your last test missed {plural(last.missed_to_practise, 'question')}: "
                "practice starts with them.",
            )
        short = PRACTISED_BEFORE_TEST - practice_tally.solved
        if short > 0 and practice_tally.left > 0:
            return Recommendation(
                PRACTICE.key,
                f"Practice picks questions at your level: solve {short} more before you "
                "test yourself."
                if practice_tally.solved
                else "Practice picks questions at your level, starting easy.",
            )
    if offers(TEST.key) and (last is None or last.score < STRONG_TEST):
        return Recommendation(
            TEST.key,
            f"You have solved {plural(practice_tally.solved, 'practice question')}: test yourself."
            if last is None
            else "You have practised what your last test missed: take the test again.",
        )
    for mode in BY_KIND:
        left = standing.tally(mode.key)
        if offers(mode.key) and left.left > 0:
            return Recommendation(
                mode.key,
                f"You have solved {left.solved} of the {plural(left.total, mode.noun)}: "
                f"{left.left} to go.",
            )
    if offers(PRACTICE.key) and practice_tally.left > 0:
        return Recommendation(
            PRACTICE.key,
            f"{plural(practice_tally.left, 'practice question')} still to solve.",
        )
    if offers(PLAYGROUND.key):
        return Recommendation(
            PLAYGROUND.key,
            "You have solved every question here: try other schedulers in the playground.",
        )
    return Recommendation(
        PRACTICE.key if offers(PRACTICE.key) else REVIEW.key,
        "You have solved every question here: keep it fresh.",
    )


@dataclass(frozen=True)
class ModeCard:
    """A mode on the lesson page, with the learner's progress in it."""

    mode: LearningMode
    progress: str | None  # in words; None: a page that records nothing
    done: bool = False  # every question of it solved
    reason: str | None = None  # why it is recommended (only the recommended card)


@dataclass(frozen=True)
class PatternModes:
    """The lesson page's modes: the recommended one first, then the others in order."""

    cards: list[ModeCard]
    recommended: Recommendation


def _progress_words(mode: LearningMode, standing: Standing) -> tuple[str | None, bool]:
    if mode is TEST:
        if standing.open_test:
            test = standing.open_test
            return f"A test in progress: {test.answered} of {test.total} answered", False
        if standing.last_test:
            return f"Last test: {round(100 * standing.last_test.score)}%", False
        return "Not taken yet", False
    if mode is REVIEW:
        return (f"{standing.due} due now", False) if standing.due else ("Nothing due now", False)
    if mode.selects is None:
        return None, False
    count = standing.tally(mode.key)
    if count.total == 0:
        return f"No {mode.noun}s yet", False
    return f"{count.solved} of {plural(count.total, mode.noun)} solved", count.left == 0


def cards(pattern: bank.PatternView, standing: Standing) -> PatternModes:
    """The lesson page's mode cards for this standing, the recommended one first."""
    recommended = recommend(standing)
    made = []
    for mode in offered(pattern):
        words, done = _progress_words(mode, standing)
        reason = recommended.reason if mode.key == recommended.key else None
        made.append(ModeCard(mode, words, done, reason))
    made.sort(key=lambda card: card.reason is None)  # stable: the others keep their order
    return PatternModes(made, recommended)


def standing(session: Session, *, overview: PatternOverview, learner: Learner | None) -> Standing:
    """Where the learner stands in the overview's pattern, for the recommendation."""
    pattern = overview.pattern
    questions = [q for q, _ in overview.questions]
    states = {q.id: state for q, state in overview.questions if state is not None}
    tallies = {
        mode.key: tally(mode.questions(questions), states)
        for mode in MODES
        if mode.selects is not None
    }
    last_test = None
    past = exams.past_exams(session, learner=learner, pattern=pattern)
    if past and learner is not None:
        missed = practice.missed_in_last_test(session, learner=learner, pattern_id=pattern.id)
        last_test = LastTest(past[0].score or 0.0, len(missed))
    return Standing(
        offered=frozenset(mode.key for mode in offered(pattern)),
        answered=len(states),
        due=overview.progress.due,
        open_test=overview.progress.open_test,
        last_test=last_test,
        tallies=tallies,
    )


def pattern_modes(
    session: Session, *, overview: PatternOverview, learner: Learner | None
) -> PatternModes:
    """The lesson page's modes for this learner, with the one to do next."""
    return cards(overview.pattern, standing(session, overview=overview, learner=learner))


# --- the pages of modes made of questions -------------------------------------------------------


@dataclass(frozen=True)
class ModeQuestions:
    """A mode's questions with the learner's state on each; `next`: the one to go to."""

    mode: LearningMode
    pattern: bank.PatternView
    items: list[tuple[LiveQuestion, QuestionState | None]]
    next: LiveQuestion | None = None

    @property
    def tally(self) -> Tally:
        """How many there are, and how many are solved."""
        return Tally(sum(1 for _, s in self.items if s and s.solved), len(self.items))

    @property
    def next_number(self) -> int | None:
        """The place of `next` in the list, from 1."""
        ids = [q.id for q, _ in self.items]
        return ids.index(self.next.id) + 1 if self.next and self.next.id in ids else None


def next_unsolved(
    questions: list[LiveQuestion], states: dict[str, QuestionState], *, after: str | None
) -> LiveQuestion | None:
    """The first question not yet solved after `after` in this order (going round to the
    start): `after` itself only when it is the last one unsolved; None when all are."""
    ids = [q.id for q in questions]
    start = ids.index(after) + 1 if after in ids else 0
    unsolved = [
        q
        for q in questions[start:] + questions[:start]
        if not (q.id in states and states[q.id].solved)
    ]
    others = [q for q in unsolved if q.id != after]
    return (others or unsolved)[0] if unsolved else None


def mode_questions(
    session: Session,
    *,
    pattern: bank.PatternView,
    learner: Learner | None,
    key: str,
    after: str | None = None,
) -> ModeQuestions:
    """A mode's questions with this learner's state on each, and the next unsolved one
    after `after` (the one just done); NotFound if the pattern does not offer the mode."""
    mode = get_offered_or_raise(pattern, key)
    if mode.selects is None:
        raise NotFound(f"{mode.title} is not made of questions.")
    questions = mode.questions(bank.list_questions(session, pattern))
    states = question_states(session, learner=learner)
    items = [(q, states.get(q.id)) for q in questions]
    return ModeQuestions(mode, pattern, items, next_unsolved(questions, states, after=after))
