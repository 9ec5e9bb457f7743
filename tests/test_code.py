"""Code questions: the learner's code and the reference run side by side, judged step by step."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.files import read_bank
from app.bank.schema import CodeCheck, CodeQuestion, FixQuestion
from app.checking import codecheck
from app.checking.runs import Runs
from app.config import Settings
from app.main import create_app
from app.models import Attempt
from app.sandbox.client import Sandbox
from app.sandbox.protocol import CodeData, RunResult, Verdict, WarningRecord
from tests.browser import live_server
from tests.conftest import QUESTIONS
from tests.test_sandbox import ATTACKS, victims

LESSON = "lr-schedulers"
__all__ = ["victims"]  # the attack suite's victim files, as a fixture here too
CODE_QUESTIONS = [
    s.question
    for p in read_bank(QUESTIONS)
    for s in p.questions
    if isinstance(s.question, CodeQuestion)
]
STEPLR = "lr-code-steplr"
TWO_PHASE = "lr-code-two-phase"


def _attempt(client: TestClient, qid: str, code: str) -> dict[str, Any]:
    response = client.post(
        f"/api/questions/{qid}/attempts", json={"answer": textwrap.dedent(code).lstrip("\n")}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the content ------------------------------------------------------------------------------


def test_there_are_enough_code_questions_with_known_wrong_answers() -> None:
    assert len(CODE_QUESTIONS) >= 8
    assert {q.difficulty for q in CODE_QUESTIONS} == {"easy", "medium", "hard"}
    for question in CODE_QUESTIONS:
        wrong = [
            t.mistake for t in question.self_tests if not t.correct and t.divergence is not None
        ]
        if isinstance(question, FixQuestion):
            wrong.append(question.bug)  # the planted bug: a wrong answer the import runs too
        assert len(wrong) >= 2, question.id
        assert any(wrong), question.id


def test_every_known_mistake_is_proven_by_a_self_test_in_the_bank() -> None:
    """Each diagnosis is triggered by a known-wrong answer that import runs for real (and the
    test below judges): none is only ever seen in made-up numbers."""
    named = {t.mistake for q in CODE_QUESTIONS for t in q.self_tests if t.mistake}
    planted = {q.bug for q in CODE_QUESTIONS if isinstance(q, FixQuestion) and q.bug}
    assert named | planted == set(codecheck.MISTAKES)  # a planted bug is run and judged too


@pytest.mark.parametrize("question", CODE_QUESTIONS, ids=lambda q: q.id)
def test_the_reference_passes_and_every_self_test_is_judged_as_written(
    question: CodeQuestion, runs: Runs, db: Session
) -> None:
    reference = runs.stored_reference(db, question)
    assert reference is not None, "stored at import"
    assert codecheck.judge(question.check, reference.result, reference.result).correct
    for test in question.self_tests:
        verdict = codecheck.judge(
            question.check, reference.result, runs.learner(question, test.code)
        )
        assert verdict.correct is test.correct, (test.why, verdict.message)
        if not test.correct:
            assert verdict.divergence == test.divergence, (test.why, verdict.message)
            named = next((k for k, m in codecheck.MISTAKES.items() if m is verdict.mistake), None)
            assert named == test.mistake, (test.why, named)


# --- grading through the API ----------------------------------------------------------------


def test_a_correct_answer_written_differently_is_accepted(client: TestClient) -> None:
    body = _attempt(
        client,
        STEPLR,
        """
        scheduler = lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5 ** (epoch // 3))
    """,
    )
    assert body["correct"] is True
    assert body["feedback"]["divergence"] is None
    assert body["solution"]["reference"].startswith("scheduler = lr_scheduler.StepLR")


def test_a_wrong_answer_is_told_where_and_why(client: TestClient) -> None:
    body = _attempt(
        client,
        TWO_PHASE,
        """
        scheduler = lr_scheduler.SequentialLR(
            optimizer,
            [lr_scheduler.StepLR(optimizer, 5, 0.5), lr_scheduler.ExponentialLR(optimizer, 0.9)],
            milestones=[20],
        )
    """,
    )
    feedback = body["feedback"]
    assert body["correct"] is False
    assert feedback["divergence"] == 20
    assert feedback["expected"] == pytest.approx([0.01125])
    assert feedback["got"] == pytest.approx([0.1])
    assert feedback["mistake"] == codecheck.MISTAKES["sequential-restart"].name
    assert "epoch 20" in feedback["message"]
    assert len(feedback["learner_lrs"]) == len(feedback["target_lrs"]) == 30


def test_an_exception_points_at_the_learners_own_line(client: TestClient) -> None:
    body = _attempt(
        client,
        STEPLR,
        """
        gamma = 0.5

        scheduler = lr_scheduler.StepLR(optimizer, step_sise=3, gamma=gamma)
    """,
    )
    error = body["feedback"]["error"]
    assert body["correct"] is False and body["feedback"]["verdict"] == "error"
    assert (error["type"], error["line"]) == ("TypeError", 3)
    assert "line 3: scheduler = lr_scheduler.StepLR(optimizer, step_sise=3" in error["traceback"]
    assert "given code" not in error["traceback"]
    assert "on line 3" in body["feedback"]["message"]


def test_a_syntax_error_names_its_line_and_is_not_a_try(client: TestClient) -> None:
    url = f"/api/questions/{STEPLR}/attempts"
    response = client.post(
        url, json={"answer": "x = 1\nscheduler = lr_scheduler.StepLR(optimizer,\n"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "answer" and "SyntaxError" in body["detail"]
    assert re.search(r"line [23]:", body["detail"]) and "not counted as a try" in body["detail"]
    indented = client.post(url, json={"answer": "x = 1\n  scheduler = 2\n"}).json()
    assert "IndentationError" in indented["detail"]
    assert client.get("/api/attempts").json()["total"] == 0  # nothing stored


def test_the_starting_code_as_given_is_not_an_answer_yet(client: TestClient) -> None:
    starter = client.get(f"/api/questions/{STEPLR}").json()["starter"]
    assert starter.strip()
    response = client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": starter})
    assert response.status_code == 422 and "fill in the `...`" in response.json()["detail"]
    assert client.get("/api/attempts").json()["total"] == 0


def test_forgetting_the_scheduler_is_said_plainly(client: TestClient) -> None:
    body = _attempt(client, STEPLR, "sched = lr_scheduler.StepLR(optimizer, 3, 0.5)")
    assert "must create `scheduler`" in body["feedback"]["message"]


def test_warnings_of_the_learners_code_are_shown(client: TestClient) -> None:
    body = _attempt(
        client,
        STEPLR,
        """
        import warnings
        warnings.warn("careful now")
        scheduler = lr_scheduler.StepLR(optimizer, 3, 0.5)
    """,
    )
    assert body["correct"] is True
    assert [(w["message"], w["line"]) for w in body["feedback"]["warnings"]] == [("careful now", 2)]


@pytest.mark.parametrize("answer", ["", "   ", None, 42, "x" * 20_001])
def test_an_answer_that_is_not_code_is_422(client: TestClient, db: Session, answer: Any) -> None:
    response = client.post(f"/api/questions/{STEPLR}/attempts", json={"answer": answer})
    assert response.status_code == 422
    assert response.json()["field"] == "answer"
    db.rollback()
    assert db.scalars(select(Attempt)).all() == []


# --- hostile code through the learner's path -------------------------------------------------


@pytest.fixture
def quick_client(settings: Settings, sandbox: Sandbox) -> Iterator[TestClient]:
    """The app with a one-second limit per run, so attacks on time finish quickly."""
    app = create_app(settings.model_copy(update={"sandbox_timeout_s": 1.0}), sandbox=sandbox)
    with TestClient(app) as client:
        yield client


@pytest.mark.slow
@pytest.mark.parametrize(("name", "code", "verdict"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attacks_through_the_code_box_get_the_same_verdicts(
    quick_client: TestClient,
    client: TestClient,
    victims: Path,
    name: str,
    code: str,
    verdict: Verdict,
) -> None:
    # Only attacks on time wait for the one-second limit; under load a memory bomb can take
    # longer than that to hit its limit.
    body = _attempt(quick_client if verdict is Verdict.TIMEOUT else client, STEPLR, code)
    # Code that runs to the end without harm still creates no `scheduler`: an error, said so.
    expected = Verdict.ERROR if verdict is Verdict.OK else verdict
    assert body["feedback"]["verdict"] == expected.value, (name, body["feedback"]["message"])
    assert body["correct"] is False
    assert body["feedback"]["message"]
    healthy = _attempt(quick_client, STEPLR, "scheduler = lr_scheduler.StepLR(optimizer, 3, 0.5)")
    assert healthy["correct"] is True
    assert (victims / "secret_key").read_text() != "x"


@pytest.mark.slow
def test_hostile_learners_never_affect_other_learners_grading(
    settings: Settings, sandbox: Sandbox
) -> None:
    """Five learners send attacks, six others right answers, all at once, to one server
    (each learner one answer at a time: the sandbox runs one run per learner)."""
    app = create_app(settings.model_copy(update={"sandbox_timeout_s": 1.0}), sandbox=sandbox)
    hostile = [
        "while True: pass",
        "x = bytearray(64 * 1024**3)",
        "import os\nos.kill(-1, 9)",
        "while True: print('x' * 1000)",
        "import ctypes\nctypes.string_at(0)",
    ]
    right = "scheduler = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)"
    with live_server(app) as base:

        def learner(code: str) -> list[bool]:
            with httpx.Client(base_url=base, timeout=60) as own:  # cookies of their own
                answers = []
                for _ in range(2):
                    response = own.post(f"/api/questions/{STEPLR}/attempts", json={"answer": code})
                    assert response.status_code == 201, response.text
                    answers.append(response.json()["correct"])
                return answers

        with ThreadPoolExecutor(max_workers=11) as pool:
            attacks = [pool.submit(learner, code) for code in hostile]
            results = [answer for answers in pool.map(learner, [right] * 6) for answer in answers]
            for future in attacks:
                assert future.result() == [False, False]
    assert results == [True] * 12


# --- the judge and its diagnoses ------------------------------------------------------------


def _run(
    lrs: list[float],
    *,
    kind: str = "LambdaLR",
    warnings: Sequence[str] = (),
    milestones: Sequence[int] = (),
    **more: Any,
) -> RunResult[CodeData]:
    params = {"milestones": list(milestones)} if milestones else {}
    params.update(more)
    return _result(
        Verdict.OK,
        data={"trajectory": [[lr] for lr in lrs], "scheduler": {"type": kind, "params": params}},
        warnings=[
            WarningRecord(category="UserWarning", message=message, line=None)
            for message in warnings
        ],
    )


def _result(status: Verdict, **fields: Any) -> RunResult[CodeData]:
    return RunResult[CodeData].model_validate({"status": status, **fields})


@pytest.mark.parametrize(
    ("target", "got", "kwargs", "mistake"),
    [
        (
            [1, 1, 0.5, 0.5],
            [1, 0.5, 0.5, 0.25],
            {"warnings": ["Detected call of `lr_scheduler.step()` before `optimizer.step()`."]},
            "step-order",
        ),
        (
            [1, 0.5, 0.25, 0.125],
            [1, 0.5, 1, 0.9],
            {"kind": "SequentialLR", "milestones": [2]},
            "sequential-restart",
        ),
        (
            [1, 0.5, 0.25, 0.125],
            [1, 0.5, 1, 0.9],
            {"kind": "SequentialLR", "milestones": [3]},
            None,
        ),
        (
            [1, 0.5, 0, 0],
            [1, 0.5, 0, 0.5],
            {"kind": "CosineAnnealingLR", "T_max": 2},
            "cosine-past-tmax",
        ),
        (  # a rise, but not from a cosine: warm restarts rise by design
            [1, 0.5, 0, 0],
            [1, 0.5, 0, 0.5],
            {"kind": "CosineAnnealingWarmRestarts", "T_0": 2},
            None,
        ),
        (  # a rise in a SequentialLR while its ConstantLR runs, not its cosine
            [1, 0.5, 0, 0, 0],
            [1, 0.5, 0, 0, 1],
            {
                "kind": "SequentialLR",
                "milestones": [3],
                "child_types": ["CosineAnnealingLR", "ConstantLR"],
            },
            None,
        ),
        (
            [1, 0.5, 0, 0, 0],
            [1, 0.5, 0, 0.5, 0],
            {
                "kind": "SequentialLR",
                "milestones": [4],
                "child_types": ["CosineAnnealingLR", "ConstantLR"],
            },
            "cosine-past-tmax",
        ),
        ([1, 1, 1, 0.1, 0.1, 0.1], [1, 1, 0.1, 0.1, 0.1, 0.1], {}, "off-by-one"),
        ([1, 1, 1, 0.1, 0.1, 0.1], [1, 1, 1, 1, 0.1, 0.1], {}, "off-by-one"),
        ([1, 1, 1, 0.1, 0.1, 0.1], [1, 1, 1, 0.5, 0.5, 0.5], {}, None),
    ],
)
def test_known_mistakes_are_recognised_from_the_numbers(
    target: list[float], got: list[float], kwargs: dict[str, Any], mistake: str | None
) -> None:
    verdict = codecheck.judge(CodeCheck(epochs=len(target)), _run(target), _run(got, **kwargs))
    assert not verdict.correct
    assert verdict.mistake is (codecheck.MISTAKES[mistake] if mistake else None)


def test_per_batch_and_per_epoch_stepping_in_a_loop_are_told_apart() -> None:
    check = CodeCheck(drive="loop", epochs=2, steps_per_epoch=3)
    epochwise, batchwise = [1, 1, 1, 0.5, 0.5, 0.5], [1, 0.9, 0.8, 0.7, 0.6, 0.5]
    per_batch = codecheck.judge(check, _run(epochwise), _run(batchwise))
    per_epoch = codecheck.judge(check, _run(batchwise), _run(epochwise))
    assert per_batch.mistake is codecheck.MISTAKES["per-batch"]
    assert per_epoch.mistake is codecheck.MISTAKES["per-epoch"]


def test_other_checks() -> None:
    final = CodeCheck(kind="final-lr", epochs=3)
    assert codecheck.judge(final, _run([1, 0.5, 0.2]), _run([1, 0.9, 0.2])).correct
    assert not codecheck.judge(final, _run([1, 0.5, 0.2]), _run([1, 0.5, 0.3])).correct
    late = CodeCheck(epochs=4, from_epoch=2)
    assert codecheck.judge(late, _run([1, 1, 0.5, 0.5]), _run([9, 9, 0.5, 0.5])).correct
    raises = CodeCheck(kind="exception", exception="ValueError")
    error = _result(Verdict.ERROR, error=None)
    assert not codecheck.judge(raises, error, _run([1])).correct
    obj = CodeCheck(kind="object", compare=["step_size"])

    def step_lr(**params: Any) -> RunResult[CodeData]:
        scheduler = {"type": "StepLR", "params": params}
        return _result(Verdict.OK, data={"trajectory": [], "scheduler": scheduler})

    want, same, other = step_lr(step_size=3), step_lr(step_size=3, gamma=0.1), step_lr(step_size=4)
    assert codecheck.judge(obj, want, same).correct
    assert "should be 3" in codecheck.judge(obj, want, other).message


# --- what the review of the first version found -------------------------------------------------


def test_a_scheduler_on_the_learners_own_optimizer_is_driven_through_it(
    client: TestClient,
) -> None:
    body = _attempt(
        client,
        STEPLR,
        """
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    """,
    )
    assert body["correct"] is True, body["feedback"]["message"]
    assert body["feedback"]["mistake"] is None


FORGE = """
import json, os, struct, sys
frame = sys._getframe()
while 'token' not in frame.f_locals:
    frame = frame.f_back
token = frame.f_locals['token']
result = {{'status': 'ok', 'token': token, 'data': {data}, 'warnings': {warnings}}}
body = json.dumps(result).encode()
os.write(4, struct.pack('>I', len(body)) + body)
os._exit(0)
"""


@pytest.mark.parametrize(
    "data",
    [
        "{'trajectory': [['x']]}",
        "{'trajectory': [0.1] * 30}",
        "{'trajectory': 'lots'}",
        "{'trajectory': [[0.1]], 'scheduler': {'type': 5}}",
        "{'trajectory': [[0.1] * 1000]}",
    ],
)
def test_a_forged_report_counts_as_a_crash(client: TestClient, data: str) -> None:
    body = _attempt(client, STEPLR, FORGE.format(data=data, warnings="[]"))
    assert body["correct"] is False
    assert body["feedback"]["verdict"] == "crashed"


def test_what_a_forged_report_may_store_is_bounded(client: TestClient, db: Session) -> None:
    warnings = "[{'category': 'UserWarning', 'message': 'w' * 5000, 'line': None}] * 200"
    data = "{'trajectory': [[0.1]] * 400_000}"
    body = _attempt(client, STEPLR, FORGE.format(data=data, warnings=warnings))
    assert body["correct"] is False
    feedback = body["feedback"]
    assert len(feedback["learner_lrs"]) == 13  # the check's 12 steps, and one too many
    assert len(feedback["warnings"]) == 20
    assert all(len(w["message"]) <= 2000 for w in feedback["warnings"])
    db.rollback()
    (stored,) = db.scalars(select(Attempt.feedback)).all()
    assert len(json.dumps(stored)) < 100_000


def test_names_a_learner_chooses_are_bounded_too(client: TestClient, db: Session) -> None:
    """No forging needed: an exception or a scheduler attribute may be named at will."""
    body = _attempt(
        client,
        STEPLR,
        """
        scheduler = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
        for i in range(300):
            setattr(scheduler, "x" * 300 + str(i), "y" * 100_000)
        raise type("A" * 100_000, (Exception,), {})("boom")
    """,
    )
    assert body["correct"] is False
    assert len(body["feedback"]["error"]["type"]) <= 200
    db.rollback()
    (stored,) = db.scalars(select(Attempt.feedback)).all()
    assert len(json.dumps(stored)) < 100_000


def test_clearing_the_param_groups_is_a_wrong_answer_not_a_500(client: TestClient) -> None:
    body = _attempt(
        client,
        STEPLR,
        """
        scheduler = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
        optimizer.param_groups.clear()
    """,
    )
    assert body["correct"] is False


@pytest.mark.parametrize(
    "body",
    [json.dumps({"answer": "😀" * 19_990}), '{"answer": "x = \'\\ud800\'"}'],
    ids=["over 60 kB of UTF-8", "a lone surrogate"],
)
def test_answers_that_cannot_be_run_are_422(client: TestClient, body: str) -> None:
    response = client.post(
        f"/api/questions/{STEPLR}/attempts",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["field"] == "answer"
