"""Grading an output question through the HTTP API, with the server's default settings (the
variant's key is stored: nothing runs) and with the sandbox cache off (every submission runs
the variant's code). Baseline, measured in the same run: a fresh `python` per snippet, as a
naive server would grade.

    python -m bench.grading [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import time

from app.bank.files import read_bank
from app.bank.schema import OutputQuestion
from app.checking.jobs import variant_job
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
TARGETS = {
    "stored_p50_1": 5.0,  # ms: the key stored, nothing runs
    "stored_throughput_64": 200.0,  # graded/s
    "stored_speedup": 500.0,  # × the naive baseline
    "run_p50_1": 8.0,  # ms: cache off, the variant's code runs every time
    "pss": 450.0,  # MiB, server and runner
}
LEVELS = ((1, 300), (8, 60), (64, 25))  # (clients, requests each)
PSS_SETTLE_S = 1.0


def _question() -> OutputQuestion:
    for pattern in read_bank(ROOT / "questions"):
        for source in pattern.questions:
            if source.question.id == QUESTION and isinstance(source.question, OutputQuestion):
                return source.question
    raise SystemExit(f"{QUESTION} not found")


def baseline_ms(runs: int) -> list[float]:
    """Wall time of running the same snippet in a fresh interpreter, as a naive server would."""
    code = variant_job(_question(), 0, timeout_s=30).code
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


def measure(label: str, scale: int, **settings: str) -> tuple[dict[int, LoadResult], int, float]:
    """Each level's median round on a fresh server with these settings; errors; PSS."""
    results: dict[int, LoadResult] = {}
    errors = 0
    with server(sandbox_slots="4", **settings) as srv:
        load(srv.port, clients=4, requests_each=20, make_request=submission)  # warm up
        for clients, each in LEVELS:
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
            print(results[clients].line(f"{label}, {clients} client(s)"))
        time.sleep(PSS_SETTLE_S)  # every slot's child forked again and ready, none half-made
        pss = pss_mb(srv.process.pid)
    return results, errors, pss


def main() -> None:
    """Measure and print the report."""
    quick = "--quick" in sys.argv
    scale = 4 if quick else 1
    print(f"Grading {QUESTION} through HTTP; medians of {ROUNDS} rounds")
    naive = baseline_ms(3 if quick else 8)
    print(
        f"{'baseline: fresh python/run':<32} p50 {median(naive):7.1f} ms  "
        f"({len(naive)} runs: torch import + first optimizer each time)"
    )
    stored, stored_errors, stored_pss = measure("key stored (default)", scale)
    ran, ran_errors, ran_pss = measure("cache off (runs)", scale, sandbox_cache="false")
    speedup = median(naive) / stored[1].percentile(50)
    print(
        f"{'memory (PSS, server+runner)':<32} {stored_pss:7.0f} MiB key stored, "
        f"{ran_pss:.0f} MiB cache off"
    )
    print(f"{'speed-up vs baseline, key stored':<32} {speedup:7.0f}x")
    print(f"{'speed-up vs baseline, cache off':<32} {median(naive) / ran[1].percentile(50):7.0f}x")
    checks = [
        (
            "key stored: p50, 1 client",
            stored[1].percentile(50),
            "<=",
            TARGETS["stored_p50_1"],
            "ms",
        ),
        (
            "key stored: throughput, 64 clients",
            stored[64].throughput,
            ">=",
            TARGETS["stored_throughput_64"],
            "req/s",
        ),
        ("key stored: speed-up vs fresh python", speedup, ">=", TARGETS["stored_speedup"], "x"),
        ("cache off: p50, 1 client", ran[1].percentile(50), "<=", TARGETS["run_p50_1"], "ms"),
        ("errors, every round", stored_errors + ran_errors, "<=", 0, ""),
        ("PSS", max(stored_pss, ran_pss), "<=", TARGETS["pss"], "MiB"),
    ]
    sys.exit(check_targets(checks))


if __name__ == "__main__":
    main()
