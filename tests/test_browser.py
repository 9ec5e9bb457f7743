"""A learner in a real browser: answer a choice and an output question, walk the solutions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect, sync_playwright

from app.bank.files import read_bank
from tests.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_path, live_server
from tests.conftest import QUESTIONS, right_answer, wrong_answer

pytestmark = pytest.mark.slow  # a real browser: `make test`, not `make test-fast`

LESSON = "lr-schedulers"


@pytest.fixture
def page(app: FastAPI) -> Iterator[tuple[Page, str]]:
    ARTIFACTS.mkdir(exist_ok=True)
    with live_server(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        yield context.new_page(), base
        context.close()
        browser.close()


def test_a_learner_answers_questions_and_walks_the_worked_solutions(
    page: tuple[Page, str],
) -> None:
    tab, base = page
    tab.goto(base + "/")
    tab.get_by_role("link", name="Learning rate schedulers in PyTorch").click()
    expect(tab.get_by_role("heading", name="Key insight")).to_be_visible()

    # A choice question: ask for the hint, answer wrongly, read why, step through the solution.
    tab.goto(f"{base}/patterns/{LESSON}/questions/lr-two-phase-schedule")
    tab.get_by_role("button", name="Show a hint").click()
    expect(tab.get_by_role("heading", name="Hint")).to_be_visible()
    tab.locator("input[name=answer][value='1']").check()  # B: a wrong choice
    tab.get_by_role("button", name="Submit answer").click()
    expect(tab.get_by_role("heading", name="Not yet — try again")).to_be_visible()
    expect(tab.locator(".misconception")).to_be_visible()
    expect(tab.locator(".solution-step")).to_have_count(0)  # tried once: no solution yet
    tab.get_by_role("button", name="Show the worked solution").click()
    expect(tab.get_by_role("heading", name="Not quite")).to_be_visible()
    steps = tab.locator(".solution-step")
    expect(steps.nth(0)).to_be_visible()
    expect(steps.nth(1)).to_be_hidden()  # revealed one at a time
    tab.get_by_role("button", name="Next step").click()
    expect(steps.nth(1)).to_be_visible()
    tab.get_by_role("button", name="Show all steps").click()
    expect(tab.get_by_role("heading", name="Final answer")).to_be_visible()
    tab.screenshot(path=str(ARTIFACTS / "choice-result.png"), full_page=True)

    # An output question: the key and the trace come from the real run.
    tab.goto(f"{base}/patterns/{LESSON}/questions/lr-output-steplr-calls")
    tab.get_by_label("What does this code print?").fill("0.123")
    tab.get_by_role("button", name="Submit answer").click()
    expect(tab.get_by_role("heading", name="Not yet — try again")).to_be_visible()
    expect(tab.get_by_text("0.123 is not what the run printed")).to_be_visible()
    tab.get_by_role("button", name="Show the worked solution").click()
    expect(tab.get_by_role("heading", name="Not quite")).to_be_visible()
    expected = tab.locator(".output-compare dd pre").nth(1).inner_text()
    tab.get_by_role("button", name="Show all steps").click()
    expect(tab.locator("table.trace")).to_be_visible()
    tab.screenshot(path=str(ARTIFACTS / "output-result.png"), full_page=True)

    tab.get_by_role("link", name="Try again").click()
    tab.get_by_label("What does this code print?").fill(expected)
    tab.get_by_role("button", name="Submit answer").click()
    expect(tab.get_by_role("heading", name="Correct")).to_be_visible()

    tab.goto(f"{base}/patterns/{LESSON}")
    total = sum(len(p.questions) for p in read_bank(QUESTIONS))
    expect(tab.locator(".progress-label")).to_contain_text(f"2 / {total} seen · 1 solved")


def test_the_trace_page_and_the_playground_in_a_browser(page: tuple[Page, str]) -> None:
    tab, base = page
    tab.goto(f"{base}/patterns/{LESSON}/trace")
    expect(tab.get_by_role("heading", name="Model pipeline trace")).to_be_visible()
    expect(tab.locator("table.epochs tbody tr:not(.epoch-notes)")).to_have_count(10)
    expect(tab.locator("figure.chart")).to_have_count(3)

    tab.screenshot(path=str(ARTIFACTS / "trace.png"), full_page=True)

    tab.get_by_role("link", name="Change the scheduler in the playground").click()
    lr_path = tab.locator("svg.chart-wide path[data-series='learning rate']").last
    before = lr_path.get_attribute("d")
    tab.locator("#scheduler").select_option("CosineAnnealingLR")  # the form redraws itself
    expect(tab.locator("input[name='p.T_max']")).to_be_visible()
    tab.get_by_role("button", name="Run").click()
    expect(tab.get_by_role("heading", name="Result: trained for 10 epochs")).to_be_visible()
    after = tab.locator("svg.chart-wide path[data-series='learning rate']").last.get_attribute("d")
    assert before and after and before != after  # the chart changed
    expect(tab.locator('.chart-wide path[data-series="lesson\'s learning rate"]')).to_have_count(1)
    tab.screenshot(path=str(ARTIFACTS / "playground-cosine.png"), full_page=True)

    tab.locator("input[name='p.T_max']").fill("")
    tab.get_by_role("button", name="Run").click()
    expect(tab.locator("#p\\.T_max-error")).to_contain_text("T_max is required")
    tab.screenshot(path=str(ARTIFACTS / "playground-error.png"), full_page=True)


def test_a_learner_writes_a_wrong_scheduler_sees_where_it_diverges_and_fixes_it(
    page: tuple[Page, str],
) -> None:
    tab, base = page
    tab.goto(f"{base}/patterns/{LESSON}/questions/lr-code-steplr")
    editor = tab.locator(".CodeMirror")
    expect(editor).to_be_visible()  # the vendored editor replaced the textarea
    expect(tab.locator(".CodeMirror-linenumber").first).to_be_visible()
    editor.click()
    tab.keyboard.press("Control+A")
    tab.keyboard.type("scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)")
    tab.get_by_role("button", name="Run and check").click()

    expect(tab.get_by_role("heading", name="Not yet — try again")).to_be_visible()
    expect(tab.locator(".divergence")).to_contain_text("first differs from the target at epoch 2")
    expect(tab.locator(".misconception")).to_contain_text("Off by one epoch")
    expect(tab.locator(".chart-wide path[data-series='yours']")).to_have_count(1)
    tab.screenshot(path=str(ARTIFACTS / "code-wrong.png"), full_page=True)

    # Trying again is on the same page: the editor holds the code just run, no solution yet.
    expect(tab.get_by_role("heading", name="The reference solution")).to_have_count(0)
    expect(tab.locator(".try-again .CodeMirror")).to_contain_text("step_size=2")
    tab.locator(".try-again .CodeMirror").click()
    tab.keyboard.press("Control+A")
    tab.keyboard.type("scheduler = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)")
    tab.get_by_role("button", name="Run and check").click()
    expect(tab.get_by_role("heading", name="Correct")).to_be_visible()
    expect(tab.locator(".divergence")).to_contain_text("matches the target at every step")
    tab.screenshot(path=str(ARTIFACTS / "code-right.png"), full_page=True)


def _answer_in_browser(tab: Page, kind: str, answer: str) -> None:
    if kind == "choice":
        tab.locator(f"input[name=answer][value='{answer}']").check()
    elif kind == "output":
        tab.locator("textarea[name=answer]").fill(answer)
    else:  # the CodeMirror editor stands in for the textarea
        expect(tab.locator(".CodeMirror")).to_be_visible()
        tab.evaluate(
            "code => document.querySelector('.CodeMirror').CodeMirror.setValue(code)", answer
        )


def test_a_new_learner_signs_up_takes_the_test_and_sees_the_result(
    page: tuple[Page, str], app: FastAPI
) -> None:
    tab, base = page
    tab.goto(base + "/")
    tab.get_by_role("link", name="Sign up").click()
    tab.get_by_label("Email").fill("grace@example.com")
    tab.get_by_label("Password").fill("a long enough passphrase")
    tab.get_by_role("button", name="Sign up").click()
    expect(tab.locator(".account-email")).to_have_text("grace@example.com")

    tab.get_by_role("link", name="Learning rate schedulers in PyTorch").click()
    tab.get_by_role("link", name="Test this pattern").first.click()
    tab.get_by_role("button", name="Start the test").click()
    expect(tab.locator(".test-position")).to_contain_text("1 of 10")
    exam_id = tab.url.split("/tests/")[1].split("/")[0]
    questions = tab.request.get(f"{base}/api/tests/{exam_id}").json()["questions"]

    for question in questions:  # eight right, the last two wrong
        q = question["question"]
        number = question["number"]
        expect(tab.locator(".test-position")).to_contain_text(f"{number} of 10")
        if number == 5:  # close the tab halfway and come back: the test resumes
            tab.goto(f"{base}/patterns/{LESSON}/test")
            expect(tab.get_by_text("answered 4 of 10")).to_be_visible()
            tab.get_by_role("link", name="Resume at question 5").click()
        expect(tab.get_by_role("heading", name="Correct")).to_have_count(0)  # no feedback yet
        if number <= 8:
            answer = right_answer(app, q["id"], q["version"], q["variant"])
        else:
            answer = wrong_answer(app, q["id"], q["version"])
        _answer_in_browser(tab, q["kind"], answer)
        name = "Save and next →" if number < 10 else "Save and review your answers"
        tab.get_by_role("button", name=name).click()

    expect(tab.get_by_text("You have answered 10 of 10 questions.")).to_be_visible()
    tab.get_by_role("button", name="Finish and see my result").click()
    expect(tab.get_by_role("heading", name="You scored 8 / 10")).to_be_visible()
    expect(tab.locator(".test-verdict")).to_contain_text("Getting there")
    expect(tab.locator(".breakdown")).to_contain_text("1 / 3")
    expect(tab.locator("details.item-wrong")).to_have_count(2)
    tab.screenshot(path=str(ARTIFACTS / "test-result.png"), full_page=True)

    tab.get_by_role("link", name="Practise what you missed").click()
    missed = {question["question"]["id"] for question in questions[8:]}
    assert tab.url.rsplit("/", 1)[1] in missed
    tab.goto(f"{base}/")
    expect(tab.locator(".progress-label")).to_contain_text("10 / ")


def test_an_instructor_writes_runs_and_saves_an_output_question_then_reads_its_stats(
    page: tuple[Page, str], app: FastAPI
) -> None:
    from app import accounts

    with app.state.db.session() as session:
        accounts.create_user(
            session, email="teacher@example.com", password="a long passphrase", role="instructor"
        )
    tab, base = page
    tab.goto(base + "/login")
    tab.get_by_label("Email").fill("teacher@example.com")
    tab.get_by_label("Password").fill("a long passphrase")
    tab.get_by_role("button", name="Log in").click()
    tab.get_by_role("link", name="Instructor").click()
    tab.locator(".subnav").get_by_role("link", name="New question").click()
    tab.get_by_role("link", name="output", exact=True).click()

    editor = tab.locator(".CodeMirror")
    expect(editor).to_be_visible()  # the YAML editor, with line numbers
    source = tab.evaluate("() => document.querySelector('.CodeMirror').CodeMirror.getValue()")
    broken = source.replace("difficulty: medium", "difficulty: brutal")
    tab.evaluate("s => document.querySelector('.CodeMirror').CodeMirror.setValue(s)", broken)
    # the live preview marks the line of the field, with the message beside it
    expect(tab.locator(".line-error-message")).to_contain_text("difficulty: must be one of easy")
    expect(tab.locator(".CodeMirror .line-error")).to_have_count(1)

    question = source.replace("new-output-question", "browser-made-steplr")
    tab.evaluate("s => document.querySelector('.CodeMirror').CodeMirror.setValue(s)", question)
    expect(tab.locator(".line-error-message")).to_have_count(0)
    expect(tab.locator(".learner-preview")).to_contain_text("What does this code print?")

    tab.get_by_role("button", name="Run").click()
    expect(tab.locator(".run-report")).to_contain_text("8 variants")
    expect(tab.locator("table.variants")).to_contain_text("[0.025]")  # a key from a real run
    tab.screenshot(path=str(ARTIFACTS / "editor-run.png"), full_page=True)
    tab.get_by_role("button", name="Save").click()
    expect(tab.get_by_text("Saved as version 1")).to_be_visible()

    tab.get_by_role("link", name="open as a learner").click()
    variant_text = tab.locator(".code-block").first.inner_text()
    step_size = 2 if "step_size=2" in variant_text else 3
    calls = int(variant_text.split("range(")[1].split(")")[0])
    lr = 0.1 * 0.5 ** (calls // step_size)
    tab.locator("textarea[name=answer]").fill(f"[{lr}]")
    tab.get_by_role("button", name="Submit answer").click()
    expect(tab.get_by_role("heading", name="Correct")).to_be_visible()

    tab.goto(f"{base}/instructor/patterns/{LESSON}/stats")
    row = tab.locator("#q-browser-made-steplr")
    expect(row).to_contain_text("1.00")  # facility: one learner, right first time
    tab.screenshot(path=str(ARTIFACTS / "instructor-stats.png"), full_page=True)
    tab.locator(".subnav").get_by_role("link", name="Question bank").click()
    for link, kind in (("YAML (zip)", "application/zip"), ("GIFT", "text/plain")):
        href = tab.get_by_role("link", name=link).first.get_attribute("href")
        assert href is not None
        response = tab.request.get(base + href)  # links are paths from the server's root
        assert response.ok and response.headers["content-type"].startswith(kind)


MEASURE_CHOICES = """() => [...document.querySelectorAll('label.choice')].map((label) => {
  const radio = label.querySelector('input[type=radio]').getBoundingClientRect();
  const text = label.querySelector('.choice-text');
  const range = document.createRange();
  range.selectNodeContents(text);
  const first = range.getClientRects()[0];  // the first line of the choice's text
  return {
    weight: Number(getComputedStyle(text).fontWeight),
    offset: Math.abs(radio.top + radio.height / 2 - (first.top + first.height / 2)),
    lines: new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size,
    under: Math.min(...[...range.getClientRects()].map((r) => r.left)) < radio.right,
  };
})"""


def test_choices_read_as_plain_text_with_the_radio_on_their_first_line(
    page: tuple[Page, str],
) -> None:
    tab, base = page
    tab.set_viewport_size({"width": 390, "height": 844})  # a phone: long choices wrap
    for path in ("questions/lr-two-phase-schedule", "quiz"):
        tab.goto(f"{base}/patterns/{LESSON}/{path}")
        choices = tab.evaluate(MEASURE_CHOICES)
        assert choices and any(c["lines"] > 1 for c in choices), path  # wrapping is covered
        for choice in choices:
            assert choice["weight"] <= 400, (path, choice)  # only the letter is bold
            assert choice["offset"] <= 2, (path, choice)  # radio centred on the first line
            assert not choice["under"], (path, choice)  # wrapped lines keep to the text column
        tab.locator("label.choice .choice-text").nth(1).click()  # the text is a target too
        expect(tab.locator("input[name=answer]").nth(1)).to_be_checked()
    tab.screenshot(path=str(ARTIFACTS / "choices-phone.png"), full_page=True)
