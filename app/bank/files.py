"""Reading and writing the question bank's files.

Layout: `<root>/<slug>/pattern.yaml` describes a pattern; every other `*.yaml` file below
`<root>/<slug>/` is one question of it. The folder name is the pattern's slug (its URL); a
question's identity is the `id` inside its file, never its path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.bank.schema import (
    PATTERN_ADAPTER,
    QUESTION_ADAPTER,
    QUESTION_KINDS,
    SLUG_PATTERN,
    Difficulty,
    PatternFile,
    Question,
)

PATTERN_FILE = "pattern.yaml"
QUESTION_SUFFIXES = (".yaml", ".yml")


class BankError(Exception):
    """Question files that do not validate; each error reads `path: field: what is wrong`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class QuestionSource:
    """A validated question and the file it came from."""

    path: Path
    question: Question


@dataclass(frozen=True)
class PatternSource:
    """A validated pattern with its questions, easy to hard."""

    slug: str
    path: Path
    pattern: PatternFile
    questions: list[QuestionSource] = field(default_factory=list)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice is an error instead of a silent win."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str) -> Any:
    """Parse YAML safely, rejecting duplicate keys."""
    return yaml.load(text, Loader=_StrictLoader)


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of a YAML text (with line numbers), parsed as safely as `parse_yaml`."""
    return yaml.compose(text, Loader=_StrictLoader)


def format_validation_error(where: str, error: ValidationError) -> list[str]:
    """Turn a Pydantic error into `where: field.path: message` lines."""
    lines = []
    for item in error.errors(include_url=False):
        parts = list(item["loc"])
        if parts and parts[0] in QUESTION_KINDS:
            parts = parts[1:]  # the tag of the union member, not a field
        loc = ".".join(str(part) for part in parts)
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {loc or '(file)'}: {message}")
    return lines


def _validate_file(path: Path, adapter: Any, errors: list[str]) -> Any:
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        errors.append(f"{path}: (file): not valid YAML: {exc}".replace("\n", " "))
        return None
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        errors.extend(format_validation_error(str(path), exc))
        return None


def is_pattern_folder(root: Path) -> bool:
    """Whether `root` is one pattern's folder (rather than a bank of pattern folders)."""
    return (root / PATTERN_FILE).is_file()


def _pattern_dirs(root: Path) -> list[Path]:
    if is_pattern_folder(root):
        return [root]
    return sorted(path.parent for path in root.glob(f"*/{PATTERN_FILE}"))


def read_bank(root: Path) -> list[PatternSource]:
    """Read and validate every pattern under `root` (or `root` itself); raise BankError."""
    if not root.is_dir():
        raise BankError([f"{root}: (file): not a directory"])
    errors: list[str] = []
    patterns: list[PatternSource] = []
    for folder in _pattern_dirs(root):
        if not re.fullmatch(SLUG_PATTERN, folder.name):
            errors.append(
                f"{folder}: (folder): the folder name is the pattern's slug and must be "
                "lowercase letters, digits and dashes"
            )
            continue
        pattern = _validate_file(folder / PATTERN_FILE, PATTERN_ADAPTER, errors)
        questions = []
        for path in sorted(_question_files(folder)):
            question = _validate_file(path, QUESTION_ADAPTER, errors)
            if question is not None:
                questions.append(QuestionSource(path, question))
        questions.sort(key=_difficulty_then_path)
        if pattern is not None:
            patterns.append(PatternSource(folder.name, folder, pattern, questions))
    if not patterns and not errors:
        errors.append(f"{root}: (folder): no {PATTERN_FILE} found here or one level below")
    errors.extend(_duplicate_ids(patterns))
    if errors:
        raise BankError(errors)
    return patterns


def _difficulty_then_path(source: QuestionSource) -> tuple[int, Path]:
    """Questions run easy → hard, then by file name: the order practice walks them in."""
    return list(Difficulty).index(source.question.difficulty), source.path


def _question_files(folder: Path) -> Iterable[Path]:
    for path in folder.rglob("*"):
        if path.suffix in QUESTION_SUFFIXES and path.name != PATTERN_FILE and path.is_file():
            yield path


def _duplicate_ids(patterns: list[PatternSource]) -> list[str]:
    first_seen: dict[str, Path] = {}
    errors = []
    for pattern in patterns:
        for source in pattern.questions:
            qid = source.question.id
            if qid in first_seen:
                errors.append(f"{source.path}: id: {qid!r} is already used by {first_seen[qid]}")
            else:
                first_seen[qid] = source.path
    return errors


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as `|` blocks, so exported files read like hand-written ones."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_yaml(model: BaseModel) -> str:
    """A file model as YAML in field order, leaving out unset optional fields."""
    data = model.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)


def write_bank(root: Path, patterns: Iterable[tuple[str, PatternFile, list[Question]]]) -> int:
    """Write patterns and their questions under `root` in the `questions/` layout."""
    written = 0
    for slug, pattern, questions in patterns:
        folder = root / slug
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PATTERN_FILE).write_text(dump_yaml(pattern), encoding="utf-8")
        for question in questions:
            (folder / f"{question.id}.yaml").write_text(dump_yaml(question), encoding="utf-8")
            written += 1
    return written
