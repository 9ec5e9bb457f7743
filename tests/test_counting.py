"""One way to count epochs (issue 13, item 5): from 0, as `for epoch in range(N)` and
PyTorch's docs do. Epoch 0 is the first pass over the data; epoch e trains at the rate set by
e calls to `scheduler.step()`. The bank, the templates and the code checker's diagnoses all
say so; these tests keep it so.

What can really be checked, without understanding English:
- no text states the other convention ("1-based", "counting from 1", "the first epoch is
  epoch 1") — except a text that explains a mistake, which may name the misconception;
- a run of N epochs has no epoch N: a question about an N-epoch run never names epoch N or
  later (that is what counting from 1 writes);
- a prompt that names an epoch by number says how epochs are counted, or shows the loop that
  numbers them;
- templates number epochs from the data or `loop.index0`, never `loop.index` or `+ 1`;
- the code checker names a step in one helper, and epoch 0 is "epoch 0".
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.bank import schema
from app.bank.files import read_bank
from app.checking import codecheck
from app.sandbox.protocol import CodeData, RunResult, Verdict
from app.templating import TEMPLATES_DIR
from tests.conftest import QUESTIONS, ROOT

# The other convention, stated.
ONE_BASED = re.compile(
    r"\b(?:1|one)-based\b"
    r"|\b(?:count(?:s|ed|ing)?|number(?:s|ed|ing)?)\s+(?:the\s+)?(?:epochs?\s+)?from\s+(?:1|one)\b"
    r"|\bfirst epoch\W+(?:is\s+|=\s*)?(?:epoch\s+)?1\b"
    r"|\bepoch 1\W+(?:is\s+)?the first\b",
    re.IGNORECASE,
)
# How long a run is, as a question says it.
RUN_LENGTH = re.compile(
    r"\b(\d+)-epoch\b|\b(?:trains?|runs?|stepped|training) for (?:\*\*)?(\d+)(?:\*\*)? epochs\b"
)
EPOCH_LOOP = re.compile(r"\bfor epoch in range\((\d+)\)")
# An epoch named by number: "epoch 5", "epochs 3, 4 and 5", "epochs 0–4".
NAMED_EPOCHS = re.compile(r"\bepochs? (\d+(?:(?:\s*[–-]\s*|, | and | or )\d+)*)\b")
# A call count and the epoch it belongs to, in one sentence: the n-th `scheduler.step()` comes
# at the end of epoch n - 1, and after n calls epoch n is the one training.
CALLS_AND_EPOCHS = [
    (
        re.compile(
            r"\b(?P<calls>\d+)(?:st|nd|rd|th) call\b[^.]*?\bend of epoch (?P<epoch>\d+)", re.I
        ),
        -1,
    ),
    (
        re.compile(
            r"\bend of epoch (?P<epoch>\d+)\b[^.]*?\b(?:called )?(?P<calls>\d+)"
            r"(?:st|nd|rd|th call| times)\b",
            re.I,
        ),
        -1,
    ),
    (
        re.compile(
            r"\bafter (?:exactly )?(?P<calls>\d+) calls?\b[^.]*?"
            r"\bepoch (?P<epoch>\d+) (?:is the first|already trains|trains)",
            re.I,
        ),
        0,
    ),
    (re.compile(r"\b(?P<calls>\d+) calls? before epoch (?P<epoch>\d+)", re.I), 0),
]
COUNTING_STATED = re.compile(
    r"from 0|\bepochs? 0\b|counting from zero|numbered from 0|for epoch in range\(|enumerate\("
)


@dataclass(frozen=True)
class Text:
    """A text a learner can read, and where it is."""

    where: str
    text: str
    explains_a_mistake: bool = False


def learner_texts(question: schema.Question) -> Iterator[Text]:
    """Every text of a question a learner may read (not `notes`, not self-tests)."""
    yield Text("prompt", question.prompt)
    if question.code:
        yield Text("code", question.code)
    if question.hint:
        yield Text("hint", question.hint)
    for i, mistake in enumerate(question.mistakes):
        yield Text(f"mistakes.{i}", mistake, explains_a_mistake=True)
    if isinstance(question, schema.ChoiceQuestion):
        for i, choice in enumerate(question.choices):
            yield Text(f"choices.{i}.text", choice.text)
            if choice.mistake:
                yield Text(f"choices.{i}.mistake", choice.mistake, explains_a_mistake=True)
        yield Text("solution.final_answer", question.solution.final_answer)
    if isinstance(question, schema.CodeQuestion):
        yield Text("setup", question.setup)
        yield Text("starter", question.starter)
    for i, step in enumerate(question.solution.steps):
        yield Text(f"solution.steps.{i}", f"{step.title}\n{step.body}")
    if question.solution.quick_check:
        yield Text("solution.quick_check", question.solution.quick_check)


BANK = [s for p in read_bank(QUESTIONS) for s in p.questions]


def _numbers(named: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", named)]


def one_based_statements(texts: list[Text]) -> list[str]:
    """Where a text states that epochs count from 1 (a mistake's text may name it)."""
    return [
        f"{t.where}: {m[0]!r}"
        for t in texts
        if not t.explains_a_mistake
        for m in ONE_BASED.finditer(t.text)
    ]


def epochs_past_the_end(texts: list[Text], code: str | None) -> list[str]:
    """Epoch numbers at or past the length of the run a question describes."""
    lengths = [int(a or b) for t in texts for a, b in RUN_LENGTH.findall(t.text)]
    lengths += [int(n) for n in EPOCH_LOOP.findall(code or "")]
    if not lengths:
        return []
    run = max(lengths)
    return [
        f"{t.where}: {m[0]!r} in a {run}-epoch run (its last epoch is {run - 1})"
        for t in texts
        for m in NAMED_EPOCHS.finditer(t.text)
        if max(_numbers(m[1])) >= run
    ]


def calls_and_epochs_disagree(texts: list[Text]) -> list[str]:
    """A sentence tying a call count to an epoch that counting from 0 does not give."""
    problems = []
    for t in texts:
        for pattern, offset in CALLS_AND_EPOCHS:
            for m in pattern.finditer(t.text):
                calls, epoch = int(m["calls"]), int(m["epoch"])
                if epoch != calls + offset:
                    problems.append(
                        f"{t.where}: {' '.join(m[0].split())!r} (call {calls} "
                        f"{'ends epoch' if offset else 'starts epoch'} {calls + offset})"
                    )
    return problems


def counting_unstated(question: schema.Question) -> list[str]:
    """A prompt naming an epoch by number, with nothing saying how epochs are counted."""
    if not NAMED_EPOCHS.search(question.prompt):
        return []
    shown = [question.prompt, question.code or ""]
    if isinstance(question, schema.CodeQuestion):
        shown.append(question.setup)
    if any(COUNTING_STATED.search(text) for text in shown):
        return []
    return [f"prompt names {NAMED_EPOCHS.search(question.prompt)[0]!r} but not how epochs count"]  # type: ignore[index]


@pytest.mark.parametrize("source", BANK, ids=lambda s: s.question.id)
def test_every_question_counts_epochs_from_0(source: object) -> None:
    question = source.question  # type: ignore[attr-defined]
    texts = list(learner_texts(question))
    problems = (
        one_based_statements(texts)
        + epochs_past_the_end(texts, question.code)
        + calls_and_epochs_disagree(texts)
        + counting_unstated(question)
    )
    assert problems == [], f"{source.path}: " + "; ".join(problems)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Epochs 1–5 train at 0.1 (counting from 1).", True),
        ("epoch k (counting from 1) trains at", True),
        ("The first epoch is epoch 1.", True),
        ("Epochs are 1-based here.", True),
        ("Epoch 5 (the sixth epoch, counting from 0) trains at 0.05.", False),
        ("Epoch 1 is the second epoch.", False),
    ],
)
def test_a_one_based_statement_is_found(text: str, found: bool) -> None:
    assert bool(one_based_statements([Text("prompt", text)])) is found
    assert one_based_statements([Text("mistakes.0", text, explains_a_mistake=True)]) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("In the lesson's 10-epoch run, epochs 6–10 train at 0.05.", True),
        ("It trains for 10 epochs and halves at the end of epoch 10.", True),
        ("A 10-epoch run: epochs 5–9 train at 0.05, epoch 9 is the last.", False),
    ],
)
def test_an_epoch_past_the_end_of_the_run_is_found(text: str, found: bool) -> None:
    assert bool(epochs_past_the_end([Text("prompt", text)], None)) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("The 5th call happens at the end of epoch 5.", True),
        ("The 5th call happens at the end of epoch 4.", False),
        ("At the end of epoch 5 it has been called 5 times.", True),
        ("`scheduler.step()` at the end of epoch 29 is its 30th call.", False),
        (
            "After exactly 3 calls the rate has dropped (epoch 4 is the first at the lower rate).",
            True,
        ),
        ("After 4 calls the factor is 1, so epoch 4 already trains at 0.5.", False),
        ("4 calls before epoch 4 starts.", False),
    ],
)
def test_a_call_count_that_names_the_wrong_epoch_is_found(text: str, found: bool) -> None:
    assert bool(calls_and_epochs_disagree([Text("hint", text)])) is found


# --- the templates ----------------------------------------------------------------------------

FOR_BLOCK = re.compile(r"{%-?\s*for\s+(.+?)\s+in\s+(.+?)\s*-?%}")
END_FOR = re.compile(r"{%-?\s*endfor\s*-?%}")


def epoch_loops_numbered_from_1(source: str) -> list[str]:
    """`loop.index` (which starts at 1) inside a loop over epochs, or an epoch `+ 1`."""
    problems = [m[0] for m in re.finditer(r"\bepoch\w*\s*\+\s*1\b", source)]
    tags = sorted(
        [(m.start(), m.end(), m) for m in FOR_BLOCK.finditer(source)]
        + [(m.start(), m.end(), None) for m in END_FOR.finditer(source)],
        key=lambda tag: tag[0],
    )
    stack: list[tuple[int, bool, list[str]]] = []  # start, over epochs, own text pieces
    position = 0
    for start, end, opening in tags:
        if stack:
            stack[-1][2].append(source[position:start])
        if opening is not None:
            over_epochs = "epoch" in f"{opening[1]} {opening[2]}".lower()
            stack.append((start, over_epochs, []))
        elif stack:
            _, over_epochs, pieces = stack.pop()
            body = "".join(pieces)  # without nested loops: their loop.index is their own
            if over_epochs and re.search(r"\bloop\.index\b(?!0)", body):
                problems.append(f"loop.index in a loop over epochs: {body.strip()[:80]!r}")
        position = end
    return problems


TEMPLATES = sorted(TEMPLATES_DIR.rglob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATES_DIR)))
def test_templates_number_epochs_from_0(path: object) -> None:
    assert epoch_loops_numbered_from_1(path.read_text()) == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("{% for e in trace.epochs %}<td>{{ loop.index }}</td>{% endfor %}", True),
        ("{% for e in trace.epochs %}<td>{{ e.epoch + 1 }}</td>{% endfor %}", True),
        ("{% for e in trace.epochs %}<td>{{ loop.index0 }}</td>{% endfor %}", False),
        ("{% for e in trace.epochs %}<td>{{ e.epoch }}</td>{% endfor %}", False),
        (  # a nested loop's own counter is not an epoch's
            "{% for e in epochs %}{% for s in e.steps %}{{ loop.index }}{% endfor %}{% endfor %}",
            False,
        ),
        ("{% for step in q.solution.steps %}Step {{ loop.index }}{% endfor %}", False),
    ],
)
def test_an_epoch_numbered_from_1_in_a_template_is_found(source: str, found: bool) -> None:
    assert bool(epoch_loops_numbered_from_1(source)) is found


# --- the code checker's diagnoses -----------------------------------------------------------


def test_diagnoses_count_epochs_from_0() -> None:
    texts = [
        Text(f"MISTAKES[{name!r}]", f"{mistake.name}\n{mistake.explanation}")
        for name, mistake in codecheck.MISTAKES.items()
    ]
    assert one_based_statements(texts) == []
    assert codecheck.name_step(schema.CodeCheck(epochs=3), 0) == "epoch 0"
    per_batch = schema.CodeCheck(drive="loop", epochs=3, steps_per_epoch=4)
    assert codecheck.name_step(per_batch, 5) == "step 5 (epoch 1, batch 1)"

    def run(lrs: list[float]) -> RunResult[CodeData]:
        return RunResult[CodeData].model_validate(
            {"status": Verdict.OK, "data": {"trajectory": [[lr] for lr in lrs]}}
        )

    first_wrong = codecheck.judge(schema.CodeCheck(epochs=2), run([0.1, 0.1]), run([0.2, 0.1]))
    assert "at epoch 0, counting from 0:" in first_wrong.message


def test_only_one_helper_names_an_epoch_by_number() -> None:
    """The checker's messages that put a number after "epoch" (f"… epoch {n} …") live in
    codecheck.name_step; every other message calls it, so none can count differently."""
    helper = inspect.getsource(codecheck.name_step)
    found = []
    for path in sorted((ROOT / "app" / "checking").rglob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.JoinedStr):
                text = ast.get_source_segment(source, node) or ""
                if re.search(r"\bepochs? \{", text) and text not in helper:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert found == []
