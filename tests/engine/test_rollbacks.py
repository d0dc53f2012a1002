"""The RollbackRequest engine, without a cluster: the runbook's order, refusals, failures, crashes.

`Cluster` answers the engine's intents like the I/O layer would, against an in-memory Deployment
with Kubernetes' revision bookkeeping; `run` is the handler's loop (the status is saved before
every action), and can stop dead after any action to play a crash.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from remediator.engine import allow_lists, intents, revisions, rollbacks

T0 = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.UTC)
ACT = rollbacks.Policy()
IMAGES = ("shop:1.0", "shop:1.1", "shop:1.2")  # revisions 1, 2, 3: 3 is the bad deploy
MIGRATION = {"image": "shop-migrate:1.2", "args": ["db", "rollback", "--to", "20241101"]}


def template(image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}


class Cluster:
    """A Deployment `web` with one ReplicaSet per image it has run, and the Jobs created so far."""

    def __init__(self, images: tuple[str, ...] = IMAGES, replicas: int = 3, job_outcome: str = "Succeeded",
                 rolls_out: bool = True) -> None:
        self.replica_sets = [{"revision": n, "hash": f"h{n}", "image": image}
                             for n, image in enumerate(images, start=1)]
        self.image = images[-1]
        self.replicas = replicas
        self.generation = 1
        self.rolls_out = rolls_out
        self.job_outcome = job_outcome
        self.jobs: dict[str, str] = {}
        self.acted: list[rollbacks.Action] = []
        self.jobs_created = 0
        self.templates_set = 0
        self.exists = True

    def state(self) -> intents.Result:
        if not self.exists:
            return intents.failed("TargetNotFound", "deployment/web not found in namespace default")
        uid = "deployment-uid"
        replica_sets = [{
            "metadata": {"name": f"web-{rs['hash']}", "annotations": {revisions.REVISION: str(rs["revision"])},
                         "ownerReferences": [{"uid": uid, "controller": True}]},
            "spec": {"template": {**template(str(rs["image"])),
                                  "metadata": {"labels": {"app": "web", "pod-template-hash": rs["hash"]}}}},
        } for rs in self.replica_sets]
        done = self.replicas if self.rolls_out else 0
        deployment = {
            "metadata": {"name": "web", "uid": uid, "generation": self.generation,
                         "annotations": {revisions.REVISION: str(self.current_revision())}},
            "spec": {"replicas": self.replicas, "template": template(self.image)},
            "status": {"observedGeneration": self.generation, "replicas": self.replicas,
                       "updatedReplicas": done, "availableReplicas": done},
        }
        return intents.done(revisions.deployment_state(deployment, replica_sets))

    def current_revision(self) -> int:
        return max(int(rs["revision"]) for rs in self.replica_sets if rs["image"] == self.image)

    def image_of(self, revision: int) -> str:
        return next(str(rs["image"]) for rs in self.replica_sets if rs["revision"] == revision)

    def observe(self, world: rollbacks.World, intent: rollbacks.Observation) -> rollbacks.World:
        if isinstance(intent, rollbacks.ReadDeployment):
            return dataclasses.replace(world, deployment=self.state())
        phase = self.jobs.get(intent.name)
        if phase is None:
            return dataclasses.replace(world, job=intents.JobObserved(intents.JobPhase.MISSING))
        if phase == "Failed":
            return dataclasses.replace(world, job=intents.JobObserved(
                intents.JobPhase.FAILED, "BackoffLimitExceeded", "ERROR: column \"total\" is referenced by view"))
        return dataclasses.replace(world, job=intents.JobObserved(intents.JobPhase(phase)))

    def act(self, intent: rollbacks.Action) -> intents.Result:
        self.acted.append(intent)
        if isinstance(intent, intents.ScaleTo):
            if self.replicas != intent.replicas:
                self.replicas, self.generation = intent.replicas, self.generation + 1
        elif isinstance(intent, rollbacks.SetTemplate):
            image = intent.template["spec"]["containers"][0]["image"]
            if image != self.image:
                self.templates_set += 1
                self.image, self.generation = image, self.generation + 1
                # Kubernetes makes the old ReplicaSet current again under a new revision number.
                target = next(rs for rs in self.replica_sets if rs["hash"] == intent.template_hash)
                target["revision"] = max(int(rs["revision"]) for rs in self.replica_sets) + 1
        elif intent.name not in self.jobs:
            self.jobs_created += 1
            self.jobs[intent.name] = self.job_outcome
        return intents.Result(succeeded=True)


def request(status: dict[str, Any] | None = None, generation: int = 1, **spec: Any) -> rollbacks.RollbackRequest:
    return rollbacks.RollbackRequest(uid="request-uid", name="undo", namespace="default", generation=generation,
                                     spec={"target": {"kind": "Deployment", "name": "web"}, **spec},
                                     status=status or {})


@dataclasses.dataclass
class Run:
    """What one reconcile did: the request with its saved status, the decisions, the actions."""

    request: rollbacks.RollbackRequest
    decisions: list[rollbacks.Decision]
    actions: list[rollbacks.Action]

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.request.status)

    @property
    def last(self) -> rollbacks.Decision:
        return self.decisions[-1]

    def condition(self, condition_type: str) -> tuple[str, str]:
        found = next(c for c in self.status["conditions"] if c["type"] == condition_type)
        return found["status"], found["reason"]

    def message(self, condition_type: str) -> str:
        return str(next(c for c in self.status["conditions"] if c["type"] == condition_type)["message"])

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.status.get("timeline", [])]


def run(cluster: Cluster, obj: rollbacks.RollbackRequest, now: datetime.datetime = T0,
        policy: rollbacks.Policy = ACT, crash_after: int | None = None) -> Run:
    """The handler's loop: decide, read, save the status, act, until the engine waits or is done.

    With `crash_after`, the operator dies right after that many actions: what survives is the
    status saved before the last action, whose outcome is never recorded.
    """
    world = rollbacks.World()
    saved = obj
    decisions: list[rollbacks.Decision] = []
    actions: list[rollbacks.Action] = []
    for _ in range(50):
        decision = rollbacks.decide(obj, world, now, policy)
        decisions.append(decision)
        obj = dataclasses.replace(obj, status=decision.status.model_dump(by_alias=True, mode="json",
                                                                          exclude_none=True))
        intent = decision.intent
        if isinstance(intent, rollbacks.ReadDeployment | intents.ObserveJob):
            world = cluster.observe(world, intent)
            continue
        saved = obj
        if intent is None:
            return Run(saved, decisions, actions)
        actions.append(intent)
        outcome = cluster.act(intent)
        if crash_after is not None and len(actions) == crash_after:
            return Run(saved, decisions, actions)
        world = rollbacks.World(outcomes={**world.outcomes, intent.step: outcome})
    raise AssertionError("no conclusion")


# -- a bad deploy -------------------------------------------------------------------------------------


def test_a_bad_deploy_is_rolled_back_to_the_previous_revision_and_waits_for_the_rollout() -> None:
    cluster = Cluster(rolls_out=False)

    first = run(cluster, request())

    assert [type(d.intent).__name__ for d in first.decisions] == [
        "ReadDeployment", "SetTemplate", "ReadDeployment", "NoneType"]
    assert first.actions == [rollbacks.SetTemplate("roll-back", "web", revisions.without_hash_label(
        template("shop:1.1")), "h2")]
    assert cluster.image == "shop:1.1"
    assert (first.status["fromRevision"], first.status["toRevision"], first.status["toTemplateHash"]) == (3, 2, "h2")
    assert first.condition("RolledBack") == ("True", "TemplateRestored")
    assert first.condition("RolloutComplete") == ("False", "RollingOut")
    assert first.status["phase"] == "RollingBack"
    assert first.last.requeue_after == datetime.timedelta(seconds=1)
    assert first.message("Ready") == ("waiting for deployment/web to roll out: 0 updated, 0 available of 3 desired "
                                      "(3 running)")

    cluster.rolls_out = True
    second = run(cluster, first.request, now=T0 + datetime.timedelta(seconds=1))

    assert second.actions == []
    assert second.status["phase"] == "Complete"
    assert second.condition("Ready") == ("True", "RolledBack")
    assert second.reasons() == ["Accepted", "RolledBack", "RollbackComplete"]
    assert second.status["timeline"][1]["message"] == "rolled back deployment/web from revision 3 to 2"
    assert [e.reason for e in first.decisions[1].entries] == ["Accepted"]


def test_a_rollback_goes_to_the_named_revision() -> None:
    cluster = Cluster()
    done = run(cluster, request(toRevision=1))
    assert cluster.image == "shop:1.0"
    assert (done.status["fromRevision"], done.status["toRevision"], done.status["phase"]) == (3, 1, "Complete")


def test_the_previous_revision_is_the_one_before_the_current_one_after_an_earlier_rollback() -> None:
    """Revision 2 was rolled back to and became 4: `undo` from 4 goes to 3, as `kubectl rollout undo` would."""
    cluster = Cluster()
    cluster.replica_sets[1]["revision"] = 4
    cluster.image = "shop:1.1"
    done = run(cluster, request())
    assert (done.status["fromRevision"], done.status["toRevision"]) == (4, 3)
    assert cluster.image == "shop:1.2"


def test_the_template_written_has_no_pod_template_hash_label() -> None:
    cluster = Cluster()
    done = run(cluster, request())
    written = next(a for a in done.actions if isinstance(a, rollbacks.SetTemplate))
    assert written.template["metadata"]["labels"] == {"app": "web"}


# -- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cluster", "spec", "reason", "message"), [
    (Cluster(), {"toRevision": 7}, "RevisionNotFound", "deployment/web has no revision 7 (revisions: 1, 2, 3)"),
    (Cluster(images=("shop:1.0",)), {}, "RevisionNotFound",
     "deployment/web has no revision before 1 to roll back to (revisions: 1)"),
    (Cluster(), {"toRevision": 3}, "AlreadyCurrent",
     "deployment/web already runs the template of revision 3: nothing to roll back"),
    (Cluster(), {"toRevision": 3, "stopApplication": True, "migrationJob": MIGRATION}, "AlreadyCurrent",
     "deployment/web already runs the template of revision 3: nothing to roll back"),
], ids=["no-such-revision", "no-previous-revision", "already-current", "already-current-with-migration"])
def test_a_rollback_with_nothing_to_roll_back_to_is_refused_and_changes_nothing(
        cluster: Cluster, spec: dict[str, Any], reason: str, message: str) -> None:
    before = (cluster.image, cluster.replicas)
    refused = run(cluster, request(**spec))
    assert refused.actions == []
    assert (cluster.image, cluster.replicas) == before
    assert refused.condition("Accepted") == ("False", reason)
    assert refused.message("Accepted") == message
    assert refused.condition("Ready") == ("False", reason)
    assert refused.status["phase"] == "Refused"
    assert refused.status["timeline"][-1]["type"] == "Warning"
    assert "originalReplicas" not in refused.status and "migrationJobName" not in refused.status


def test_a_rollback_of_a_missing_deployment_is_refused() -> None:
    cluster = Cluster()
    cluster.exists = False
    refused = run(cluster, request())
    assert refused.condition("Accepted") == ("False", "TargetNotFound")
    assert refused.message("Ready") == "deployment/web not found in namespace default"


def test_a_refusal_is_final_for_its_spec_but_a_corrected_spec_is_decided_again() -> None:
    cluster = Cluster()
    refused = run(cluster, request(toRevision=7))
    again = run(cluster, dataclasses.replace(refused.request))
    assert again.decisions[0].changed is False and again.actions == []

    corrected = run(cluster, request(refused.status, generation=2, toRevision=2))
    assert corrected.status["phase"] == "Complete"
    assert cluster.image == "shop:1.1"


def test_a_migration_without_stopping_the_application_is_invalid_and_nothing_acts() -> None:
    cluster = Cluster()
    invalid = run(cluster, request(migrationJob=MIGRATION))
    assert invalid.status["phase"] == "Invalid"
    assert invalid.condition("Ready") == ("False", "InvalidSpec")
    assert "stopApplication" in invalid.message("Ready")
    assert cluster.acted == []


# -- a bad migration ---------------------------------------------------------------------------------


def test_a_bad_migration_is_rolled_back_in_the_runbooks_order() -> None:
    """Stop the app (replicas recorded first), run the Job and wait, roll back, restore, wait for the rollout."""
    cluster = Cluster(job_outcome="Running")

    waiting = run(cluster, request(stopApplication=True, migrationJob=MIGRATION))

    assert waiting.actions[0] == intents.ScaleTo("stop-application", "Deployment", "web", 0)
    stop_decision = next(d for d in waiting.decisions if d.intent == waiting.actions[0])
    assert stop_decision.status.original_replicas == 3, "recorded before the app is scaled down"
    job = waiting.actions[1]
    assert isinstance(job, rollbacks.RunJob)
    assert (job.name, job.owner.kind, job.owner.name, job.owner.uid) == (
        "undo-migration", "RollbackRequest", "undo", "request-uid")
    assert job.template.args == ["db", "rollback", "--to", "20241101"]
    run_decision = next(d for d in waiting.decisions if d.intent == job)
    assert run_decision.status.migration_job_name == "undo-migration", "recorded before the Job is created"
    assert len(waiting.actions) == 2
    assert cluster.replicas == 0 and cluster.image == "shop:1.2"
    assert waiting.last.requeue_after == datetime.timedelta(seconds=1)
    assert waiting.message("Ready") == "waiting for job/undo-migration to finish"
    assert waiting.condition("MigrationRolledBack") == ("False", "MigrationRunning")

    cluster.jobs["undo-migration"] = "Succeeded"
    done = run(cluster, waiting.request, now=T0 + datetime.timedelta(seconds=5))

    assert done.actions == [
        rollbacks.SetTemplate("roll-back", "web", revisions.without_hash_label(template("shop:1.1")), "h2"),
        intents.ScaleTo("restore-replicas", "Deployment", "web", 3),
    ]
    assert (cluster.image, cluster.replicas, cluster.jobs_created) == ("shop:1.1", 3, 1)
    assert done.status["phase"] == "Complete"
    assert done.reasons() == ["Accepted", "ApplicationStopped", "MigrationJobCreated", "MigrationRolledBack",
                              "RolledBack", "ReplicasRestored", "RollbackComplete"]
    assert done.condition("MigrationRolledBack") == ("True", "MigrationSucceeded")
    assert done.condition("ApplicationStopped") == ("False", "ReplicasRestored")


def test_stopping_the_application_without_a_migration_restores_the_replicas_after_the_rollback() -> None:
    cluster = Cluster()
    done = run(cluster, request(stopApplication=True))
    assert [(type(a).__name__, getattr(a, "replicas", None)) for a in done.actions] == [
        ("ScaleTo", 0), ("SetTemplate", None), ("ScaleTo", 3)]
    assert "MigrationRolledBack" not in [c["type"] for c in done.status["conditions"]]
    assert done.status["phase"] == "Complete"


def test_a_failed_migration_job_leaves_the_application_stopped_and_not_rolled_back() -> None:
    cluster = Cluster(job_outcome="Failed")

    failed = run(cluster, request(stopApplication=True, migrationJob=MIGRATION))

    assert [type(a).__name__ for a in failed.actions] == ["ScaleTo", "RunJob"]
    assert (cluster.replicas, cluster.image) == (0, "shop:1.2")
    assert failed.status["phase"] == "Failed"
    assert failed.condition("Ready") == ("False", "MigrationRollbackFailed")
    assert failed.condition("MigrationRolledBack") == ("False", "MigrationRollbackFailed")
    assert failed.message("Ready") == (
        "job/undo-migration failed (BackoffLimitExceeded): ERROR: column \"total\" is referenced by view. "
        "deployment/web stays stopped at 0 replicas and is not rolled back")
    warning = failed.status["timeline"][-1]
    assert (warning["type"], warning["reason"], warning["step"]) == ("Warning", "MigrationRollbackFailed", "migration")

    later = run(cluster, failed.request, now=T0 + datetime.timedelta(hours=1))
    assert later.actions == [] and later.decisions[0].changed is False
    assert (cluster.replicas, cluster.image) == (0, "shop:1.2")


def test_a_migration_job_that_disappears_before_it_finished_is_not_run_again() -> None:
    cluster = Cluster(job_outcome="Running")
    waiting = run(cluster, request(stopApplication=True, migrationJob=MIGRATION))
    del cluster.jobs["undo-migration"]
    lost = run(cluster, waiting.request)
    assert lost.actions == [] and cluster.jobs_created == 1
    assert lost.condition("Ready") == ("False", "MigrationRollbackFailed")
    assert lost.condition("MigrationRolledBack") == ("False", "MigrationJobLost")
    assert cluster.replicas == 0


def test_the_migration_job_is_polled_less_often_the_longer_it_runs() -> None:
    cluster = Cluster(job_outcome="Running")
    waiting = run(cluster, request(stopApplication=True, migrationJob=MIGRATION))
    assert run(cluster, waiting.request, now=T0 + datetime.timedelta(minutes=1)).last.requeue_after == \
        datetime.timedelta(seconds=6)
    assert run(cluster, waiting.request, now=T0 + datetime.timedelta(hours=1)).last.requeue_after == \
        datetime.timedelta(seconds=30)


# -- the rollout ------------------------------------------------------------------------------------


def test_a_rollout_that_does_not_finish_within_the_timeout_fails_the_request() -> None:
    cluster = Cluster(rolls_out=False)
    waiting = run(cluster, request(rolloutTimeout="2m"))
    assert run(cluster, waiting.request, now=T0 + datetime.timedelta(seconds=110)).last.requeue_after == \
        datetime.timedelta(seconds=10), "never sleeps past the deadline"

    late = run(cluster, waiting.request, now=T0 + datetime.timedelta(minutes=2))

    assert late.status["phase"] == "Failed"
    assert late.condition("RolloutComplete") == ("False", "RolloutTimeout")
    assert late.condition("Ready") == ("False", "RolloutTimeout")
    assert late.message("Ready") == ("deployment/web did not finish rolling out within 2m: 0 updated, "
                                     "0 available of 3 desired (3 running)")


def test_a_deployment_changed_by_someone_else_during_the_rollout_is_reported_as_superseded() -> None:
    cluster = Cluster(rolls_out=False)
    waiting = run(cluster, request())
    cluster.image = "shop:1.3"
    cluster.replica_sets.append({"revision": 5, "hash": "h5", "image": "shop:1.3"})
    superseded = run(cluster, waiting.request)
    assert superseded.condition("Ready") == ("False", "Superseded")


# -- crashes -------------------------------------------------------------------------------------------

MIGRATION_ACTIONS = [
    intents.ScaleTo("stop-application", "Deployment", "web", 0),
    "RunJob",
    rollbacks.SetTemplate("roll-back", "web", revisions.without_hash_label(template("shop:1.1")), "h2"),
    intents.ScaleTo("restore-replicas", "Deployment", "web", 3),
]


@pytest.mark.parametrize("crash_after", [1, 2, 3, 4], ids=["stop", "job", "roll-back", "restore"])
def test_the_intent_recorded_before_an_action_is_reissued_as_the_same_absolute_action(crash_after: int) -> None:
    """Feed the saved status back without the outcome, the world unchanged: the same action comes out."""
    cluster = Cluster()
    crashed = run(cluster, request(stopApplication=True, migrationJob=MIGRATION), crash_after=crash_after)
    lost = crashed.actions[-1]

    untouched = Cluster()  # as if the operator died before the action reached the cluster
    for done in crashed.actions[:-1]:
        untouched.act(done)
    resumed = run(untouched, crashed.request)

    assert resumed.actions[0] == lost
    assert (untouched.image, untouched.replicas, untouched.jobs_created) == ("shop:1.1", 3, 1)
    assert resumed.status["phase"] == "Complete"


@pytest.mark.parametrize("crash_after", [1, 2, 3, 4], ids=["stop", "job", "roll-back", "restore"])
def test_an_operator_that_dies_after_an_action_finishes_the_rollback_without_repeating_it(crash_after: int) -> None:
    """The action happened but its outcome was never recorded: nothing is done twice, nothing is lost."""
    cluster = Cluster()
    crashed = run(cluster, request(stopApplication=True, migrationJob=MIGRATION), crash_after=crash_after)
    assert crashed.status["originalReplicas"] == 3

    resumed = run(cluster, crashed.request, now=T0 + datetime.timedelta(seconds=30))

    assert resumed.status["phase"] == "Complete"
    assert (cluster.image, cluster.replicas) == ("shop:1.1", 3), "the original replica count survives the crash"
    assert cluster.jobs_created == 1, "no second Job"
    assert cluster.templates_set == 1, "rolled back once"
    assert cluster.current_revision() == 4, "revision 2 made current exactly once"
    if crash_after == 3:
        assert not any(isinstance(a, rollbacks.SetTemplate) for a in resumed.actions), \
            "the template already in place with toRevision recorded: the rollback step is done"
    assert resumed.status["timeline"].count(resumed.status["timeline"][0]) == 1


def test_an_operator_that_dies_after_recording_the_plan_keeps_the_original_replica_count() -> None:
    """Died after scaling to 0: a new read sees 0 replicas, but the recorded 3 is what is restored."""
    cluster = Cluster()
    crashed = run(cluster, request(stopApplication=True), crash_after=1)
    assert cluster.replicas == 0
    run(cluster, crashed.request)
    assert cluster.replicas == 3


# -- one-shot ----------------------------------------------------------------------------------------------


def test_a_spec_change_after_the_rollback_started_stops_it_where_it_is() -> None:
    cluster = Cluster(job_outcome="Running")
    waiting = run(cluster, request(stopApplication=True, migrationJob=MIGRATION))
    changed = request(waiting.status, generation=2, stopApplication=True, migrationJob=MIGRATION, toRevision=1)

    stopped = run(cluster, changed)

    assert stopped.actions == []
    assert stopped.status["phase"] == "Failed"
    assert stopped.condition("Ready") == ("False", "SpecChanged")
    assert stopped.message("Ready") == (
        "the spec changed (generation 1 to 2) after the rollback was accepted; a RollbackRequest is one-shot, "
        "so it stops here; the application stays stopped (it had 3 replicas)")
    cluster.jobs["undo-migration"] = "Succeeded"
    assert run(cluster, stopped.request).actions == []


def test_a_spec_change_after_the_rollback_finished_is_ignored_with_a_warning() -> None:
    cluster = Cluster()
    done = run(cluster, request())
    changed = run(cluster, request(done.status, generation=2, toRevision=1))
    assert changed.actions == [] and cluster.image == "shop:1.1"
    assert changed.status["phase"] == "Complete"
    assert changed.reasons()[-1] == "SpecChangeIgnored"
    assert run(cluster, changed.request).decisions[0].changed is False, "warned once"


# -- dry run ------------------------------------------------------------------------------------------------


def test_a_dry_run_records_the_plan_and_changes_nothing() -> None:
    cluster = Cluster()
    planned = run(cluster, request(stopApplication=True, migrationJob=MIGRATION),
                  policy=rollbacks.Policy(dry_run=True))
    assert cluster.acted == []
    assert planned.status["phase"] == "Planned"
    assert (planned.status["fromRevision"], planned.status["toRevision"]) == (3, 2)
    assert planned.message("Ready") == (
        "dry run: would scale deployment/web from 3 to 0, then run job/undo-migration (shop-migrate:1.2), then "
        "roll back deployment/web from revision 3 to 2, then scale deployment/web back to 3; nothing was changed")
    assert "originalReplicas" not in planned.status


# -- pure helpers ---------------------------------------------------------------------------------------------


def test_templates_compare_as_kubernetes_compares_them() -> None:
    stored = template("shop:1.1")
    round_tripped = {"metadata": {"labels": {"app": "web", "pod-template-hash": "h2"}, "creationTimestamp": None},
                     "spec": {"containers": [{"name": "web", "image": "shop:1.1", "resources": {}}]}}
    assert revisions.same_template(stored, round_tripped)
    assert not revisions.same_template(stored, template("shop:1.2"))


def test_the_migration_job_name_fits_a_label_value_and_is_stable() -> None:
    assert rollbacks.migration_job_name("undo") == "undo-migration"
    long_name = "shop-api-rollback-" + "x" * 100
    name = rollbacks.migration_job_name(long_name)
    assert len(name) <= 63 and name.endswith("-migration")
    assert name == rollbacks.migration_job_name(long_name) != rollbacks.migration_job_name(long_name + "y")


@pytest.mark.parametrize(("policy", "spec", "reason"), [
    (rollbacks.Policy(namespaces=frozenset({"payments"})), {}, "NamespaceNotAllowed"),
    (rollbacks.Policy(kinds=frozenset({"StatefulSet"})), {}, "KindNotAllowed"),
    (rollbacks.Policy(kinds=frozenset({"Deployment"})), {"stopApplication": True, "migrationJob": MIGRATION},
     "KindNotAllowed"),
    (rollbacks.Policy(jobs=allow_lists.JobPolicy(images=frozenset({"ghcr.io/acme/*"}))),
     {"stopApplication": True, "migrationJob": MIGRATION}, "ImageNotAllowed"),
    (rollbacks.Policy(), {"stopApplication": True, "migrationJob": {**MIGRATION, "serviceAccountName": "admin"}},
     "ServiceAccountNotAllowed"),
], ids=["namespace", "kind", "job-kind", "job-image", "job-service-account"])
def test_a_rollback_request_outside_the_allow_lists_is_refused_before_anything_changes(
        policy: rollbacks.Policy, spec: dict[str, Any], reason: str) -> None:
    """The allow-lists hold for RollbackRequests as for Incidents: a migration Job is a Job like any other."""
    cluster = Cluster()
    refused = run(cluster, request(**spec), policy=policy)
    assert refused.condition("Accepted") == ("False", reason)
    assert cluster.acted == [] and cluster.replicas == 3 and cluster.image == IMAGES[-1]
