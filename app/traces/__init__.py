"""Pipeline traces: a real training run recorded epoch by epoch, and the scheduler playground.

- `service`: what the web asks: the pattern's trace (its run, from the store of runs; recorded
  at import) and playground runs, as views ready to show.
- `playground`: playground requests validated against the schedulers' real signatures.
- `charts`: loss, accuracy and LR charts as plain geometry, drawn by a template as SVG.

What a pipeline is (`app.sandbox.specs`) and the torch code that trains it
(`app.sandbox.training`) belong to the sandbox: they run only inside the runner.
"""
