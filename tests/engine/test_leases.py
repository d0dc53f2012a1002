"""Leader election decided as client-go decides it: one holder at a time, takeovers counted as epochs."""

from __future__ import annotations

import datetime

import pytest

from remediator.api.incidents import IncidentStatus
from remediator.api.keyrotations import KeyRotationStatus
from remediator.api.rollbacks import RollbackRequestStatus
from remediator.engine import fencing, leases

WALL = datetime.datetime(2026, 11, 29, 23, 0, tzinfo=datetime.UTC)
TIMINGS = leases.Timings()


def held_by(holder: str, transitions: int = 3) -> leases.LeaseRecord:
    return leases.LeaseRecord(holder, 15, WALL, WALL, transitions)


def move_of(found: leases.LeaseRecord | None, identity: str, clock: float,
            wall: datetime.datetime = WALL) -> leases.LeaseMove:
    """What `identity` does, having first seen the record as it is at 100.0 on its clock."""
    return leases.next_move(found, identity, seen_since=100.0, clock=clock, wall=wall, timings=TIMINGS)


def test_the_first_candidate_creates_the_lease_at_epoch_0() -> None:
    move = move_of(None, "pod-a_1", clock=100.0)
    assert move == leases.Create(leases.LeaseRecord("pod-a_1", 15, WALL, WALL, 0))


def test_a_follower_waits_while_the_holder_renews_within_the_lease_duration() -> None:
    move = move_of(held_by("pod-a_1"), "pod-b_2", clock=114.5)
    assert move == leases.Wait("pod-a_1", expires_in=0.5)


def test_an_expired_lease_is_taken_over_as_the_next_epoch() -> None:
    later = WALL + datetime.timedelta(seconds=20)
    move = move_of(held_by("pod-a_1", transitions=3), "pod-b_2", clock=115.0, wall=later)
    assert move == leases.Update(leases.LeaseRecord("pod-b_2", 15, later, later, 4), takeover=True)


def test_expiry_is_counted_on_the_followers_clock_from_when_it_saw_the_record_change() -> None:
    """The holder's renewTime may be written by a clock hours off: only the follower's own clock counts."""
    skewed = leases.LeaseRecord("pod-a_1", 15, WALL - datetime.timedelta(hours=3),
                                WALL - datetime.timedelta(hours=3), 1)
    move = move_of(skewed, "pod-b_2", clock=101.0)
    assert isinstance(move, leases.Wait)


def test_a_released_lease_is_taken_at_once() -> None:
    move = move_of(held_by("", transitions=5), "pod-b_2", clock=100.0)
    assert isinstance(move, leases.Update) and move.takeover and move.record.transitions == 6


def test_the_holder_renews_without_a_new_epoch() -> None:
    later = WALL + datetime.timedelta(seconds=2)
    move = move_of(held_by("pod-a_1", transitions=3), "pod-a_1", clock=102.0, wall=later)
    assert move == leases.Update(leases.LeaseRecord("pod-a_1", 15, WALL, later, 3), takeover=False)


def test_a_leader_stops_acting_at_the_renew_deadline_before_anyone_may_take_over() -> None:
    assert leases.still_leading(renewed_at=100.0, clock=109.9, timings=TIMINGS)
    assert not leases.still_leading(renewed_at=100.0, clock=110.0, timings=TIMINGS)
    assert TIMINGS.renew_deadline < TIMINGS.lease_duration


@pytest.mark.parametrize(("timings", "problem"), [
    (leases.Timings(10, 10, 2), "the lease duration must be longer than the renew deadline"),
    (leases.Timings(15, 2, 2), "the renew deadline must be longer than 1.2 times the retry period"),
    (leases.Timings(15, 10, 0), "the retry period must be positive"),
])
def test_timings_that_cannot_work_are_refused(timings: leases.Timings, problem: str) -> None:
    assert timings.problem() == problem
    assert leases.Timings().problem() is None


def test_a_replica_holding_an_older_epoch_never_writes_over_a_newer_one() -> None:
    verdict = fencing.verdict({"phase": "Mitigating", "leaseEpoch": 4}, held=3)
    assert not verdict.proceeds and verdict.reason == "NewerLeaseEpoch"
    assert "epoch 4" in verdict.message and "epoch 3" in verdict.message


@pytest.mark.parametrize(("status", "held"), [
    ({"leaseEpoch": 4}, 4),       # our own write
    ({"leaseEpoch": 3}, 4),       # the previous leader's write, taken over
    ({"phase": "Mitigating"}, 4),  # written before leader election was switched on
    ({"leaseEpoch": 9}, None),     # leader election off: one process, no fence
    (None, 0),
])
def test_the_same_or_an_older_recorded_epoch_lets_the_holder_proceed(status: dict[str, int] | None,
                                                                    held: int | None) -> None:
    assert fencing.verdict(status, held).proceeds


def test_each_written_status_carries_the_writers_epoch_and_the_models_keep_it() -> None:
    status = fencing.stamped({"phase": "Mitigating"}, held=7)
    assert status == {"phase": "Mitigating", "leaseEpoch": 7}
    assert fencing.stamped({"phase": "Mitigating"}, held=None) == {"phase": "Mitigating"}
    for model in (IncidentStatus, RollbackRequestStatus, KeyRotationStatus):
        dumped = model.model_validate(status).model_dump(by_alias=True, mode="json", exclude_none=True)
        assert fencing.recorded_epoch(dumped) == 7, model.__name__


def test_an_epoch_of_another_shards_lease_is_not_compared_but_one_of_the_same_lease_is() -> None:
    """After a re-shard the namespace's new owner holds another Lease, whose epochs count from 0."""
    moved = {"phase": "Mitigating", "leaseEpoch": 5, "leaseName": "remediator-shard-0"}
    assert fencing.verdict(moved, held=0, lease="remediator-shard-2").proceeds
    assert not fencing.verdict(moved, held=4, lease="remediator-shard-0").proceeds
    # Written before Lease names were recorded: under the one Lease there was, so compared.
    assert not fencing.verdict({"leaseEpoch": 5}, held=0, lease="remediator-shard-2").proceeds


def test_a_sharded_leaders_status_carries_its_lease_name_with_its_epoch_and_the_models_keep_both() -> None:
    status = fencing.stamped({"phase": "Mitigating"}, held=2, lease="remediator-shard-1")
    assert status == {"phase": "Mitigating", "leaseEpoch": 2, "leaseName": "remediator-shard-1"}
    for model in (IncidentStatus, RollbackRequestStatus, KeyRotationStatus):
        dumped = model.model_validate(status).model_dump(by_alias=True, mode="json", exclude_none=True)
        assert dumped["leaseName"] == "remediator-shard-1", model.__name__
