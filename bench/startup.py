"""How fast the server is back: `make run` on an existing database, timed.

After a crash (or kill -9) a course's server is started as `make run` starts it:
`serve --questions questions` migrates (already at the latest schema), imports questions/
(unchanged) and serves, in one process. Timed here until it answers a choice question and
until it grades a code question (its sandbox runner is warm), the median of three; and the
separate commands, beside two baselines measured in the same run: a bare Python interpreter
starting, and a Python importing torch (what a sandbox runner cannot avoid).

    python -m bench.startup
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import httpx2 as httpx

from bench.harness import ROOT, check_targets, free_port
from bench.load import CODE, CODE_ANSWER

ROUNDS = 3
TARGETS = {"first_answer_s": 5.0, "runner_warm_s": 8.0}


def timed(action: Callable[[], object]) -> float:
    """Seconds `action` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(*args: str, env: dict[str, str]) -> None:
    subprocess.run(args, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def serve_until(env: dict[str, str]) -> tuple[float, float]:
    """Start `serve --questions questions` (what `make run` runs); seconds until it answers
    a choice question, and until it grades a code question (its sandbox runner is warm)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--questions", "questions"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            first = _until(
                lambda: client.post("/api/questions/lr-purpose/attempts", json={"answer": 1})
            )
            first_s = time.perf_counter() - started
            answer = {"answer": CODE_ANSWER}
            _until(lambda: client.post(f"/api/questions/{CODE}/attempts", json=answer))
            warm_s = time.perf_counter() - started
        assert first.status_code == 201
        return first_s, warm_s
    finally:
        process.terminate()
        process.wait(timeout=30)


def _until(request: Callable[[], httpx.Response]) -> httpx.Response:
    """Send `request` until it is answered 201 (connections refused and 503s mean: not yet)."""
    while True:
        try:
            response = request()
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 201:
            return response
        time.sleep(0.02)


def main() -> None:
    """Measure and print the report; exit 1 if a target is missed."""
    with tempfile.TemporaryDirectory(prefix="tracewise-bench-") as tmp:
        env = {**os.environ, "TRACEWISE_VAR_DIR": tmp, "PYTHONWARNINGS": "ignore"}
        python = [sys.executable, "-m", "app"]
        run(*python, "migrate", env=env)
        run(*python, "import-questions", "questions", env=env)  # the first import runs it all
        figures: dict[str, list[float]] = {}
        for _ in range(ROUNDS):
            steps = {
                "baseline: python starts": lambda: run(sys.executable, "-c", "pass", env=env),
                "baseline: python imports torch": lambda: run(
                    sys.executable, "-c", "import torch", env=env
                ),
                "migrate (at the latest schema)": lambda: run(*python, "migrate", env=env),
                "import-questions (unchanged)": lambda: run(
                    *python, "import-questions", "questions", env=env
                ),
            }
            for name, step in steps.items():
                figures.setdefault(name, []).append(timed(step))
            first_s, warm_s = serve_until(env)
            figures.setdefault("make run: first answer", []).append(first_s)
            figures.setdefault("make run: first code graded", []).append(warm_s)
    median = {name: statistics.median(values) for name, values in figures.items()}
    for name, seconds in median.items():
        print(f"{name:<34} {seconds:6.2f} s")
    first, warm = median["make run: first answer"], median["make run: first code graded"]
    torch_s = median["baseline: python imports torch"]
    print(f"{'runner warm vs importing torch':<34} {warm / torch_s:6.2f}x")
    sys.exit(
        check_targets(
            [
                ("make run to the first answer", first, "<=", TARGETS["first_answer_s"], "s"),
                ("make run to the first code graded", warm, "<=", TARGETS["runner_warm_s"], "s"),
            ]
        )
    )


if __name__ == "__main__":
    main()
