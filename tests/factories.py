"""Builders for question files and rows, so tests say only what matters to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PATTERN: dict[str, Any] = {
    "title": "Test pattern",
    "category": "PyTorch",
    "estimated_minutes": 5,
    "summary": "A pattern for tests.",
    "key_insight": "Tests keep you honest.",
}


def choice_question(qid: str = "q-one", **overrides: Any) -> dict[str, Any]:
    """A valid choice question as a dict, with `overrides` applied."""
    question: dict[str, Any] = {
        "id": qid,
        "title": "A question",
        "kind": "choice",
        "difficulty": "easy",
        "prompt": "Which is right?",
        "choices": [
            {"text": "This one", "correct": True},
            {"text": "That one", "mistake": "It only looks right."},
        ],
        "hint": "Not that one.",
        "solution": {
            "steps": [{"title": "Think", "body": "It is this one."}],
            "final_answer": "This one → **A**",
        },
    }
    question.update(overrides)
    return question


def write_bank(
    root: Path,
    questions: list[dict[str, Any]],
    *,
    slug: str = "test-pattern",
    pattern: dict[str, Any] | None = None,
) -> Path:
    """Write a one-pattern bank under `root` and return `root`."""
    folder = root / slug
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    (folder / "pattern.yaml").write_text(yaml.safe_dump(pattern or PATTERN, sort_keys=False))
    for question in questions:
        (folder / f"{question['id']}.yaml").write_text(yaml.safe_dump(question, sort_keys=False))
    return root
