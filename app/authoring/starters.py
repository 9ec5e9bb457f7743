"""Starting points for the editor: a valid question of each kind, to change."""

from __future__ import annotations

from app.errors import Invalid


def starter_source(kind: str) -> str:
    """A valid question of `kind` to start from: every field an author usually fills."""
    starter = _STARTERS.get(kind)
    if starter is None:
        raise Invalid(f"There is no question kind {kind!r}.", field="kind")
    return starter


STARTER_KINDS = ("choice", "output", "code", "fix", "steps")


_STARTERS = {
    "choice": """\
id: new-choice-question
# Shown in every list of questions: short plain text that never gives the answer away.
title: StepLR after four epochs
kind: choice
difficulty: medium
modes: [practice, test]
tags: [steplr]
prompt: |
  An optimizer starts at `lr=0.1` with `StepLR(step_size=2, gamma=0.5)`. What is the
  learning rate after four epochs (four `scheduler.step()` calls)?
choices:
  - text: "0.025"
    correct: true
  - text: "0.05"
    mistake: Counting one halving too few; the LR halves after every `step_size` calls.
  - text: "0.0125"
    mistake: Halving every call, not every `step_size` calls.
hint: Count how many times `step_size` fits into the number of calls.
solution:
  steps:
    - title: Count the decays
      body: Four calls with `step_size=2` decay the LR twice.
  final_answer: 0.1 × 0.5² = **0.025**
  quick_check: LR = lr₀ × γ^⌊calls / step_size⌋.
mistakes:
  - Forgetting that the decay happens only every `step_size` calls.
""",
    "output": """\
id: new-output-question
title: StepLR after a few calls
kind: output
difficulty: medium
modes: [practice, test]
tags: [steplr]
# The answer box already asks "What does this code print?": the prompt sets the scene.
prompt: |
  The optimizer starts at `lr=0.1`, and `StepLR(step_size={{ step_size }}, gamma=0.5)` is
  called {{ calls }} times.
code: |
  import torch
  model = torch.nn.Linear(2, 1)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
  scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size={{ step_size }}, gamma=0.5)
  for _ in range({{ calls }}):
      optimizer.step()
      scheduler.step()
  print(scheduler.get_last_lr())
params:
  step_size: [2, 3]
  calls: 2..5
hint: The LR is multiplied by `gamma` once every `step_size` calls.
solution:
  steps:
    - title: Count the decays
      body: >-
        {{ calls }} calls with `step_size={{ step_size }}` decay the LR
        ⌊{{ calls }} / {{ step_size }}⌋ times.
""",
    "code": """\
id: new-code-question
title: A StepLR halving every 3 epochs
kind: code
difficulty: medium
modes: [practice, test]
tags: [steplr]
prompt: |
  Build `scheduler` so that the learning rate halves every 3 epochs.
setup: |
  import torch
  model = torch.nn.Linear(2, 1)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
starter: |
  scheduler = ...
reference: |
  scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
check:
  kind: trajectory
  epochs: 10
self_tests:
  - code: |
      scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    divergence: 2
    mistake: off-by-one
    why: Halving one epoch early.
hint: StepLR takes `step_size` and `gamma`.
""",
    "fix": """\
id: new-fix-question
title: A StepLR loop stepped every batch
kind: fix
difficulty: medium
modes: [practice, test]
tags: [steplr, training-loop]
prompt: |
  This loop runs 4 epochs (epochs 0–3) of 3 batches each, and is meant to halve the learning
  rate every 2 epochs: epochs 0–1 at 0.1, epochs 2–3 at 0.05.
setup: |
  import torch
  model = torch.nn.Linear(2, 1)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
  batches = [torch.randn(4, 2) for _ in range(3)]

  def train_step(x):
      optimizer.zero_grad()
      model(x).sum().backward()
      optimizer.step()
# What the editor starts from: the import checks that it fails, diagnosed as `bug`.
buggy: |
  scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
  for epoch in range(4):
      for x in batches:
          train_step(x)
          scheduler.step()
bug: per-batch
reference: |
  scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
  for epoch in range(4):
      for x in batches:
          train_step(x)
      scheduler.step()
check:
  drive: loop
  epochs: 4
  steps_per_epoch: 3
self_tests:
  - code: |
      scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=6, gamma=0.5)
      for epoch in range(4):
          for x in batches:
              train_step(x)
              scheduler.step()
    correct: true
    why: Stepped every batch, with the length counted in batches.
hint: How many times per epoch does this loop call `scheduler.step()`?
""",
    "steps": """\
id: new-steps-scenario
title: StepLR, epoch by epoch
kind: steps
difficulty: easy
modes: [practice]
tags: [steplr]
prompt: |
  The optimizer starts at `lr=0.1`; `StepLR` halves the rate every 2 epochs.
setup: |
  import torch
  model = torch.nn.Linear(2, 1)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
code: |
  scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
epochs: 6
rule: "`StepLR` multiplies the rate by `gamma` every `step_size` calls of `scheduler.step()`."
moments:
  - epoch: 2
    why: "Two calls of `scheduler.step()` so far, one `step_size`: the first halving."
hint: Epoch e trains at the rate set by e calls of `scheduler.step()`.
""",
}
