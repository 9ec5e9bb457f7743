"""The sandbox's fair queue: one run per learner, a budget per learner, fair turns."""

from __future__ import annotations

import pytest

from app.errors import Busy, TooManyRequests
from app.sandbox.scheduler import LIGHT_USE_S, SYSTEM, FairQueue, Owner


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_queue(clock: Clock, *, queue_limit: int = 10, budget_s: float = 30) -> FairQueue[str]:
    return FairQueue(queue_limit=queue_limit, budget_s=budget_s, window_s=60, clock=clock)


def run(queue: FairQueue[str], clock: Clock, seconds: float) -> str:
    """Start the next run and let it take `seconds`; its item."""
    popped = queue.pop()
    assert popped is not None
    owner, item = popped
    clock.now += seconds
    queue.finished(owner, seconds)
    return item


def test_a_learner_has_one_run_at_a_time(clock: Clock) -> None:
    queue = make_queue(clock)
    alice = Owner.learner("alice")
    queue.push(alice, "first")
    with pytest.raises(TooManyRequests, match="still running"):
        queue.push(alice, "second")  # while the first waits
    popped = queue.pop()
    assert popped == (alice, "first")
    with pytest.raises(TooManyRequests):
        queue.push(alice, "second")  # while the first runs
    queue.finished(alice, 0.05)
    queue.push(alice, "second")  # once it is done


def test_staff_and_the_system_may_queue_many(clock: Clock) -> None:
    queue = make_queue(clock, queue_limit=1)
    for n in range(50):
        queue.push(SYSTEM, f"variant {n}")
        queue.push(Owner.staff(7), f"check {n}")
    assert len(queue) == 100


def test_waiting_learners_are_served_in_turn(clock: Clock) -> None:
    queue = make_queue(clock)
    for name in ("a", "b", "c"):
        queue.push(Owner.learner(name), name)
        clock.now += 1
    assert [run(queue, clock, 0.1) for _ in range(3)] == ["a", "b", "c"]


def test_who_ran_least_goes_first(clock: Clock) -> None:
    queue = make_queue(clock)
    hog, honest = Owner.learner("hog"), Owner.learner("honest")
    queue.push(hog, "loop")
    run(queue, clock, 5)  # the hog's endless loop, stopped at its limit
    queue.push(hog, "loop again")
    clock.now += 1
    queue.push(honest, "answer")  # arrives later, has run nothing
    assert run(queue, clock, 0.05) == "answer"
    assert run(queue, clock, 5) == "loop again"


def test_the_last_free_slot_is_kept_for_light_users(clock: Clock) -> None:
    queue = make_queue(clock)
    hog, honest = Owner.learner("hog"), Owner.learner("honest")
    queue.push(hog, "loop")
    run(queue, clock, LIGHT_USE_S + 1)
    queue.push(hog, "loop again")
    assert queue.pop(last_slot=True) is None  # the hog may not take the last slot
    queue.push(honest, "answer")
    assert queue.pop(last_slot=True) == (honest, "answer")
    assert queue.pop() == (hog, "loop again")  # any other slot, it may


def test_staff_may_take_the_last_slot(clock: Clock) -> None:
    queue = make_queue(clock)
    queue.push(SYSTEM, "one")
    run(queue, clock, 100)
    queue.push(SYSTEM, "two")
    assert queue.pop(last_slot=True) == (SYSTEM, "two")


def test_a_learner_past_the_budget_is_told_when_to_come_back(clock: Clock) -> None:
    queue = make_queue(clock, budget_s=10)
    hog = Owner.learner("hog")
    for _ in range(2):
        queue.push(hog, "loop")
        run(queue, clock, 5)  # 10 s used: the budget
    with pytest.raises(TooManyRequests) as refused:
        queue.push(hog, "loop")
    # The first 5 s leave the window 60 s after they ended (at 1005): 55 s from now (1010).
    assert refused.value.retry_after == 55
    assert "Try again in 55 s" in refused.value.message
    clock.now += 55
    queue.push(hog, "loop")  # under the budget again
    assert queue.used_s(hog) == 5


def test_too_many_waiting_learners_is_busy(clock: Clock) -> None:
    queue = make_queue(clock, queue_limit=2)
    queue.push(Owner.learner("a"), "a")
    queue.push(Owner.learner("b"), "b")
    with pytest.raises(Busy):
        queue.push(Owner.learner("c"), "c")
    run(queue, clock, 0.1)
    queue.push(Owner.learner("c"), "c")  # a place came free


def test_a_withdrawn_run_frees_its_place_and_its_turn(clock: Clock) -> None:
    queue = make_queue(clock, queue_limit=1)
    alice = Owner.learner("alice")
    queue.push(alice, "gave up")
    assert queue.withdraw(alice, "gave up") is True
    assert queue.withdraw(alice, "gave up") is False
    queue.push(alice, "again")  # her turn, and the queue's place, are free again
    assert len(queue) == 1


def test_idle_learners_are_forgotten(clock: Clock) -> None:
    queue = make_queue(clock)
    for n in range(100):
        queue.push(Owner.learner(str(n)), "run")
        run(queue, clock, 0.01)
    clock.now += 61
    queue.sweep()
    assert queue._accounts == {}


def test_a_full_queue_makes_room_for_a_lighter_learner(clock: Clock) -> None:
    queue = make_queue(clock, queue_limit=2)
    hog, other_hog, honest = (Owner.learner(n) for n in ("hog", "other hog", "honest"))
    for owner, seconds in ((hog, 5), (other_hog, 3)):
        queue.push(owner, "loop")
        run(queue, clock, seconds)
        queue.push(owner, f"{owner.key}: loop again")
    assert queue.push(honest, "answer") == "learner:hog: loop again"  # the heaviest goes
    newcomer = Owner.learner("newcomer")
    assert queue.push(newcomer, "answer") == "learner:other hog: loop again"
    with pytest.raises(Busy):
        queue.push(Owner.learner("third"), "answer")  # nobody waiting is heavier now
    assert {queue.pop(), queue.pop()} == {(honest, "answer"), (newcomer, "answer")}


def test_a_newcomer_never_pushes_out_a_light_learner(clock: Clock) -> None:
    queue = make_queue(clock, queue_limit=1)
    honest = Owner.learner("honest")
    queue.push(honest, "answer")
    run(queue, clock, 0.5)  # used a little
    queue.push(honest, "another answer")
    with pytest.raises(Busy):
        queue.push(Owner.learner("newcomer"), "answer")


def test_an_owner_without_budget_is_counted_but_never_refused(clock: Clock) -> None:
    queue = make_queue(clock, budget_s=5)
    grading_a_test = Owner.learner("alice").without_budget()
    for _ in range(3):
        queue.push(grading_a_test, "saved answer")
        run(queue, clock, 5)
    assert queue.used_s(Owner.learner("alice")) == 15  # the same learner's account
    with pytest.raises(TooManyRequests, match="share"):
        queue.push(Owner.learner("alice"), "practice")  # practice is refused, as it should
