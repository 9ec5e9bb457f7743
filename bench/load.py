"""A class at once: learners with their own cookies, all from one address (a campus NAT).

Each learner arrives (spread over the first seconds), lists the lesson's questions, then
until the time is up: answers a choice question, an output question (reading its variant
first), a code question (the code runs in the sandbox every time), opens the lesson page,
and once, at a step of their own, takes a whole test (start, ten answers, finish) —
thinking between steps.
Every request has a 30 s client timeout. Reported per level: requests/s, latency percentiles
per endpoint, statuses, time-outs, and attempts acknowledged (201) against attempts stored
(read from the database afterwards: every acknowledged one must be there).

Baseline, in the same run: 64 clients fetching a static file without pause — what the
server answers when a request costs it next to nothing; each level's throughput is printed
as a share of it.

Then two runs about fairness and recovery:
- hogs: H learners submit endless loops, back to back; once each has had a run (the
  sandbox cannot tell a hog from anyone else before its first five-second loop ends), one
  honest learner answers the code question, pausing a second between answers, for the
  given time; the honest learner's latencies;
- runner kill: under 50 learners the sandbox runner is killed with kill -9; how long until
  a code answer is graded again.

    python -m bench.load [--learners 50,200,500] [--seconds 45] [--hogs 20] [--workers N]
                         [--quick]

With --database, the same class on several deployments side by side instead: SQLite with
one instance (the baseline), PostgreSQL with one instance, and PostgreSQL with N instances
sharing the database, each learner's requests spread over them by round robin (as a load
balancer does). Each on a fresh database; PostgreSQL's throughput is printed as a share of
SQLite's.

    python -m bench.load --database postgresql://user@host/postgres [--instances 2]
                         [--learners 200,500] [--seconds 45]
    python -m bench.load --database postgresql   # a throwaway server, as make test-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from app.db import Database
from app.models import Attempt
from bench.code import ANSWER as CODE_ANSWER
from bench.code import QUESTION as CODE
from bench.harness import (
    Check,
    Connection,
    check_targets,
    descendants,
    fresh_postgres_database,
    get,
    load,
    server,
)

SLUG = "lr-schedulers"
CHOICE = ["lr-purpose", "lr-steplr-syntax", "lr-step-order", "lr-steplr-three-steps"]
OUTPUT = ["lr-output-steplr-calls", "lr-output-multisteplr", "lr-output-exponentiallr"]
ENDLESS = "while True: pass"
STATIC = "/static/css/app.css"
CLIENT_TIMEOUT_S = 30.0
ARRIVAL_S = 5.0  # learners arrive over this many seconds
TEST_BETWEEN = (3, 20)  # the step at which a learner takes their test, at random
TARGETS = {
    "learners": 500,
    "p99_ms": 10_000.0,
    "throughput": 100.0,
    "ok_share": 90.0,
    "honest_p50_ms": 3_000.0,
    "recovery_s": 2.0,
}


@dataclass
class Tally:
    """What one level of load produced."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    acknowledged: list[int] = field(default_factory=list)  # attempt ids answered 201
    finished_tests: int = 0
    requests: int = 0
    seconds: float = 0.0
    refusals: Counter[str] = field(default_factory=Counter)  # endpoint, status and message
    window: tuple[float, float] = (0.0, 0.0)  # all learners in, none leaving (monotonic)
    in_window: int = 0  # requests answered in the window

    def record(self, label: str, status: int, elapsed_ms: float) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.latencies[label].append(elapsed_ms)
        if self.window[0] <= time.monotonic() <= self.window[1]:
            self.in_window += 1

    @property
    def throughput(self) -> float:
        """Requests answered per second while the whole class was working."""
        return self.in_window / (self.window[1] - self.window[0])

    @property
    def all_latencies(self) -> list[float]:
        return [ms for values in self.latencies.values() for ms in values]

    @property
    def ok_share(self) -> float:
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return 100 * ok / max(1, self.requests + self.timeouts)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0 for no values)."""
    if not values:
        return 0.0
    data = sorted(values)
    return data[min(len(data) - 1, round(p / 100 * (len(data) - 1)))]


class Learner:
    """One simulated learner with its own cookie: a keep-alive connection to each instance,
    its requests sent to one instance after the other (a round-robin load balancer)."""

    def __init__(self, ports: list[int], tally: Tally, think: tuple[float, float]) -> None:
        self.connections = [Connection(port) for port in ports]
        self.ports = ports
        self.turn = random.randrange(len(ports))
        self.cookie = ""
        self.tally = tally
        self.think = think

    async def call(
        self, label: str, method: str, path: str, body: object | None = None
    ) -> tuple[int, object]:
        """One request; (status, JSON body or None). A time-out costs the connection."""
        n, self.turn = self.turn % len(self.ports), self.turn + 1
        connection = self.connections[n]
        connection.cookie = self.cookie
        started = time.perf_counter()
        try:
            status, raw = await asyncio.wait_for(
                connection.request(method, path, body), CLIENT_TIMEOUT_S
            )
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
            self.tally.timeouts += 1
            connection.close()
            self.connections[n] = Connection(self.ports[n])
            return 0, None
        self.cookie = connection.cookie
        self.tally.record(label, status, (time.perf_counter() - started) * 1000)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if status >= 400:
            detail = body.get("detail", "") if isinstance(body, dict) else ""
            self.tally.refusals[f"{label}: {status} {str(detail)[:70]}"] += 1
        return status, body

    async def pause(self) -> None:
        await asyncio.sleep(random.uniform(*self.think))

    async def attempt(self, label: str, question: str, body: dict[str, object]) -> None:
        status, answer = await self.call(label, "POST", f"/api/questions/{question}/attempts", body)
        if status == 201 and isinstance(answer, dict):
            self.tally.acknowledged.append(int(answer["attempt_id"]))

    async def take_test(self) -> None:
        status, test = await self.call("test: start", "POST", f"/api/patterns/{SLUG}/tests", {})
        if status != 200 or not isinstance(test, dict):
            return
        for item in test["questions"]:
            kind = item["question"]["kind"]
            answer = {"choice": 0, "output": "[0.05]"}.get(kind, "scheduler = None")  # code, fix
            await self.call(
                "test: answer",
                "PUT",
                f"/api/tests/{test['id']}/questions/{item['number']}/answer",
                {"answer": answer},
            )
            await asyncio.sleep(random.uniform(0, self.think[0]))
        status, _ = await self.call("test: finish", "POST", f"/api/tests/{test['id']}/finish", {})
        if status == 200:
            self.tally.finished_tests += 1

    async def study(self, until: float) -> None:
        """Arrive, list the questions, then answer and read until `until`."""
        await asyncio.sleep(random.uniform(0, ARRIVAL_S))
        await self.call("list questions", "GET", f"/api/patterns/{SLUG}/questions")
        step, test_at = 0, random.randint(*TEST_BETWEEN)
        while time.monotonic() < until:
            await self.pause()
            step += 1
            if step == test_at:
                await self.take_test()
                continue
            action = step % 4
            if action == 0:
                await self.attempt(
                    "choice answer", random.choice(CHOICE), {"answer": random.randrange(4)}
                )
            elif action == 1:
                question = random.choice(OUTPUT)
                status, shown = await self.call(
                    "output question", "GET", f"/api/questions/{question}"
                )
                if status == 200 and isinstance(shown, dict):
                    await self.pause()
                    await self.attempt(
                        "output answer",
                        question,
                        {"answer": "[0.05]", "variant": shown["variant"]},
                    )
            elif action == 2:
                await self.attempt("code answer", CODE, {"answer": CODE_ANSWER})
            else:
                await self.call("lesson page", "GET", f"/patterns/{SLUG}")
        for connection in self.connections:
            connection.close()


async def _class(
    ports: list[int], learners: int, seconds: float, think: tuple[float, float]
) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    tally.window = (time.monotonic() + ARRIVAL_S, until)
    started = time.perf_counter()
    await asyncio.gather(*(Learner(ports, tally, think).study(until) for _ in range(learners)))
    tally.seconds = time.perf_counter() - started
    return tally


def stored_attempts(database_url: str, ids: list[int]) -> int:
    """How many of the attempt ids are in the database."""
    database = Database(database_url)
    found = 0
    with database.session() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found += (
                session.scalar(
                    select(func.count()).select_from(Attempt).where(Attempt.id.in_(chunk))
                )
                or 0
            )
    database.dispose()
    return found


def report(label: str, tally: Tally, stored: int) -> None:
    """Print one level's figures."""
    every = tally.all_latencies
    print(
        f"\n{label}: {tally.throughput:.1f} req/s once all had arrived; {tally.requests} "
        f"requests in {tally.seconds:.0f} s; "
        f"p50 {percentile(every, 50):.0f} ms, p95 {percentile(every, 95):.0f} ms, "
        f"p99 {percentile(every, 99):.0f} ms"
    )
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    print(f"  statuses {statuses}; time-outs {tally.timeouts}; 2xx {tally.ok_share:.1f} %")
    print(
        f"  attempts acknowledged {len(tally.acknowledged)}, stored {stored}; "
        f"tests finished {tally.finished_tests}"
    )
    for refusal, n in tally.refusals.most_common(8):
        print(f"  {n:6d} × {refusal}")
    for name, values in sorted(tally.latencies.items()):
        print(
            f"    {name:<16} n {len(values):6d}  p50 {percentile(values, 50):7.0f} ms  "
            f"p95 {percentile(values, 95):7.0f} ms  p99 {percentile(values, 99):7.0f} ms"
        )


SLOTS, RUN_LIMIT_S = 4, 5.0  # the server's default sandbox slots and time limit


async def _hogs(port: int, hogs: int, seconds: float) -> tuple[list[float], int, int]:
    """Hogs loop endlessly beside one honest learner; the honest learner's latencies (ms),
    answers graded, answers sent."""
    first_round = hogs * RUN_LIMIT_S / SLOTS
    until = time.monotonic() + first_round + seconds
    honest_ms: list[float] = []
    sent = graded = 0

    async def hog() -> None:
        connection = Connection(port)
        while time.monotonic() < until:
            try:
                status, _ = await asyncio.wait_for(
                    connection.request(
                        "POST", f"/api/questions/{CODE}/attempts", {"answer": ENDLESS}
                    ),
                    CLIENT_TIMEOUT_S,
                )
            except (TimeoutError, OSError):
                return
            if status == 429:  # over its share: told when to come back; it comes back sooner
                await asyncio.sleep(0.5)
        connection.close()

    async def honest() -> None:
        nonlocal sent, graded
        connection = Connection(port)
        await asyncio.sleep(first_round)  # every hog has run once: they are known now
        while time.monotonic() < until:
            sent += 1
            started = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(
                    connection.request(
                        "POST", f"/api/questions/{CODE}/attempts", {"answer": CODE_ANSWER}
                    ),
                    CLIENT_TIMEOUT_S,
                )
            except (TimeoutError, OSError):  # counted as not graded; a fresh connection
                status, body = 0, b""
                connection.close()
                connection = Connection(port)
            honest_ms.append((time.perf_counter() - started) * 1000)
            graded += status == 201 and json.loads(body)["correct"] is True
            await asyncio.sleep(1)
        connection.close()

    await asyncio.gather(honest(), *(hog() for _ in range(hogs)))
    return honest_ms, graded, sent


def runner_pid(server_pid: int) -> int | None:
    """The sandbox runner below the server (named by the zygote when it forks it)."""
    for pid in descendants(server_pid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sandbox-runner":
                return pid
        except OSError:
            continue
    return None


async def _kill_runner(port: int, server_pid: int, learners: int) -> float:
    """Seconds from kill -9 of the runner until a code answer is graded again, under load."""
    tally = Tally()
    until = time.monotonic() + 20
    background = asyncio.gather(
        *(Learner([port], tally, (0.5, 1.5)).study(until) for _ in range(learners))
    )
    await asyncio.sleep(8)
    pid = runner_pid(server_pid)
    assert pid is not None, "no sandbox runner found"
    probe = Connection(port)
    os.kill(pid, signal.SIGKILL)
    killed = time.perf_counter()
    while True:
        try:
            status, _ = await asyncio.wait_for(
                probe.request("POST", f"/api/questions/{CODE}/attempts", {"answer": CODE_ANSWER}),
                CLIENT_TIMEOUT_S,
            )
        except (TimeoutError, OSError):
            status = 0
            probe.close()
            probe = Connection(port)
        if status == 201:
            break
        await asyncio.sleep(0.02)
    recovered = time.perf_counter() - killed
    probe.close()
    await background
    return recovered


def one_server(args: argparse.Namespace, levels: list[int], think: tuple[float, float]) -> int:
    """The class at each level, then hogs and a killed runner, on one SQLite server; the
    exit status (1 if a target is missed)."""
    checks: list[Check] = []
    with server(workers=str(args.workers)) as srv:
        print(
            f"{len(levels)} levels of {args.seconds:.0f} s, thinking {think[0]}-{think[1]} s "
            f"between steps; {args.workers} server worker(s)"
        )
        static = load(srv.port, clients=64, requests_each=50, make_request=get(STATIC))
        print(static.line("baseline: static file, 64"))
        for learners in levels:
            tally = asyncio.run(_class(srv.ports, learners, args.seconds, think))
            stored = stored_attempts(srv.database_url, tally.acknowledged)
            report(f"{learners} learners", tally, stored)
            print(f"  {tally.throughput / static.throughput:.2f}x the static file's req/s")
            checks.append(
                (
                    f"{learners} learners: lost attempts",
                    len(tally.acknowledged) - stored,
                    "==",
                    0,
                    "",
                )
            )
            if learners == TARGETS["learners"]:
                every = tally.all_latencies
                checks += [
                    (f"{learners} learners: time-outs", tally.timeouts, "==", 0, ""),
                    (f"{learners} learners: 5xx", tally.server_errors, "==", 0, ""),
                    (f"{learners} learners: 2xx", tally.ok_share, ">=", TARGETS["ok_share"], "%"),
                    (
                        f"{learners} learners: p99",
                        percentile(every, 99),
                        "<=",
                        TARGETS["p99_ms"],
                        "ms",
                    ),
                    (
                        f"{learners} learners: throughput",
                        tally.throughput,
                        ">=",
                        TARGETS["throughput"],
                        "req/s",
                    ),
                ]
        honest_ms, graded, sent = asyncio.run(_hogs(srv.port, args.hogs, args.seconds))
        print(
            f"\nhonest learner beside {args.hogs} endless loops: p50 "
            f"{percentile(honest_ms, 50):.0f} ms, max {max(honest_ms):.0f} ms, "
            f"{graded} of {sent} answers graded right"
        )
        checks += [
            (
                "honest p50 beside hogs",
                percentile(honest_ms, 50),
                "<=",
                TARGETS["honest_p50_ms"],
                "ms",
            ),
            ("honest answers not graded", sent - graded, "==", 0, ""),
        ]
        recovered = asyncio.run(_kill_runner(srv.port, srv.process.pid, 50))
        print(f"\nrunner killed under 50 learners: grading again after {recovered:.2f} s")
        checks.append(("grading again after kill -9", recovered, "<=", TARGETS["recovery_s"], "s"))
    print()
    return check_targets(checks)


@contextmanager
def postgres_server(database: str) -> Iterator[str]:
    """The URL of a PostgreSQL server: the one given, or (for `postgresql`) a throwaway
    server of our own, as make test-postgres starts."""
    if "://" in database:
        yield database
        return
    from tests.databases import throwaway_postgres

    with throwaway_postgres() as throwaway:
        yield throwaway.url("postgres")


def deployments(args: argparse.Namespace, levels: list[int], think: tuple[float, float]) -> int:
    """The class on SQLite, PostgreSQL and PostgreSQL with N instances; the exit status."""
    results: dict[tuple[str, int], tuple[Tally, int]] = {}
    checks: list[Check] = []
    with postgres_server(args.database) as server_url:
        setups = [("SQLite, 1 instance", None, 1), ("PostgreSQL, 1 instance", server_url, 1)]
        if args.instances > 1:
            setups.append((f"PostgreSQL, {args.instances} instances", server_url, args.instances))
        print(
            f"{len(levels)} levels of {args.seconds:.0f} s, thinking {think[0]}-{think[1]} s "
            f"between steps; {args.workers} worker(s) per instance"
        )
        for label, url, instances in setups:
            with ExitStack() as stack:
                database_url = stack.enter_context(fresh_postgres_database(url)) if url else None
                srv = stack.enter_context(
                    server(
                        instances=instances, database_url=database_url, workers=str(args.workers)
                    )
                )
                for learners in levels:
                    tally = asyncio.run(_class(srv.ports, learners, args.seconds, think))
                    stored = stored_attempts(srv.database_url, tally.acknowledged)
                    report(f"{label}, {learners} learners", tally, stored)
                    results[label, learners] = tally, stored
    print(
        f"\n{'':<28} {'learners':>8} {'req/s':>7} {'x SQLite':>8} {'p99 ms':>7} "
        f"{'errors':>6} {'acknowledged':>12} {'stored':>7}"
    )
    for learners in levels:
        baseline = results[setups[0][0], learners][0].throughput
        for label, url, _ in setups:
            tally, stored = results[label, learners]
            errors = tally.server_errors + tally.timeouts
            ratio = tally.throughput / baseline
            print(
                f"{label:<28} {learners:>8} {tally.throughput:>7.1f} {ratio:>8.2f} "
                f"{percentile(tally.all_latencies, 99):>7.0f} {errors:>6} "
                f"{len(tally.acknowledged):>12} {stored:>7}"
            )
            name = f"{label}, {learners} learners"
            checks += [
                (f"{name}: 5xx and time-outs", errors, "==", 0, ""),
                (f"{name}: lost attempts", len(tally.acknowledged) - stored, "==", 0, ""),
            ]
            if url is not None:
                checks.append((f"{name}: x SQLite's req/s", ratio, ">=", 0.7, ""))
    print()
    return check_targets(checks)


def main() -> None:
    """Measure and print the report; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--learners", help="levels, comma-separated (default 50,200,500; with --database 200,500)"
    )
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--think", default="1,3", help="seconds between steps: min,max")
    parser.add_argument("--hogs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per instance")
    parser.add_argument("--quick", action="store_true", help="shorter runs, same levels")
    parser.add_argument(
        "--database",
        help="compare deployments on PostgreSQL: a server's URL, or `postgresql` for a "
        "throwaway server (Debian's package)",
    )
    parser.add_argument(
        "--instances", type=int, default=2, help="with --database: instances side by side"
    )
    args = parser.parse_args()
    default_levels = "200,500" if args.database else "50,200,500"
    levels = [int(n) for n in (args.learners or default_levels).split(",")]
    if args.quick:
        args.seconds = 15.0
    low, high = (float(x) for x in args.think.split(","))
    run = deployments if args.database else one_server
    sys.exit(run(args, levels, (low, high)))


if __name__ == "__main__":
    main()
