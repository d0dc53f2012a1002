"""The incident queue: one reconciliation at a time, a rerun for changes seen meanwhile, no going back in time."""

from __future__ import annotations

import asyncio
import datetime
import functools

import pytest

from remediator.handlers.incident_queue import IncidentQueue, Run

T0 = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.UTC)


def body(version: str, phase: str = "") -> dict[str, object]:
    return {"metadata": {"uid": "u1", "namespace": "shop", "name": "inc", "resourceVersion": version},
            "status": {"phase": phase}}


def test_our_own_write_coming_back_on_the_watch_is_no_news() -> None:
    queue = IncidentQueue()
    assert queue.seen(body("10"))
    queue.wrote(body("12", "Remediating"))
    assert queue.body("u1") == body("12", "Remediating")
    assert not queue.seen(body("12", "Remediating"))
    assert queue.seen(body("13", "Remediating")), "an approval, an edit"
    assert queue.body("u1") == body("13", "Remediating")


def test_a_watch_event_of_unknown_age_while_our_write_is_outstanding_means_read_afresh() -> None:
    queue = IncidentQueue()
    queue.seen(body("10"))
    queue.wrote(body("12", "Remediating"))
    assert queue.seen(body("11")), "older than our write (or a relisting): look again"
    assert queue.body("u1") is None, "never act on a copy that may be older than our own write"
    queue.read(body("14", "Remediating"))
    assert not queue.seen(body("12", "Remediating"))
    assert queue.seen(body("14", "Remediating")) and queue.body("u1") == body("14", "Remediating")


def test_a_write_the_watch_delivered_before_its_response_does_not_hide_later_changes() -> None:
    """The watch showed our write (12) and then an approval (13) before the write's response arrived."""
    queue = IncidentQueue()
    queue.seen(body("10"))
    assert queue.seen(body("12", "Remediating"))
    assert queue.seen(body("13", "Approved"))
    queue.wrote(body("12", "Remediating"))
    assert queue.body("u1") == body("13", "Approved"), "the newer copy from the watch stays"
    assert queue.seen(body("14", "Approved again")) and queue.body("u1") == body("14", "Approved again")


def test_a_dropped_copy_comes_back_with_the_next_change_but_not_with_our_own_write() -> None:
    queue = IncidentQueue()
    queue.seen(body("10"))
    queue.wrote(body("12", "Resolved"))
    queue.drop_copy("u1")
    assert queue.body("u1") is None and queue.names("u1") == ("shop", "inc")
    assert not queue.seen(body("12", "Resolved")) and queue.body("u1") is None
    assert queue.seen(body("13", "Resolved")) and queue.body("u1") == body("13", "Resolved")


def gated(gate: asyncio.Event) -> tuple[list[str], Run]:
    """A reconciliation that notes its Incident and then waits for `gate`; and the list it notes into."""
    runs: list[str] = []

    async def run(uid: str) -> None:
        runs.append(uid)
        await gate.wait()

    return runs, run


async def test_changes_during_a_reconciliation_make_exactly_one_more() -> None:
    queue = IncidentQueue()
    gate = asyncio.Event()
    runs, run = gated(gate)

    queue.kick("u1", run)
    await asyncio.sleep(0)
    for _ in range(3):
        queue.kick("u1", run)
    gate.set()
    await queue.idle("u1")
    assert runs == ["u1"], "idle() waits for the running one and drops the pending rerun"

    gate.clear()
    queue.kick("u1", run)
    await asyncio.sleep(0)
    queue.kick("u1", run)
    queue.kick("u1", run)
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert runs == ["u1", "u1", "u1"]


def test_wakeups_are_due_once() -> None:
    queue = IncidentQueue()
    queue.schedule("u1", T0 + datetime.timedelta(seconds=5))
    queue.schedule("u2", T0)
    assert queue.pop_due(T0) == ["u2"]
    assert queue.pop_due(T0 + datetime.timedelta(seconds=5)) == ["u1"]
    assert queue.pop_due(T0 + datetime.timedelta(seconds=10)) == []


async def test_with_a_limit_of_two_at_most_two_run_at_once_and_the_others_follow_in_turn() -> None:
    queue = IncidentQueue(max_running=2)
    running: set[str] = set()
    most = 0
    finished: list[str] = []
    gates = {f"u{i}": asyncio.Event() for i in range(6)}

    async def run(uid: str) -> None:
        nonlocal most
        running.add(uid)
        most = max(most, len(running))
        await gates[uid].wait()
        running.discard(uid)
        finished.append(uid)

    for uid in gates:
        queue.kick(uid, run)
    await asyncio.sleep(0)
    assert running == {"u0", "u1"}, "the first two kicked run, the rest wait"
    queue.kick("u4", run)  # kicked again while waiting: still one run
    await queue.idle("u3")  # deleted while waiting: it never runs
    for uid in ("u1", "u0", "u2", "u4", "u5"):
        gates[uid].set()
        for _ in range(5):
            await asyncio.sleep(0)
    assert finished == ["u1", "u0", "u2", "u4", "u5"] and most == 2
    assert queue.running() == 0 and queue.holding() == set()


async def test_a_change_during_a_limited_run_reruns_it_at_once_in_the_same_slot() -> None:
    queue = IncidentQueue(max_running=1)
    gate = asyncio.Event()
    runs, run = gated(gate)

    queue.kick("u1", run)
    queue.kick("u2", run)
    await asyncio.sleep(0)
    queue.kick("u1", run)  # news while u1 runs
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert runs == ["u1", "u1", "u2"]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        IncidentQueue(max_running=0)


async def test_with_a_limit_of_two_at_most_two_deleted_incidents_release_their_locks_at_once() -> None:
    queue = IncidentQueue(max_running=2)
    releasing: set[int] = set()
    started: list[int] = []
    most = 0
    gate = asyncio.Event()

    async def release(index: int) -> None:
        nonlocal most
        releasing.add(index)
        started.append(index)
        most = max(most, len(releasing))
        await gate.wait()
        releasing.discard(index)

    for i in range(6):
        queue.deleted(f"u{i}", functools.partial(release, i))
    await asyncio.sleep(0)
    assert len(releasing) == 2 and queue.holding() == {"u2", "u3", "u4", "u5"}
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert most == 2 and started == [0, 1, 2, 3, 4, 5] and releasing == set() and queue.holding() == set()


async def test_a_deleted_incident_is_let_go_of_only_once_its_running_reconciliation_ends() -> None:
    """The reconciliation may still claim a lock: the release comes after it, and then nothing is kept."""
    queue = IncidentQueue(max_running=1)
    gate, order = asyncio.Event(), list[str]()

    async def run(uid: str) -> None:
        await gate.wait()
        order.append(f"reconciled {uid}")

    async def release(uid: str) -> None:
        order.append(f"released {uid}")

    queue.read(body("10"))  # u1's copy and versions: forgotten with it
    queue.kick("u1", run)
    queue.kick("u2", run)  # waits its turn behind u1; deleted before it gets one
    queue.deleted("u1", functools.partial(release, "u1"))
    queue.deleted("u2", functools.partial(release, "u2"))
    await asyncio.sleep(0)
    assert order == [] and "u1" in queue.holding()
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert order == ["reconciled u1", "released u1", "released u2"] and queue.holding() == set()


async def test_a_failed_release_does_not_hold_up_the_deletions_behind_it() -> None:
    queue = IncidentQueue(max_running=1)
    released: list[str] = []

    async def release(uid: str) -> None:
        if uid == "u1":
            raise RuntimeError("boom")
        released.append(uid)

    for uid in ("u1", "u2", "u3"):
        queue.deleted(uid, functools.partial(release, uid))
    for _ in range(10):
        await asyncio.sleep(0)
    assert released == ["u2", "u3"] and queue.holding() == set()


async def test_waiting_incidents_start_by_severity_then_in_the_order_they_came() -> None:
    """A P0 arriving in a storm of P3s takes the next free slot; an unknown severity goes last."""
    queue = IncidentQueue(max_running=1)
    started: list[str] = []
    gates = {uid: asyncio.Event() for uid in ("first", "p3-a", "p3-b", "p1", "unknown", "p0")}

    async def run(uid: str) -> None:
        started.append(uid)
        await gates[uid].wait()

    queue.kick("first", run, 3)
    for uid, priority in (("p3-a", 3), ("p3-b", 3), ("p1", 1), ("unknown", None), ("p0", 0)):
        queue.kick(uid, run, priority)
    await asyncio.sleep(0)
    expected = ["first", "p0", "p1", "p3-a", "p3-b", "unknown"]
    for uid in expected:
        gates[uid].set()
        for _ in range(5):
            await asyncio.sleep(0)
    assert started == expected
    for uid in gates:
        queue.forget(uid)
    assert queue.running() == 0 and queue.holding() == set()
