"""The trace page and the playground.

- the trace page (its run stored, as every view after import) in requests/s, against a bare
  static file served by the same app in the same run;
- playground runs with the cache missed on purpose (every request a new spec): the lesson's
  pipeline trained for real, and LR-only, p50/p95.

    python -m bench.traces [--quick]
"""

from __future__ import annotations

import itertools
import sys

from bench.harness import check_targets, get, rounds, server

PATTERN = "lr-schedulers"
TARGETS = {"trace_rps": 300.0, "train_p50": 200.0, "lr_only_p50": 20.0}


def playground(mode: str):  # type: ignore[no-untyped-def]
    """A request factory whose every request is a new spec: no cached result to hit."""
    counter = itertools.count()

    def make(client: int, n: int) -> tuple[str, str, dict[str, object]]:
        gamma = round(0.3 + next(counter) * 1e-6, 6)  # distinct for every request of the run
        body = {
            "scheduler": "StepLR",
            "params": {"step_size": 3, "gamma": gamma},
            "mode": mode,
            "epochs": 10 if mode == "train" else 200,
        }
        return "POST", "/api/playground", body

    return make


def main() -> None:
    """Measure and print the report."""
    scale = 4 if "--quick" in sys.argv else 1
    with server() as srv:
        port = srv.port
        static = rounds(port, 8, 200 // scale, get("/static/css/app.css"))
        print(static.line("static file, 8 clients"))
        page = rounds(port, 8, 200 // scale, get(f"/patterns/{PATTERN}/trace"))
        print(page.line("trace page, 8 clients"))
        api = rounds(port, 8, 200 // scale, get(f"/api/patterns/{PATTERN}/trace"))
        print(api.line("trace API, 8 clients"))
        train = rounds(port, 1, 40 // scale, playground("train"))
        print(train.line("playground, train, 1 client"))
        lr_only = rounds(port, 1, 100 // scale, playground("lr-only"))
        print(lr_only.line("playground, LR only, 1 client"))
    print(
        f"{'trace page vs static file':<28} {page.throughput / static.throughput:7.2f}x "
        "the throughput of serving a file"
    )
    checks = [
        ("trace page throughput", page.throughput, ">=", TARGETS["trace_rps"], "req/s"),
        ("playground training p50", train.percentile(50), "<=", TARGETS["train_p50"], "ms"),
        ("playground LR-only p50", lr_only.percentile(50), "<=", TARGETS["lr_only_p50"], "ms"),
        ("errors", page.errors + api.errors + train.errors + lr_only.errors, "<=", 0, ""),
    ]
    sys.exit(check_targets(checks))


if __name__ == "__main__":
    main()
