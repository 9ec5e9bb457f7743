"""Grading an output question through the HTTP API with caching off: every submission runs
the code in the sandbox. Baseline, measured in the same run: a fresh `python` per snippet.

    python -m bench.grading [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import time

from app.bank.files import read_bank
from app.bank.schema import OutputQuestion
from app.runs import job_for
from bench.harness import (
    ROOT,
    ROUNDS,
    LoadResult,
    check_targets,
    load,
    median,
    median_round,
    pss_mb,
    server,
)

QUESTION = "lr-output-steplr-calls"  # 30 variants: StepLR, a few steps, print get_last_lr()
TARGETS = {"p50_1": 15.0, "p99_1": 60.0, "throughput_64": 100.0, "speedup": 150.0, "pss": 800.0}


def _question() -> OutputQuestion:
    for pattern in read_bank(ROOT / "questions"):
        for source in pattern.questions:
            if source.question.id == QUESTION and isinstance(source.question, OutputQuestion):
                return source.question
    raise SystemExit(f"{QUESTION} not found")


def baseline_ms(runs: int) -> list[float]:
    """Wall time of running the same snippet in a fresh interpreter, as a naive server would."""
    code = job_for(_question(), 0, timeout_s=30).code
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def submission(client: int, n: int) -> tuple[str, str, dict[str, object]]:
    """Client `client`'s n-th answer, spread over the 30 variants (so over different code)."""
    return (
        "POST",
        f"/api/questions/{QUESTION}/attempts",
        {"answer": "0.05", "variant": (client * 7 + n) % 30},
    )


def main() -> None:
    """Measure and print the report."""
    quick = "--quick" in sys.argv
    scale = 4 if quick else 1
    print(f"Grading {QUESTION} through HTTP, sandbox cache off (every submission runs the code)")
    naive = baseline_ms(3 if quick else 8)
    print(
        f"{'baseline: fresh python/run':<28} p50 {median(naive):7.1f} ms  "
        f"({len(naive)} runs: torch import + first optimizer each time)"
    )

    with server(sandbox_cache="false", sandbox_slots="4") as srv:
        load(srv.port, clients=4, requests_each=20, make_request=submission)  # warm up
        results: dict[int, LoadResult] = {}
        errors = 0
        for clients, each in ((1, 300), (8, 60), (64, 25)):
            rounds = [
                load(
                    srv.port,
                    clients=clients,
                    requests_each=max(each // scale, 5),
                    make_request=submission,
                )
                for _ in range(ROUNDS)
            ]
            results[clients] = median_round(rounds)
            errors += sum(result.errors for result in rounds)
            print(results[clients].line(f"{clients} client(s), median of {ROUNDS}"))
        pss = pss_mb(srv.process.pid)

    one, many = results[1], results[64]
    speedup = median(naive) / one.percentile(50)
    print(f"{'memory (PSS, server+runner)':<28} {pss:7.0f} MiB")
    print(f"{'speed-up vs baseline (p50)':<28} {speedup:7.0f}x")
    checks = [
        ("p50, 1 client", one.percentile(50), "<=", TARGETS["p50_1"], "ms"),
        ("p99, 1 client", one.percentile(99), "<=", TARGETS["p99_1"], "ms"),
        ("throughput, 64 clients", many.throughput, ">=", TARGETS["throughput_64"], "req/s"),
        ("errors, every round", errors, "<=", 0, ""),
        ("speed-up vs fresh python", speedup, ">=", TARGETS["speedup"], "x"),
        ("PSS", pss, "<=", TARGETS["pss"], "MiB"),
    ]
    sys.exit(check_targets(checks))


if __name__ == "__main__":
    main()
