"""Pipeline traces: a real training run recorded epoch by epoch, and the scheduler playground.

- `spec`: what a pipeline is (dataset, split, model, loss, optimizer, scheduler, epochs),
  validated like every question file; `pattern.yaml` holds one.
- `training`: the torch code that trains and records. It runs only inside the sandbox runner
  (it imports torch); the web process never imports it.
- `service`: what the web asks: the pattern's trace (stored by spec hash, recorded once) and
  playground runs (validated against the schedulers' real signatures, cached).
- `charts`: loss, accuracy and LR charts as plain geometry, drawn by a template as SVG.
"""
