"""Everyone can use it. Every page a guest, a learner and an instructor reach — every question
of the bank before and after a wrong answer, a test, the error pages, the workbench — passes
axe-core (vendored) with no violation at all, has one visible <h1>, and reads on a 390 px
phone: nothing wider than the screen unless in a box of its own that scrolls, the header on
one row, chart text at least 11 px. A keyboard alone answers a code question. Screenshots at
390 px of the pages with charts and code go to test-artifacts/ for a human eye."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from app import accounts
from app.bank.files import read_bank
from tests.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_path, live_server
from tests.conftest import QUESTIONS, ROOT, right_answer, wrong_answer

pytestmark = pytest.mark.slow  # a real browser: `make test`, not `make test-fast`

LESSON = "lr-schedulers"
(AXE,) = (ROOT / "static" / "vendor").glob("axe-core-*/axe.min.js")  # one pinned version
# Our pages are held to every rule axe-core has; a page drawn by a vendored library (Swagger
# UI, at /docs) to the serious and critical ones: its markup is not ours to change.
ALL_IMPACTS = ("minor", "moderate", "serious", "critical")
SERIOUS = ("serious", "critical")
THIRD_PARTY = {"/docs"}
DESKTOP = {"width": 1100, "height": 900}
PHONE = {"width": 390, "height": 844}
INSTRUCTOR = ("teacher@example.com", "a long passphrase")

# What a page may not do at 390 px: be wider than the screen. Tables and code may be wider
# inside a box of their own that scrolls (axe-core checks that a keyboard can scroll it), or
# inside CodeMirror's, which clips and scrolls by scrollbars of its own.
WIDER_THAN_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const culprits = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1) continue;
    let inside = el.parentElement;
    let scrolls = false;
    while (inside && inside !== document.body) {
      const style = getComputedStyle(inside);
      const clips = ['hidden', 'clip'].includes(style.overflowX) && inside.matches('.CodeMirror');
      const boxed = ['auto', 'scroll'].includes(style.overflowX) || clips;
      if (boxed && inside.getBoundingClientRect().right <= width + 1) {
        scrolls = true;
        break;
      }
      inside = inside.parentElement;
    }
    const name = typeof el.className === 'string' && el.className ? el.className.split(' ')[0] : '';
    if (!scrolls) culprits.push(el.tagName.toLowerCase() + (name ? '.' + name : ''));
  }
  const scrollWidth = document.documentElement.scrollWidth;
  return { scrollWidth, width, culprits: culprits.slice(0, 5) };
}"""

# On a phone: the header's parts on one row, and no chart text under 11 CSS px.
PHONE_LAYOUT = """() => {
  const header = document.querySelector('.site-header');
  const parts = header ? [...header.children].map(el => el.getBoundingClientRect()) : [];
  const oneRow = !parts.length
    || Math.max(...parts.map(b => b.top)) < Math.min(...parts.map(b => b.bottom));
  const headerFits = !header || header.scrollWidth <= header.clientWidth;
  const sizes = [];
  for (const svg of document.querySelectorAll('figure.chart svg')) {
    const box = svg.getBoundingClientRect();
    if (box.width === 0) continue;  // the other screen's drawing
    const scale = box.width / svg.viewBox.baseVal.width;
    for (const text of svg.querySelectorAll('text')) {
      sizes.push(parseFloat(getComputedStyle(text).fontSize) * scale);
    }
  }
  return { oneRow, headerFits, smallestChartText: sizes.length ? Math.min(...sizes) : null };
}"""
MIN_CHART_TEXT_PX = 11

AUDIT = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
  }));
}"""


@dataclass
class Sweep:
    """Problems found page by page; the test fails once, listing them all."""

    problems: list[str] = field(default_factory=list)

    def check(self, tab: Page, name: str, *, phone: bool) -> None:
        """axe-core's violations, the <h1> count, and (on a phone) anything wider than the
        screen, a header on two rows, chart text too small to read."""
        tab.add_script_tag(path=str(AXE))
        failing = SERIOUS if name in THIRD_PARTY else ALL_IMPACTS
        for violation in tab.evaluate(AUDIT):
            if violation["impact"] in failing:
                self.problems.append(
                    f"{name}: {violation['impact']} {violation['id']} ({violation['help']})"
                    f" at {violation['targets']}"
                )
        headings = tab.locator("h1:visible").count()
        if headings != 1:
            self.problems.append(f"{name}: {headings} <h1> elements, not one")
        if phone:
            wide = tab.evaluate(WIDER_THAN_SCREEN)
            if wide["scrollWidth"] > wide["width"] or wide["culprits"]:
                self.problems.append(f"{name}: wider than a 390 px screen: {wide}")
            layout = tab.evaluate(PHONE_LAYOUT)
            if not layout["oneRow"]:
                self.problems.append(f"{name}: the header takes more than one row")
            if not layout["headerFits"]:
                self.problems.append(f"{name}: the header is wider than the screen")
            smallest = layout["smallestChartText"]
            if smallest is not None and smallest < MIN_CHART_TEXT_PX:
                self.problems.append(f"{name}: chart text of {smallest:.1f} px")


@contextmanager
def opened(chromium: Browser, viewport: dict[str, int] = DESKTOP, **options: Any) -> Iterator[Page]:
    """A tab in a browser context of its own (its own cookies: a new learner), closed after."""
    context = chromium.new_context(viewport=viewport, **options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def browser(app: FastAPI) -> Iterator[tuple[Browser, str]]:
    ARTIFACTS.mkdir(exist_ok=True)
    with app.state.db.session() as session:
        email, password = INSTRUCTOR
        accounts.create_user(session, email=email, password=password, role="admin")
    with live_server(app) as base, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium, base
        chromium.close()


def _answer_wrongly(tab: Page, answer: str) -> None:
    """On a question's page, give `answer` (a wrong one) the way a learner would."""
    if tab.locator("input[type=radio][name=answer]").count():
        tab.locator(f"input[name=answer][value='{answer}']").check()
    elif tab.locator(".CodeMirror").count():
        tab.evaluate("s => document.querySelector('.CodeMirror').CodeMirror.setValue(s)", answer)
    else:
        tab.locator("textarea[name=answer]").fill(answer)
    tab.locator("form.answer-form button[type=submit]").first.click()
    tab.wait_for_url("**/attempts/*")


def _step_wrongly(tab: Page) -> None:
    """On a step-through scenario, predict the next epoch wrongly (no rate is negative)."""
    tab.locator("input[name=prediction]").fill("-1")
    with tab.expect_navigation():
        tab.locator("form.step-form button[type=submit]").click()


def _walk(app: FastAPI, tab: Page, base: str, sweep: Sweep, *, phone: bool) -> None:
    """Every page a guest, a learner and an instructor reach, in the order they reach them."""

    def visit(path: str, name: str | None = None) -> None:
        tab.goto(base + path)
        if path == "/docs":  # Swagger UI draws the operations after the page has loaded
            tab.locator("#operations[role=region] .opblock").first.wait_for()
        sweep.check(tab, name or path, phone=phone)

    for path in (
        "/",
        f"/patterns/{LESSON}",
        f"/patterns/{LESSON}/trace",
        f"/patterns/{LESSON}/playground",
        f"/patterns/{LESSON}/playground?scheduler=CosineAnnealingLR&run=1",
        "/review",
        "/history",
        "/login",
        "/signup",
        f"/patterns/{LESSON}/test",
        f"/patterns/{LESSON}/quiz",
        f"/patterns/{LESSON}/fix",  # a page saying there are none, or the first to fix
        "/patterns/no-such-pattern",
        "/tests/0",
        "/instructor",  # not logged in
        "/admin/users",
        f"/patterns/{LESSON}/questions/no-such-question",
        "/docs",
    ):
        visit(path)
    # Every question of the bank as first shown, then after a wrong answer (its feedback and
    # worked solution): all the content an author wrote, in every kind of page it appears.
    for pattern in read_bank(QUESTIONS):
        for source in pattern.questions:
            question = source.question
            visit(f"/patterns/{pattern.slug}/questions/{question.id}")
            if question.kind == "steps":  # answered on a page of its own, epoch by epoch
                _step_wrongly(tab)
                sweep.check(tab, f"a wrong step of {question.id}", phone=phone)
                continue
            _answer_wrongly(tab, wrong_answer(app, question.id, 1))
            sweep.check(tab, f"a wrong answer to {question.id}", phone=phone)
    long_line = "scheduler = None  # " + "a comment far wider than any phone, " * 6
    tab.goto(f"{base}/patterns/{LESSON}/questions/lr-code-steplr")
    _answer_wrongly(tab, long_line)
    sweep.check(tab, "a wrong answer with a long line of code", phone=phone)
    visit(f"/patterns/{LESSON}/practice", "practice")
    visit(f"/patterns/{LESSON}/step-through")
    tab.goto(f"{base}/patterns/{LESSON}/step-through/lr-steps-plateau")
    while tab.locator("input[name=prediction]").count():
        _step_wrongly(tab)
    sweep.check(tab, "a step-through's result", phone=phone)

    tab.goto(f"{base}/patterns/{LESSON}/test")
    tab.get_by_role("button", name="Start the test").click()
    sweep.check(tab, "a test question", phone=phone)
    visit(tab.url.removeprefix(base).rsplit("/questions/", 1)[0] + "/finish", "finishing a test")
    tab.get_by_role("button", name="Finish").first.click()
    sweep.check(tab, "a test's result", phone=phone)

    tab.goto(base + "/login")
    tab.get_by_label("Email").fill("nobody@example.com")
    tab.get_by_label("Password").fill("wrong password!")
    tab.get_by_role("button", name="Log in").click()
    sweep.check(tab, "a failed login", phone=phone)
    email, password = INSTRUCTOR
    tab.get_by_label("Email").fill(email)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()
    for path in (
        "/instructor",
        "/instructor/questions/new",
        "/instructor/questions/new?kind=output",
        "/instructor/questions/new?kind=fix",
        "/instructor/questions/lr-output-steplr-calls/edit",
        "/instructor/questions/lr-output-steplr-calls/versions",
        "/instructor/import",
        f"/instructor/patterns/{LESSON}/stats",
        "/instructor/tokens",
        "/admin/users",
        "/admin/audit",
    ):
        visit(path)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_every_page_passes_axe_has_one_h1_and_fits_a_phone(
    app: FastAPI, browser: tuple[Browser, str], viewport: str
) -> None:
    chromium, base = browser
    phone = viewport == "phone"
    sweep = Sweep()
    with opened(chromium, PHONE if phone else DESKTOP) as tab:
        _walk(app, tab, base, sweep, phone=phone)
    assert not sweep.problems, "\n".join(sweep.problems)


def test_a_learner_uses_each_of_the_ten_modes_from_the_lesson_page(
    app: FastAPI, browser: tuple[Browser, str]
) -> None:
    """From the lesson page, by keyboard, into each of the ten modes once: each page has one
    <h1> and passes axe, and does what the mode says."""
    chromium, base = browser
    sweep = Sweep()
    bank = {s.question.id: s.question for p in read_bank(QUESTIONS) for s in p.questions}
    with opened(chromium) as tab:

        def open_mode(title: str) -> None:
            tab.goto(f"{base}/patterns/{LESSON}")
            tab.locator(".modes").get_by_role("link", name=title, exact=True).focus()
            with tab.expect_navigation():
                tab.keyboard.press("Enter")
            sweep.check(tab, title, phone=False)

        def question_id() -> str:
            return tab.url.rsplit("/questions/", 1)[1]

        tab.goto(f"{base}/patterns/{LESSON}")
        cards = tab.locator(".modes > li")
        expect(cards).to_have_count(10)
        recommended = tab.locator(".mode-recommended")
        expect(recommended).to_have_count(1)
        expect(recommended).to_contain_text("Recommended next")
        expect(recommended.get_by_role("heading")).to_have_text("Trace the pipeline")

        # 1. The trace: the recorded run on a page of its own.
        open_mode("Trace the pipeline")
        expect(tab.get_by_role("heading", level=1)).to_have_text("Model pipeline trace")
        expect(tab.locator("table.epochs")).to_be_visible()

        # 2. The quiz, asked in the page: one answered right there, and back to it.
        open_mode("Quiz")
        expect(tab.get_by_role("heading", level=1)).to_have_text("Quiz")
        card = tab.locator("article.inline-question").first
        quiz_id = (card.get_attribute("id") or "").removeprefix("q-")
        card.locator(f"input[name=answer][value='{right_answer(app, quiz_id, 1, 0)}']").check()
        card.get_by_role("button", name="Check").click()
        tab.wait_for_url(f"**/quiz#q-{quiz_id}")
        card = tab.locator(f"#q-{quiz_id}")
        expect(card.get_by_role("heading", name="Correct")).to_be_focused()
        expect(tab.locator(".mode-progress")).to_contain_text("1 of 3 quiz questions solved")
        sweep.check(tab, "quiz, one answered", phone=False)

        # 3. Practice: a learner who has answered one question starts easy still.
        open_mode("Practice")
        assert bank[question_id()].difficulty.value == "easy"

        # 4. Predict the output: an output question; a wrong answer, then the next one.
        open_mode("Predict the output")
        first = question_id()
        assert bank[first].kind == "output"
        _answer_wrongly(tab, "0.123")
        expect(tab.get_by_role("heading", name="Not yet — try again")).to_be_visible()
        tab.get_by_role("link", name="Next: predict the output →").click()
        tab.wait_for_url("**/questions/*")
        assert question_id() != first and bank[question_id()].kind == "output"

        # 5. Step through: a scenario, one epoch predicted and revealed.
        open_mode("Step through")
        tab.locator("main a[href*='/step-through/']").first.click()
        sweep.check(tab, "step through, a scenario", phone=False)
        _step_wrongly(tab)
        sweep.check(tab, "step through, an epoch revealed", phone=False)

        # 6. Write the code: a code question, in the editor.
        open_mode("Write the code")
        assert bank[question_id()].kind == "code"
        expect(tab.locator(".CodeMirror")).to_be_visible()

        # 7. Fix the bug: the editor starts from the buggy loop.
        open_mode("Fix the bug")
        fix = bank[question_id()]
        assert fix.kind == "fix"
        expect(tab.get_by_text("Fix the bug — this code has one")).to_be_visible()

        # 8. Review: the two questions answered are due again the same sitting.
        open_mode("Review")
        expect(tab.get_by_role("heading", level=1)).to_be_visible()

        # 9. Test this pattern: the start page of a test.
        open_mode("Test this pattern")
        expect(tab.get_by_role("button", name=re.compile("Start"))).to_be_visible()

        # 10. The playground: the lesson's run against another scheduler.
        open_mode("Scheduler playground")
        expect(tab.locator("#scheduler")).to_be_visible()
    assert not sweep.problems, "\n".join(sweep.problems)


def test_a_wrong_answer_teaches_before_it_tells(browser: tuple[Browser, str]) -> None:
    """A learner answers wrong, is told why without the key, tries again, then asks for the
    solution, which opens step by step."""
    chromium, base = browser
    with opened(chromium, PHONE) as tab:
        tab.goto(f"{base}/patterns/{LESSON}/questions/lr-purpose")
        tab.get_by_label(re.compile("DataLoader|shuffle", re.I)).first.check()
        tab.get_by_role("button", name="Submit answer").click()
        verdict = tab.get_by_role("heading", name="Not yet — try again")
        expect(verdict).to_be_focused()  # said first by a screen reader
        expect(tab.locator(".misconception")).to_be_visible()
        expect(tab.get_by_text("right answer")).to_have_count(0)
        expect(tab.get_by_role("heading", name="Worked solution")).to_have_count(0)
        expect(tab.get_by_text("Wrong tries in a row: 1 of 3")).to_be_visible()

        # Try again, in the page: another wrong choice.
        again = tab.locator("section.try-again")
        again.locator("input[name=answer][value='2']").check()
        again.get_by_role("button", name="Submit answer").click()
        expect(tab.get_by_text("Wrong tries in a row: 2 of 3")).to_be_visible()

        # The hint, fetched into the page; then the solution, asked for.
        tab.get_by_role("button", name="Show a hint").click()
        expect(tab.get_by_role("heading", name="Hint")).to_be_visible()
        tab.get_by_role("button", name="Show the worked solution").click()
        expect(tab.get_by_role("heading", name="Not quite")).to_be_visible()
        expect(tab.get_by_text("right answer")).to_be_visible()
        expect(tab.get_by_role("heading", name="Worked solution")).to_be_visible()
        expect(tab.locator(".solution-step").first).to_be_visible()
        sweep = Sweep()
        sweep.check(tab, "a wrong answer, its solution asked for", phone=True)
        assert not sweep.problems, "\n".join(sweep.problems)


def test_the_lesson_page_reads_top_to_bottom(browser: tuple[Browser, str]) -> None:
    """The lesson page in the seed's order; its quiz answered in the page by keyboard, wrong
    then right, the focus on each verdict as the page comes back."""
    chromium, base = browser
    with opened(chromium, PHONE) as tab:
        tab.goto(f"{base}/patterns/{LESSON}")
        headings = tab.locator("main h2").all_inner_texts()
        order = [
            "Data flow",
            "Training, epoch by epoch",
            "Prediction trace",
            "Key insight",
            "Quiz",
            "Practice",
            "Ways to learn",
            "Every question",
        ]
        places = [next(i for i, h in enumerate(headings) if h.startswith(o)) for o in order]
        assert places == sorted(places), headings
        sweep = Sweep()
        sweep.check(tab, "the lesson", phone=True)

        card = tab.locator("article.inline-question").first
        qid = (card.get_attribute("id") or "").removeprefix("q-")
        card.locator("input[name=answer]").first.focus()
        tab.keyboard.press("Space")
        card.get_by_role("button", name="Check").focus()
        tab.keyboard.press("Enter")
        tab.wait_for_url(f"**#q-{qid}")
        card = tab.locator(f"#q-{qid}")
        verdict = card.locator("section.verdict h4")
        expect(verdict).to_be_focused()
        if verdict.inner_text() != "Correct":
            expect(card.get_by_text("right answer")).to_have_count(0)
            for choice in card.locator("input[name=answer]").all():
                if not card.locator("section.verdict").is_visible():
                    break
                choice.check()
                card.get_by_role("button", name="Try again").click()
                tab.wait_for_url(f"**#q-{qid}")
                card = tab.locator(f"#q-{qid}")
                if card.locator("section.verdict h4").inner_text() == "Correct":
                    break
        expect(card.locator("section.verdict h4")).to_have_text(re.compile("Correct|Not quite"))
        expect(card.locator(".solution")).to_be_visible()  # solved, or shown at the 3rd try
        sweep.check(tab, "the lesson, its quiz answered", phone=True)
        tab.screenshot(path=str(ARTIFACTS / "lesson-phone.png"), full_page=True)
    assert not sweep.problems, "\n".join(sweep.problems)


FOCUSED = """() => document.activeElement.closest('.CodeMirror')
  ? 'editor' : document.activeElement.outerHTML.slice(0, 80)"""


def test_a_keyboard_alone_answers_a_code_question(browser: tuple[Browser, str]) -> None:
    chromium, base = browser
    with opened(chromium) as tab:
        tab.goto(f"{base}/patterns/{LESSON}/questions/lr-code-steplr")
        keyboard = tab.keyboard

        keyboard.press("Tab")
        assert "Skip to the content" in tab.evaluate(FOCUSED)
        for _ in range(40):  # on through the links, to the editor
            keyboard.press("Tab")
            if tab.evaluate(FOCUSED) == "editor":
                break
        else:
            pytest.fail("Tab never reached the code editor")
        expect(tab.get_by_text("press Esc, then Tab")).to_be_visible()  # the way out, said

        code = "document.querySelector('.CodeMirror').CodeMirror.getValue()"
        keyboard.press("Control+a")
        keyboard.type("a = 1\nb = 2")
        keyboard.press("Control+a")
        keyboard.press("Tab")  # lines selected: Tab indents them, it does not replace them
        assert tab.evaluate(code) == "    a = 1\n    b = 2"
        keyboard.press("Shift+Tab")
        assert tab.evaluate(code) == "a = 1\nb = 2"

        keyboard.press("Control+a")
        keyboard.type("scheduler = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)")
        keyboard.press("Tab")  # in the editor, Tab indents ...
        assert tab.evaluate(FOCUSED) == "editor"
        keyboard.press("Shift+Tab")  # ... and Shift+Tab takes it back
        keyboard.press("Escape")
        keyboard.press("Tab")  # ... until Esc releases it
        assert "Run and check" in tab.evaluate(FOCUSED)
        keyboard.press("Enter")
        expect(tab.get_by_role("heading", name="Correct")).to_be_focused()  # said first


def test_a_hint_comes_into_the_page_and_keeps_what_was_typed(
    browser: tuple[Browser, str],
) -> None:
    chromium, base = browser
    with opened(chromium) as tab:
        tab.goto(f"{base}/patterns/{LESSON}/questions/lr-output-steplr-calls")
        answer = tab.get_by_label("What does this code print?")
        answer.fill("[0.05]")
        tab.get_by_role("button", name="Show a hint").focus()
        tab.keyboard.press("Enter")
        expect(tab.get_by_role("heading", name="Hint")).to_be_focused()
        expect(answer).to_have_value("[0.05]")


def test_a_hint_refused_is_said_beside_the_button_and_the_answer_stays(
    browser: tuple[Browser, str],
) -> None:
    chromium, base = browser
    with opened(chromium) as tab:
        posts: list[str] = []

        def slow_down(route: Route) -> None:  # as the server answers a learner over their limit
            posts.append(route.request.method)
            route.fulfill(
                status=429,
                headers={"Retry-After": "7", "Content-Type": "text/html"},
                body='<main><section class="error-page"><h1>Slow down</h1>'
                "<p>Too many requests from you just now.</p></section></main>",
            )

        tab.route("**/hint", slow_down)
        tab.goto(f"{base}/patterns/{LESSON}/questions/lr-output-steplr-calls")
        answer = tab.get_by_label("What does this code print?")
        answer.fill("[0.05]")
        tab.get_by_role("button", name="Show a hint").click()
        expect(tab.get_by_role("alert")).to_have_text(
            "Too many requests from you just now. Try again in 7 s."
        )
        expect(answer).to_have_value("[0.05]")
        assert posts == ["POST"]  # asked once: not posted again into the limit


def test_the_playground_list_moves_with_arrows_and_picks_with_enter(
    browser: tuple[Browser, str],
) -> None:
    chromium, base = browser
    with opened(chromium) as tab:
        tab.goto(f"{base}/patterns/{LESSON}/playground")
        schedulers = tab.locator("#scheduler")
        schedulers.focus()
        tab.keyboard.press("ArrowDown")  # moves through the list; the page stays
        tab.wait_for_timeout(300)
        assert "scheduler=" not in tab.url
        tab.keyboard.press("ArrowDown")
        tab.keyboard.press("Enter")  # picks: the form is redrawn for it, the focus comes back
        tab.wait_for_url("**scheduler=ConstantLR**")
        expect(tab.locator("#scheduler")).to_be_focused()
        expect(tab.locator("#scheduler")).to_have_value("ConstantLR")


def test_chart_text_is_readable_on_a_360_px_phone_too(browser: tuple[Browser, str]) -> None:
    chromium, base = browser
    with opened(chromium, {"width": 360, "height": 740}) as tab:
        tab.goto(f"{base}/patterns/{LESSON}/trace")
        smallest = tab.evaluate(PHONE_LAYOUT)["smallestChartText"]
        assert smallest is not None and smallest >= MIN_CHART_TEXT_PX


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("lesson", f"/patterns/{LESSON}"),
        ("trace", f"/patterns/{LESSON}/trace"),
        ("code-question", f"/patterns/{LESSON}/questions/lr-code-steplr"),
        ("fix-question", f"/patterns/{LESSON}/questions/lr-fix-per-batch"),
        ("playground", f"/patterns/{LESSON}/playground?scheduler=StepLR&run=1&p.step_size=2"),
    ],
)
def test_phone_screenshots(browser: tuple[Browser, str], name: str, path: str) -> None:
    """What a learner sees at 390 px, kept in test-artifacts/ for a human to look at (the
    sweep above checks what a machine can: width, header, chart text)."""
    chromium, base = browser
    with opened(chromium, PHONE, device_scale_factor=2, is_mobile=True) as tab:
        tab.goto(base + path)
        expect(tab.locator("h1")).to_be_visible()
        assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        tab.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
