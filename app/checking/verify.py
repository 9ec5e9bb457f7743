"""Verifying questions by running them: one `verify()` for import, the editor and the API.

What a question's key depends on is run in the sandbox: every variant of an output question
(each must give an answer, and agree with `answer` when the author wrote one; one that
raises only where the question says so, by `raises` or `answer`), a code
question's reference (it must pass its own check) and its self-tests (each must be judged as
the file says), a fix question's buggy code (the check must refuse it, diagnosed as the bug
the file names), a step-through scenario (it must run to its last epoch), and every
pattern's pipeline. Runs already stored are not made again, and a
code question whose content was verified before (`verified_before`) with its reference
stored runs nothing.

Runs go to the sandbox as many at once as it can hold (`in_flight_limit`), as the system's
or an instructor's. A busy or unavailable sandbox is not the question's fault: Busy goes to
the caller (try again), never into a question's problems.
"""

from __future__ import annotations

import difflib
import math
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from app.bank import variants
from app.bank.schema import CodeQuestion, FixQuestion, OutputQuestion, Question, StepsQuestion
from app.checking import runstore
from app.checking.codecheck import MISTAKES, judge, name_step
from app.checking.grading import compare_output, expected_output
from app.checking.jobs import code_job, pipeline_job, steps_job, torch_version
from app.checking.runs import Runs
from app.checking.runstore import Run
from app.db import end_read
from app.errors import AppError, Busy, Problem
from app.sandbox.client import Ticket
from app.sandbox.protocol import CodeData, JobBase, PipelineData, RunResult, Verdict
from app.sandbox.specs import PipelineSpec

MAX_IN_FLIGHT = 32  # runs handed to the sandbox at once, at most (it may hold fewer)
NAMED_VARIANTS = 3  # a problem of some variants names this many of them, then counts the rest


@dataclass(frozen=True)
class RunProblem(Problem):
    """What a run showed to be wrong: where in the field's code it happened (`code_line`,
    1-based, when the traceback names a line of it), and, for a variant that raised an
    exception the question does not name, that exception (`unnamed_raise`): `raises: <it>`
    makes it the key, when the author means it."""

    code_line: int | None = None
    unnamed_raise: str | None = None
    transient: bool = False  # the run did not finish (a time-out may be load): try again


@dataclass(frozen=True)
class VariantRun:
    """One variant of an output question, run: its parameters, the run, the answer it gives
    (its key), and what is wrong with it."""

    index: int
    params: dict[str, Any]
    result: RunResult[None] | None
    answer: str | None
    problem: str | None

    @property
    def summary(self) -> str:
        """How the run ended, in a few words (`ok`, `error: NameError, line 9`); what is
        wrong is said once for all variants, in the question's problems."""
        result = self.result
        if result is None:
            return "not run"
        status = result.status.value
        if result.error is not None:
            line = f", line {result.error.line}" if result.error.line else ""
            status = f"{status}: {result.error.type}{line}"
        return f"{status} — refused" if self.problem else status


@dataclass
class Verification:
    """What running a question showed: per variant (output questions), the reference's run
    (code questions), what is wrong, and the runs to keep."""

    question: Question
    variants: list[VariantRun] = field(default_factory=list)
    reference: Run[CodeData] | None = None
    problems: list[Problem] = field(default_factory=list)
    runs: list[Run[Any]] = field(default_factory=list)  # keys and solutions come from them
    warnings: list[str] = field(default_factory=list)  # worth a look, no reason to refuse

    @property
    def ok(self) -> bool:
        """Whether the question may be saved."""
        return not self.problems


@dataclass(frozen=True)
class PipelineRecording:
    """A pattern's pipeline, trained: its run to keep, or why it did not train."""

    spec: PipelineSpec
    run: Run[PipelineData] | None
    problem: str | None


@dataclass
class Verified:
    """Every question's verification (by id) and every pipeline's recording."""

    questions: dict[str, Verification]
    pipelines: list[PipelineRecording]

    @property
    def runs(self) -> list[Run[Any]]:
        """Every run to keep."""
        kept = [run for v in self.questions.values() for run in v.runs]
        return kept + [p.run for p in self.pipelines if p.run is not None]


def verify(
    session: Session,
    runs: Runs | None,
    *,
    questions: Sequence[Question] = (),
    pipelines: Sequence[PipelineSpec] = (),
    verified_before: Collection[str] = (),
) -> Verified:
    """Run what the questions' keys and the pipelines depend on, and judge it. Reads what is
    stored, ends the session's read (it must have written nothing), then holds no
    connection while code runs. Busy if the sandbox cannot run code now."""
    verifications = {q.id: Verification(q) for q in questions}
    recordings: list[PipelineRecording] = []
    plans: list[_Plan] = []
    for question in questions:
        plan = _plan(session, runs, verifications[question.id], verified_before)
        if plan is not None:
            plans.append(plan)
    pipeline_jobs = []
    for spec in pipelines:
        # Without runs only its stored run is looked for (a key ignores the time limit).
        job = pipeline_job(spec, timeout_s=runs.timeout_s if runs else 0.0)
        if (found := runstore.find(session, job)) is not None:
            recordings.append(PipelineRecording(spec, found, None))
        elif runs is None or runs.sandbox is None:
            recordings.append(PipelineRecording(spec, None, "no sandbox was given to train it"))
        else:
            pipeline_jobs.append((spec, job))
    end_read(session)

    if runs is not None:
        window = _Window(runs, in_flight_limit(runs))
        for plan in plans:
            plan.send(window)
        for spec, job in pipeline_jobs:
            window.add(job, _record_pipeline(spec, job, recordings))
        window.drain()
    for plan in plans:
        plan.judge()
    return Verified(verifications, recordings)


def in_flight_limit(runs: Runs) -> int:
    """How many runs to hand the sandbox at once: what it can hold (slots and queue), at
    most MAX_IN_FLIGHT."""
    sandbox = runs.sandbox
    return max(1, min(MAX_IN_FLIGHT, sandbox.capacity if sandbox is not None else 1))


# --- sending runs, a window at a time --------------------------------------------------------

Outcome = RunResult[Any] | AppError
Done = Callable[[Any], None]


class _Window:
    """Runs handed to the sandbox at most `limit` at a time; each one's outcome (a result, or
    the AppError that stopped it) goes to its callback, in the order they were added."""

    def __init__(self, runs: Runs, limit: int) -> None:
        self.runs = runs
        self.limit = limit
        self.in_flight: deque[tuple[Ticket[Any], Done]] = deque()

    def add(self, job: JobBase[Any], done: Done) -> None:
        while len(self.in_flight) >= self.limit:
            self._collect()
        try:
            ticket = self.runs.submit(job)
        except Busy:
            raise
        except AppError as exc:
            done(exc)
            return
        self.in_flight.append((ticket, done))

    def drain(self) -> None:
        while self.in_flight:
            self._collect()

    def _collect(self) -> None:
        ticket, done = self.in_flight.popleft()
        try:
            outcome: Outcome = ticket.result()
        except Busy:
            raise
        except AppError as exc:
            outcome = exc
        done(outcome)


def _record_pipeline(
    spec: PipelineSpec, job: JobBase[PipelineData], recordings: list[PipelineRecording]
) -> Done:
    def done(outcome: Outcome) -> None:
        if isinstance(outcome, AppError):
            recordings.append(PipelineRecording(spec, None, f"could not run: {outcome.message}"))
        elif outcome.status is not Verdict.OK or outcome.data is None:
            reason = outcome.error.message if outcome.error else outcome.sentence
            recordings.append(PipelineRecording(spec, None, f"did not train: {reason}"))
        else:
            recordings.append(PipelineRecording(spec, runstore.run_of(job, outcome), None))

    return done


# --- a question's plan: what it needs run, and how it is judged -----------------------------


class _Plan:
    """What one question needs from the sandbox, and how its runs are judged."""

    def send(self, window: _Window) -> None:
        """Hand the question's runs to the window."""

    def judge(self) -> None:
        """Judge the runs (every outcome is in by now)."""


def _plan(
    session: Session,
    runs: Runs | None,
    verification: Verification,
    verified_before: Collection[str],
) -> _Plan | None:
    question = verification.question
    if isinstance(question, OutputQuestion):
        if runs is None:
            verification.problems.append(
                Problem(
                    "code", "output questions are checked by running them, and no sandbox was given"
                )
            )
            return None
        return _OutputPlan(session, runs, verification, question)
    if isinstance(question, CodeQuestion):
        if runs is None or runs.sandbox is None:
            verification.problems.append(
                Problem(
                    "reference",
                    "code questions are checked by running their reference, and no sandbox "
                    "was given",
                )
            )
            return None
        return _CodePlan(session, runs, verification, question, verified_before)
    if isinstance(question, StepsQuestion):
        if runs is None:
            verification.problems.append(
                Problem(
                    "code",
                    "step-through scenarios are checked by running them, and no sandbox was given",
                )
            )
            return None
        return _StepsPlan(session, runs, verification, question)
    return None  # a choice question's key is its `correct` choice: nothing to run


class _OutputPlan(_Plan):
    """Every variant: stored, or run now."""

    def __init__(
        self, session: Session, runs: Runs, verification: Verification, question: OutputQuestion
    ) -> None:
        self.verification = verification
        self.question = question
        self.jobs = [runs.variant_job(question, i) for i in range(question.variant_count)]
        self.outcomes: dict[int, Outcome] = {}
        self.keys: dict[int, str] = {}
        for index, job in enumerate(self.jobs):
            if (found := runs.stored_key(session, job)) is not None:
                self.outcomes[index], self.keys[index] = found.result, found.key

    def send(self, window: _Window) -> None:
        for index, job in enumerate(self.jobs):
            if index not in self.outcomes:
                window.add(job, self._done(index))

    def _done(self, index: int) -> Done:
        def done(outcome: Outcome) -> None:
            self.outcomes[index] = outcome

        return done

    def judge(self) -> None:
        verification, question = self.verification, self.question
        failed = next((o for o in self.outcomes.values() if isinstance(o, AppError)), None)
        if failed is not None:
            verification.problems.append(
                RunProblem(
                    "code", f"the sandbox could not run it: {failed.message}", transient=True
                )
            )
            return
        results: dict[int, RunResult[None]] = {
            i: o for i, o in self.outcomes.items() if not isinstance(o, AppError)
        }
        raised = [i for i, result in results.items() if result.status is Verdict.ERROR]
        if question.raises is not None and raised and len(raised) < len(results):
            verification.warnings.append(
                f"{len(raised)} of {len(results)} variants raise {question.raises} (their key "
                "is the exception) while the others print an answer. Intended? If not, a "
                "parameter value breaks the code."
            )
        if question.raises is not None and not raised:
            verification.problems.append(
                Problem(
                    "raises",
                    f"no variant raises {question.raises}: each prints its answer. Drop "
                    "`raises`, or make the code raise it",
                )
            )
        all_params = variants.all_variants(question)
        problems: dict[int, RunProblem] = {}
        for index, job in enumerate(self.jobs):
            result = results[index]
            problem = variant_problem(question, result)
            answer = (
                expected_output(question, result) if result.status in runstore.CACHEABLE else None
            )
            verification.variants.append(
                VariantRun(
                    index,
                    all_params[index],
                    result,
                    answer or None,
                    problem.message if problem else None,
                )
            )
            if problem:
                problems[index] = problem
            else:
                key = self.keys.get(index)
                verification.runs.append(
                    Run(key, job, result) if key is not None else runstore.run_of(job, result)
                )
        verification.problems += _once_each(problems, all_params)


def _once_each(problems: dict[int, RunProblem], all_params: list[dict[str, Any]]) -> list[Problem]:
    """The variants' problems, each once: a problem several variants share (the same field,
    message and line of code — a typo breaks them all) says which variants, or how many,
    it concerns."""
    shared: dict[tuple[str, str, int | None], list[int]] = {}
    for index, problem in problems.items():
        shared.setdefault((problem.field, problem.message, problem.code_line), []).append(index)
    return [
        replace(problems[indices[0]], message=_which(indices, all_params) + message)
        for (_, message, _), indices in shared.items()
    ]


def _which(indices: list[int], all_params: list[dict[str, Any]]) -> str:
    """`variant n=2: `, `2 of 3 variants (n=2; n=3): `, `all 8 variants: `, or nothing for a
    question of one variant."""
    total = len(all_params)
    if total == 1:
        return ""
    if len(indices) == total:
        return "both variants: " if total == 2 else f"all {total} variants: "
    named = [", ".join(f"{k}={v!r}" for k, v in all_params[i].items()) for i in indices]
    if len(named) == 1:
        return f"variant {named[0]}: "
    listed = "; ".join(named[:NAMED_VARIANTS])
    if len(named) > NAMED_VARIANTS:
        listed += f"; and {len(named) - NAMED_VARIANTS} more"
    return f"{len(indices)} of {total} variants ({listed}): "


def variant_problem(question: OutputQuestion, result: RunResult[None]) -> RunProblem | None:
    """What is wrong with a variant's run for a question, if anything (which variant is the
    caller's to say)."""
    if result.status not in runstore.CACHEABLE:
        return RunProblem("code", f"{result.sentence} {result.detail}".rstrip(), transient=True)
    if result.status is Verdict.ERROR and (problem := _raise_problem(question, result)):
        return problem
    expected = expected_output(question, result)
    if not expected:
        return RunProblem("code", "the code prints nothing; print the answer or set `expression`")
    if question.answer is not None and compare_output(question.answer, expected) is not None:
        diff = "\n".join(
            difflib.unified_diff(
                question.answer.strip().splitlines(),
                expected.splitlines(),
                "answer (in the file)",
                f"real output (torch {torch_version()})",
                lineterm="",
            )
        )
        return RunProblem("answer", f"the real run disagrees with the file:\n{diff}")
    return None


def _raise_problem(question: OutputQuestion, result: RunResult[None]) -> RunProblem | None:
    """A variant that raised has the exception as its key only when the question says so:
    `raises` names it, or `answer` does (the run is compared with `answer` next). Otherwise a
    typo (`prnt`) would make `NameError` the key."""
    error = result.error
    name = error.type if error is not None else "an exception"
    line = error.line if error is not None else None
    at = f" at line {line} of the code" if line else ""
    message = f": {error.message}" if error is not None and error.message else ""
    if question.raises is not None:
        if name == question.raises:
            return None
        return RunProblem(
            "code",
            f"raises {name}, not the {question.raises} that `raises` names{at}{message}",
            code_line=line,
        )
    if question.answer is not None:
        return None
    return RunProblem(
        "code",
        f"raises {name}{at}{message} — a variant that raises is refused unless the question "
        f"says the exception is its key (`raises: {name}`)",
        code_line=line,
        unnamed_raise=name if error is not None else None,
    )


class _StepsPlan(_Plan):
    """A step-through scenario's run (stored, or run now): it must reach its last epoch."""

    def __init__(
        self, session: Session, runs: Runs, verification: Verification, question: StepsQuestion
    ) -> None:
        self.verification = verification
        self.question = question
        self.job = steps_job(question, timeout_s=runs.timeout_s)
        self.stored = runstore.find(session, self.job)
        self.outcome: Outcome | None = self.stored.result if self.stored is not None else None

    def send(self, window: _Window) -> None:
        if self.outcome is None:
            window.add(self.job, self._done)

    def _done(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def judge(self) -> None:
        verification, outcome = self.verification, self.outcome
        if isinstance(outcome, AppError) or outcome is None:
            message = outcome.message if outcome is not None else "it did not run"
            verification.problems.append(
                RunProblem("code", f"the sandbox could not run it: {message}", transient=True)
            )
            return
        problems = scenario_problems(self.question, outcome)
        verification.problems += problems
        if not problems:
            run = self.stored or runstore.run_of(self.job, outcome)
            verification.reference = run
            verification.runs.append(run)


PLATEAU = "ReduceLROnPlateau"


def scenario_problems(question: StepsQuestion, result: RunResult[CodeData]) -> list[Problem]:
    """What is wrong with a step-through scenario's run, if anything: it must run to its
    last epoch, with one finite rate per epoch, and be fed a metric exactly when its
    scheduler takes one."""
    if result.status not in runstore.CACHEABLE:
        return [RunProblem("code", f"{result.sentence} {result.detail}".rstrip(), transient=True)]
    if result.status is not Verdict.OK:
        error = result.error
        line = error.line if error is not None else None
        at = f" at line {line} of the code" if line else ""
        what = f"{error.type}{at}: {error.message}" if error is not None else result.sentence
        return [RunProblem("code", f"raises {what}", code_line=line)]
    trajectory = result.data.trajectory if result.data is not None else []
    if len(trajectory) < question.epochs:
        return [
            Problem(
                "epochs",
                f"the run gives {len(trajectory)} epochs of learning rates, not "
                f"{question.epochs} (does the code create `scheduler`?)",
            )
        ]
    problems = []
    groups = max(len(step) for step in trajectory)
    if groups != 1:
        problems.append(
            Problem(
                "setup",
                f"the optimizer has {groups} param groups: a step-through predicts one rate "
                "an epoch, so give it one",
            )
        )
    if any(not math.isfinite(lr) for step in trajectory for lr in step):
        problems.append(Problem("code", "the run gives a learning rate that is not a number"))
    scheduler = result.data.scheduler.type if result.data and result.data.scheduler else None
    if question.metrics and scheduler != PLATEAU:
        problems.append(
            Problem("metrics", f"only {PLATEAU} is fed a metric, and `scheduler` is {scheduler}")
        )
    if scheduler == PLATEAU and not question.metrics:
        problems.append(
            Problem(
                "metrics",
                f"{PLATEAU} is fed a metric every epoch: give one per epoch (the learner "
                "must see them to predict)",
            )
        )
    return problems


class _CodePlan(_Plan):
    """The reference and every self-test: run together; judged against the reference."""

    def __init__(
        self,
        session: Session,
        runs: Runs,
        verification: Verification,
        question: CodeQuestion,
        verified_before: Collection[str],
    ) -> None:
        self.verification = verification
        self.question = question
        self.reference_job = code_job(question, question.reference, timeout_s=runs.timeout_s)
        self.reference: Outcome | None = None
        self.tests: dict[int, Outcome] = {}
        self.buggy: Outcome | None = None
        self.stored = runstore.find(session, self.reference_job)
        self.skip = self.stored is not None and question.id in verified_before
        if self.stored is not None:
            self.reference = self.stored.result

    def send(self, window: _Window) -> None:
        if self.skip:
            return
        if self.reference is None:
            window.add(self.reference_job, self._reference_done)
        for index, test in enumerate(self.question.self_tests):
            job = code_job(self.question, test.code, timeout_s=self.reference_job.timeout_s)
            window.add(job, self._test_done(index))
        if isinstance(self.question, FixQuestion):
            job = code_job(
                self.question, self.question.buggy, timeout_s=self.reference_job.timeout_s
            )
            window.add(job, self._buggy_done)

    def _buggy_done(self, outcome: Outcome) -> None:
        self.buggy = outcome

    def _reference_done(self, outcome: Outcome) -> None:
        self.reference = outcome

    def _test_done(self, index: int) -> Done:
        def done(outcome: Outcome) -> None:
            self.tests[index] = outcome

        return done

    def judge(self) -> None:
        verification, question = self.verification, self.question
        reference = self.reference
        if isinstance(reference, AppError) or reference is None:
            message = reference.message if reference is not None else "it did not run"
            verification.problems.append(Problem("reference", f"could not run it: {message}"))
            return
        run = self.stored or runstore.run_of(self.reference_job, reference)
        verification.reference = run
        if self.skip:
            verification.runs.append(run)
            return
        problems = [
            Problem(f"self_tests.{i}", problem)
            for i, problem in self._self_test_problems(reference)
        ]
        problems += reference_problems(question, reference)
        if isinstance(question, FixQuestion):
            problems += self._buggy_problems(question, reference)
        verification.problems += problems
        if not problems:
            verification.runs.append(run)

    def _self_test_problems(self, reference: RunResult[CodeData]) -> list[tuple[int, str]]:
        question, problems = self.question, []
        for index, test in enumerate(question.self_tests):
            outcome = self.tests.get(index)
            if isinstance(outcome, AppError) or outcome is None:
                message = outcome.message if outcome is not None else "it did not run"
                problems.append((index, f"could not run it: {message}"))
                continue
            verdict = judge(question.check, reference, outcome)
            mistake = next((k for k, m in MISTAKES.items() if m is verdict.mistake), None)
            if verdict.correct != test.correct:
                said = "accepted" if verdict.correct else f"refused ({verdict.message})"
                problems.append(
                    (
                        index,
                        f"the check {said}; the file says it is "
                        f"{'correct' if test.correct else 'wrong'}",
                    )
                )
            elif (
                not test.correct
                and test.divergence is not None
                and (verdict.divergence != test.divergence)
            ):
                found = (
                    "nowhere"
                    if verdict.divergence is None
                    else name_step(question.check, verdict.divergence)
                )
                expected = name_step(question.check, test.divergence)
                problems.append((index, f"it first differs at {found}, not {expected}"))
            elif not test.correct and mistake != test.mistake:
                problems.append(
                    (
                        index,
                        f"it is diagnosed as {mistake or 'no known mistake'}, not {test.mistake}",
                    )
                )
        return problems

    def _buggy_problems(
        self, question: FixQuestion, reference: RunResult[CodeData]
    ) -> list[Problem]:
        """The planted bug must be one: the check refuses the buggy code, and diagnoses it as
        the known mistake `bug` names (or as none, when `bug` names none)."""
        outcome = self.buggy
        if isinstance(outcome, AppError) or outcome is None:
            message = outcome.message if outcome is not None else "it did not run"
            return [Problem("buggy", f"could not run it: {message}")]
        verdict = judge(question.check, reference, outcome)
        if verdict.correct:
            return [
                Problem(
                    "buggy",
                    f"the check accepts it ({verdict.message}): the planted bug changes "
                    "nothing the check compares, so there is nothing to fix",
                )
            ]
        mistake = next((k for k, m in MISTAKES.items() if m is verdict.mistake), None)
        if mistake != question.bug:
            said = f"`bug: {mistake}`" if mistake else "no `bug`"
            return [
                Problem(
                    "buggy",
                    f"it is diagnosed as {mistake or 'no known mistake'}, not "
                    f"{question.bug or 'none'} ({verdict.message}); plant the bug `bug` names, "
                    f"or say {said}",
                )
            ]
        return []


def reference_problems(question: CodeQuestion, reference: RunResult[CodeData]) -> list[Problem]:
    """What is wrong with a code question's reference run, if anything."""
    verdict = judge(question.check, reference, reference)
    if not verdict.correct:
        return [Problem("reference", f"fails its own check: {verdict.message}")]
    if question.check.kind in ("trajectory", "final-lr") and not (
        reference.data is not None and reference.data.trajectory
    ):
        return [
            Problem(
                "reference",
                "gives no learning rates to compare "
                "(does it create `scheduler`, or step the optimizer?)",
            )
        ]
    if question.check.kind != "exception" and reference.status is not Verdict.OK:
        error = reference.error
        line = error.line if error is not None else None
        at = f" at line {line} of the code" if line else ""
        return [
            RunProblem(
                "reference",
                f"raises {error.type if error else reference.status}{at}: "
                f"{error.message if error else reference.detail}",
                code_line=line,
            )
        ]
    return []
