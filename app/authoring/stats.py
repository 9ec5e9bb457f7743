"""Statistics of a pattern's questions and learners, for instructors; and the attempts export.

The measures are those of classical item analysis, adapted to practice, where a learner may
answer a question again and again: only a learner's *first* attempt on a question says how
hard it was for them, later ones say how well the feedback taught them.

- **facility**: the share of learners whose first attempt on the question was right.
- **discrimination**: facility among the best 27 % of the question's learners minus facility
  among the weakest 27 %, ranked by their total first-try score over the pattern's questions.
  Near +1: the question separates those who know the pattern from those who do not; below 0:
  those who know it best get it wrong more often — the key, or the wording, is suspect.

Statistics span every version of a question (a new version rarely changes what it asks);
choice shares are the exception, see `ChoiceShare`. A pattern's figures take three queries, whatever
the number of its questions, learners and attempts.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Text, cast, select
from sqlalchemy.orm import Session

from app.bank.schema import (
    ChoiceQuestion,
    Difficulty,
    OutputQuestion,
    Question,
    Value,
    values_of,
)
from app.bank.service import PatternView, parse_version
from app.checking.grading import choice_label
from app.db import load_json
from app.errors import NotFound

# Mastery is progress's own rules (credit per rating, recency, difficulty weights), applied to
# attempts read once for every learner; progress only offers a query per learner.
from app.learning import progress
from app.models import Attempt, Learner, Pattern, QuestionVersion, User
from app.models import Question as QuestionRow

# Kelley's 27 %: the split of a ranked group that makes the difference between its top and
# bottom most reliable for a normally distributed score.
DISCRIMINATION_GROUP = 0.27
# With fewer learners each 27 % group holds one or two of them: the index is noise.
MIN_LEARNERS_FOR_DISCRIMINATION = 10
# Below this many attempts behind a figure, one learner moves a share by 10 points or more:
# too little to tell an author something is wrong.
MIN_ATTEMPTS_TO_FLAG = 10
# Under this facility four learners in five miss the question first time: worth a second look.
LOW_FACILITY = 0.2
CSV_BATCH_SIZE = 1000  # export rows fetched per round trip: memory stays flat, trips stay few
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "attempt_id",
    "created_at",
    "learner_id",
    "email",
    "pattern",
    "question_id",
    "question_version",
    "kind",
    "difficulty",
    "variant",
    "answer",
    "correct",
    "score",
    "hint_seen",
    "solution_seen",
    "time_taken_ms",
    "rating",
)


@dataclass(frozen=True)
class ChoiceShare:
    """How often one choice of a choice question is picked, over every attempt.

    Attempts are counted on every version whose choices have the same texts as the current
    version's (in any order: a pick is matched to the current choice by its text, so a
    reordering or a corrected key keeps the history). Attempts on a version whose choices
    differ — a choice added, dropped or reworded — are left out: a share among other options
    says nothing about these ones. So the picks may add up to fewer than the question's
    attempts.
    """

    index: int  # position in the current version, from 0
    label: str  # the letter shown to learners: "A", "B"…
    text: str  # the choice as written (inline Markdown)
    correct: bool  # whether it is the right answer in the current version
    picks: int  # attempts that picked it
    share: float | None  # picks / all counted picks, 0–1; None when no attempt counts


@dataclass(frozen=True)
class VariantFacility:
    """Facility of an output question among learners whose first attempt had one value of
    one variant parameter. Only first attempts count: a second variant is answered with the
    first one's solution in mind, which would make later variants look easier."""

    param: str  # the parameter's name, as in the question file's `params`
    value: Value  # one of its values
    learners: int  # learners whose first attempt had this value
    facility: float  # the share of them whose first attempt was right, 0–1


@dataclass(frozen=True)
class QuestionStats:
    """What a question's attempts say about it (see the module docstring for the measures)."""

    question_id: str
    title: str  # of the current version: its prompt's first paragraph, shortened (plain text)
    kind: str  # of the current version: "choice", "output", "code" or "fix"
    difficulty: Difficulty  # of the current version
    version: int  # the current version
    retired: bool  # the question has left the bank: learners no longer see it
    attempts: int  # every attempt, on every version
    learners: int  # distinct learners who answered it
    facility: float | None  # 0–1; None with no learners
    discrimination: float | None  # −1–1; None under MIN_LEARNERS_FOR_DISCRIMINATION learners
    median_time_ms: float | None  # over attempts whose time was measured; None without any
    hint_rate: float | None  # share of attempts made after seeing the hint; None with none
    solution_rate: float | None  # share of attempts made after seeing the solution
    choices: list[ChoiceShare]  # choice questions: every current choice; else empty
    variants: list[VariantFacility]  # output questions with params: per value seen; else empty
    flags: list[str]  # plain sentences for the author, when there is enough data


@dataclass(frozen=True)
class LearnerRow:
    """One learner's work on a pattern."""

    learner_id: int
    name: str  # the account's email, or "Guest #<id>"
    questions_seen: int  # the pattern's questions answered at least once
    attempts: int  # attempts on the pattern's questions
    first_try_correct: int  # questions whose first attempt was right
    mastery: float  # 0–1, of the pattern, as app.learning.progress defines it
    last_active: datetime  # the newest attempt on the pattern (UTC)


@dataclass(frozen=True)
class PatternStats:
    """The statistics page of a pattern."""

    pattern_slug: str
    questions: list[QuestionStats]  # live questions in order, then retired ones
    learners: list[LearnerRow]  # most recently active first
    attempts: int  # on all the pattern's questions


def pattern_stats(session: Session, *, pattern: PatternView) -> PatternStats:
    """Statistics of every question of a pattern (retired ones too) and of its learners."""
    data = _load(session, pattern.id)
    questions = [_question_stats(info, data) for info in data.questions]
    return PatternStats(
        pattern_slug=pattern.slug,
        questions=questions,
        learners=_learner_rows(data),
        attempts=len(data.attempts),
    )


def question_stats(session: Session, *, question_id: str) -> QuestionStats:
    """Statistics of one question, live or retired, or NotFound."""
    pattern_id = session.scalar(select(QuestionRow.pattern_id).where(QuestionRow.id == question_id))
    if pattern_id is None:
        raise NotFound(f"There is no question {question_id!r}.")
    # Discrimination ranks learners over the whole pattern, so the whole pattern is read.
    data = _load(session, pattern_id)
    info = next(info for info in data.questions if info.id == question_id)
    return _question_stats(info, data)


def attempts_csv(session: Session, *, pattern_slug: str | None = None) -> Iterator[str]:
    """Every attempt (of one pattern, if given) as CSV lines, header first, oldest first;
    NotFound for an unknown pattern, raised here rather than once the lines are flowing.

    Rows are read in batches while the lines are consumed, so the session must stay open
    until the iterator is exhausted. Cells a spreadsheet would run as a formula are
    prefixed with `'`.
    """
    query = (
        select(  # in CSV_COLUMNS order
            Attempt.id,
            Attempt.created_at,
            Attempt.learner_id,
            User.email,
            Pattern.slug,
            Attempt.question_id,
            Attempt.question_version,
            QuestionVersion.kind,
            QuestionVersion.difficulty,
            Attempt.variant,
            Attempt.answer,
            Attempt.correct,
            Attempt.score,
            Attempt.hint_seen,
            Attempt.solution_seen,
            Attempt.time_taken_ms,
            Attempt.rating,
        )
        .join(
            QuestionVersion,
            (QuestionVersion.question_id == Attempt.question_id)
            & (QuestionVersion.version == Attempt.question_version),
        )
        .join(QuestionRow, QuestionRow.id == Attempt.question_id)
        .join(Pattern, Pattern.id == QuestionRow.pattern_id)
        .join(Learner, Learner.id == Attempt.learner_id)
        .outerjoin(User, User.id == Learner.user_id)
        .order_by(Attempt.id)
    )
    if pattern_slug is not None:
        pattern_id = session.scalar(select(Pattern.id).where(Pattern.slug == pattern_slug))
        if pattern_id is None:
            raise NotFound(f"There is no pattern {pattern_slug!r}.")
        query = query.where(QuestionRow.pattern_id == pattern_id)
    return _csv_lines(session, query)


# --- loading ----------------------------------------------------------------------------------


class _Attempt(NamedTuple):
    """An attempt as the statistics need it (a tuple: thousands are built per page)."""

    id: int
    learner_id: int
    email: str | None
    question_id: str
    version: int
    answer_json: str | None  # decoded only where a figure needs it: most never do
    correct: bool
    score: float
    hint_seen: bool
    solution_seen: bool
    time_taken_ms: int | None
    variant_json: str | None
    rating: int | None
    created_at: datetime

    @property
    def answer(self) -> Any:
        """The answer as grading stored it."""
        return None if self.answer_json is None else load_json(self.answer_json)

    @property
    def variant(self) -> dict[str, Any] | None:
        """The parameter values of the variant answered (output questions)."""
        return None if self.variant_json is None else load_json(self.variant_json)


@dataclass(frozen=True)
class _QuestionInfo:
    """A question of the pattern with every stored version of it."""

    id: str
    version: int  # the current one
    retired: bool
    versions: dict[int, QuestionVersion]

    @property
    def kind(self) -> str:
        return self.versions[self.version].kind

    @property
    def difficulty(self) -> Difficulty:
        return Difficulty(self.versions[self.version].difficulty)

    @property
    def title(self) -> str:
        """The current version's title (read from its content: nothing else of it is parsed)."""
        return str(self.versions[self.version].content["title"])

    def parsed(self, version: int) -> Question | None:
        """A stored version's content, validated; asked for only where a figure needs the
        content (choices, variant parameters), so other kinds are never parsed."""
        row = self.versions.get(version)
        return None if row is None else parse_version(row)


@dataclass
class _PatternData:
    """A pattern's questions and attempts, and the first attempts derived from them."""

    questions: list[_QuestionInfo]  # live ones in order, then retired ones
    attempts: list[_Attempt]  # oldest first
    by_question: dict[str, list[_Attempt]]
    first: dict[str, dict[int, _Attempt]]  # question id → learner id → first attempt
    first_try_total: dict[int, float]  # learner id → sum of first-attempt scores


def _load(session: Session, pattern_id: int) -> _PatternData:
    """Read a pattern's questions, their versions and their attempts: three queries."""
    rows = session.execute(
        select(QuestionRow.id, QuestionRow.current_version, QuestionRow.retired_at)
        .where(QuestionRow.pattern_id == pattern_id)
        .order_by(QuestionRow.retired_at.is_not(None), QuestionRow.position, QuestionRow.id)
    ).all()
    versions: dict[str, dict[int, QuestionVersion]] = defaultdict(dict)
    for version in session.scalars(
        select(QuestionVersion)
        .join(QuestionRow, QuestionRow.id == QuestionVersion.question_id)
        .where(QuestionRow.pattern_id == pattern_id)
    ):
        versions[version.question_id][version.version] = version
    questions = [
        _QuestionInfo(qid, current, retired_at is not None, versions[qid])
        for qid, current, retired_at in rows
    ]
    attempts = [
        _Attempt._make(row)
        for row in session.execute(
            select(
                Attempt.id,
                Attempt.learner_id,
                User.email,
                Attempt.question_id,
                Attempt.question_version,
                # As JSON text: decoding 20,000 answers cost half the page (bench/stats.py).
                cast(Attempt.answer, Text),
                Attempt.correct,
                Attempt.score,
                Attempt.hint_seen,
                Attempt.solution_seen,
                Attempt.time_taken_ms,
                cast(Attempt.variant, Text),
                Attempt.rating,
                Attempt.created_at,
            )
            .join(QuestionRow, QuestionRow.id == Attempt.question_id)
            .join(Learner, Learner.id == Attempt.learner_id)
            .outerjoin(User, User.id == Learner.user_id)
            .where(QuestionRow.pattern_id == pattern_id)
            .order_by(Attempt.id)
        )
    ]
    by_question: dict[str, list[_Attempt]] = defaultdict(list)
    first: dict[str, dict[int, _Attempt]] = defaultdict(dict)
    first_try_total: dict[int, float] = defaultdict(float)
    for attempt in attempts:
        by_question[attempt.question_id].append(attempt)
        if attempt.learner_id not in first[attempt.question_id]:
            first[attempt.question_id][attempt.learner_id] = attempt
            first_try_total[attempt.learner_id] += attempt.score
    return _PatternData(questions, attempts, by_question, first, first_try_total)


# --- questions ----------------------------------------------------------------------------------


def _share(flags: Iterable[bool]) -> float | None:
    """The share of true ones, or None if there are none at all."""
    values = list(flags)
    return sum(values) / len(values) if values else None


def _question_stats(info: _QuestionInfo, data: _PatternData) -> QuestionStats:
    attempts = data.by_question.get(info.id, [])
    first = data.first.get(info.id, {})
    times = [a.time_taken_ms for a in attempts if a.time_taken_ms is not None]
    facility = _share(a.correct for a in first.values())
    discrimination = _discrimination(first, data.first_try_total)
    choices = _choice_shares(info, attempts)
    return QuestionStats(
        question_id=info.id,
        title=info.title,
        kind=info.kind,
        difficulty=info.difficulty,
        version=info.version,
        retired=info.retired,
        attempts=len(attempts),
        learners=len(first),
        facility=facility,
        discrimination=discrimination,
        median_time_ms=float(statistics.median(times)) if times else None,
        hint_rate=_share(a.hint_seen for a in attempts),
        solution_rate=_share(a.solution_seen for a in attempts),
        choices=choices,
        variants=_variant_facility(info, first.values()),
        flags=_flags(len(first), facility, discrimination, choices),
    )


def _discrimination(first: dict[int, _Attempt], totals: dict[int, float]) -> float | None:
    """Upper-group minus lower-group facility among this question's learners, ranked by their
    total first-try score on the pattern (ties broken by learner id, to be repeatable)."""
    if len(first) < MIN_LEARNERS_FOR_DISCRIMINATION:
        return None
    size = max(1, round(DISCRIMINATION_GROUP * len(first)))
    ranked = sorted(first, key=lambda learner_id: (totals[learner_id], learner_id))
    upper = _share(first[learner_id].correct for learner_id in ranked[-size:])
    lower = _share(first[learner_id].correct for learner_id in ranked[:size])
    assert upper is not None and lower is not None  # both groups hold `size` ≥ 1 learners
    return upper - lower


def _choice_shares(info: _QuestionInfo, attempts: Sequence[_Attempt]) -> list[ChoiceShare]:
    """Picks of each current choice, over versions with the same choice texts (see
    ChoiceShare)."""
    current = info.parsed(info.version) if info.kind == "choice" else None
    if not isinstance(current, ChoiceQuestion):
        return []
    index_of = {choice.text: i for i, choice in enumerate(current.choices)}
    comparable: dict[int, ChoiceQuestion] = {}  # versions whose picks can be counted
    for number, row in info.versions.items():
        answered = info.parsed(number) if row.kind == "choice" else None
        texts = {c.text for c in answered.choices} if isinstance(answered, ChoiceQuestion) else None
        if isinstance(answered, ChoiceQuestion) and texts == index_of.keys():
            comparable[number] = answered
    picks = [0] * len(current.choices)
    for attempt in attempts:
        answered = comparable.get(attempt.version)
        if answered is None:
            continue
        picked = attempt.answer  # the index into the version answered, as grading stored it
        valid = isinstance(picked, int) and not isinstance(picked, bool)
        if valid and 0 <= picked < len(answered.choices):
            picks[index_of[answered.choices[picked].text]] += 1
    total = sum(picks)
    return [
        ChoiceShare(
            index=i,
            label=choice_label(i),
            text=choice.text,
            correct=choice.correct,
            picks=picks[i],
            share=picks[i] / total if total else None,
        )
        for i, choice in enumerate(current.choices)
    ]


def _variant_facility(info: _QuestionInfo, first: Iterable[_Attempt]) -> list[VariantFacility]:
    """Facility per value of each parameter, over learners' first attempts; parameters and
    values in the order the current version lists them, any others after them."""
    # Values are keyed by their JSON, so that True, 1 and 1.0 stay three values.
    outcomes: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    value_of: dict[str, Value] = {}
    for attempt in first:
        for param, value in (attempt.variant or {}).items():
            key = json.dumps(value)
            outcomes[param][key].append(attempt.correct)
            value_of[key] = value
    declared: dict[str, list[str]] = {}
    current = info.parsed(info.version) if outcomes and info.kind == "output" else None
    if isinstance(current, OutputQuestion):
        declared = {
            name: [json.dumps(value) for value in values_of(spec)]
            for name, spec in current.params.items()
        }
    params = [name for name in declared if name in outcomes]
    params += sorted(name for name in outcomes if name not in declared)
    result = []
    for param in params:
        order = {key: i for i, key in enumerate(declared.get(param, []))}
        keys = sorted(outcomes[param], key=lambda key: (order.get(key, len(order)), key))
        for key in keys:
            correct = outcomes[param][key]
            result.append(
                VariantFacility(
                    param=param,
                    value=value_of[key],
                    learners=len(correct),
                    facility=sum(correct) / len(correct),
                )
            )
    return result


def _flags(
    learners: int,
    facility: float | None,
    discrimination: float | None,
    choices: Sequence[ChoiceShare],
) -> list[str]:
    """What an author should look at, each only with MIN_ATTEMPTS_TO_FLAG attempts behind the
    figure: first attempts for facility and discrimination, counted picks for choices."""
    flags = []
    if learners >= MIN_ATTEMPTS_TO_FLAG:
        if facility is not None and facility < LOW_FACILITY:
            flags.append(
                f"Few get it right first time (facility {facility:.2f}): is the key right, "
                "or the prompt unclear?"
            )
        if discrimination is not None and discrimination < 0:
            flags.append(
                f"Those who do best on the pattern get it wrong more often (discrimination "
                f"{discrimination:.2f}): is the key right, or does the wording mislead those "
                "who know more?"
            )
    picked = sum(choice.picks for choice in choices)
    if picked >= MIN_ATTEMPTS_TO_FLAG:
        for choice in choices:
            if not choice.correct and choice.picks == 0:
                flags.append(
                    f"Nobody picks choice {choice.label} (“{choice.text}”) in {picked} "
                    "attempts: make it a mistake people really make, or drop it."
                )
    return flags


# --- learners -----------------------------------------------------------------------------------


def _learner_rows(data: _PatternData) -> list[LearnerRow]:
    """One row per learner who answered any of the pattern's questions."""
    live = [(info.id, info.difficulty) for info in data.questions if not info.retired]
    by_learner: dict[int, list[_Attempt]] = defaultdict(list)
    for attempt in data.attempts:
        by_learner[attempt.learner_id].append(attempt)
    first_try_correct: dict[int, int] = defaultdict(int)
    for firsts in data.first.values():
        for learner_id, first in firsts.items():
            first_try_correct[learner_id] += int(first.correct)
    rows = []
    for learner_id, attempts in by_learner.items():
        email = attempts[0].email
        rows.append(
            LearnerRow(
                learner_id=learner_id,
                name=email if email is not None else f"Guest #{learner_id}",
                questions_seen=len({a.question_id for a in attempts}),
                attempts=len(attempts),
                first_try_correct=first_try_correct[learner_id],
                mastery=progress.mastery(
                    live,
                    progress.fold_states(
                        (a.question_id, a.id, a.correct, a.rating, a.created_at)
                        for a in reversed(attempts)  # they come oldest first
                    ),
                ),
                last_active=max(a.created_at for a in attempts),
            )
        )
    rows.sort(key=lambda row: (row.last_active, row.learner_id), reverse=True)
    return rows


# --- the export ---------------------------------------------------------------------------------


class _Line:
    """A file-like object whose write() hands the line back, for csv.writer to yield lines."""

    def write(self, line: str) -> str:
        return line


def _cell(value: object) -> str:
    """A value as a CSV cell that no spreadsheet runs as a formula."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _csv_lines(session: Session, query: Select[Any]) -> Iterator[str]:
    writer = csv.writer(_Line(), lineterminator="\r\n")
    header: str = writer.writerow(CSV_COLUMNS)
    yield header
    variant_at, answer_at = CSV_COLUMNS.index("variant"), CSV_COLUMNS.index("answer")
    for row in session.execute(query.execution_options(yield_per=CSV_BATCH_SIZE)):
        values = list(row)  # the query selects the columns in CSV_COLUMNS order
        variant = values[variant_at]
        values[variant_at] = None if variant is None else _json(variant)
        values[answer_at] = _json(values[answer_at])
        line: str = writer.writerow([_cell(value) for value in values])
        yield line
