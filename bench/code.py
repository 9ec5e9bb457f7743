"""Grading a code question: the learner's code runs in the sandbox every time, the reference's
run comes from the store (recorded at import). Baseline, in the same run: grading a choice
question through the same API, which runs nothing.

    python -m bench.code [--quick]
"""

from __future__ import annotations

import sys

from bench.harness import check_targets, rounds, server

QUESTION = "lr-code-two-phase"  # 30 epochs side by side, a LambdaLR answer
ANSWER = """\
def two_phase(epoch):
    if epoch < 20:
        return 0.5 ** (epoch // 5)
    return 0.5 ** 3 * 0.9 ** (epoch - 19)

scheduler = lr_scheduler.LambdaLR(optimizer, two_phase)
"""
TARGETS = {"p50_1": 10.0, "throughput_32": 100.0}


def code_answer(client: int, n: int) -> tuple[str, str, dict[str, object]]:
    """A correct answer, made distinct per request so nothing could be reused."""
    return (
        "POST",
        f"/api/questions/{QUESTION}/attempts",
        {"answer": ANSWER + f"# request {client}-{n}\n"},
    )


def choice_answer(client: int, n: int) -> tuple[str, str, dict[str, object]]:
    """The baseline: an answer graded without running anything."""
    return "POST", "/api/questions/lr-purpose/attempts", {"answer": 3}


def main() -> None:
    """Measure and print the report."""
    scale = 4 if "--quick" in sys.argv else 1
    with server() as srv:
        baseline = rounds(srv.port, 1, 200 // scale, choice_answer)
        print(baseline.line("choice question, 1 client"))
        one = rounds(srv.port, 1, 200 // scale, code_answer)
        print(one.line("code question, 1 client"))
        many = rounds(srv.port, 32, 20 // scale, code_answer)
        print(many.line("code question, 32 clients"))
    print(
        f"{'code vs choice (p50)':<28} {one.percentile(50) / baseline.percentile(50):7.2f}x "
        "the time of grading without running code"
    )
    checks = [
        ("code question p50, 1 client", one.percentile(50), "<=", TARGETS["p50_1"], "ms"),
        (
            "code question throughput, 32 clients",
            many.throughput,
            ">=",
            TARGETS["throughput_32"],
            "req/s",
        ),
        ("errors", one.errors + many.errors, "<=", 0, ""),
    ]
    sys.exit(check_targets(checks))


if __name__ == "__main__":
    main()
