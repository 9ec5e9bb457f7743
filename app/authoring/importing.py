"""Importing a bank of question files (the `questions/` folder, or an upload): read and
validate every file, verify every question by running it, then write it all as one
transaction — or nothing, with every problem named by its file and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from app.bank.files import PATTERN_FILE, BankError, read_bank
from app.bank.schema import CodeQuestion, content_hash
from app.bank.store import FILES, ImportReport, apply_import, check_upload, current_hashes
from app.checking import runstore
from app.checking.runs import Runs
from app.checking.verify import verify
from app.db import begin_write


def import_bank(
    session: Session,
    root: Path,
    *,
    runs: Runs | None = None,
    source: str = FILES,
    author_id: int | None = None,
    on_commit: Callable[[Session, ImportReport], None] | None = None,
) -> ImportReport:
    """Validate every file under `root`, verify what it asks to run in the sandbox (`runs`),
    and bring the database in line as one transaction, committed here (after `on_commit`,
    which may add to it, e.g. an audit record). A broken file, a failing run or an `answer`
    the real output contradicts raises BankError before anything is written. A code question
    stored as it is, whose reference run is stored, was verified then: it runs nothing (an
    unchanged bank imports in a moment). See `app.bank.store.apply_import` for how files and
    browser edits meet."""
    sources = read_bank(root)
    if source != FILES:
        check_upload(session, sources)
    located = [(pattern, s.path, s.question) for pattern in sources for s in pattern.questions]
    code_ids = [q.id for _, _, q in located if isinstance(q, CodeQuestion)]
    stored = current_hashes(session, code_ids)
    verified = verify(
        session,
        runs,
        questions=[q for _, _, q in located],
        pipelines=[p.pattern.pipeline for p in sources if p.pattern.pipeline is not None],
        verified_before=[
            q.id for _, _, q in located if q.id in stored and stored[q.id] == content_hash(q)
        ],
    )
    errors = [
        f"{path}: {problem}"
        for _, path, question in located
        for problem in verified.questions[question.id].problems
    ]
    for pattern in sources:
        for recording in verified.pipelines:
            if recording.problem and recording.spec is pattern.pattern.pipeline:
                errors.append(f"{pattern.path / PATTERN_FILE}: pipeline: {recording.problem}")
    if errors:
        raise BankError(errors)
    begin_write(session)
    for run in verified.runs:
        runstore.keep(session, run)
    report = apply_import(session, sources, root=root, source=source, author_id=author_id)
    if on_commit is not None:
        on_commit(session, report)
    session.commit()
    return report
