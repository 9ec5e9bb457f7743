// Progressive enhancement only: every page works without this file.
"use strict";

// Worked solutions: show one step at a time, with "Next step" and "Show all".
function stepwise(list) {
  const steps = Array.from(list.querySelectorAll(":scope > .solution-step"));
  if (steps.length < 2) return;
  let shown = 1;
  const controls = document.createElement("div");
  controls.className = "step-controls";
  const next = document.createElement("button");
  next.type = "button";
  next.className = "button primary";
  const all = document.createElement("button");
  all.type = "button";
  all.className = "button";
  all.textContent = "Show all steps";
  controls.append(next, all);
  list.after(controls);

  function update() {
    steps.forEach((step, i) => { step.hidden = i >= shown; });
    const remaining = steps.length - shown;
    // Named by the step it opens: "Next step (2 of 4)" opens step 2.
    next.textContent = remaining === 1 ? "Show the answer" : `Next step (${shown + 1} of ${steps.length})`;
    if (remaining === 0) controls.remove();
  }
  // The step just shown takes the focus: a screen reader reads it, and the keyboard goes on
  // from there (the button pressed may be gone: after the last step there is none).
  function reveal(step) {
    step.tabIndex = -1;
    step.focus({ preventScroll: true });
    step.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
  next.addEventListener("click", () => {
    shown += 1;
    update();
    reveal(steps[shown - 1]);
  });
  all.addEventListener("click", () => {
    const first = shown;
    shown = steps.length;
    update();
    reveal(steps[first]);
  });
  update();
}

document.querySelectorAll("[data-stepwise]").forEach(stepwise);

// The playground: picking another scheduler redraws the form with its parameters. With a
// mouse that is one pick. With the keyboard, where arrows change the value in place (Chrome
// and Firefox on Linux and Windows), an arrow only moves through the list — a reload per
// arrow would throw the focus away — and Enter, or leaving the list, picks; the focus then
// comes back to the list. A change no key caused in the same moment (a pick from an open
// menu, as macOS shows one) redraws at once.
const REFOCUS = "tracewise-refocus";
function remembered(write) {
  try { return write(window.sessionStorage); } catch (error) { return null; }  // storage blocked
}
document.querySelectorAll("select[data-reload]").forEach((select) => {
  const shown = select.value;
  let keyJustPressed = false;
  function redraw() {
    if (select.value === shown) return;
    const run = select.form.querySelector("input[name=run]");
    if (run) run.disabled = true;
    remembered((storage) => storage.setItem(REFOCUS, select.name));
    select.form.submit();
  }
  select.addEventListener("keydown", (event) => {
    keyJustPressed = true;
    setTimeout(() => { keyJustPressed = false; }, 0);
    if (event.key === "Enter") {
      event.preventDefault();
      redraw();
    }
  });
  select.addEventListener("change", () => { if (!keyJustPressed) redraw(); });
  select.addEventListener("blur", redraw);
  if (remembered((storage) => storage.getItem(REFOCUS)) === select.name) {
    remembered((storage) => storage.removeItem(REFOCUS));
    select.focus();
  }
});

// "Show a hint" fetches the hint into the page, so what the learner has typed or picked stays
// (without JavaScript the form posts, and the page comes back with the hint). A refusal — slow
// down, busy, not now — is said beside the button, and the answer stays too.
document.querySelectorAll("#hint form").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = document.getElementById("hint");
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin", headers: { Accept: "text/html" },
      });
    } catch (error) {
      form.submit();  // no answer at all: the plain way
      return;
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const hint = page.getElementById("hint");
    if (response.ok && hint && hint.querySelector("h2")) {
      box.replaceChildren(...hint.childNodes);
      const heading = box.querySelector("h2");
      heading.tabIndex = -1;
      heading.focus();  // read out at once; the keyboard goes on from here
      return;
    }
    if (response.ok) {
      form.submit();
      return;
    }
    let note = box.querySelector(".form-error");
    if (!note) {
      note = document.createElement("p");
      note.className = "form-error";
      note.setAttribute("role", "alert");
      box.append(note);
    }
    const said = page.querySelector(".error-page h1 + p");
    const wait = response.headers.get("Retry-After");
    note.textContent = (said ? said.textContent.trim() : `No hint just now (${response.status}).`)
      + (wait ? ` Try again in ${wait} s.` : "");
  });
});

// A graded answer: the verdict takes the focus, so a screen reader says it first — on its own
// page, or on a page that asks questions in place, the verdict of the question just answered
// (the page comes back at its anchor: #q-<id>).
const asked = window.location.hash.startsWith("#q-")
  ? document.getElementById(decodeURIComponent(window.location.hash.slice(1)))
  : null;
const verdict = asked
  ? asked.querySelector("section.verdict > :first-child") || asked.querySelector(".inline-title")
  : document.querySelector("main > section.verdict > h2, main > section.test-verdict > h2");
function focusVerdict() {
  verdict.tabIndex = -1;
  verdict.focus({ preventScroll: !asked });
}
if (verdict && asked) {
  // After the browser has scrolled to the anchor, which would otherwise reset the focus.
  window.addEventListener("load", () => window.requestAnimationFrame(focusVerdict));
} else if (verdict) {
  focusVerdict();
}

// CodeMirror 5 (vendored) for code, with line numbers. Tab indents, as a programmer expects —
// so Esc, then Tab (or Shift+Tab), leaves the editor: the convention CodeMirror 6 documents
// for keyboard users, which version 5 does not have built in. A line above the editor says
// so. The contenteditable input is the one screen readers read; it is labelled with the
// textarea's own label, and clicking that label focuses it. The textarea stays the form
// field: CodeMirror writes back into it on submit.
function codeEditor(textarea, mode, indent, options = {}) {
  const label = textarea.labels.length ? textarea.labels[0].textContent.replace(/\s+/g, " ").trim() : "Code";
  let released = false;
  const editor = CodeMirror.fromTextArea(textarea, {
    mode,
    lineNumbers: true,
    indentUnit: indent,
    tabSize: indent,
    inputStyle: "contenteditable",
    screenReaderLabel: label,
    extraKeys: {
      Tab: (cm) => (cm.somethingSelected() ? cm.execCommand("indentMore") : cm.replaceSelection(" ".repeat(indent))),
      "Shift-Tab": (cm) => cm.execCommand("indentLess"),
      Esc: (cm) => {
        released = true;
        cm.execCommand("singleSelection");  // what Esc does in CodeMirror otherwise
      },
    },
    ...options,
  });
  editor.on("keydown", (cm, event) => {
    // After Esc, CodeMirror ignores Tab: the browser moves the focus on, as it does anywhere.
    if (released && event.key === "Tab") event.codemirrorIgnore = true;
    else if (!["Escape", "Shift"].includes(event.key)) released = false;
  });
  editor.on("focus", () => { released = false; });
  editor.on("mousedown", () => { released = false; });
  Array.from(textarea.labels).forEach((element) => {
    element.addEventListener("click", () => editor.focus());
  });
  const hint = document.createElement("p");
  hint.className = "form-help editor-hint";
  hint.id = `${textarea.id || textarea.name}-keys`;
  hint.textContent = "Tab indents in the editor. To leave it with the keyboard, press Esc, then Tab.";
  editor.getWrapperElement().before(hint);
  editor.getInputField().setAttribute("aria-describedby", hint.id);
  textarea.codeMirror = editor;  // for tests and scripts
  return editor;
}

// Code questions: Python.
document.querySelectorAll("textarea[data-code-editor]").forEach((textarea) => {
  if (typeof CodeMirror === "undefined") return;
  const editor = codeEditor(textarea, "python", 4, { viewportMargin: Infinity });  // grows with the code
  const errorLine = document.querySelector("[data-error-line]");
  if (errorLine) editor.addLineClass(Number(errorLine.dataset.errorLine) - 1, "background", "cm-error-line");
});

// The instructors' question editor: YAML with line numbers, every problem shown under the
// line of the field that caused it, and a live preview (the form still posts without it).
document.querySelectorAll("textarea[data-yaml-editor]").forEach((textarea) => {
  if (typeof CodeMirror === "undefined") return;
  const form = textarea.form;
  const preview = document.getElementById("preview");
  const editor = codeEditor(textarea, "yaml", 2);
  let widgets = [];

  function markErrors() {
    widgets.forEach((widget) => widget.clear());
    widgets = [];
    editor.eachLine((line) => editor.removeLineClass(line, "background", "line-error"));
    preview.querySelectorAll("li[data-line]").forEach((item) => {
      const line = Number(item.dataset.line) - 1;
      if (!(line >= 0) || line >= editor.lineCount()) return;
      editor.addLineClass(line, "background", "line-error");
      const message = document.createElement("div");
      message.className = "line-error-message";
      message.textContent = item.textContent.replace(/^Line \d+ · /, "");
      widgets.push(editor.addLineWidget(line, message, { noHScroll: true }));  // stays in view, wraps
      const link = item.querySelector(".line-link");
      if (link) link.addEventListener("click", (event) => {
        event.preventDefault();
        editor.focus();
        editor.setCursor({ line, ch: 0 });
        editor.scrollIntoView({ line, ch: 0 }, 100);
      });
    });
  }

  let timer = null;
  let sent = 0;
  async function refresh() {
    const number = ++sent;
    editor.save();
    const body = new FormData(form);
    body.delete("action");
    try {
      const response = await fetch(form.dataset.preview, { method: "POST", body, credentials: "same-origin" });
      if (number !== sent) return;  // a newer preview is on its way
      if (response.status === 200 || response.status === 422) {
        preview.innerHTML = await response.text();
        preview.querySelectorAll("[data-stepwise]").forEach(stepwise);
        markErrors();
      }
    } catch (error) {
      // Offline or the server restarting: the buttons still work.
    }
  }
  editor.on("change", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
  markErrors();
});

// Actions that are hard to take back ask first (without JavaScript they simply happen).
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});
