"""Every question has a `title` (issue 13): stored versions written before get one from
their prompt, so that they still load under the schema, list with a title and export as
files that import again.

For each version without a title: the title is its prompt's first paragraph as plain text,
cut at a word to 60 characters (placeholders as "…"; the question's id if no word is left);
its YAML as written (`source_text`) gets a `title:` line after its `id:` line (or is dropped,
when it has none: the export then writes the content); its content hash is computed again,
as app.bank.schema.content_hash does. The derivation is written out here, not imported, so
that this migration does the same thing however the app changes later.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import sqlalchemy as sa
import yaml
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TITLE_MAX_CHARS = 60  # app.bank.schema.TITLE_MAX_CHARS when this migration was written
LATER_FIELDS = ("raises",)  # app.bank.schema.LATER_FIELDS then: left out of the hash if unset

versions = sa.table(
    "question_versions",
    sa.column("question_id", sa.String),
    sa.column("version", sa.Integer),
    sa.column("content", sa.JSON),
    sa.column("content_hash", sa.String),
    sa.column("source_text", sa.Text),
)

PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}")
LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
MARKS = re.compile(r"[`*]|^#+\s|(?<!\w)_+|_+(?!\w)", re.MULTILINE)  # Markdown's own marks
NOT_PLAIN = re.compile(r"[<>{}\x00-\x1f\x7f]")  # what app.bank.schema refuses in a title
TOP_LEVEL_ID = re.compile(r"^id:.*$", re.MULTILINE)
TOP_LEVEL_TITLE = re.compile(r"^title:.*\n?", re.MULTILINE)


def title_from(prompt: str, fallback: str) -> str:
    """The prompt's first paragraph as plain text on one line, cut at a word."""
    paragraph = prompt.strip().split("\n\n", 1)[0]
    text = LINK.sub(r"\1", PLACEHOLDER.sub("…", paragraph))
    plain = " ".join(NOT_PLAIN.sub(" ", MARKS.sub("", HTML_TAG.sub(" ", text))).split())
    if len(plain) > TITLE_MAX_CHARS:
        cut = plain[: TITLE_MAX_CHARS - 1]
        cut = cut[: cut.rindex(" ")] if " " in cut else cut
        plain = cut.rstrip(" ,;:.–—-") + "…"
    return plain or fallback


def content_hash(content: dict[str, Any]) -> str:
    """app.bank.schema.content_hash of a stored (validated, dumped) question."""
    data = {k: v for k, v in content.items() if not (k in LATER_FIELDS and v is None)}
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_title_line(source: str | None, title: str) -> str | None:
    """The YAML as written with `title:` after its `id:` line; None if it has no such line
    or would not read back with the title (the export then writes the content instead)."""
    if source is None:
        return None
    match = TOP_LEVEL_ID.search(source)
    if match is None:
        return None
    line = f"\ntitle: {json.dumps(title, ensure_ascii=False)}"  # JSON strings are YAML too
    text = source[: match.end()] + line + source[match.end() :]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return text if isinstance(data, dict) and data.get("title") == title else None


def _rewrite(change: Any) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            versions.c.question_id,
            versions.c.version,
            versions.c.content,
            versions.c.source_text,
        )
    ).all()
    for question_id, version, content, source_text in rows:
        changed = change(question_id, dict(content), source_text)
        if changed is None:
            continue
        content, source_text = changed
        bind.execute(
            versions.update()
            .where(versions.c.question_id == question_id, versions.c.version == version)
            .values(
                content=content, content_hash=content_hash(content), source_text=source_text
            )
        )


def upgrade() -> None:
    def add_title(
        question_id: str, content: dict[str, Any], source_text: str | None
    ) -> tuple[dict[str, Any], str | None] | None:
        if content.get("title"):
            return None
        title = title_from(str(content.get("prompt", "")), question_id)
        return {**content, "title": title}, with_title_line(source_text, title)

    _rewrite(add_title)


def downgrade() -> None:
    def drop_title(
        question_id: str, content: dict[str, Any], source_text: str | None
    ) -> tuple[dict[str, Any], str | None] | None:
        if "title" not in content:
            return None
        content.pop("title")
        source = TOP_LEVEL_TITLE.sub("", source_text, count=1) if source_text else None
        return content, source

    _rewrite(drop_title)
