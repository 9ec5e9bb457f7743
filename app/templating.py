"""The Jinja2 environment: templates/, autoescape, and the filters pages use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from app import markup
from app.bank.variants import PLACEHOLDER
from app.deps import csrf_token
from app.grading import choice_label

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"


def make_templates() -> Jinja2Templates:
    """Templates with autoescape on and the Markdown, code and form helpers registered."""
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.autoescape = True
    env.undefined = jinja2.StrictUndefined  # a typo in a template is an error, not a blank
    env.filters["markdown"] = markup.markdown
    env.filters["markdown_inline"] = markup.markdown_inline
    env.filters["python"] = markup.python_code
    env.filters["without_placeholders"] = lambda text: PLACEHOLDER.sub("…", text)
    env.globals["choice_label"] = choice_label
    env.globals["csrf_token"] = csrf_token
    return templates


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    """Render `templates/<name>` with `context`; the page title comes from the template."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)
