"""Reading and writing the question bank's files.

Layout: `<root>/<slug>/pattern.yaml` describes a pattern; every other `*.yaml` file below
`<root>/<slug>/` is one question of it. The folder name is the pattern's slug (its URL); a
question's identity is the `id` inside its file, never its path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.bank.lint import markdown_problems
from app.bank.schema import (
    PATTERN_ADAPTER,
    QUESTION_ADAPTER,
    QUESTION_KINDS,
    SLUG_PATTERN,
    Difficulty,
    FieldValueError,
    PatternFile,
    Question,
)
from app.errors import Problem, validation_message

PATTERN_FILE = "pattern.yaml"
QUESTION_SUFFIXES = (".yaml", ".yml")


class BankError(Exception):
    """Question files that do not validate; each error reads `path: field: what is wrong`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class QuestionSource:
    """A validated question, the file it came from, and that file's text as written."""

    path: Path
    question: Question
    text: str = ""

    @property
    def file_hash(self) -> str:
        """The hash of the file as written: it changes exactly when someone edits the file."""
        return text_hash(self.text)


def unix_newlines(text: str) -> str:
    """`text` with every line ending as `\n`: browsers send a textarea's lines joined by
    CRLF, and files are written with `\n` whatever their text came with."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_hash(text: str) -> str:
    """SHA-256 of a file's text."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PatternSource:
    """A validated pattern with its questions, easy to hard."""

    slug: str
    path: Path
    pattern: PatternFile
    questions: list[QuestionSource] = field(default_factory=list)
    text: str = ""  # pattern.yaml as written


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice is an error instead of a silent win."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name or number", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class NestedTooDeeply(yaml.YAMLError):
    """A document nested deeper than the parser's recursion allows (hostile, or a mistake)."""

    problem = "it is nested too deeply"


def parse_yaml(text: str) -> Any:
    """Parse YAML safely, rejecting duplicate keys, odd keys and absurd nesting."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except RecursionError:
        raise NestedTooDeeply("nested too deeply") from None


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of a YAML text (with line numbers), parsed as safely as `parse_yaml`."""
    try:
        return yaml.compose(text, Loader=_StrictLoader)
    except RecursionError:
        raise NestedTooDeeply("nested too deeply") from None


def describe_errors(error: ValidationError) -> list[Problem]:
    """The field and what is wrong with it, for each problem Pydantic found, in an author's words
    (app.errors.validation_message): the union's tag is not a field, a check across fields
    names the field it is about."""
    described = []
    for item in error.errors(include_url=False):
        parts = list(item["loc"])
        if parts and parts[0] in QUESTION_KINDS:
            parts = parts[1:]  # the tag of the union member, not a field
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, FieldValueError):
            parts = [*parts, *cause.field.split(".")]
        message = validation_message(item)
        if item["type"] == "union_tag_not_found":
            parts, message = ["kind"], f"say which kind of question this is: {_KINDS}"
        elif item["type"] == "union_tag_invalid":
            tag = (item.get("ctx") or {}).get("tag")
            parts, message = ["kind"], f"{tag!r} is not a kind of question: {_KINDS}"
        described.append(Problem(".".join(str(part) for part in parts) or "(file)", message))
    return described


_KINDS = ", ".join(QUESTION_KINDS)


def format_validation_error(where: str, error: ValidationError) -> list[str]:
    """Turn a Pydantic error into `where: field.path: message` lines."""
    return [f"{where}: {problem}" for problem in describe_errors(error)]


def _validate_file(path: Path, adapter: Any, errors: list[str]) -> tuple[Any, str]:
    try:
        text = path.read_text(encoding="utf-8")
        data = parse_yaml(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        errors.append(f"{path}: (file): not valid YAML: {exc}".replace("\n", " "))
        return None, ""
    try:
        model = adapter.validate_python(data)
    except ValidationError as exc:
        errors.extend(format_validation_error(str(path), exc))
        return None, text
    problems = markdown_problems(model)
    errors.extend(f"{path}: {problem}" for problem in problems)
    return (None if problems else model), text


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
        pattern, pattern_text = _validate_file(folder / PATTERN_FILE, PATTERN_ADAPTER, errors)
        questions = []
        for path in sorted(_question_files(folder)):
            question, text = _validate_file(path, QUESTION_ADAPTER, errors)
            if question is not None:
                questions.append(QuestionSource(path, question, text))
        questions.sort(key=_difficulty_then_path)
        if pattern is not None:
            patterns.append(PatternSource(folder.name, folder, pattern, questions, pattern_text))
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


def write_bank(root: Path, files: Iterable[tuple[PurePosixPath, str]]) -> int:
    """Write files (paths relative to `root`, in the questions/ layout; lines end in `\n`)
    and return how many are questions. A path that would leave `root` is a bug, and raises
    ValueError."""
    written = 0
    resolved_root = root.resolve()
    done: set[Path] = set()
    for relative, text in files:
        target = (root / relative).resolve()
        if resolved_root not in target.parents:
            raise ValueError(f"{relative}: outside {root}")
        if target in done:
            raise ValueError(f"{relative}: written twice")
        done.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(unix_newlines(text), encoding="utf-8")
        written += relative.name != PATTERN_FILE
    return written
