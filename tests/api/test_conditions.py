from datetime import UTC, datetime, timedelta

from remediator.api.conditions import (
    Condition,
    ConditionStatus,
    find_condition,
    is_condition_true,
    set_condition,
)

EARLIER = datetime(2024, 11, 3, 10, 0, tzinfo=UTC)
NOW = EARLIER + timedelta(minutes=7)


def condition(type_: str, status: ConditionStatus, reason: str, at: datetime = EARLIER) -> Condition:
    return Condition(type=type_, status=status, reason=reason, message="", last_transition_time=at)


def test_a_new_condition_is_appended_with_the_current_time() -> None:
    existing = [condition("Acknowledged", ConditionStatus.TRUE, "Acknowledged")]
    updated = set_condition(existing, condition("Mitigated", ConditionStatus.FALSE, "StepsRunning", NOW), NOW)
    assert [c.type for c in updated] == ["Acknowledged", "Mitigated"]
    assert updated[1].last_transition_time == NOW


def test_an_unchanged_status_keeps_the_time_it_last_changed() -> None:
    existing = [condition("Mitigated", ConditionStatus.FALSE, "StepsRunning")]
    new = condition("Mitigated", ConditionStatus.FALSE, "StepRetrying", NOW)
    updated = set_condition(existing, new, NOW)
    assert updated[0].last_transition_time == EARLIER
    assert updated[0].reason == "StepRetrying"


def test_a_changed_status_records_when_it_changed() -> None:
    existing = [
        condition("Ready", ConditionStatus.FALSE, "InProgress"),
        condition("Mitigated", ConditionStatus.FALSE, "A"),
    ]
    updated = set_condition(existing, condition("Ready", ConditionStatus.TRUE, "Resolved", EARLIER), NOW)
    assert [c.type for c in updated] == ["Ready", "Mitigated"]
    assert updated[0].status == ConditionStatus.TRUE
    assert updated[0].last_transition_time == NOW


def test_setting_a_condition_leaves_the_given_list_alone() -> None:
    existing = [condition("Ready", ConditionStatus.FALSE, "InProgress")]
    set_condition(existing, condition("Ready", ConditionStatus.TRUE, "Resolved"), NOW)
    assert existing[0].status == ConditionStatus.FALSE


def test_conditions_are_found_by_type() -> None:
    conditions = [
        condition("Ready", ConditionStatus.TRUE, "Resolved"),
        condition("Failed", ConditionStatus.FALSE, "A"),
    ]
    assert find_condition(conditions, "Failed") == conditions[1]
    assert find_condition(conditions, "Escalated") is None
    assert is_condition_true(conditions, "Ready")
    assert not is_condition_true(conditions, "Failed")
    assert not is_condition_true(conditions, "Escalated")


def test_a_condition_read_back_from_kubernetes_equals_the_one_written() -> None:
    written = condition("Ready", ConditionStatus.UNKNOWN, "Pending")
    stored = written.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert stored["lastTransitionTime"] == "2024-11-03T10:00:00Z"
    assert Condition.model_validate(stored) == written
