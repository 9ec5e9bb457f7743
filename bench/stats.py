"""Instructor statistics on a realistic class: 300 learners, 20,000 attempts on the
lr-schedulers pattern, inserted straight into the served database.

- the pattern's statistics page, the statistics API of one question, and the full CSV
  export (also in rows/s), one instructor at a time, over HTTP with an API token;
- baseline, measured in the same run: an authenticated request that does little — the
  import form (`GET /instructor/import`: the pattern list, a template; the tokens page takes
  no API token) — so each ratio is what the analytics cost on top of authenticating;
- the question's versions (`GET /api/questions/{id}/versions`), for comparison: it counts
  the attempts of each version (through the index on attempts(question_id, version): before
  it, this scanned every attempt and cost 3× the baseline at this size).

    python -m bench.stats [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import math
import random
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app import accounts
from app.bank import service as bank
from app.bank import variants
from app.bank.schema import ChoiceQuestion, CodeQuestion, OutputQuestion, StepsQuestion
from app.checking.codecheck import MISTAKES
from app.checking.grading import (
    CodeFeedback,
    expected_output,
    grade_choice,
    grade_output,
    grade_steps,
    scenario_lrs,
)
from app.checking.runs import Runs
from app.db import Database, begin_write
from app.learning import review
from app.learning.answering import MAX_TIME_TAKEN_MS
from app.learning.learners import LEARNER_TOKEN_BYTES
from app.models import Attempt, Learner, User, utcnow
from app.sandbox.protocol import CodeData, RunResult, Verdict
from bench.harness import Connection, check_targets, get, rounds, server

PATTERN = "lr-schedulers"
# Output question with 30 variants: its figures include facility per variant value.
QUESTION = "lr-output-steplr-calls"
SEED = 20240917  # the same class every run, so runs compare

# --- the class ---------------------------------------------------------------------------------
LEARNERS = 300  # a large course section
ACCOUNT_SHARE = 0.4  # the rest practise as guests (a cookie, no account)
ATTEMPTS = 20_000  # the class as of "now": the oldest this many of those it would make
COURSE_DAYS = 56  # an eight-week course, ending now
RETRY_WRONG = 0.65  # after a wrong answer, the chance the learner tries again
REVIEW_CHANCE = 0.6  # after a right answer, the chance the question comes back for review
HINT_CHANCE = 0.15  # asking for the hint before a first attempt (when there is one)
UNTIMED_SHARE = 0.05  # attempts sent by API clients that measure no time
TAB_LEFT_OPEN = 0.02  # attempts whose "time taken" is a tab left open for hours
MAX_ATTEMPTS_EACH = 8  # on one question, by one learner: retries and reviews end by then

# Targets, one instructor at a time, at ATTEMPTS attempts:
TARGETS = {
    # An instructor opens the page a few times a lesson: half a second at a large section's
    # 20,000 attempts still reads as immediate. (It reads every attempt of the pattern:
    # discrimination ranks learners over all of them.)
    "page_p50": 500.0,  # ms
    # One question's figures rank learners over the whole pattern too: the same budget.
    "api_p50": 500.0,  # ms
    # A term's export (100,000 attempts) in four seconds, streamed, without holding the server.
    "csv_rows_per_s": 25_000.0,
}


# --- seeding the class -------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """What was put in the database: attempts (in all, on QUESTION) and the instructor's
    API token."""

    attempts: int
    on_question: int
    token: str


@dataclass(frozen=True)
class _Item:
    """A question with what grading it needs: its key runs (output), its reference (code)."""

    live: bank.LiveQuestion
    runs: list[
        tuple[str, RunResult[None], dict[str, Any]]
    ]  # output: (key, run, params) per variant
    reference_key: str | None = None  # code: the stored reference run (steps: the run)…
    target_lrs: tuple[float, ...] = ()  # …and its LR at each step


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _items(session: Session) -> list[_Item]:
    """The pattern's live questions, with the stored runs behind their keys (from import)."""
    # No sandbox: only what import stored is read (a run's key does not depend on the timeout).
    runs = Runs(None, use_cache=True, timeout_s=5.0)
    items = []
    pattern = bank.get_pattern_or_raise(session, PATTERN)
    for live in bank.list_questions(session, pattern):
        q = live.question
        if isinstance(q, OutputQuestion):
            stored = []
            for index in range(q.variant_count):
                run = runs.stored_key(session, runs.variant_job(q, index))
                assert run is not None, f"{live.id} variant {index} has no stored run"
                params = variants.variant(q, index) if q.params else {}
                stored.append((run.key, run.result, params))
            items.append(_Item(live, stored))
        elif isinstance(q, CodeQuestion):
            reference = runs.stored_reference(session, q)
            assert reference is not None, f"{live.id} has no stored reference run"
            data = reference.result.data
            lrs = tuple(step[0] for step in (data.trajectory if data else []) if step)
            items.append(_Item(live, [], reference.key, lrs))
        elif isinstance(q, StepsQuestion):
            run = runs.stored_steps(session, q)
            assert run is not None, f"{live.id} has no stored run"
            items.append(_Item(live, [], run.key, tuple(scenario_lrs(run.result, q.epochs))))
        else:
            items.append(_Item(live, []))
    return items


def _wrong_output(expected: str, rng: random.Random) -> str:
    """A wrong answer of the kinds learners give: the rate before it changed, one step
    off, a value too few, or "it runs" when it raises."""
    if expected.startswith("raises "):
        return rng.choice(["0.1", "0.05", "raises TypeError", "None"])
    numbers = NUMBER.findall(expected)
    if not numbers:
        return "0.1"
    kind = rng.random()
    if kind < 0.4:  # thought the rate had not changed yet
        return expected.replace(numbers[-1], numbers[0] if numbers[0] != numbers[-1] else "0.1")
    if kind < 0.7 and len(numbers) > 1:  # dropped (or missed) a value
        return " ".join(numbers[:-1])
    value = float(numbers[-1])  # one step too many or too few
    return repr(round(value * rng.choice([0.1, 0.5, 2.0, 10.0]), 10))


def _answer(
    item: _Item, learner: dict[str, Any], correct: bool, variant: int, rng: random.Random
) -> dict[str, Any]:
    """The columns grading fills in, shaped as app.learning.answering stores them."""
    q = item.live.question
    if isinstance(q, ChoiceQuestion):
        wrong = [i for i, choice in enumerate(q.choices) if not choice.correct]
        # Some distractors are popular, the last ones rarely picked (as in real item data).
        weights = [0.5**rank for rank in range(len(wrong))]
        picked = q.correct_index if correct else rng.choices(wrong, weights)[0]
        grade = grade_choice(q, picked)
        return {
            "answer": grade.answer,
            "correct": grade.correct,
            "feedback": grade.feedback.model_dump(mode="json"),
            "variant_index": None,
            "variant": None,
        }
    if isinstance(q, OutputQuestion):
        key, run, params = item.runs[variant]
        expected = expected_output(q, run)
        given = expected if correct else _wrong_output(expected, rng)
        grade = grade_output(q, run, given, variant=variant, params=params, run_key=key)
        return {
            "answer": grade.answer,
            "correct": grade.correct,
            "feedback": grade.feedback.model_dump(mode="json"),
            "variant_index": variant,
            "variant": params,
        }
    if isinstance(q, StepsQuestion):
        assert item.reference_key is not None
        lrs = item.target_lrs
        given = [repr(lr) for lr in lrs[1:]]
        if not correct:  # a rate or two off, as a learner misses a step or a restart
            for epoch in rng.sample(range(1, len(lrs)), rng.randint(1, 2)):
                given[epoch - 1] = repr(lrs[epoch] * rng.choice([0.5, 2.0]) + 1e-3)
        run = RunResult[CodeData](status=Verdict.OK, data=CodeData(trajectory=[[lr] for lr in lrs]))
        grade = grade_steps(q, run, given, run_key=item.reference_key)
        return {
            "answer": grade.answer,
            "correct": grade.correct,
            "score": grade.score,
            "feedback": grade.feedback.model_dump(mode="json"),
            "variant_index": None,
            "variant": None,
        }
    assert isinstance(q, CodeQuestion) and item.reference_key is not None
    target = list(item.target_lrs)
    mistakes = [test for test in q.self_tests if not test.correct]
    if correct or not mistakes:
        code, learner_lrs = q.reference + f"\n# learner {learner['id']}\n", target
        feedback = CodeFeedback(
            message="Your schedule matches the target's at every step.",
            verdict="ok",
            learner_lrs=learner_lrs,
            target_lrs=target,
            reference_key=item.reference_key,
        )
    else:
        test = rng.choice(mistakes)
        step = test.divergence if test.divergence is not None else len(target) // 2
        step = min(step, max(0, len(target) - 1))
        learner_lrs = target[:step] + [lr * 0.5 for lr in target[step:]]
        known = MISTAKES.get(test.mistake) if test.mistake else None
        code = test.code
        feedback = CodeFeedback(
            message=f"Your learning rate differs from the target's at step {step}.",
            verdict="ok",
            divergence=step,
            expected=target[step : step + 1],
            got=learner_lrs[step : step + 1],
            mistake=known.name if known else None,
            explanation=known.explanation if known else None,
            learner_lrs=learner_lrs,
            target_lrs=target,
            reference_key=item.reference_key,
        )
        correct = False
    return {
        "answer": code,
        "correct": correct,
        "feedback": feedback.model_dump(mode="json"),
        "variant_index": None,
        "variant": None,
    }


def _difficulty(item: _Item, rng: random.Random) -> float:
    """How hard a question is on the learners' ability scale (item response theory's b)."""
    q = item.live.question
    base = {"easy": -1.2, "medium": -0.2, "hard": 0.8}[q.difficulty.value]
    return base + (0.5 if isinstance(q, CodeQuestion) else 0.0) + rng.gauss(0, 0.4)


def _class_attempts(items: list[_Item], learners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every attempt the class makes over the course, oldest first, cut at ATTEMPTS."""
    rng = random.Random(SEED)
    now = utcnow()
    start = now - timedelta(days=COURSE_DAYS)
    hardness = {item.live.id: _difficulty(item, rng) for item in items}
    attempts: list[dict[str, Any]] = []
    for learner in learners:
        ability = rng.gauss(0, 1)
        # Stronger learners answer more of the pattern; everyone answers some.
        share = min(1.0, max(0.3, rng.gauss(0.8 + 0.1 * ability, 0.2)))
        chosen = [item for item in items if rng.random() < share]
        clock = start + timedelta(days=rng.uniform(0, COURSE_DAYS * 0.4), hours=rng.uniform(8, 22))
        for item in chosen:
            clock += timedelta(seconds=rng.uniform(20, 120))
            if rng.random() < 0.15:  # the next session, a day or more later
                clock += timedelta(days=rng.expovariate(1 / 2), hours=rng.uniform(-3, 3))
            attempts += _attempts_on(item, learner, ability, hardness[item.live.id], clock, rng)
    attempts.sort(key=lambda row: row["created_at"])
    if len(attempts) < ATTEMPTS:
        raise SystemExit(f"the class made only {len(attempts)} attempts; raise the rates")
    return attempts[:ATTEMPTS]


def _attempts_on(
    item: _Item,
    learner: dict[str, Any],
    ability: float,
    hardness: float,
    clock: datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """One learner's attempts on one question: the first, retries after a wrong answer (the
    solution then shown), and reviews on later days."""
    q = item.live.question
    hint_seen = q.hint is not None and rng.random() < HINT_CHANCE * (1.5 - 0.5 * ability)
    total_variants = len(item.runs) or 1
    variant = variants.pick(learner["token"], item.live.id, total_variants)
    expected = review.expected_ms(q)
    rows: list[dict[str, Any]] = []
    skill = ability - hardness
    last_at: datetime | None = None
    while True:
        chance = 1 / (1 + math.exp(-1.7 * skill))
        correct = rng.random() < chance
        taken: int | None = int(expected * math.exp(rng.gauss(-0.3 * ability, 0.6)))
        if rng.random() < TAB_LEFT_OPEN:
            taken = min(MAX_TIME_TAKEN_MS, taken * rng.randint(20, 400))
        measured = rng.random() >= UNTIMED_SHARE
        if not measured:
            taken = None
        solution_seen = bool(rows)  # every attempt shows the solution afterwards
        recent = last_at is not None and clock - last_at <= review.ASSIST_WINDOW
        graded = _answer(item, learner, correct, variant, rng)
        rating = review.rate(
            question=q,
            correct=graded["correct"],
            assisted=hint_seen or (solution_seen and recent),
            time_taken_ms=taken,
        )
        if not measured and rating is review.Rating.Easy:
            rating = review.Rating.Good
        rows.append(
            {
                "learner_id": learner["id"],
                "question_id": item.live.id,
                "question_version": item.live.version,
                "score": 1.0 if graded["correct"] else 0.0,  # a step-through's: its fraction, below
                "hint_seen": hint_seen,
                "solution_seen": solution_seen,
                "time_taken_ms": taken,
                "rating": int(rating),
                "created_at": clock,
                **graded,
            }
        )
        last_at = clock
        if graded["correct"]:
            if rng.random() >= REVIEW_CHANCE or len(rows) >= MAX_ATTEMPTS_EACH:
                return rows
            clock += timedelta(days=rng.uniform(1, 2) * 2 ** len(rows), hours=rng.uniform(-4, 4))
            skill += 0.4  # remembered, mostly
        else:
            if rng.random() >= RETRY_WRONG or len(rows) >= MAX_ATTEMPTS_EACH:
                return rows
            clock += timedelta(seconds=(taken or expected) / 1000 + rng.uniform(30, 300))
            skill += 1.2  # the solution was just shown
        if total_variants > 1 and rng.random() < 0.5:  # "try another variant"
            variant = (variant + 1 + rng.randrange(total_variants - 1)) % total_variants


def _token(rng: random.Random) -> str:
    """A token shaped like app.learning.learners.new_token's, drawn from the seeded generator:
    variants are picked by a learner's token, so the class is the same every run."""
    return base64.urlsafe_b64encode(rng.randbytes(LEARNER_TOKEN_BYTES)).decode()


def seed_class(database: Database) -> Seeded:
    """Insert the learners (some with accounts) and their attempts in bulk, then an
    instructor with an API token."""
    with database.session() as session:
        items = _items(session)
        session.commit()
        begin_write(session)
        rng = random.Random(SEED + 1)
        # Never logged into: they hold a hash-shaped placeholder, not a real hash.
        users = [
            {
                "email": f"learner{n:03d}@example.edu",
                "password_hash": "$argon2id$v=19$placeholder",
                "role": "learner",
                "session_token": _token(rng),
                "created_at": utcnow(),
            }
            for n in range(LEARNERS)
            if rng.random() < ACCOUNT_SHARE
        ]
        # RETURNING in parameter order: the ids line up with the rows given.
        new_users = insert(User).returning(User.id, sort_by_parameter_order=True)
        user_ids: list[int | None] = list(session.scalars(new_users, users))
        user_ids += [None] * (LEARNERS - len(user_ids))
        rng.shuffle(user_ids)
        rows = [{"token": _token(rng), "user_id": uid, "created_at": utcnow()} for uid in user_ids]
        new_learners = insert(Learner).returning(Learner.id, sort_by_parameter_order=True)
        ids = list(session.scalars(new_learners, rows))
        learners = [
            {"id": learner_id, "token": row["token"]}
            for learner_id, row in zip(ids, rows, strict=True)
        ]
        attempts = _class_attempts(items, learners)
        session.execute(insert(Attempt), attempts)
        session.commit()
        instructor = accounts.create_user(
            session, email="instructor@example.edu", password="bench-password-42", role="instructor"
        )
        _row, token = accounts.create_api_token(session, user=instructor, name="bench.stats")
        total = session.scalar(select(func.count()).select_from(Attempt))
    on_question = sum(row["question_id"] == QUESTION for row in attempts)
    return Seeded(attempts=int(total or 0), on_question=on_question, token=token)


# --- measuring -----------------------------------------------------------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fetch(port: int, token: str, path: str) -> tuple[int, bytes]:
    """One GET, for checking what the measured requests return."""

    async def once() -> tuple[int, bytes]:
        connection = Connection(port, _bearer(token))
        try:
            return await connection.request("GET", path)
        finally:
            connection.close()

    return asyncio.run(once())


def main() -> None:
    """Seed the class, measure, and print the report."""
    scale = 4 if "--quick" in sys.argv else 1
    with server() as srv:
        database = Database(srv.database_url)
        started = time.perf_counter()
        seeded = seed_class(database)
        database.dispose()
        print(
            f"Seeded {seeded.attempts} attempts by {LEARNERS} learners on {PATTERN} "
            f"({seeded.on_question} on {QUESTION}) in {time.perf_counter() - started:.1f} s"
        )
        port, token = srv.port, seeded.token
        page_path = f"/instructor/patterns/{PATTERN}/stats"
        api_path = f"/api/questions/{QUESTION}/stats"
        csv_path = "/api/attempts.csv"

        # What the measured requests return: the whole class, every row.
        page_status, page = fetch(port, token, page_path)
        api_status, api = fetch(port, token, api_path)
        csv_status, export = fetch(port, token, csv_path)
        csv_rows = sum(1 for _ in csv.reader(io.StringIO(export.decode()))) - 1  # the header
        shows_all = f"{seeded.attempts} attempts by ".encode() in page
        counts_all = f'"attempts":{seeded.on_question},'.encode() in api
        print(
            f"{'responses':<28} page {page_status} {len(page) / 1024:.0f} KiB, "
            f"API {api_status} {len(api) / 1024:.1f} KiB, "
            f"CSV {csv_status} {len(export) / 1024**2:.1f} MiB ({csv_rows} rows)"
        )

        baseline = rounds(port, 1, 200 // scale, get("/instructor/import"), headers=_bearer(token))
        print(baseline.line("baseline: import form"))
        versions = rounds(
            port,
            1,
            200 // scale,
            get(f"/api/questions/{QUESTION}/versions"),
            headers=_bearer(token),
        )
        print(versions.line("versions API"))
        page_load = rounds(port, 1, 20 // scale, get(page_path), headers=_bearer(token))
        print(page_load.line("stats page"))
        api_load = rounds(port, 1, 20 // scale, get(api_path), headers=_bearer(token))
        print(api_load.line("question stats API"))
        export_load = rounds(port, 1, max(8 // scale, 2), get(csv_path), headers=_bearer(token))
        print(export_load.line("CSV export (all attempts)"))

    rows_per_s = csv_rows / (export_load.percentile(50) / 1000)
    print(f"{'CSV export, p50':<28} {rows_per_s:7.0f} rows/s")
    for label, result in (
        ("versions API", versions),
        ("stats page", page_load),
        ("question stats API", api_load),
        ("CSV export", export_load),
    ):
        print(
            f"{label + ' vs baseline':<28} {result.percentile(50) / baseline.percentile(50):7.1f}x "
            "the p50 of an authenticated request"
        )
    loads = (baseline, versions, page_load, api_load, export_load)
    checks = [
        ("stats page p50", page_load.percentile(50), "<=", TARGETS["page_p50"], "ms"),
        ("question stats API p50", api_load.percentile(50), "<=", TARGETS["api_p50"], "ms"),
        ("CSV export", rows_per_s, ">=", TARGETS["csv_rows_per_s"], "rows/s"),
        ("CSV rows", csv_rows, "==", seeded.attempts, ""),
        ("page and API count every attempt", int(shows_all and counts_all), "==", 1, ""),
        ("errors", sum(result.errors for result in loads), "<=", 0, ""),
    ]
    sys.exit(check_targets(checks))


if __name__ == "__main__":
    main()
