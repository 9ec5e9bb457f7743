"""Question content can never put script on a page."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.authoring.importing import import_bank
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.markup import markdown, markdown_inline, python_code, sanitize
from tests.conftest import TEST_SECRET
from tests.factories import PATTERN, choice_question, write_bank

PAYLOADS = [
    "<script>alert('x')</script>",
    '<img src="x" onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a href="javascript:alert(1)">click</a>',
    "<svg onload=alert(1)></svg>",
    '<iframe src="https://evil.example"></iframe>',
    "<style>body{display:none}</style>",
    "`code` <b onmouseover=alert(1)>bold</b>",
]
OUR_SCRIPT = "/static/js/app.js"


class _ActiveContent(HTMLParser):
    """Collects every element or attribute through which a page could run code."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not (dict(attrs).get("src") or "").endswith(OUR_SCRIPT):
            self.found.append("<script>")
        if tag in {"iframe", "object", "embed", "style", "svg", "img", "form"} and not (
            tag == "form" and dict(attrs).get("method") == "post"
        ):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name in {"href", "src", "action"} and (value or "").strip().lower().startswith(
                ("javascript:", "data:", "vbscript:")
            ):
                self.found.append(f"{tag} {name}={value}")


def _hostile_question(payload: str) -> dict[str, object]:
    return choice_question(
        "hostile",
        prompt=f"Prompt {payload}",
        code=f"print('{payload}')",
        hint=f"Hint {payload}",
        mistakes=[f"Mistake {payload}"],
        choices=[
            {"text": f"Right {payload}", "correct": True},
            {"text": f"Wrong {payload}", "mistake": f"Because {payload}"},
        ],
        solution={
            "steps": [{"title": f"Step {payload}", "body": f"Body {payload}"}],
            "final_answer": f"Answer {payload}",
            "quick_check": f"Check {payload}",
        },
    )


@pytest.fixture(params=PAYLOADS)
def hostile_client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    empty_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    payload = request.param
    # Imports refuse such Markdown (test_markdown_that_would_not_survive_sanitising…); this
    # proves the second line of defence, rendering, for content that got in some other way.
    monkeypatch.setattr("app.bank.files.markdown_problems", lambda model: [])
    bank = write_bank(
        tmp_path / "bank",
        [_hostile_question(payload)],
        pattern={
            **PATTERN,
            "summary": f"Summary {payload}",
            "key_insight": f"Key {payload}",
            "title": "Hostile pattern",
        },
    )
    database = Database(empty_db)
    with database.session() as session:
        import_bank(session, bank)
    database.dispose()
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=empty_db,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        allowed_hosts=["testserver"],
        sandbox_mode="off",  # pages only: nothing runs
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _assert_clean(html: str) -> None:
    parser = _ActiveContent()
    parser.feed(html)
    assert parser.found == [], f"active content reached the page: {parser.found}"


def test_hostile_content_never_reaches_a_page(hostile_client: TestClient) -> None:
    pages = ["/", "/patterns/test-pattern", "/patterns/test-pattern/questions/hostile"]
    for url in pages:
        response = hostile_client.get(url)
        assert response.status_code == 200
        _assert_clean(response.text)
    html = hostile_client.get(pages[-1]).text
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    result = hostile_client.post(
        "/patterns/test-pattern/questions/hostile/answer", data={"csrf_token": token, "answer": 1}
    )
    assert result.status_code == 200
    _assert_clean(result.text)
    assert "Because" in result.text  # the hostile mistake text is shown, as inert text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markup_filters_strip_scripts_and_handlers(payload: str) -> None:
    for render in (markdown, markdown_inline, python_code):
        _assert_clean(str(render(payload)))


def test_the_attributes_our_renderer_adds_survive_only_with_its_values() -> None:
    forged = (
        '<div tabindex="99" role="dialog" aria-label="Log in again"><pre tabindex="5">x</pre></div>'
    )
    assert sanitize(forged) == "<div><pre>x</pre></div>"
    ours = '<div tabindex="0" role="group" aria-label="Table"><pre tabindex="0">x</pre></div>'
    assert sanitize(ours) == ours


def test_the_checker_catches_active_content() -> None:
    with pytest.raises(AssertionError):
        _assert_clean('<p><img src=x onerror="alert(1)"></p>')
    with pytest.raises(AssertionError):
        _assert_clean('<a href=" JavaScript:alert(1)">x</a>')


def test_markdown_still_renders_what_authors_need() -> None:
    html = str(markdown("**bold** `code` [docs](https://pytorch.org)\n\n```python\nx = 1\n```"))
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert 'href="https://pytorch.org"' in html and 'rel="noopener noreferrer nofollow"' in html
    # one block, highlighted, that a keyboard can scroll: not Pygments' block inside another
    assert html.count("<pre") == 1 and '<pre class="highlight" tabindex="0">' in html
    assert '<span class="n">x</span>' in html
    assert '<pre tabindex="0">' in str(python_code("x = 1"))
    table = str(markdown("| epoch | lr |\n|---|---|\n| 0 | 0.1 |"))  # wider than a phone, maybe
    assert table.startswith('<div class="table-scroll" tabindex="0" role="group"')
    assert "<th>epoch</th>" in table and table.rstrip().endswith("</table>\n</div>")
