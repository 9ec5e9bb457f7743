"""Step through: the learner predicts the learning rate of each next epoch of a scenario (a
`steps` question), and the real run reveals it before the next. Nothing is stored until the
last epoch is predicted: then the whole trajectory is one attempt, as any other answer is.

What the learner predicted so far comes back with every step (a page holds it, not the
server): it is parsed and graded afresh against the stored run each time, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.bank import service as bank
from app.bank.schema import StepsQuestion
from app.bank.service import LiveQuestion
from app.checking import grading, runstore
from app.checking.runs import Runs
from app.db import begin_write, end_read
from app.errors import Invalid, NotFound
from app.learning import answering
from app.learning.learners import Visitor, admit
from app.learning.progress import QuestionState, question_states
from app.models import Attempt
from app.traces.charts import Chart

EARLIER = "earlier"  # the field of the predictions made so far (the page carries them)
PREDICTION = "prediction"  # the field of the one being made now


@dataclass(frozen=True)
class Scenario:
    """A scenario as the list shows it, with where the learner stands on it."""

    question: LiveQuestion
    state: QuestionState | None


@dataclass(frozen=True)
class Place:
    """A scenario and where it sits among its pattern's scenarios."""

    question: LiveQuestion
    pattern_title: str
    position: int  # from 1
    total: int
    next_scenario: LiveQuestion | None

    @property
    def scenario(self) -> StepsQuestion:
        """The scenario itself."""
        question = self.question.question
        assert isinstance(question, StepsQuestion)  # the place of a scenario is made for one
        return question


@dataclass(frozen=True)
class StepPage:
    """A scenario part-way: epoch 0's rate (given), the epochs predicted so far with the real
    rate revealed beside each, and the epoch to predict next."""

    place: Place
    first_lr: float
    revealed: list[grading.StepOutcome]
    hint: str | None = None  # the scenario's hint, once the learner has asked for it

    @property
    def next_epoch(self) -> int:
        """The epoch to predict now (from 1: epoch 0's rate is given)."""
        return len(self.revealed) + 1

    @property
    def predictions(self) -> list[str]:
        """The predictions so far, as typed: what the page carries to the next step."""
        return [step.given for step in self.revealed]

    @property
    def right(self) -> int:
        """How many of the revealed epochs were predicted right."""
        return sum(step.correct for step in self.revealed)


@dataclass(frozen=True)
class StepResult:
    """A finished step-through, as stored: the score, every epoch, the chart."""

    place: Place
    attempt: Attempt
    feedback: grading.StepsFeedback
    chart: Chart | None


def _scenarios(session: Session, pattern: bank.PatternView) -> list[LiveQuestion]:
    return [q for q in bank.list_questions(session, pattern) if q.question.kind == "steps"]


def scenarios(session: Session, *, pattern: bank.PatternView, visitor: Visitor) -> list[Scenario]:
    """A pattern's step-through scenarios, in order, with this learner's standing on each."""
    states = question_states(session, learner=visitor.learner)
    return [Scenario(q, states.get(q.id)) for q in _scenarios(session, pattern)]


def place_of(session: Session, question: LiveQuestion) -> Place:
    """Where a scenario sits among its pattern's; NotFound if the question is not one."""
    if not isinstance(question.question, StepsQuestion):
        raise NotFound(f"Question {question.id!r} is not a step-through scenario.")
    pattern = bank.get_pattern_or_raise(session, question.pattern_slug)
    siblings = _scenarios(session, pattern)
    index = next(i for i, sibling in enumerate(siblings) if sibling.id == question.id)
    return Place(
        question=question,
        pattern_title=pattern.file.title,
        position=index + 1,
        total=len(siblings),
        next_scenario=siblings[index + 1] if index + 1 < len(siblings) else None,
    )


def _lrs(session: Session, runs: Runs, visitor: Visitor, scenario: StepsQuestion) -> list[float]:
    """The rate of every epoch of the scenario's run: stored at import; run (and stored) now
    only if it is not (a torch upgrade changes every run's key)."""
    run = runs.stored_steps(session, scenario)
    if run is None:
        admit(session, visitor)  # a guest's code runs under their own share
        end_read(session)  # no connection or snapshot is held while code runs
        run = runs.run_steps(scenario)
        begin_write(session)
        runstore.keep(session, run)
        session.commit()
    return grading.scenario_lrs(run.result, scenario.epochs)


def step_page(
    session: Session,
    *,
    question: LiveQuestion,
    visitor: Visitor,
    runs: Runs,
    predictions: list[str] | None = None,
) -> StepPage:
    """A scenario with `predictions` (of epochs 1, 2, …, as typed; none: just begun) graded
    against its run. Invalid (on `earlier`) if they cannot be predictions of it, or are as
    many as its epochs (the last one is an attempt: see `predict`)."""
    place = place_of(session, question)
    return _page(session, place, visitor, runs, _earlier(place.scenario, predictions or []))


def _page(
    session: Session, place: Place, visitor: Visitor, runs: Runs, predictions: list[str]
) -> StepPage:
    scenario = place.scenario
    seen = answering.standing(session, learner=visitor.learner, question_id=place.question.id)
    lrs = _lrs(session, runs, visitor, scenario)
    hint = scenario.hint if seen.hint_seen else None
    return StepPage(place, lrs[0], grading.step_outcomes(lrs, predictions), hint)


def _earlier(scenario: StepsQuestion, predictions: list[str]) -> list[str]:
    """The predictions a page carried, parsed: fewer than the epochs to predict."""
    count = scenario.epochs - 1
    try:
        parsed = grading.parse_steps_answer(predictions, count=count, partial=True)
    except Invalid:
        parsed = None
    if parsed is None or len(parsed) >= count:
        raise Invalid(
            "The predictions this page carried are not ones this scenario can have: it "
            "starts again from epoch 1.",
            field=EARLIER,
        )
    return parsed


def predict(
    session: Session,
    *,
    question: LiveQuestion,
    visitor: Visitor,
    runs: Runs,
    earlier: list[str],
    prediction: str,
    time_taken_ms: int | None = None,
) -> StepPage | answering.Recorded:
    """One more epoch predicted: the page with it revealed, or — the last epoch — the whole
    step-through graded and stored as an attempt (`time_taken_ms`: since the scenario was
    shown, as the server measured it). Invalid on `earlier` if what the page carried cannot
    be this scenario's predictions, on `prediction` if the new one is not a number."""
    place = place_of(session, question)
    parsed = _earlier(place.scenario, earlier)
    given = grading.parse_prediction(prediction, epoch=len(parsed) + 1, field=PREDICTION)
    predictions = [*parsed, given]
    if len(predictions) < place.scenario.epochs - 1:
        return _page(session, place, visitor, runs, predictions)
    return answering.record_attempt(
        session,
        visitor=visitor,
        question=question,
        answer=predictions,
        runs=runs,
        time_taken_ms=time_taken_ms,
        time_measured=time_taken_ms is not None,
    )


def step_result(
    session: Session, *, question: LiveQuestion, visitor: Visitor, attempt_id: int
) -> StepResult:
    """One of this learner's finished step-throughs of `question`."""
    place = place_of(session, question)
    attempt = answering.get_attempt_or_raise(
        session, attempt_id, learner=visitor.learner, question_id=question.id
    )
    details = answering.attempt_details(session, attempt)
    if not isinstance(details.feedback, grading.StepsFeedback):  # an older kind of version
        raise NotFound(f"Attempt {attempt_id} is not a step-through.")
    return StepResult(place, attempt, details.feedback, details.chart)
