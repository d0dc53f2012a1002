"""The KeyRotation engine, pure, clock injected: what asks for a rotation, bad input, and the stages."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from remediator.engine import guards, intents, role_rotations
from remediator.engine.key_rotations import moves, views
from remediator.engine.key_rotations.validation import SOURCE_ANNOTATION as SOURCE

from .key_rotation_support import SECRET, T0, Cluster, Driver, workload

HOUR = datetime.timedelta(hours=1)


def spec(**fields: Any) -> dict[str, Any]:
    return {"secretRef": {"name": SECRET}, "keys": [{"key": "apiKey"}], "consumers": {"auto": True},
            "gracePeriod": "24h", **fields}


def test_creating_a_key_rotation_rotates_nothing_and_a_trigger_change_rotates_once() -> None:
    driver = Driver(Cluster(), spec(trigger="2026-q3"))
    driver.run()
    assert driver.cluster.actions == []
    assert driver.ready[:2] == ("True", "Idle")
    assert driver.status["lastTrigger"] == "2026-q3"

    driver.spec = spec(trigger="2026-q4")
    driver.run(until=2 * HOUR)
    assert driver.kinds_of_actions() == ["StageValues", "PromoteSecret", "RolloutRestart"]
    assert driver.stage == "Grace"
    assert driver.status["rotation"]["id"] == "2026-q4" and driver.status["lastTrigger"] == "2026-q4"

    driver.now += 24 * HOUR
    driver.run()
    assert driver.stage == "Done"
    assert driver.kinds_of_actions() == ["StageValues", "PromoteSecret", "RolloutRestart", "RevokePrevious"]
    driver.run()
    assert len(driver.cluster.actions) == 4, "the same trigger never rotates again"


def test_a_request_rotates_once_and_one_arriving_meanwhile_waits_for_the_first() -> None:
    driver = Driver(Cluster(), spec())
    driver.request("incident-7")
    driver.run(until=datetime.timedelta(minutes=5))
    assert driver.stage == "Grace" and driver.status["lastRequest"] == "incident-7"
    driver.request("incident-8")
    driver.run(until=datetime.timedelta(minutes=5))
    # The second rotation cut the first one's grace period short (every consumer runs its values), then ran.
    assert driver.status["rotation"]["id"] == "incident-8"
    assert driver.kinds_of_actions() == ["StageValues", "PromoteSecret", "RolloutRestart", "RevokePrevious",
                                         "StageValues", "PromoteSecret", "RolloutRestart"]
    assert [e.reason for e in driver.entries].count("GracePeriodCutShort") == 1
    assert driver.status["currentVersion"] == 2


def test_an_emergency_request_restarts_at_once_and_revokes_after_the_emergency_grace_period() -> None:
    driver = Driver(Cluster(), spec(emergencyGracePeriod="0s"))
    driver.request("leaked-key", emergency=True)
    driver.reconcile()
    assert driver.stage == "Done", "no coalescing wait and no grace period"
    assert driver.kinds_of_actions() == ["StageValues", "PromoteSecret", "RolloutRestart", "RevokePrevious"]


def test_consumers_restart_no_earlier_than_the_coalescing_window_after_the_promotion() -> None:
    driver = Driver(Cluster(), spec())
    driver.request("r1")
    driver.reconcile()
    assert driver.kinds_of_actions() == ["StageValues", "PromoteSecret"]
    assert driver.requeue == datetime.timedelta(seconds=30)
    assert "restarting 1 consumers at 03:00:30" in driver.ready[2]


def test_a_restart_made_after_the_promotion_is_shared() -> None:
    cluster = Cluster()
    driver = Driver(cluster, spec())
    driver.request("r1")
    driver.reconcile()
    # Another KeyRotation (or an Incident) restarted the workload 10 seconds after this promotion.
    later = (driver.now + datetime.timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cluster.workloads[0]["spec"]["template"]["metadata"]["annotations"] = {intents.PRECISE_RESTART_ANNOTATION: later}
    driver.now += datetime.timedelta(seconds=30)
    driver.reconcile()
    assert "RolloutRestart" not in driver.kinds_of_actions()
    assert driver.status["rotation"]["consumers"][0]["state"] == "Restarted"
    assert "shared the restart" in driver.status["rotation"]["consumers"][0]["message"]


def test_staged_rollout_restarts_one_consumer_verifies_then_restarts_the_rest() -> None:
    cluster = Cluster(workloads=[workload("a"), workload("b"), workload("c")])
    driver = Driver(cluster, spec(rollout="staged", verify=[{"url": "http://app/healthz", "interval": "1s"}]))
    driver.request("r1", emergency=True)
    driver.reconcile()
    restarts = [a.name for a in cluster.actions if isinstance(a, intents.RolloutRestart)]
    assert restarts == ["a", "b", "c"]
    stage_log = [e.reason for e in driver.entries]
    assert stage_log.index("ConsumersRestarted") > 0 and stage_log[-1] == "PreviousKeyRevoked"


@pytest.mark.parametrize(("change", "reason", "field"), [
    (lambda c, s: c.secrets.clear(), "SecretNotFound", "spec.secretRef.name"),
    (lambda c, s: c.secrets[SECRET].clear(), "KeyNotFound", "spec.keys[0].key"),
    (lambda c, s: s["keys"][0].update(fromSecretRef={"name": "issued", "key": "k", "namespace": "other"}),
     "CrossNamespaceSecret", "spec.keys[0].fromSecretRef.namespace"),
    (lambda c, s: s["keys"][0].update(fromSecretRef={"name": "issued", "key": "k"}),
     "SourceSecretNotFound", "spec.keys[0].fromSecretRef.name"),
    # Copying needs the source's consent: its author may not be allowed to read what it would copy.
    (lambda c, s: s["keys"][0].update(fromSecretRef={"name": "issued", "key": "k"}) or c.secrets.update(
        issued={"k"}), "SourceNotShared", "spec.keys[0].fromSecretRef.name"),
    (lambda c, s: s["keys"][0].update(fromSecretRef={"name": "issued", "key": "k"}) or c.secrets.update(
        issued={"k"}) or c.annotations.update(issued={SOURCE: "another-rotation"}),
     "SourceNotShared", "spec.keys[0].fromSecretRef.name"),
    (lambda c, s: c.types.update({SECRET: "kubernetes.io/service-account-token"}), "SecretNotRotatable",
     "spec.secretRef.name"),
    (lambda c, s: c.immutable.add(SECRET), "SecretImmutable", "spec.secretRef.name"),
    (lambda c, s: s.update(maxConsumers=1) or c.workloads.append(workload("second")),
     "TooManyConsumers", "spec.maxConsumers"),
    (lambda c, s: c.others.append({"name": "older", "createdAt": "2026-01-01T00:00:00Z", "spec": spec()}),
     "Conflict", "spec.keys[0].key"),
    (lambda c, s: s.update(consumers={"workloads": [{"kind": "Deployment", "name": "gone"}]}),
     "ConsumerNotFound", "spec.consumers.workloads[0]"),
    (lambda c, s: s["keys"][0].update(generator={"length": 0}), "InvalidSpec", "spec.keys[0].generator.length"),
    (lambda c, s: s["keys"][0].update(generator={"encoding": "rot13"}), "InvalidSpec",
     "spec.keys[0].generator.encoding"),
])
def test_bad_input_is_refused_with_a_reason_and_a_field_path_and_nothing_is_touched(
        change: Any, reason: str, field: str) -> None:
    cluster = Cluster()
    bad = spec()
    change(cluster, bad)
    driver = Driver(cluster, bad)
    driver.request("r1")
    driver.run()
    status, found_reason, message = driver.ready
    assert (status, found_reason) == ("False", reason)
    assert message.startswith(field) or f" {field}" in message or message.startswith(field.removeprefix("spec."))
    assert cluster.actions == [], "nothing was changed"
    assert driver.status.get("rotation") is None
    assert driver.status["lastRequest"] == "r1", "a request is answered: refused"
    assert [e.reason for e in driver.entries][-1] == "RequestRefused"


@pytest.mark.parametrize("shared_with", ["payments-keys", "other, payments-keys", "*"])
def test_a_source_secret_that_shares_its_values_is_copied(shared_with: str) -> None:
    cluster = Cluster(annotations={"issued": {SOURCE: shared_with}})
    cluster.secrets["issued"] = {"k"}
    driver = Driver(cluster, spec(keys=[{"key": "apiKey", "fromSecretRef": {"name": "issued", "key": "k"}}]))
    driver.request("r1")
    driver.run(until=datetime.timedelta(minutes=1))
    assert driver.stage == "Grace"


def test_an_operator_in_dry_run_says_what_a_rotation_would_do_and_changes_nothing() -> None:
    driver = Driver(Cluster(), spec(trigger="2026-q3"), policy=views.Policy(dry_run=True))
    driver.run()
    driver.spec = spec(trigger="2026-q4")
    driver.request("leak", emergency=True)
    driver.run(until=2 * HOUR)
    assert driver.cluster.actions == [], "nothing staged, promoted or restarted"
    said = [e.message for e in driver.entries if e.reason == "DryRun"]
    assert len(said) == 2 and all("nothing was changed" in m for m in said)
    assert "would rotate apiKey of secret payments-api (rotation leak, asked by request, an emergency)" in said[0]
    assert "restart deployment/payments" in said[0]
    assert driver.status.get("rotation") is None and driver.status.get("currentVersion", 0) == 0
    assert (driver.status["lastRequest"], driver.status["lastTrigger"]) == ("leak", "2026-q4")


def test_a_trigger_change_refused_for_bad_input_rotates_once_the_input_is_fixed() -> None:
    cluster = Cluster(secrets={})
    driver = Driver(cluster, spec(trigger="1"))
    driver.run()
    driver.spec = spec(trigger="2")
    driver.run()
    assert driver.ready[1] == "SecretNotFound" and cluster.actions == []
    cluster.secrets[SECRET] = {"apiKey"}
    driver.run(until=datetime.timedelta(minutes=1))
    assert driver.status["rotation"]["id"] == "2" and driver.status["lastTrigger"] == "2"


def test_the_first_of_two_key_rotations_of_one_key_keeps_it() -> None:
    cluster = Cluster(others=[{"name": "younger", "createdAt": "2026-12-01T00:00:00Z", "spec": spec()}])
    driver = Driver(cluster, spec())
    driver.request("r1")
    driver.run(until=datetime.timedelta(minutes=1))
    assert driver.stage == "Grace"


def test_a_failed_check_rolls_back_restarts_again_and_reports_verification_failed() -> None:
    cluster = Cluster(health=[503] * 100)
    driver = Driver(cluster, spec(verify=[{"url": "http://app/healthz", "interval": "10s"}], verifyTimeout="1m"))
    driver.request("r1", emergency=True)
    driver.run(until=datetime.timedelta(seconds=70))
    assert driver.stage == "RollingBack", "no healthy answer within verifyTimeout"
    cluster.health.clear()  # the previous values work
    driver.run(until=datetime.timedelta(minutes=5))
    assert driver.stage == "RolledBack"
    assert driver.kinds_of_actions() == ["StageValues", "PromoteSecret", "RolloutRestart", "RestoreSecret",
                                         "RolloutRestart", "RevokePrevious"]
    assert driver.conditions["Failed"] == ("True", "VerificationFailed")
    assert driver.conditions["Verified"] == ("False", "VerificationFailed")
    assert driver.status["currentVersion"] == 0
    warnings = [e.reason for e in driver.entries if e.type == "Warning"]
    assert warnings == ["VerificationFailed", "RolledBack"]


def test_a_rollback_whose_checks_fail_too_stops_with_rollback_failed_and_its_stage() -> None:
    cluster = Cluster(health=[503] * 1000)
    driver = Driver(cluster, spec(verify=[{"url": "http://app/healthz", "interval": "10s"}], verifyTimeout="1m"))
    driver.request("r1", emergency=True)
    driver.run(until=datetime.timedelta(minutes=5))
    assert driver.stage == "Failed"
    assert driver.conditions["Failed"] == ("True", "RollbackFailed")
    assert driver.ready[:2] == ("False", "RollbackFailed")
    assert "stopped at Verify" in driver.ready[2]
    assert driver.status["phase"] == "Failed"


def test_a_secret_changed_between_the_read_and_the_promotion_is_read_again() -> None:
    cluster = Cluster()
    driver = Driver(cluster, spec())
    driver.request("r1", emergency=True)
    answer = cluster.answer
    conflicts = iter([True])

    def conflicting(intent: moves.Intent, now: datetime.datetime) -> intents.Result:
        if isinstance(intent, moves.PromoteSecret) and next(conflicts, False):
            cluster.actions.append(intent)
            return intents.failed("Conflict", "secret payments-api changed since it was read")
        return answer(intent, now)

    cluster.answer = conflicting  # type: ignore[method-assign]
    driver.reconcile()
    promotes = [a for a in cluster.actions if isinstance(a, moves.PromoteSecret)]
    assert len(promotes) == 2 and promotes[0].resource_version != promotes[1].resource_version
    assert driver.stage == "Grace" or driver.stage == "Done"


def test_a_quarterly_schedule_rotates_once_per_tick_and_missed_ticks_once() -> None:
    # Created 2026-11-01; quarterly at 03:00 on the first of Jan, Apr, Jul, Oct.
    driver = Driver(Cluster(), spec(schedule="0 3 1 1,4,7,10 *", gracePeriod="1h"))
    driver.now = datetime.datetime(2026, 12, 31, tzinfo=datetime.UTC)
    driver.run(until=HOUR)
    assert driver.cluster.actions == []
    assert driver.status["nextRotationTime"] == "2027-01-01T03:00:00Z"
    assert driver.requeue == datetime.timedelta(hours=27)

    driver.run(until=40 * HOUR)
    assert driver.stage == "Done"
    assert driver.status["rotation"]["id"] == "1-20270101T030000Z"
    assert driver.status["lastScheduleTime"] == "2027-01-01T03:00:00Z"
    assert driver.status["nextRotationTime"] == "2027-04-01T03:00:00Z"
    assert driver.kinds_of_actions().count("PromoteSecret") == 1

    # The operator was down from February to August: the two missed ticks rotate once.
    driver.now = datetime.datetime(2027, 8, 15, tzinfo=datetime.UTC)
    driver.run(until=2 * HOUR)
    assert driver.kinds_of_actions().count("PromoteSecret") == 2
    assert driver.status["lastScheduleTime"] == "2027-07-01T03:00:00Z"
    assert driver.status["nextRotationTime"] == "2027-10-01T03:00:00Z"


def test_a_scheduled_rotation_waits_for_the_maintenance_window_but_a_trigger_does_not() -> None:
    window = [{"schedule": "0 22 * * *", "duration": "2h"}]
    driver = Driver(Cluster(), spec(schedule="0 3 * * *", maintenanceWindows=window, trigger="a", gracePeriod="1h"))
    driver.now = datetime.datetime(2026, 11, 30, 4, 0, tzinfo=datetime.UTC)  # the 03:00 tick is due
    driver.run(until=datetime.timedelta(minutes=1))
    assert driver.cluster.actions == []
    assert driver.status["nextRotationTime"] == "2026-11-30T22:00:00Z"

    driver.spec = {**driver.spec, "trigger": "b"}
    driver.reconcile()
    assert driver.status["rotation"]["id"] == "b", "a trigger rotates at once, outside the window"

    driver.now = datetime.datetime(2026, 11, 30, 22, 0, 1, tzinfo=datetime.UTC)
    driver.run(until=datetime.timedelta(hours=1))
    assert driver.status["rotation"]["cause"] == "schedule"
    assert driver.status["lastScheduleTime"] == "2026-11-30T03:00:00Z"


def test_suspend_pauses_scheduled_rotations_only() -> None:
    driver = Driver(Cluster(), spec(schedule="@daily", suspend=True))
    driver.now = datetime.datetime(2026, 11, 30, 1, 0, tzinfo=datetime.UTC)
    driver.run(until=HOUR)
    assert driver.cluster.actions == [] and "nextRotationTime" not in driver.status
    driver.request("incident-9")
    driver.reconcile()
    assert driver.status["rotation"]["id"] == "incident-9"


@pytest.mark.parametrize(("fields", "reason", "field"), [
    ({"schedule": "0 3 31 2 *"}, "InvalidSchedule", "spec.schedule"),
    ({"schedule": "@daily", "timeZone": "Mars/Olympus"}, "InvalidTimeZone", "spec.timeZone"),
])
def test_a_schedule_that_cannot_be_used_is_refused(fields: dict[str, Any], reason: str, field: str) -> None:
    driver = Driver(Cluster(), spec(**fields))
    driver.request("r1")
    driver.run()
    status, found_reason, message = driver.ready
    assert (status, found_reason) == ("False", reason) and message.startswith(field)
    assert driver.cluster.actions == []


def database_spec(strategy: str = "alternatingUsers", **fields: Any) -> dict[str, Any]:
    return spec(keys=[{"key": "password"}], databaseRole={
        "connectionSecretRef": {"name": "orders-admin", "key": "uri"}, "role": "orders", "passwordKey": "password",
        "usernameKey": "username", "strategy": strategy}, **fields)


def test_alternating_users_set_the_user_not_in_use_promote_it_and_revoke_the_other() -> None:
    cluster = Cluster(secrets={SECRET: {"password"}})
    driver = Driver(cluster, database_spec(gracePeriod="0s"))
    driver.request("r1", emergency=True)
    driver.reconcile()
    assert driver.kinds_of_actions() == ["StageValues", "EnsureAlternateUser", "SetRolePassword", "PromoteSecret",
                                         "RolloutRestart", "RevokeRoleUser", "RevokePrevious"]
    [set_password] = [a for a in cluster.actions if isinstance(a, moves.SetRolePassword)]
    assert (set_password.user, set_password.secret, set_password.mark) == ("orders_b", "payments-keys-pending",
                                                                          ("r1", 1))
    [promote] = [a for a in cluster.actions if isinstance(a, moves.PromoteSecret)]
    assert promote.username == ("username", "orders_b")
    [revoke] = [a for a in cluster.actions if isinstance(a, moves.RevokeRoleUser)]
    assert (revoke.user, revoke.terminate_sessions) == ("orders", True), "an emergency ends the old sessions"
    assert driver.status["currentDatabaseUser"] == "orders_b"
    assert driver.status["rotation"]["database"]["sessionsAtRevoke"] == 2
    revoked = next(e.message for e in driver.entries if e.reason == "DatabaseUserRevoked")
    assert revoked.startswith("database user orders can no longer log in; 2 session(s) were open")

    driver.request("r2", emergency=True)
    driver.reconcile()
    second = [a for a in cluster.actions if isinstance(a, (moves.SetRolePassword, moves.RevokeRoleUser))][2:]
    assert [(type(a).__name__, a.user) for a in second] == [("SetRolePassword", "orders"),
                                                            ("RevokeRoleUser", "orders_b")]
    assert driver.status["currentDatabaseUser"] == "orders"


def test_an_in_place_rollback_sets_the_previous_password_again_before_restarting() -> None:
    cluster = Cluster(secrets={SECRET: {"password"}}, health=[503] * 1000)
    driver = Driver(cluster, database_spec("inPlace", verify=[{"url": "http://app/healthz", "interval": "10s"}],
                                           verifyTimeout="30s"))
    driver.request("r1", emergency=True)
    driver.run(until=datetime.timedelta(seconds=40))
    cluster.health.clear()
    driver.run(until=datetime.timedelta(minutes=2))
    assert driver.stage == "RolledBack"
    sets = [(a.user, a.secret, a.mark) for a in cluster.actions if isinstance(a, moves.SetRolePassword)]
    assert sets == [("orders", "payments-keys-pending", ("r1", 1)), ("orders", SECRET, None)]
    assert driver.kinds_of_actions()[4:] == ["RestoreSecret", "SetRolePassword", "RolloutRestart", "RevokePrevious"]
    assert not any(isinstance(a, moves.RevokeRoleUser) for a in cluster.actions), "one user: nothing to revoke"
    [restore] = [a for a in cluster.actions if isinstance(a, moves.RestoreSecret)]
    assert restore.username == ("username", "orders")


@pytest.mark.parametrize("strategy", ["inPlace", "alternatingUsers"])
def test_a_password_whose_login_proof_fails_stops_the_rotation_and_in_place_the_old_one_is_set_again(
        strategy: str) -> None:
    failed = intents.failed("LoginFailed", "the new password of orders was set but the login with it failed")
    cluster = Cluster(secrets={SECRET: {"password"}}, set_password_failures=[failed])
    driver = Driver(cluster, database_spec(strategy))
    driver.request("r1", emergency=True)
    driver.run()
    assert driver.stage == "Failed"
    sets = [(a.user, a.secret, a.mark) for a in cluster.actions if isinstance(a, moves.SetRolePassword)]
    if strategy == "inPlace":
        # The one user may hold the new password now: the one the Secret still holds is set again.
        assert sets == [("orders", "payments-keys-pending", ("r1", 1)), ("orders", SECRET, None)]
    else:
        assert sets == [("orders_b", "payments-keys-pending", ("r1", 1))], "orders_b is not in use: left as is"
    assert not any(isinstance(a, moves.PromoteSecret) for a in cluster.actions)
    failed_condition = next(c for c in driver.status["conditions"] if c["type"] == "Failed")
    assert (failed_condition["status"], failed_condition["reason"]) == ("True", "LoginFailed")
    assert ("set again" in failed_condition["message"]) == (strategy == "inPlace")


@pytest.mark.parametrize(("role", "reason"), [
    (dict(superuser=True), "SuperuserRole"),
    (dict(owns_database=True), "DatabaseOwnerRole"),
    (dict(is_operator=True), "OperatorRole"),
    (dict(exists=False), "RoleNotFound"),
])
def test_a_role_that_must_not_be_rotated_is_refused_and_nothing_is_touched(role: dict[str, Any], reason: str) -> None:
    cluster = Cluster(secrets={SECRET: {"password"}}, role=role_rotations.LoginUser("orders", **{"exists": True,
                                                                                                 **role}))
    driver = Driver(cluster, database_spec())
    driver.request("r1")
    driver.run()
    status, found_reason, message = driver.ready
    assert (status, found_reason) == ("False", reason) and message.startswith("spec.databaseRole.role: ")
    assert cluster.actions == []


def test_a_restart_waits_out_an_incidents_cooldown_on_the_workload_unless_it_is_an_emergency() -> None:
    for emergency, restarted in ((False, False), (True, True)):
        cluster = Cluster()
        cluster.workloads[0]["metadata"]["annotations"] = {
            "remediator.dev/cooldown.restart": "2026-11-30T03:10:00Z default/web-down"}
        driver = Driver(cluster, spec(), policy=views.Policy(restart_coalesce=datetime.timedelta()))
        driver.request("r1", emergency=emergency)
        driver.reconcile()
        assert ("RolloutRestart" in driver.kinds_of_actions()) == restarted
        if not restarted:
            assert "cooling down until 2026-11-30T03:10:00Z" in driver.ready[2]
            assert driver.requeue == datetime.timedelta(minutes=10)
            driver.run(until=datetime.timedelta(minutes=11))
            assert "RolloutRestart" in driver.kinds_of_actions()


def test_restarts_count_against_the_operator_wide_rate_limit_but_putting_values_back_does_not() -> None:
    limited = guards.Verdict(guards.Outcome.WAIT, "RateLimited", "operator-wide rate limit of 5 actions per 60s "
                             "reached", retry_at=T0 + datetime.timedelta(seconds=20))
    driver = Driver(Cluster(), spec(), rate_limit=limited)
    driver.request("r1", emergency=True)
    driver.reconcile()
    assert driver.kinds_of_actions() == ["StageValues", "PromoteSecret"]
    assert driver.ready[2].endswith("operator-wide rate limit of 5 actions per 60s reached")
    assert driver.requeue == datetime.timedelta(seconds=20)
