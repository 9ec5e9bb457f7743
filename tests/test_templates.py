"""Every template compiles, and every page has a title."""

from __future__ import annotations

import pytest

from app.templating import TEMPLATES_DIR, make_templates

TEMPLATES = sorted(str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("*.html"))
PAGES = [
    name
    for name in TEMPLATES
    if not name.rsplit("/", 1)[-1].startswith("_") and name != "base.html"
]


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_compiles(name: str) -> None:
    make_templates().env.get_template(name)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_extends_base_and_sets_a_title(name: str) -> None:
    source = (TEMPLATES_DIR / name).read_text()
    assert '{% extends "base.html" %}' in source
    assert "{% block title %}" in source
