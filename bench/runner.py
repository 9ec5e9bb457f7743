"""The sandbox runner's per-run overhead, stage by stage, without the web around it.

A run's time, as the client and the runner measure it (app.sandbox.runner.STAGES):

    queued   waiting in the client's fair queue for a slot
    wait     waiting in the runner for a locked-down child
    child    the child: reading the job, running the code, writing the result…
    code       …of which running the code itself (the harness's own measure)
    check    the runner validating the child's result
    pipes    the frames' trips between the web process and the runner
    parse    the web process validating the result
    respawn  forking and locking down the next child (off the run's path while a child
             is ready)

Baseline, in the same run: the code's own time (`code`). Printed: medians per stage, for
one run at a time and for as many at once as there are slots, and runs per second.

    python -m bench.runner [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.bank.files import read_bank
from app.bank.schema import CodeQuestion, OutputQuestion
from app.checking.jobs import code_job, variant_job
from app.config import Settings
from app.sandbox.client import Sandbox, Ticket
from app.sandbox.client import from_settings as sandbox_from_settings
from app.sandbox.protocol import JobBase, SnippetJob, Verdict
from bench.code import ANSWER
from bench.code import QUESTION as CODE_QUESTION
from bench.grading import QUESTION as OUTPUT_QUESTION
from bench.harness import ROOT

STAGES = ("queued", "wait", "child", "code", "check", "pipes", "parse", "respawn")


def _jobs() -> dict[str, JobBase[Any]]:
    questions = {
        s.question.id: s.question for p in read_bank(ROOT / "questions") for s in p.questions
    }
    output, code = questions[OUTPUT_QUESTION], questions[CODE_QUESTION]
    assert isinstance(output, OutputQuestion) and isinstance(code, CodeQuestion)
    return {
        "empty snippet (pass)": SnippetJob(code="pass"),
        "output question variant": variant_job(output, 0, timeout_s=5),
        "code question answer": code_job(code, ANSWER, timeout_s=5),
    }


def _stages(ticket: Ticket[Any], result: Any) -> dict[str, float]:
    runner = result.timings
    trip = ticket.timings["trip"]
    return {
        "queued": ticket.timings["queued"],
        "wait": runner["wait"],
        "child": runner["child"],
        "code": runner["code"],
        "check": runner["check"],
        "pipes": trip - runner["wait"] - runner["child"] - runner["check"],
        "parse": ticket.timings["parse"],
        "respawn": runner["respawn"],
        "total": (time.monotonic() - ticket.submitted_at) * 1000,
    }


def _one(sandbox: Sandbox, job: JobBase[Any]) -> dict[str, float]:
    ticket = sandbox.submit(job)
    result = ticket.result()
    assert result.status in (Verdict.OK, Verdict.ERROR), result
    return _stages(ticket, result)


def measure(
    sandbox: Sandbox, job: JobBase[Any], runs: int, at_once: int
) -> tuple[dict[str, float], float, float]:
    """Median of each stage over `runs` runs, `at_once` at a time; the 95th percentile of
    the total; runs per second."""
    started = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        samples = list(pool.map(lambda _: _one(sandbox, job), range(runs)))
    rate = runs / (time.perf_counter() - started)
    medians = {name: statistics.median(s[name] for s in samples) for name in (*STAGES, "total")}
    p95 = statistics.quantiles([s["total"] for s in samples], n=20)[-1]
    return medians, p95, rate


def main() -> None:
    """Measure and print the report."""
    runs = 50 if "--quick" in sys.argv else 300
    settings = Settings()
    sandbox = sandbox_from_settings(settings)
    sandbox.start()
    try:
        slots = sandbox.wait_ready(60)["slots"]
        print(
            f"The runner alone ({settings.sandbox_mode} mode, {slots} slots), {runs} runs per row"
        )
        print(
            f"{'job':<26} {'at once':>7} "
            + " ".join(f"{s:>7}" for s in (*STAGES, "total"))
            + "  p95 total  runs/s  total/code"
        )
        for name, job in _jobs().items():
            for _ in range(20):  # warm: every slot has run once
                _one(sandbox, job)
            for at_once in (1, slots):
                medians, p95, rate = measure(sandbox, job, runs, at_once)
                print(
                    f"{name:<26} {at_once:>7} "
                    + " ".join(f"{medians[s]:7.2f}" for s in (*STAGES, "total"))
                    + f"  {p95:9.2f}  {rate:6.1f}"
                    + f"  {medians['total'] / max(medians['code'], 1e-3):9.1f}x"
                )
    finally:
        sandbox.close()
    print(
        "(medians in ms; `pipes` is the trip to the runner and back less the runner's own stages)"
    )


if __name__ == "__main__":
    main()
