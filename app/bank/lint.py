"""Markdown that would not render as written: checked when a question or pattern is saved or
imported (app.markup sanitises again when it is rendered).

The renderer has raw HTML off and nh3 after it, so nothing unsafe reaches a page either way;
this is about the author: `<b>` would show as text, a `javascript:` link would be dropped,
an image would be stripped. Better to say so when the file is saved than to let a learner
find out.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel

from app.bank.schema import MARKDOWN_FIELD
from app.errors import Problem

ALLOWED_LINK_SCHEMES = ("http", "https", "mailto")  # as app.markup lets through


# Parsed with raw HTML switched on, to find what the renderer (HTML off) would show as text
# and the sanitiser would strip.
_FINDER = MarkdownIt("commonmark", {"html": True}).enable("table")
_FINDER.validateLink = lambda url: True  # type: ignore[method-assign]  # to see every link


def markdown_texts(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) of every Markdown field set in a file model, nested ones too."""
    hints = typing.get_type_hints(type(model), include_extras=True)
    for name in type(model).model_fields:
        yield from _markdown_in(getattr(model, name), hints[name], f"{prefix}{name}")


def _markdown_in(value: Any, annotation: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, BaseModel):
        yield from markdown_texts(value, f"{path}.")
    elif isinstance(value, list):
        item = _list_item(annotation)
        for index, element in enumerate(value):
            yield from _markdown_in(element, item, f"{path}.{index}")
    elif isinstance(value, str) and _is_markdown(annotation):
        yield path, value


def _is_markdown(annotation: Any) -> bool:
    if MARKDOWN_FIELD in getattr(annotation, "__metadata__", ()):
        return True
    return any(_is_markdown(arg) for arg in typing.get_args(annotation))


def _list_item(annotation: Any) -> Any:
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    for arg in typing.get_args(annotation):
        if (item := _list_item(arg)) is not None:
            return item
    return None


def markdown_problems(model: BaseModel) -> list[Problem]:
    """The field and what is wrong, for Markdown the pages would not show as written: raw
    HTML, links that are not http(s) or mailto, images."""
    return [
        Problem(path, message)
        for path, text in markdown_texts(model)
        for message in _problems_in(text)
    ]


def _problems_in(text: str) -> list[str]:
    problems: list[str] = []
    for token in _walk(_FINDER.parse(text)):
        if token.type in ("html_block", "html_inline"):
            snippet = token.content.strip().splitlines()[0][:60]
            problems.append(
                f"raw HTML ({snippet}) is not allowed: pages show it as text. Use Markdown, "
                "or put it in `code` to show it as code"
            )
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            scheme = href.split(":", 1)[0].lower() if ":" in href.split("/", 1)[0] else None
            if scheme is not None and scheme not in ALLOWED_LINK_SCHEMES:
                problems.append(f"links may go to http, https or mailto addresses, not {scheme}:")
        elif token.type == "image":
            problems.append("images are not shown on Tracewise pages; link to the image instead")
    return problems


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)
