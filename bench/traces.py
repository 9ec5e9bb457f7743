"""The trace page and the playground; and whether the lesson's schedule matters.

- the trace page (its run stored, as every view after import) in requests/s, against a bare
  static file served by the same app in the same run;
- playground runs with the cache missed on purpose (every request a new spec): the lesson's
  pipeline trained for real, and LR-only, p50/p95;
- the lesson's pipeline trained in the sandbox at a constant rate (the baseline), with the
  lesson's StepLR and with cosine annealing, on nine seeds (the lesson's own run among them):
  the final test loss and accuracy, and the constant rate's final test loss as a ratio of
  StepLR's (above 1: the schedule settles lower), the median over the seeds.

    python -m bench.traces [--quick]
"""

from __future__ import annotations

import itertools
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app.bank.files import read_bank
from app.checking.jobs import pipeline_job
from app.config import Settings
from app.sandbox.client import Sandbox
from app.sandbox.client import from_settings as sandbox_from_settings
from app.sandbox.protocol import PipelineData, Verdict
from app.sandbox.specs import PipelineSpec, SchedulerSpec
from bench.harness import ROOT, check_targets, get, rounds, server

PATTERN = "lr-schedulers"
TARGETS = {
    "trace_rps": 300.0,
    "train_p50": 200.0,
    "lr_only_p50": 20.0,
    # The lesson's claim: at a constant rate the test loss keeps bouncing, StepLR settles it.
    "constant_vs_steplr": 1.5,  # × StepLR's final test loss, median over the seeds
}
SEEDS = 9  # seeds 0…8, each of the data and of the weights and shuffling alike
CONSTANT = "constant"
LESSON = "StepLR (the lesson's)"


def _lesson_pipeline() -> PipelineSpec:
    for pattern in read_bank(ROOT / "questions"):
        if pattern.slug == PATTERN and pattern.pattern.pipeline is not None:
            return pattern.pattern.pipeline
    raise SystemExit(f"{PATTERN} has no pipeline")


def schedules(spec: PipelineSpec) -> dict[str, SchedulerSpec]:
    """The schedules compared: a constant rate (the baseline), the lesson's, cosine."""
    return {
        CONSTANT: SchedulerSpec(name="ConstantLR", params={"factor": 1.0}),
        LESSON: spec.scheduler,
        "cosine": SchedulerSpec(name="CosineAnnealingLR", params={"T_max": spec.epochs}),
    }


def _train(sandbox: Sandbox, spec: PipelineSpec) -> PipelineData:
    result = sandbox.run(pipeline_job(spec, timeout_s=30))
    if result.status is not Verdict.OK or result.data is None:
        raise SystemExit(f"the pipeline did not train: {result.sentence} {result.detail}")
    return result.data


@dataclass(frozen=True)
class Comparison:
    """Each schedule's runs of the lesson's pipeline, one per seed, in `seeds`' order."""

    seeds: list[int]
    lesson_seed: int
    runs: dict[str, list[PipelineData]]


def compare_schedules(count: int) -> Comparison:
    """Each schedule's run of the lesson's pipeline on seeds 0…count-1 and the lesson's own,
    trained in the sandbox."""
    lesson = _lesson_pipeline()
    if lesson.dataset.seed != lesson.seed:
        raise SystemExit("the lesson's data and weights have different seeds: vary which?")
    seeds = sorted(set(range(count)) | {lesson.seed})
    specs = {
        name: [
            lesson.model_copy(
                update={
                    "scheduler": scheduler,
                    "seed": seed,
                    "dataset": lesson.dataset.model_copy(update={"seed": seed}),
                }
            )
            for seed in seeds
        ]
        for name, scheduler in schedules(lesson).items()
    }
    settings = Settings()
    sandbox = sandbox_from_settings(settings)
    sandbox.start()
    try:
        sandbox.wait_ready(60)
        with ThreadPoolExecutor(settings.sandbox_slots) as pool:
            runs = {
                name: list(pool.map(lambda spec: _train(sandbox, spec), specs))
                for name, specs in specs.items()
            }
    finally:
        sandbox.close()
    return Comparison(seeds, lesson.seed, runs)


def _mean_test_loss(run: PipelineData, start: int) -> float:
    """The mean test loss of a run's epochs from `start` on."""
    return statistics.mean(epoch.test_loss for epoch in run.epochs[start:])


def schedule_report(comparison: Comparison) -> float:
    """Print each schedule's final test loss and accuracy over the seeds, and the constant
    rate's final test loss as a ratio of each schedule's; return the ratio to the lesson's
    StepLR (the median over the seeds)."""
    runs, lesson = comparison.runs, comparison.seeds.index(comparison.lesson_seed)
    print(
        f"the lesson's pipeline on {len(comparison.seeds)} seeds "
        f"({comparison.seeds[0]}–{comparison.seeds[-1]}; the lesson's run is seed "
        f"{comparison.lesson_seed}), after its last epoch"
    )
    print(
        f"{'schedule':<24} {'test loss p50':>13} {'min':>7} {'max':>7} {'lesson':>7}"
        f"  {'accuracy p50':>12} {'lesson':>7}"
    )
    for name, trained in runs.items():
        losses = [run.epochs[-1].test_loss for run in trained]
        accuracies = [run.epochs[-1].test_accuracy for run in trained]
        print(
            f"{name:<24} {statistics.median(losses):13.4f} {min(losses):7.4f} "
            f"{max(losses):7.4f} {losses[lesson]:7.4f}  {statistics.median(accuracies):12.1%} "
            f"{accuracies[lesson]:7.1%}"
        )
    steplr = runs[LESSON][lesson].epochs
    cut = next(i for i, e in enumerate(steplr) if e.lr != steplr[0].lr)  # first at a new rate
    medians = {}
    for name in runs:
        if name == CONSTANT:
            continue
        pairs = list(zip(runs[CONSTANT], runs[name], strict=True))
        final = [c.epochs[-1].test_loss / o.epochs[-1].test_loss for c, o in pairs]
        after = [_mean_test_loss(c, cut) / _mean_test_loss(o, cut) for c, o in pairs]
        medians[name] = statistics.median(final)
        print(
            f"constant vs {name:<23} {medians[name]:5.2f}x the final test loss (p50; min "
            f"{min(final):.2f}x, max {max(final):.2f}x, lesson {final[lesson]:.2f}x); "
            f"{statistics.median(after):.2f}x its mean over epochs {cut}–{len(steplr) - 1} "
            f"(min {min(after):.2f}x)"
        )
    return medians[LESSON]


def playground(mode: str):  # type: ignore[no-untyped-def]
    """A request factory whose every request is a new spec: no cached result to hit."""
    counter = itertools.count()

    def make(client: int, n: int) -> tuple[str, str, dict[str, object]]:
        gamma = round(0.3 + next(counter) * 1e-6, 6)  # distinct for every request of the run
        body = {
            "scheduler": "StepLR",
            "params": {"step_size": 3, "gamma": gamma},
            "mode": mode,
            "epochs": 10 if mode == "train" else 200,
        }
        return "POST", "/api/playground", body

    return make


def main() -> None:
    """Measure and print the report."""
    scale = 4 if "--quick" in sys.argv else 1
    constant_ratio = schedule_report(compare_schedules(5 if scale > 1 else SEEDS))
    with server() as srv:
        port = srv.port
        static = rounds(port, 8, 200 // scale, get("/static/css/app.css"))
        print(static.line("static file, 8 clients"))
        page = rounds(port, 8, 200 // scale, get(f"/patterns/{PATTERN}/trace"))
        print(page.line("trace page, 8 clients"))
        api = rounds(port, 8, 200 // scale, get(f"/api/patterns/{PATTERN}/trace"))
        print(api.line("trace API, 8 clients"))
        train = rounds(port, 1, 40 // scale, playground("train"))
        print(train.line("playground, train, 1 client"))
        lr_only = rounds(port, 1, 100 // scale, playground("lr-only"))
        print(lr_only.line("playground, LR only, 1 client"))
    print(
        f"{'trace page vs static file':<28} {page.throughput / static.throughput:7.2f}x "
        "the throughput of serving a file"
    )
    checks = [
        ("trace page throughput", page.throughput, ">=", TARGETS["trace_rps"], "req/s"),
        ("playground training p50", train.percentile(50), "<=", TARGETS["train_p50"], "ms"),
        ("playground LR-only p50", lr_only.percentile(50), "<=", TARGETS["lr_only_p50"], "ms"),
        ("errors", page.errors + api.errors + train.errors + lr_only.errors, "<=", 0, ""),
        ("constant rate vs StepLR", constant_ratio, ">=", TARGETS["constant_vs_steplr"], "x"),
    ]
    sys.exit(check_targets(checks))


if __name__ == "__main__":
    main()
