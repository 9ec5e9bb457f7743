"""Judging a code question's answer: its run against the reference's, step by step.

Pure: it compares two finished runs (from the sandbox) and says what went wrong, naming the
known mistake behind a divergence when the run gives it away: its numbers, its warnings, the
exception it raised, or its scheduler's settings and count of steps beside the reference's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.bank.schema import CodeCheck
from app.sandbox.protocol import CodeData, RunResult, Verdict

CodeRun = RunResult[CodeData]

STEP_ORDER_WARNING = "before `optimizer.step()`"


@dataclass(frozen=True)
class KnownMistake:
    """A mistake that explains a divergence, with what to do about it."""

    name: str
    explanation: str


MISTAKES = {
    "step-order": KnownMistake(
        "scheduler.step() before optimizer.step()",
        "Since PyTorch 1.1 each step is `optimizer.step()` first, then `scheduler.step()`. "
        "Called the other way round, the schedule moves on before the rate it set was ever "
        "used: the first value is skipped and everything after comes one step early.",
    ),
    "per-batch": KnownMistake(
        "Stepping the scheduler every batch",
        "This schedule is meant to move once per epoch, but the rate changes between batches "
        "of the same epoch: `scheduler.step()` sits in the batch loop. Move it after the loop "
        "over batches (or give the scheduler a length counted in batches).",
    ),
    "per-epoch": KnownMistake(
        "Stepping the scheduler once per epoch",
        "This scheduler counts batches (OneCycleLR, CyclicLR: `total_steps` = epochs × "
        "batches per epoch), but it only moved once per epoch, so it never got far into its "
        "cycle. Call `scheduler.step()` after every `optimizer.step()`, inside the batch loop.",
    ),
    "sequential-restart": KnownMistake(
        "SequentialLR restarts the next scheduler at its step 0",
        "At a milestone, SequentialLR restarts the next scheduler at its own step 0. A "
        "scheduler that computes its rate from the optimizer's *initial* learning rate "
        "(ExponentialLR, StepLR, CosineAnnealingLR, LambdaLR, …) then starts over from that "
        "rate rather than from where the previous one stopped — so the rate jumps back up. "
        "The second phase must either continue from the current rate or be written with "
        "the restart in mind.",
    ),
    "cosine-past-tmax": KnownMistake(
        "CosineAnnealingLR rises again past T_max",
        "CosineAnnealingLR follows a cosine with period 2·T_max: after T_max steps it has "
        "reached eta_min, and then it climbs back up. Make T_max the length of the decay, and "
        "hold the minimum afterwards with another scheduler if the run is longer.",
    ),
    "off-by-one": KnownMistake(
        "Off by one epoch",
        "The rate changes one epoch too early or too late: a milestone, `step_size` or "
        "`total_iters` is one off. Count epochs from 0, as `for epoch in range(...)` does: "
        "epoch e trains at the rate set by e calls of `scheduler.step()`, so a milestone m "
        "first applies to epoch m — the call that reaches it comes at the end of epoch m - 1.",
    ),
    "length-in-epochs": KnownMistake(
        "A length counted in epochs, stepped every batch",
        "The scheduler is stepped after every batch, as it should be, but its length "
        "(`T_max`, `total_steps`, `total_iters`, `T_0`) counts epochs. Counted in batches, the "
        "schedule is over after the first few: a cosine climbs back up, OneCycleLR stops "
        "with `Tried to step … times`. Give the length in batches: epochs × batches per "
        "epoch (OneCycleLR also takes `epochs=` and `steps_per_epoch=`).",
    ),
    "plateau-mode": KnownMistake(
        "ReduceLROnPlateau watching the wrong direction",
        '`mode` says which way the metric gets better: `"min"` (the default) for a loss, '
        '`"max"` for an accuracy. In the wrong mode every improvement counts as a bad '
        "epoch, so the rate drops while the model is still learning, and a real plateau "
        "(which looks like improvement the wrong way round) goes unnoticed. Set the `mode` "
        "that fits the metric, or feed the metric the mode expects (an error rate, 1 − "
        'accuracy, for `"min"`).',
    ),
    "count-restarted": KnownMistake(
        "The scheduler's count started over",
        "A scheduler knows where the schedule is from its own count of `step()` calls "
        "(`last_epoch`). Yours ended behind the target's: its count started again from 0 — "
        "as it does for a scheduler created anew inside the loop, or when a run resumes "
        "from a checkpoint without `scheduler.load_state_dict(...)`. Create the scheduler "
        "once, and restore its state along with the optimizer's.",
    ),
}

# Scheduler settings that give a schedule's length in steps (`drive: loop` counts batches).
LENGTHS = ("T_max", "total_steps", "total_iters", "T_0")
# OneCycleLR's refusal to step past its length (torch/optim/lr_scheduler.py), and that length.
OVERSTEP = re.compile(r"Tried to step \d+ times?\. The specified number of total steps is (\d+)")


@dataclass(frozen=True)
class Judgement:
    """What the learner is told about their code."""

    correct: bool
    message: str
    divergence: int | None = None  # the first step (0-based) whose LR differs
    expected: list[float] | None = None  # the reference's LRs at that step
    got: list[float] | None = None  # the learner's
    mistake: KnownMistake | None = None


def _close(a: Sequence[float], b: Sequence[float], tolerance: float) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=tolerance, abs_tol=1e-15) for x, y in zip(a, b, strict=True)
    )


def _first_difference(
    want: list[list[float]], got: list[list[float]], start: int, tolerance: float
) -> int | None:
    for step in range(start, max(len(want), len(got))):
        if step >= len(want) or step >= len(got) or not _close(want[step], got[step], tolerance):
            return step
    return None


def _trajectory(run: CodeRun) -> list[list[float]]:
    return run.data.trajectory if run.data is not None else []


def _scheduler_type(run: CodeRun) -> str | None:
    scheduler = run.data.scheduler if run.data is not None else None
    return scheduler.type if scheduler is not None else None


def judge(check: CodeCheck, reference: CodeRun, learner: CodeRun) -> Judgement:
    """Compare the learner's run with the reference's as the question's check says."""
    if learner.status not in (Verdict.OK, Verdict.ERROR):
        detail = f" ({learner.detail})" if learner.detail else ""
        return Judgement(False, f"{learner.sentence}{detail}")
    if check.kind == "exception":
        raised = learner.error.type if learner.error else None
        if raised == check.exception:
            return Judgement(True, f"Your code raises {raised}, as it should.")
        said = f"raises {raised}" if raised else "runs without raising"
        return Judgement(False, f"Your code {said}; it should raise {check.exception}.")
    if learner.status is Verdict.ERROR and learner.error is not None:
        where = f" on line {learner.error.line}" if learner.error.line else ""
        return Judgement(
            False,
            f"Your code raised {learner.error.type}{where}: {learner.error.message}",
            mistake=_error_mistake(check, learner),
        )
    if check.kind == "object":
        return _judge_object(check, reference, learner)
    want, got = _trajectory(reference), _trajectory(learner)
    if check.kind == "final-lr":
        if want and got and _close(want[-1], got[-1], check.tolerance):
            return Judgement(True, "The final learning rate matches the target's.")
        return Judgement(
            False,
            "The final learning rate differs from the target's.",
            len(want) - 1,
            want[-1] if want else None,
            got[-1] if got else None,
        )
    step = _first_difference(want, got, check.from_epoch, check.tolerance)
    if step is None:
        return Judgement(True, "Your schedule matches the target at every step.")
    if step >= len(got) or step >= len(want):
        return Judgement(False, f"Your run has {len(got)} steps; the target has {len(want)}.", step)
    return Judgement(
        False,
        f"Your schedule first differs from the target at {name_step(check, step)}, counting "
        "from 0: "
        f"the target uses {_show(want[step])}, yours {_show(got[step])}.",
        step,
        want[step],
        got[step],
        detect_mistake(check, reference, learner, step),
    )


def name_step(check: CodeCheck, step: int) -> str:
    """A step as the learner counts it: an epoch, or a batch of an epoch, both from 0 (the
    bank's one way to count: epoch e trains at the rate set by e calls of `step()`). Every
    message that names an epoch by number says it through this."""
    per = check.steps_per_epoch
    if per == 1:
        return f"epoch {step}"
    return f"step {step} (epoch {step // per}, batch {step % per})"


def _show(lrs: list[float]) -> str:
    return ", ".join(f"{lr:.6g}" for lr in lrs)


def _judge_object(check: CodeCheck, reference: CodeRun, learner: CodeRun) -> Judgement:
    want_type, got_type = _scheduler_type(reference), _scheduler_type(learner)
    if got_type != want_type:
        return Judgement(
            False,
            f"`scheduler` is a {got_type or 'missing object'}; it should be a {want_type}.",
        )
    for name in check.compare:
        mine, theirs = _params(learner).get(name), _params(reference).get(name)
        if mine != theirs:
            return Judgement(False, f"`{name}` is {mine!r}; it should be {theirs!r}.")
    return Judgement(True, f"`scheduler` is the {want_type} the question asks for.")


# --- known mistakes ---------------------------------------------------------------------------


def _varies_within_epochs(trajectory: list[list[float]], steps_per_epoch: int) -> bool:
    return any(
        len({tuple(step) for step in trajectory[start : start + steps_per_epoch]}) > 1
        for start in range(0, len(trajectory), steps_per_epoch)
    )


def _shifted(
    want: list[list[float]], got: list[list[float]], step: int, tolerance: float, epoch: int = 1
) -> bool:
    """Does `got` change one step (or one epoch of `epoch` steps) before or after the target
    does, from `step` to where the shifted change shows (the first change is where a one-off
    milestone or period shows)?"""
    for shift in sorted({1, -1, epoch, -epoch}):
        # Early (shift > 0): the change is at `step`. Late: it shows `-shift` steps on.
        reach = 2 if shift > 0 else 1 - shift
        window = range(step, min(len(got), step + reach))
        if shift < -1 and len(window) < reach:
            continue  # the run ends before a change one epoch late could show
        if all(
            0 <= i + shift < len(want) and _close(want[i + shift], got[i], tolerance)
            for i in window
        ):
            return True
    return False


def detect_mistake(
    check: CodeCheck, reference: CodeRun, learner: CodeRun, step: int
) -> KnownMistake | None:
    """The known mistake that explains a divergence at `step`, if the numbers show one."""
    want, got = _trajectory(reference), _trajectory(learner)
    if any(STEP_ORDER_WARNING in w.message for w in learner.warnings) and not any(
        STEP_ORDER_WARNING in w.message for w in reference.warnings
    ):
        return MISTAKES["step-order"]
    per = check.steps_per_epoch
    if per > 1 and check.drive == "loop":
        if _varies_within_epochs(got, per) and not _varies_within_epochs(want, per):
            return MISTAKES["per-batch"]
        if _varies_within_epochs(want, per) and not _varies_within_epochs(got, per):
            return MISTAKES["per-epoch"]
    if (mistake := _setting_mistake(check, reference, learner)) is not None:
        return mistake
    # A schedule one epoch off is the likelier reading of a jump at a (wrong) milestone.
    # In a loop a step is a batch, and one epoch off is a shift by the batches of an epoch.
    epoch = per if check.drive == "loop" else 1
    if _shifted(want, got, step, check.tolerance, epoch):
        return MISTAKES["off-by-one"]
    if not got[step] or not want[step] or (step and (not got[step - 1] or not want[step - 1])):
        return None  # no param groups to read a learning rate from
    first, before = got[step][0], got[step - 1][0] if step else None
    milestones = _params(learner).get("milestones") or []
    if (
        _scheduler_type(learner) == "SequentialLR"
        and before is not None
        and isinstance(milestones, list)
        and _calls_at(check, step) & set(milestones)  # where the next scheduler takes over
        and first > before
        and want[step][0] < first
    ):
        return MISTAKES["sequential-restart"]
    if (
        before is not None
        and first > before
        and want[step][0] <= want[step - 1][0]
        and _cosine_in_force(learner, step)
    ):
        return MISTAKES["cosine-past-tmax"]
    return None


def _setting_mistake(check: CodeCheck, reference: CodeRun, learner: CodeRun) -> KnownMistake | None:
    """A known mistake the two schedulers' settings show, when both are of one type: a
    length in epochs where batches are counted, a plateau watched the wrong way round, a
    count that started over."""
    if _scheduler_type(learner) is None or _scheduler_type(learner) != _scheduler_type(reference):
        return None
    mine, theirs, per = _params(learner), _params(reference), check.steps_per_epoch
    if per > 1 and any(
        theirs.get(name) is not None and _times(mine.get(name), per) == theirs.get(name)
        for name in LENGTHS
    ):
        return MISTAKES["length-in-epochs"]
    if _scheduler_type(learner) == "ReduceLROnPlateau" and _opposite_modes(mine, theirs):
        return MISTAKES["plateau-mode"]
    count, target = mine.get("last_epoch"), theirs.get("last_epoch")
    # Behind after as many `step()` calls: the count started over. (One behind is a milestone
    # or `last_epoch` one off; fewer calls is a scheduler stepped too rarely, or never.)
    if (
        isinstance(count, int)
        and isinstance(target, int)
        and count < target - 1
        and _scheduler_steps(learner) is not None
        and _scheduler_steps(learner) == _scheduler_steps(reference)
    ):
        return MISTAKES["count-restarted"]
    return None


def _scheduler_steps(run: CodeRun) -> int | None:
    """How many times the run called `scheduler.step()` (on any scheduler), if its trace
    holds them all."""
    if run.trace_truncated:
        return None
    return sum(event.kind == "scheduler" for event in run.trace)


def _opposite_modes(mine: dict[str, object], theirs: dict[str, object]) -> bool:
    """Two ReduceLROnPlateau in opposite modes watching the same metric: their best values
    have one sign. (A negated metric in the other mode is a deliberate flip, not this.)"""
    best, target = mine.get("best"), theirs.get("best")
    return (
        mine.get("mode") != theirs.get("mode")
        and isinstance(best, float | int)
        and isinstance(target, float | int)
        and best * target > 0
        and math.isfinite(best * target)
    )


def _times(value: object, factor: int) -> int | None:
    """An integer setting times `factor`; None for anything else (bools are not lengths)."""
    return value * factor if isinstance(value, int) and not isinstance(value, bool) else None


def _error_mistake(check: CodeCheck, learner: CodeRun) -> KnownMistake | None:
    """The known mistake an exception names: OneCycleLR stepped past a `total_steps` that
    counts the epochs of a loop stepping it every batch."""
    error = learner.error
    if error is None or error.type != "ValueError" or check.steps_per_epoch == 1:
        return None
    overstep = OVERSTEP.search(error.message)
    if overstep is not None and int(overstep.group(1)) == check.epochs:
        return MISTAKES["length-in-epochs"]
    return None


def _calls_at(check: CodeCheck, step: int) -> set[int]:
    """How many `scheduler.step()` calls came before `step`: `step` itself when the scheduler
    moves every step; in a loop, also the epochs before it when `step` starts an epoch (the
    scheduler may move once per epoch)."""
    per = check.steps_per_epoch
    if check.drive == "loop" and step % per == 0:
        return {step, step // per}
    return {step}


def _cosine_in_force(run: CodeRun, step: int) -> bool:
    """Whether the LR at `step` comes from a CosineAnnealingLR past its T_max — the only way
    a cosine rises (warm restarts rise by design, and are not this mistake)."""
    kind, params = _scheduler_type(run), _params(run)
    if kind == "CosineAnnealingLR":
        t_max = params.get("T_max")
        return isinstance(t_max, int) and step > t_max
    if kind == "SequentialLR":
        milestones, children = params.get("milestones"), _children(run)
        if not isinstance(milestones, list):
            return False
        active = sum(
            1 for milestone in milestones if isinstance(milestone, int) and milestone <= step
        )
        return active < len(children) and children[active] == "CosineAnnealingLR"
    return False


def _params(run: CodeRun) -> dict[str, object]:
    scheduler = run.data.scheduler if run.data is not None else None
    return dict(scheduler.params) if scheduler is not None else {}


def _children(run: CodeRun) -> list[str | None]:
    """Type names of the schedulers inside a SequentialLR or ChainedScheduler, if any."""
    names = _params(run).get("child_types")
    return list(names) if isinstance(names, list) else []
