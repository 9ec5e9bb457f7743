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
