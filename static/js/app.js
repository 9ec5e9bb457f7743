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
    next.textContent = remaining === 1 ? "Show the answer" : `Next step (${shown} of ${steps.length})`;
    if (remaining === 0) controls.remove();
  }
  next.addEventListener("click", () => {
    shown += 1;
    update();
    steps[shown - 1].scrollIntoView({ behavior: "smooth", block: "nearest" });
  });
  all.addEventListener("click", () => { shown = steps.length; update(); });
  update();
}

document.querySelectorAll("[data-stepwise]").forEach(stepwise);

// Quizzes on the trace page: answer in place through the JSON API (the form still posts to
// the full result page without JavaScript).
document.querySelectorAll("form.quiz-form[data-api]").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    const picked = form.querySelector("input[name=answer]:checked");
    if (!picked) return;
    event.preventDefault();
    const box = form.querySelector(".quiz-feedback");
    box.className = "quiz-feedback";
    box.textContent = "Checking…";
    try {
      const response = await fetch(form.dataset.api, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ answer: Number(picked.value) }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || response.statusText);
      const feedback = body.feedback;
      box.classList.add(body.correct ? "is-correct" : "is-wrong");
      const verdict = document.createElement("strong");
      verdict.textContent = body.correct ? "Correct. " : `Not quite — the answer is ${feedback.correct_label}. `;
      const explanation = document.createElement("span");
      explanation.textContent = feedback.mistake || body.solution.final_answer.replace(/\*\*/g, "");
      const more = document.createElement("a");
      more.href = `${form.action.replace(/\/answer$/, "")}/attempts/${body.attempt_id}`;
      more.textContent = " See the worked solution";
      box.replaceChildren(verdict, explanation, more);
    } catch (error) {
      box.classList.add("is-wrong");
      box.textContent = `Could not check the answer: ${error.message}`;
    }
  });
});

// The playground: picking another scheduler redraws the form with its parameters.
document.querySelectorAll("select[data-reload]").forEach((select) => {
  select.addEventListener("change", () => {
    const form = select.form;
    const run = form.querySelector("input[name=run]");
    if (run) run.disabled = true;
    form.submit();
  });
});

// CodeMirror (vendored) for code, with line numbers. Tab indents, as a programmer expects —
// so, as CodeMirror documents for keyboard users, Esc then Tab (or Shift+Tab) leaves the
// editor; a line under it says so. The contenteditable input is the one screen readers read;
// it is labelled with the textarea's own label. The textarea stays the form field: CodeMirror
// writes back into it on submit.
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
      Tab: (cm) => cm.replaceSelection(" ".repeat(indent)),
      "Shift-Tab": (cm) => cm.execCommand("indentLess"),
      Esc: () => { released = true; },
    },
    ...options,
  });
  editor.on("keydown", (cm, event) => {
    // After Esc, CodeMirror ignores Tab: the browser moves the focus on, as it does anywhere.
    if (released && event.key === "Tab") event.codemirrorIgnore = true;
    else if (!["Escape", "Shift"].includes(event.key)) released = false;
  });
  editor.on("focus", () => { released = false; });
  const hint = document.createElement("p");
  hint.className = "form-help editor-hint";
  hint.id = `${textarea.id || textarea.name}-keys`;
  hint.textContent = "Tab indents in the editor. To leave it with the keyboard, press Esc, then Tab.";
  editor.getWrapperElement().after(hint);
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
      widgets.push(editor.addLineWidget(line, message));
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
