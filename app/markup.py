"""Turning author-written Markdown and code into safe HTML.

Markdown goes through markdown-it-py (raw HTML disabled) and then nh3, so nothing an
author writes can put a script, an event handler or a javascript: URL on a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import PythonLexer, get_lexer_by_name
from pygments.util import ClassNotFound

RENDER_CACHE_SIZE = 4096  # distinct Markdown snippets kept rendered; the bank has a few hundred

_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)
# A code block keeps its lines and scrolls sideways when they are long; a box that scrolls
# must take the keyboard's focus, or a keyboard cannot scroll it (WCAG 2.1.1).
_SCROLLING_PRE = '<pre tabindex="0">'
_TOKENS_ONLY = HtmlFormatter(nowrap=True)  # the token spans, for code fenced in Markdown

# Tags Markdown produces, plus Pygments' spans. nh3 strips everything else and all event
# handlers; `class` survives only on code and spans (Pygments' token classes).
_ALLOWED_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "div",
    "em",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "div": {"class", "tabindex", "role", "aria-label"},
    "pre": {"class", "tabindex"},
    "span": {"class"},
    "td": {"style"},
    "th": {"style"},
}


def _highlight_fence(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else PythonLexer()
    except ClassNotFound:
        lexer = PythonLexer()
    # markdown-it wraps whatever does not start with <pre in a <pre><code> of its own, which
    # would put Pygments' block inside a block: give it the <pre> itself.
    tokens = highlight(code, lexer, _TOKENS_ONLY)
    return f'<pre class="highlight" tabindex="0"><code>{tokens}</code></pre>\n'


def _highlighted(code: str, lexer: Lexer) -> str:
    return str(highlight(code, lexer, _FORMATTER)).replace("<pre>", _SCROLLING_PRE, 1)


_MARKDOWN = MarkdownIt("commonmark", {"html": False, "highlight": _highlight_fence}).enable("table")
# A table an author writes may be wider than a phone: it scrolls in a box of its own, which the
# keyboard can focus (to scroll it) and a screen reader names.
_SCROLLING_TABLE = '<div class="table-scroll" tabindex="0" role="group" aria-label="Table">\n'


def _table_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return _SCROLLING_TABLE + renderer.renderToken(tokens, idx, options, env)


def _table_close(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return renderer.renderToken(tokens, idx, options, env) + "</div>\n"


_MARKDOWN.add_render_rule("table_open", _table_open)
_MARKDOWN.add_render_rule("table_close", _table_close)


# Attributes only our renderer adds (a scrolling box's focus, role and name): kept only with
# the one value it gives them, so nothing else can make an element focusable or a dialog.
_FIXED_VALUES = {
    ("div", "tabindex"): "0",
    ("pre", "tabindex"): "0",
    ("div", "role"): "group",
    ("div", "aria-label"): "Table",
}


def _only_our_values(element: str, attribute: str, value: str) -> str | None:
    fixed = _FIXED_VALUES.get((element, attribute))
    return value if fixed is None or value == fixed else None


def sanitize(html: str) -> str:
    """Remove every tag, attribute and URL scheme that is not on the allow-list."""
    return str(
        nh3.clean(
            html,
            tags=_ALLOWED_TAGS,
            attributes=_ALLOWED_ATTRIBUTES,
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer nofollow",
            filter_style_properties={"text-align"},
            attribute_filter=_only_our_values,
        )
    )


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def markdown(text: str) -> Markup:
    """Render Markdown to sanitised HTML."""
    return Markup(sanitize(_MARKDOWN.render(text)))


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def markdown_inline(text: str) -> Markup:
    """Render one line of Markdown (no paragraph), sanitised."""
    return Markup(sanitize(_MARKDOWN.renderInline(text)))


_PLAIN_TOKENS = {"text", "code_inline", "image"}  # an image's content is its alt text
_BREAKS = {"softbreak", "hardbreak"}
_PUNCTUATION_BEFORE_CUT = " ,;:.-–—"


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def plain_text(text: str, limit: int) -> str:
    """Markdown as plain text on one line — its words without their marks (code ticks,
    emphasis, heading marks, link targets) — cut at a word to at most `limit` characters,
    ending in "…" when cut. Plain text: autoescaping still applies where it is shown."""
    parts = []
    for token in _MARKDOWN.parse(text):
        if token.type in ("fence", "code_block"):
            parts.append(token.content)
        for child in token.children or []:
            if child.type in _PLAIN_TOKENS:
                parts.append(child.content)
            elif child.type in _BREAKS:
                parts.append(" ")
        parts.append(" ")
    plain = " ".join("".join(parts).split())
    if len(plain) <= limit:
        return plain
    cut = plain[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(_PUNCTUATION_BEFORE_CUT) + "…"


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def python_code(code: str) -> Markup:
    """Highlight Python source with Pygments; the result is escaped by Pygments itself."""
    return Markup(sanitize(_highlighted(code, PythonLexer())))
