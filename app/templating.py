"""The Jinja2 environment: templates/, autoescape, and the filters pages use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from app import markup
from app.bank import variants
from app.checking.grading import choice_label
from app.deps import csrf_token
from app.learning.modes import continuing
from app.wording import plural

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"


URL_CACHE_SIZE = 4096  # distinct (route, parameters) pairs; a page links to a few dozen


@jinja2.pass_context
def url_for(context: Any, name: str, /, **path_params: Any) -> str:
    """The path of a route (from the server's root: links need no scheme or host), with
    the lookup cached per app: finding a route by name walks every route, and a page asks
    for dozens of links — building absolute URLs for them was half a page's rendering."""
    request: Request = context["request"]
    cache: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = request.app.state.url_paths
    root = request.scope.get("root_path", "").rstrip("/")
    key = (root, name, tuple(sorted((k, str(v)) for k, v in path_params.items())))
    path = cache.get(key)
    if path is None:
        path = root + str(request.scope["router"].url_path_for(name, **path_params))
        if len(cache) >= URL_CACHE_SIZE:
            cache.clear()
        cache[key] = path
    return path


def make_templates() -> Jinja2Templates:
    """Templates with autoescape on and the Markdown, code and form helpers registered."""
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.autoescape = True
    env.undefined = jinja2.StrictUndefined  # a typo in a template is an error, not a blank
    env.filters["markdown"] = markup.markdown
    env.filters["markdown_inline"] = markup.markdown_inline
    env.filters["python"] = markup.python_code
    env.filters["without_placeholders"] = variants.without_placeholders
    env.filters["plural"] = plural
    env.globals["url_for"] = url_for
    env.globals["choice_label"] = choice_label
    env.globals["csrf_token"] = csrf_token
    env.globals["modes_continuing"] = continuing  # the modes to go on in after an answer
    return templates


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    retry_after: int | None = None,
) -> Response:
    """Render `templates/<name>` with `context`; the page title comes from the template.
    `retry_after`: seconds, sent as `Retry-After` (a page that says "try again shortly")."""
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def render_fragment(request: Request, name: str, context: dict[str, Any]) -> Markup:
    """Render a partial to HTML (autoescaped like every page) for embedding in a page."""
    templates: Jinja2Templates = request.app.state.templates
    html = templates.get_template(name).render({"request": request, **context})
    return Markup(html)
