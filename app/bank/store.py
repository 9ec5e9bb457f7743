"""The question bank in the database: import with versions, export back to files."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bank.files import (
    PATTERN_FILE,
    BankError,
    PatternSource,
    QuestionSource,
    dump_yaml,
    is_pattern_folder,
    read_bank,
    text_hash,
    write_bank,
)
from app.bank.schema import (
    PATTERN_ADAPTER,
    QUESTION_ADAPTER,
    CodeQuestion,
    OutputQuestion,
    PatternFile,
    Question,
    content_hash,
)
from app.bank.service import CURRENT_VERSION
from app.bank.variants import all_variants, count
from app.codecheck import MISTAKES, judge
from app.db import begin_write
from app.errors import AppError
from app.grading import compare_output, expected_output
from app.models import Pattern, QuestionVersion, Trace, utcnow
from app.models import Question as QuestionRow
from app.runs import PendingRun, QuestionRuns, Run, store, torch_version
from app.sandbox.protocol import RunResult, Verdict
from app.traces import service as traces
from app.traces.spec import spec_json


@dataclass
class ImportReport:
    """What an import changed, by question id."""

    patterns_created: list[str] = field(default_factory=list)
    patterns_updated: list[str] = field(default_factory=list)
    patterns_retired: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    # made in the browser, in a pattern whose folder left questions/: hidden with it
    orphaned: list[str] = field(default_factory=list)
    # a file changed over a version saved in the browser: the file won (both are versions)
    overrode: list[str] = field(default_factory=list)
    kept_retired: list[str] = field(default_factory=list)  # retired in the browser; stays so

    @property
    def changed(self) -> bool:
        """Whether the import wrote anything."""
        return any(
            (
                self.patterns_created,
                self.patterns_updated,
                self.patterns_retired,
                self.created,
                self.new_versions,
                self.retired,
                self.restored,
            )
        )

    def summary(self) -> str:
        """One line for the command line."""
        return (
            f"{len(self.created)} new, {len(self.new_versions)} new versions, "
            f"{len(self.unchanged)} unchanged, {len(self.retired)} retired, "
            f"{len(self.restored)} restored; patterns: {len(self.patterns_created)} new, "
            f"{len(self.patterns_updated)} updated, {len(self.patterns_retired)} retired"
            + "".join(
                f"; {label}: {', '.join(ids)}"
                for label, ids in (
                    ("the file won over a browser edit", self.overrode),
                    ("still retired (bring back in the browser)", self.kept_retired),
                    ("hidden with their pattern's folder", self.orphaned),
                )
                if ids
            )
        )

    def changes(self) -> dict[str, list[str]]:
        """What changed, by kind, for the audit log (unchanged questions left out)."""
        return {name: ids for name, ids in vars(self).items() if ids and name != "unchanged"}


@dataclass(frozen=True)
class Problem:
    """What is wrong with a question's run, and in which field; reads `field: message`."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


FILES, UPLOAD = "file", "upload"  # where an import comes from (QuestionVersion.source)
RETIRED_BY_FILE, RETIRED_BY_BROWSER = "file", "browser"  # Question.retired_by


def import_bank(
    session: Session,
    root: Path,
    *,
    runs: QuestionRuns | None = None,
    source: str = FILES,
    author_id: int | None = None,
    on_commit: Callable[[Session, ImportReport], None] | None = None,
) -> ImportReport:
    """Validate every file under `root` and bring the database in line, as one transaction.

    Output questions are run, every variant, in the sandbox (`runs`): a run that fails, or an
    `answer` the real output contradicts, is an error like any other. A broken file raises
    BankError before anything is written. Commits on success (after `on_commit`, which may
    add to the same transaction, e.g. an audit record).

    From `questions/` (source `file`), the files lead: a question whose file changed since
    the last import gets a new version, and file-made questions whose file is gone are
    retired (hidden from learners, history kept); a question whose file did not change is
    left as the editor last saved it. An `upload` only adds and updates, never retires.
    """
    sources = read_bank(root)
    if source != FILES:
        check_upload(session, sources)
    checked_runs = verify_outputs(session, sources, runs)
    checked_runs += verify_references(session, sources, runs)
    pipelines = record_pipelines(session, sources, runs)
    report = ImportReport()
    begin_write(session)
    for run in checked_runs:
        store(session, run)
    for key, spec, data in pipelines:
        traces.store(session, key=key, kind=traces.PIPELINE, spec=spec, data=data)
    importer = _Importer(session, report, source=source, author_id=author_id)
    for position, pattern_source in enumerate(sources):
        importer.pattern(pattern_source, position)
    if source == FILES and not is_pattern_folder(root):
        # a whole bank: file-made patterns no longer in it are retired
        _retire_missing_patterns(session, {p.slug for p in sources}, report)
    if on_commit is not None:
        on_commit(session, report)
    session.commit()
    return report


MAX_IN_FLIGHT = 32  # variants sent to the sandbox at once during an import


def check_upload(session: Session, sources: list[PatternSource]) -> None:
    """An upload may add questions, and update a question only of the same kind in the same
    pattern: an id that clashes with another question is an error, not an overwrite."""
    ids = [q.question.id for p in sources for q in p.questions]
    current = {
        qid: (slug, kind)
        for qid, slug, kind in session.execute(
            select(QuestionRow.id, Pattern.slug, QuestionVersion.kind)
            .join(Pattern, Pattern.id == QuestionRow.pattern_id)
            .join(QuestionVersion, CURRENT_VERSION)
            .where(QuestionRow.id.in_(ids))
        )
    }
    errors = []
    for pattern in sources:
        for source in pattern.questions:
            found = current.get(source.question.id)
            if found is not None and found != (pattern.slug, source.question.kind):
                errors.append(
                    f"{source.path}: id: {source.question.id!r} is already a {found[1]} "
                    f"question of pattern {found[0]!r}; an upload updates only a question of "
                    "the same kind in the same pattern — give this one another id"
                )
    if errors:
        raise BankError(errors)


def verify_outputs(
    session: Session, sources: list[PatternSource], runs: QuestionRuns | None
) -> list[Run]:
    """Run every variant of every output question; BankError if any run fails or an
    author's `answer` disagrees with the real output."""
    errors: list[str] = []
    checked: list[Run] = []
    pending: list[tuple[Path, OutputQuestion, int, str, PendingRun]] = []

    def collect(item: tuple[Path, OutputQuestion, int, str, PendingRun]) -> None:
        path, question, variant, key, future = item
        session.commit()  # end the read: no connection is held while code runs
        try:
            result = future.result()
        except AppError as exc:
            errors.append(f"{path}: code: the sandbox could not run it: {exc.message}")
            return
        problem = variant_problem(question, variant, result)
        if problem:
            errors.append(f"{path}: {problem}")
        else:
            checked.append(Run(key, result))

    for pattern in sources:
        for source in pattern.questions:
            question = source.question
            if not isinstance(question, OutputQuestion):
                continue
            if runs is None:
                errors.append(
                    f"{source.path}: code: output questions are checked by running "
                    "them, and no sandbox was given"
                )
                continue
            for variant in range(count(question)):
                if (run := runs.lookup(session, question, variant)) is not None:
                    collect((source.path, question, variant, run.key, _done(run.result)))
                    continue
                try:
                    key, future = runs.submit(question, variant)
                except AppError as exc:
                    errors.append(
                        f"{source.path}: code: the sandbox could not run it: {exc.message}"
                    )
                    break
                pending.append((source.path, question, variant, key, future))
                if len(pending) >= MAX_IN_FLIGHT:
                    collect(pending.pop(0))
    for item in pending:
        collect(item)
    if errors:
        raise BankError(errors)
    return checked


def verify_references(
    session: Session, sources: list[PatternSource], runs: QuestionRuns | None
) -> list[Run]:
    """Run every code question's reference solution and self-tests; BankError if one fails
    its own check. A question stored as it is, whose reference run is stored for this torch,
    was checked when it was stored: it runs nothing (an unchanged bank imports in a moment)."""
    errors: list[str] = []
    checked: list[Run] = []
    code = [
        s.question for p in sources for s in p.questions if isinstance(s.question, CodeQuestion)
    ]
    stored_hashes = dict(
        session.execute(
            select(QuestionRow.id, QuestionVersion.content_hash)
            .join(QuestionVersion, CURRENT_VERSION)
            .where(QuestionRow.id.in_([q.id for q in code]))
        ).all()
    )
    for pattern in sources:
        for source in pattern.questions:
            if isinstance(source.question, CodeQuestion):
                unchanged = stored_hashes.get(source.question.id) == content_hash(source.question)
                stored = runs.stored_reference(session, source.question) if runs else None
                if unchanged and stored is not None:
                    checked.append(stored)
                    continue
                run, problems = check_reference(session, source.question, runs)
                errors += [f"{source.path}: {problem}" for problem in problems]
                if run is not None and not problems:
                    checked.append(run)
    if errors:
        raise BankError(errors)
    return checked


def check_reference(
    session: Session, question: CodeQuestion, runs: QuestionRuns | None
) -> tuple[Run | None, list[Problem]]:
    """Run a code question's reference and self-tests: the reference's run, and what is
    wrong, if anything."""
    if runs is None or runs.sandbox is None:
        return None, [
            Problem(
                "reference",
                "code questions are checked by running their reference, and no sandbox was given",
            )
        ]
    try:
        run, _ = runs.reference(session, question)
    except AppError as exc:
        return None, [Problem("reference", f"could not run it: {exc.message}")]
    verdict = judge(question.check, run.result, run.result)
    problems = [
        Problem(f"self_tests.{i}", problem)
        for i, problem in _self_test_problems(question, run, runs)
    ]
    if not verdict.correct:
        problems.append(Problem("reference", f"fails its own check: {verdict.message}"))
    elif question.check.kind in ("trajectory", "final-lr") and not (run.result.data or {}).get(
        "trajectory"
    ):
        problems.append(
            Problem(
                "reference",
                "gives no learning rates to compare "
                "(does it create `scheduler`, or step the optimizer?)",
            )
        )
    elif question.check.kind != "exception" and run.result.status is not Verdict.OK:
        error = run.result.error
        problems.append(
            Problem(
                "reference",
                f"raises {error.type if error else run.result.status}: "
                f"{error.message if error else run.result.detail}",
            )
        )
    return run, problems


def _self_test_problems(
    question: CodeQuestion, reference: Run, runs: QuestionRuns
) -> list[tuple[int, str]]:
    """Each self-test answer run and judged: where it does not come out as the file says."""
    problems = []
    for index, test in enumerate(question.self_tests):
        verdict = judge(question.check, reference.result, runs.learner(question, test.code))
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
            problems.append(
                (index, f"it first differs at epoch {verdict.divergence}, not {test.divergence}")
            )
        elif not test.correct and mistake != test.mistake:
            problems.append(
                (index, f"it is diagnosed as {mistake or 'no known mistake'}, not {test.mistake}")
            )
    return problems


def record_pipelines(
    session: Session, sources: list[PatternSource], runs: QuestionRuns | None
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Train every pattern's pipeline that has no stored trace yet; BankError if one fails."""
    recorded, errors = [], []
    for source in sources:
        spec = source.pattern.pipeline
        if spec is None:
            continue
        if session.get(Trace, traces.trace_key(traces.PIPELINE, spec_json(spec))) is not None:
            continue
        where = f"{source.path / PATTERN_FILE}: pipeline"
        if runs is None or runs.sandbox is None:
            errors.append(
                f"{where}: pipelines are recorded by running them, and no sandbox was given"
            )
            continue
        try:
            outcome = traces.record_for_import(runs.sandbox, spec, timeout_s=runs.timeout_s)
        except AppError as exc:
            outcome = f"the sandbox could not run it: {exc.message}"
        if isinstance(outcome, str):
            errors.append(f"{where}: {outcome}")
        else:
            recorded.append(outcome)
    if errors:
        raise BankError(errors)
    return recorded


def _done(result: RunResult) -> Future[RunResult]:
    future: Future[RunResult] = Future()
    future.set_result(result)
    return future


def variant_problem(question: OutputQuestion, variant: int, result: RunResult) -> Problem | None:
    """What is wrong with a variant's run for a question, if anything."""
    values = all_variants(question)[variant] if question.params else {}
    where = f"variant {', '.join(f'{k}={v!r}' for k, v in values.items())}: " if values else ""
    if result.status not in (Verdict.OK, Verdict.ERROR):
        return Problem("code", f"{where}{result.sentence} {result.detail}".rstrip())
    expected = expected_output(question, result)
    if not expected:
        return Problem(
            "code", f"{where}the code prints nothing; print the answer or set `expression`"
        )
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
        return Problem("answer", f"the real run disagrees with the file:\n{diff}")
    return None


def _retire_missing_patterns(session: Session, present: set[str], report: ImportReport) -> None:
    now = utcnow()
    query = select(Pattern).where(Pattern.retired_at.is_(None), Pattern.file_hash.is_not(None))
    for pattern in session.scalars(query):
        if pattern.slug in present:
            continue
        pattern.retired_at = now
        pattern.file_hash = None  # its folder is gone: when it comes back, it is restored
        report.patterns_retired.append(pattern.slug)
        for row in pattern.questions:
            if row.file_hash is None:
                if row.retired_at is None:  # made in the browser: hidden with its pattern
                    report.orphaned.append(row.id)
                continue
            row.file_hash = None
            if row.retired_at is None:
                row.retired_at, row.retired_by = now, RETIRED_BY_FILE
                report.retired.append(row.id)


class _Importer:
    """Brings patterns and questions in line with validated files, within one transaction."""

    def __init__(
        self, session: Session, report: ImportReport, *, source: str, author_id: int | None
    ) -> None:
        self.session = session
        self.report = report
        self.source = source
        self.author_id = author_id
        self.from_files = source == FILES

    def pattern(self, source: PatternSource, position: int) -> None:
        """Create or update a pattern and its questions."""
        session, report = self.session, self.report
        pattern = session.scalar(select(Pattern).where(Pattern.slug == source.slug))
        digest = content_hash(source.pattern)
        file_hash = text_hash(source.text)
        if pattern is None:
            pattern = Pattern(slug=source.slug, position=position, content_hash="")
            session.add(pattern)
            report.patterns_created.append(source.slug)
        file_changed = not self.from_files or pattern.file_hash != file_hash
        if file_changed and pattern.content_hash != digest:
            if pattern.content_hash:
                report.patterns_updated.append(source.slug)
            pattern.content = source.pattern.model_dump(mode="json")
            pattern.content_hash = digest
            pattern.updated_at = utcnow()
            pattern.source_text = source.text or None
        if self.from_files:
            pattern.file_hash = file_hash
            if pattern.content_hash == digest:
                pattern.source_text = source.text or None
        pattern.retired_at = None
        session.flush()

        seen: set[str] = set()
        next_position = (
            session.scalar(
                select(func.max(QuestionRow.position)).where(QuestionRow.pattern_id == pattern.id)
            )
            or 0
        )
        for position_in_pattern, question_source in enumerate(source.questions):
            seen.add(question_source.question.id)
            if not self.from_files:  # an upload keeps the order; new questions go last
                next_position += 1
                position_in_pattern = next_position
            self.question(pattern, question_source, position_in_pattern, source.path)
        if self.from_files:
            query = select(QuestionRow).where(
                QuestionRow.pattern_id == pattern.id, QuestionRow.file_hash.is_not(None)
            )
            for row in session.scalars(query):
                if row.id not in seen:
                    row.file_hash = None
                    if row.retired_at is None:  # when its file comes back, it is restored
                        row.retired_at, row.retired_by = utcnow(), RETIRED_BY_FILE
                        report.retired.append(row.id)

    def question(
        self, pattern: Pattern, source: QuestionSource, position: int, folder: Path
    ) -> None:
        """Create a question, or give it a new version if its file says something new."""
        session, report = self.session, self.report
        question = source.question
        file_hash = source.file_hash if self.from_files else None
        file_name = source.path.relative_to(folder).as_posix() if self.from_files else None
        row = session.get(QuestionRow, question.id)
        if row is None:
            row = QuestionRow(
                id=question.id,
                pattern_id=pattern.id,
                position=position,
                current_version=0,
                file_hash=file_hash,
                file_name=file_name,
            )
            session.add(row)
            self._version(row, source)
            report.created.append(question.id)
            return
        if self.from_files:
            row.pattern_id = pattern.id
            row.position = position
            row.file_name = file_name
            if row.file_hash == file_hash:
                # The file did not change since it was last imported: what the editor saved
                # since (a new version, retiring the question) stands.
                report.unchanged.append(question.id)
                return
            current = session.get(QuestionVersion, (row.id, row.current_version))
            edited_here = current is not None and current.source != FILES
            row.file_hash = file_hash
        else:
            edited_here = False
        # Only what the files retired comes back with a file; an instructor's retirement stays.
        retired_here = row.retired_at is not None and row.retired_by != RETIRED_BY_FILE
        if self._version(row, source):
            report.new_versions.append(question.id)
            if edited_here:
                report.overrode.append(question.id)
        else:
            report.unchanged.append(question.id)
        if row.retired_at is not None and retired_here:
            report.kept_retired.append(question.id)  # an instructor retired it: it stays so
        elif row.retired_at is not None:
            row.retired_at, row.retired_by = None, None
            report.restored.append(question.id)

    def _version(self, row: QuestionRow, source: QuestionSource) -> QuestionVersion | None:
        return add_version(
            self.session,
            row,
            source.question,
            source=self.source,
            author_id=self.author_id,
            source_text=source.text or None,
        )


def add_version(
    session: Session,
    row: QuestionRow,
    question: Question,
    *,
    source: str,
    author_id: int | None,
    source_text: str | None = None,
) -> QuestionVersion | None:
    """Make `question` the current version of `row`, unless that is what it already says
    (then None); `source_text` is the YAML as written, if it came as YAML. Part of the
    caller's write transaction."""
    digest = content_hash(question)
    if row.current_version:
        current = session.get(QuestionVersion, (row.id, row.current_version))
        if current is not None and current.content_hash == digest:
            if source_text is not None:  # the same question; its comments or layout changed
                current.source_text = source_text
            return None
    row.current_version += 1
    version = QuestionVersion(
        question_id=question.id,
        version=row.current_version,
        kind=question.kind,
        difficulty=question.difficulty.value,
        content=question.model_dump(mode="json"),
        content_hash=digest,
        source=source,
        author_id=author_id,
        source_text=source_text,
    )
    session.add(version)
    return version


def export_bank(session: Session, root: Path, *, slug: str | None = None) -> int:
    """Write the current version of every live question (of one pattern, if given) to `root`
    in the questions/ layout: each as its author wrote it (comments and layout kept) where
    it came as YAML, under the file name it was imported from. Exported over `questions/`,
    files nobody changed come back byte for byte."""
    query = (
        select(Pattern).where(Pattern.retired_at.is_(None)).order_by(Pattern.position, Pattern.slug)
    )
    if slug is not None:
        query = query.where(Pattern.slug == slug)
    files: list[tuple[PurePosixPath, str]] = []
    for pattern in session.scalars(query):
        folder = PurePosixPath(pattern.slug)
        files.append(
            (folder / PATTERN_FILE, pattern.source_text or dump_yaml(pattern_file(pattern)))
        )
        used = {PATTERN_FILE}
        for row in pattern.questions:
            version = session.get(QuestionVersion, (row.id, row.current_version))
            if row.retired_at is not None or version is None:
                continue
            text = version.source_text or dump_yaml(
                QUESTION_ADAPTER.validate_python(version.content)
            )
            files.append((folder / _free_name(row, used), text))
    return write_bank(root, files)


def _free_name(row: QuestionRow, used: set[str]) -> str:
    """The file name a question is exported under: the one it came from, else its id — never
    one another question of the folder already has (a browser-made `purpose` must not
    overwrite the file that holds `lr-purpose`)."""
    candidates = [row.file_name, f"{row.id}.yaml"] if row.file_name else [f"{row.id}.yaml"]
    candidates += [f"{row.id}-{n}.yaml" for n in range(2, 100)]
    name = next(c for c in candidates if c is not None and c.lower() not in used)
    used.add(name.lower())
    return name


def pattern_file(pattern: Pattern) -> PatternFile:
    """The validated pattern file stored for a pattern row."""
    return PATTERN_ADAPTER.validate_python(pattern.content)
