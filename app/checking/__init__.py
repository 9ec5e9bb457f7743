"""Checking: running what a question's key depends on, and judging answers against it.

Every key, worked-solution trace and recorded pipeline comes from a run made here:

- `jobs`: what to run for a question's variant, a code answer, a pipeline or a scheduler
  alone — typed jobs of the sandbox's protocol — and the one run key they are stored under.
- `runstore`: the one store of runs (table `sandbox_runs`), by run key, with an in-process
  memory: a run never changes once stored, so every instance may keep it.
- `runs`: `Runs` gets a run from the store or the sandbox, on a learner's or the system's
  behalf (what a learner's code may claim of its run was bounded where it crossed).
- `grading`: an answer against a key: choices, printed output, code (pure).
- `codecheck`: a code answer's run against the reference's, step by step (pure).
- `verify`: one `verify()` for import, editor and API: every variant, every reference and
  its self-tests, every pattern's pipeline, as many at once as the sandbox can take.

Rooms: checking imports the bank (data) and the sandbox; learning, authoring and traces use
checking; nothing here imports them.
"""
