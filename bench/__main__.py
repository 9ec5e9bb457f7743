"""`python -m bench`: run every benchmark; exit non-zero if any misses its targets."""

import subprocess
import sys

BENCHMARKS = [
    "bench.load",
    "bench.startup",
    "bench.grading",
    "bench.traces",
    "bench.code",
    "bench.runner",
    "bench.stats",
]

failed = [
    name
    for name in BENCHMARKS
    if subprocess.run([sys.executable, "-m", name, *sys.argv[1:]]).returncode != 0
]
sys.exit(1 if failed else 0)
