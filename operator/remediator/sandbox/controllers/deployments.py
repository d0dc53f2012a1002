"""The Deployment controller: a ReplicaSet per pod template, revisions, rollouts, and status.

Follows kube-controller-manager's pkg/controller/deployment (sync.go, rolling.go, recreate.go,
progress.go): what `kubectl rollout status|history|undo|restart|pause` rely on holds here.
https://kubernetes.io/docs/concepts/workloads/controllers/deployment/

The pure decisions (hashes, revisions, how far to scale, the status) are plain functions;
`reconcile` does the store I/O.
"""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox.controllers import cluster, conditions, naming, ownership, pods, specs, timestamps

Object = dict[str, Any]
View = Mapping[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations not copied onto its ReplicaSets (deploymentutil.skipCopyAnnotation).
NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                        "deprecated.deployment.rollback.to"})
HASH_LABEL = naming.POD_TEMPLATE_HASH_LABEL
COMPONENT = "deployment-controller"
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
MAX_REVISION_HISTORY_CHARS = 2000

NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

# -- reading specs ------------------------------------------------------------------------------


spec_replicas = specs.spec_replicas
status_count = specs.status_count


def is_rolling_update(deploy: View) -> bool:
    strategy = (deploy.get("spec") or {}).get("strategy") or {}
    return bool(strategy.get("type", "RollingUpdate") == "RollingUpdate")


def resolve_int_or_percent(value: int | str, total: int, round_up: bool) -> int:
    """An IntOrString as a number of pods: "25%" of `total`, rounded up or down."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.endswith("%"):
        return int(text)
    share = total * int(text[:-1]) / 100
    return math.ceil(share) if round_up else math.floor(share)


def fenceposts(deploy: View) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods for a RollingUpdate Deployment (deploymentutil.ResolveFenceposts).

    Both default to 25%; surge rounds up, unavailable down; both zero would deadlock, so
    maxUnavailable becomes 1. A Recreate Deployment has (0, 0).
    """
    if not is_rolling_update(deploy):
        return 0, 0
    rolling = ((deploy.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    replicas = spec_replicas(deploy)
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deploy: View) -> int:
    return fenceposts(deploy)[0]


def max_unavailable(deploy: View) -> int:
    replicas = spec_replicas(deploy)
    if not is_rolling_update(deploy) or replicas == 0:
        return 0
    return min(fenceposts(deploy)[1], replicas)


def progress_deadline(deploy: View) -> int | None:
    """spec.progressDeadlineSeconds (default 600); None for "no deadline" (MaxInt32)."""
    value = (deploy.get("spec") or {}).get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS)
    if value is None or int(value) >= 2**31 - 1:
        return None
    return int(value)


# -- ReplicaSets and revisions --------------------------------------------------------------------


def revision_of(obj: View) -> int:
    """The `deployment.kubernetes.io/revision` annotation as a number (0 when absent or not a number)."""
    text = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION, "0")
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


def next_revision(old_replica_sets: Sequence[View]) -> int:
    """The revision for a Deployment's new ReplicaSet: one past the highest of the others."""
    return max((revision_of(rs) for rs in old_replica_sets), default=0) + 1


def creation_order(obj: View) -> tuple[str, str]:
    return (obj["metadata"].get("creationTimestamp", ""), obj["metadata"]["name"])


def pod_template_hash(template: View, collision_count: int | None = None) -> str:
    """The `pod-template-hash` of a Deployment's template: names its ReplicaSet `<deployment>-<hash>`."""
    return naming.template_hash(template, collision_count)


def find_matching_replicaset(template: View, replica_sets: Sequence[Object]) -> Object | None:
    """The ReplicaSet whose template equals the Deployment's, ignoring pod-template-hash (the oldest on ties).

    This is how Kubernetes finds the "new" ReplicaSet, and why restoring an old template
    (`kubectl rollout undo`) makes the old ReplicaSet current again instead of creating one.
    """
    wanted = naming.comparable_template(template)
    matching = [rs for rs in replica_sets
                if naming.comparable_template((rs.get("spec") or {}).get("template") or {}) == wanted]
    return min(matching, key=creation_order, default=None)


def replica_annotations(deploy: View) -> dict[str, str]:
    """desired-replicas and max-replicas, as a Deployment stamps them on ReplicaSets it scales."""
    replicas = spec_replicas(deploy)
    return {DESIRED_REPLICAS: str(replicas), MAX_REPLICAS: str(replicas + max_surge(deploy))}


def copied_annotations(deploy: View, annotations: Mapping[str, str]) -> dict[str, str]:
    """A ReplicaSet's annotations with the Deployment's copied over (change-cause and the like)."""
    result = dict(annotations)
    for key, value in (deploy["metadata"].get("annotations") or {}).items():
        if key not in NOT_COPIED:
            result[key] = value
    return result


def new_replicaset(deploy: View, template_hash: str, revision: int, replicas: int) -> Object:
    """The ReplicaSet a Deployment creates for its current template (deployment/sync.go getNewReplicaSet)."""
    spec = deploy["spec"]
    template = copy.deepcopy(dict(spec["template"]))
    template_meta = template.setdefault("metadata", {})
    labels = {**(template_meta.get("labels") or {}), HASH_LABEL: template_hash}
    template_meta["labels"] = labels
    selector = copy.deepcopy(dict(spec["selector"]))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: template_hash}
    annotations = {**copied_annotations(deploy, {}), **replica_annotations(deploy), REVISION: str(revision)}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deploy['metadata']['name']}-{template_hash}",
            "namespace": deploy["metadata"].get("namespace", "default"),
            "labels": dict(labels),
            "annotations": annotations,
            "ownerReferences": [ownership.controller_reference(deploy)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }


def current_replicaset_annotations(deploy: View, replica_set: View, revision: int) -> dict[str, str]:
    """The annotations of an existing ReplicaSet that became current (SetNewReplicaSetAnnotations).

    Its revision moves up to `revision` when lower (a rollback to it), and the revision it had is
    kept in `deployment.kubernetes.io/revision-history`.
    """
    annotations = copied_annotations(deploy, replica_set["metadata"].get("annotations") or {})
    old_text = annotations.get(REVISION)
    if revision_of(replica_set) < revision:
        annotations[REVISION] = str(revision)
        if old_text is not None:
            history = [r for r in annotations.get(REVISION_HISTORY, "").split(",") if r] + [old_text]
            while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            annotations[REVISION_HISTORY] = ",".join(history)
    return annotations


def replicasets_to_delete(deploy: View, old_replica_sets: Sequence[View]) -> list[View]:
    """Old ReplicaSets beyond spec.revisionHistoryLimit (default 10), lowest revisions first.

    Only fully scaled-down ReplicaSets go (deployment/sync.go cleanupDeployment).
    """
    limit = (deploy.get("spec") or {}).get("revisionHistoryLimit")
    limit = DEFAULT_REVISION_HISTORY_LIMIT if limit is None else int(limit)
    alive = [rs for rs in old_replica_sets if not ownership.is_terminating(rs)]
    surplus = len(alive) - limit
    if surplus <= 0:
        return []
    oldest = sorted(alive, key=lambda rs: (revision_of(rs), creation_order(rs)))[:surplus]
    return [rs for rs in oldest
            if status_count(rs, "replicas") == 0 and spec_replicas(rs) == 0
            and int(rs["metadata"].get("generation", 1)) <= status_count(rs, "observedGeneration")]


# -- how far to scale ---------------------------------------------------------------------------


def new_replicaset_target(deploy: View, new_replicas: int, old_replica_sets: Sequence[View]) -> int:
    """How many replicas the current ReplicaSet should have now (deploymentutil.NewRSNewReplicas).

    RollingUpdate adds pods only up to spec.replicas + maxSurge in total; Recreate goes straight
    to spec.replicas; more than spec.replicas is scaled down at once.
    """
    replicas = spec_replicas(deploy)
    if new_replicas >= replicas or not is_rolling_update(deploy):
        return replicas
    current = sum(spec_replicas(rs) for rs in old_replica_sets) + new_replicas
    max_total = replicas + max_surge(deploy)
    if current >= max_total:
        return new_replicas
    return new_replicas + min(max_total - current, replicas - new_replicas)


def old_replicaset_targets(deploy: View, new_rs: View | None,
                           old_replica_sets: Sequence[View]) -> dict[str, int]:
    """Old ReplicaSets to scale down now, by name → replicas (deployment/rolling.go reconcileOldReplicaSets).

    Unhealthy old pods go first, then as many available ones as keep at least
    spec.replicas - maxUnavailable pods available.
    """
    old_total = sum(spec_replicas(rs) for rs in old_replica_sets)
    if old_total == 0:
        return {}
    new_replicas = spec_replicas(new_rs) if new_rs is not None else 0
    min_available = spec_replicas(deploy) - max_unavailable(deploy)
    new_unavailable = new_replicas - status_count(new_rs, "availableReplicas")
    max_scaled_down = old_total + new_replicas - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    targets: dict[str, int] = {}
    oldest_first = sorted(old_replica_sets, key=creation_order)
    cleaned = 0
    for rs in oldest_first:
        current, available = spec_replicas(rs), status_count(rs, "availableReplicas")
        if cleaned >= max_scaled_down:
            break
        if current == 0 or current == available:
            continue
        down = min(max_scaled_down - cleaned, current - available)
        targets[rs["metadata"]["name"]] = current - down
        cleaned += down
    available_total = sum(status_count(rs, "availableReplicas") for rs in [*old_replica_sets, new_rs] if rs)
    budget = available_total - min_available
    for rs in oldest_first:
        name = rs["metadata"]["name"]
        current = targets.get(name, spec_replicas(rs))
        if budget <= 0:
            break
        if current == 0:
            continue
        down = min(current, budget)
        targets[name] = current - down
        budget -= down
    current_replicas = {rs["metadata"]["name"]: spec_replicas(rs) for rs in old_replica_sets}
    return {name: replicas for name, replicas in targets.items() if replicas != current_replicas[name]}


def is_scaling_event(deploy: View, replica_sets: Sequence[View]) -> bool:
    """Whether spec.replicas changed since the active ReplicaSets were last scaled (isScalingEvent)."""
    replicas = str(spec_replicas(deploy))
    for rs in replica_sets:
        if spec_replicas(rs) > 0:
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is not None and desired != replicas:
                return True
    return False


def active_or_latest(new_rs: View | None, old_replica_sets: Sequence[View]) -> View | None:
    """The one ReplicaSet to scale to spec.replicas outside a rollout (deploymentutil.FindActiveOrLatest)."""
    every = [rs for rs in [new_rs, *old_replica_sets] if rs is not None]
    active = [rs for rs in every if spec_replicas(rs) > 0]
    if len(active) == 1:
        return active[0]
    if active:
        return None
    if new_rs is not None:
        return new_rs
    return max(old_replica_sets, key=creation_order, default=None)


# -- status ---------------------------------------------------------------------------------------


def new_condition(kind: str, status: str, reason: str, message: str, stamp: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def is_complete(deploy: View, status: View) -> bool:
    """The rollout is done (deploymentutil.DeploymentComplete), what `kubectl rollout status` waits for."""
    replicas = spec_replicas(deploy)
    return (int(status.get("updatedReplicas") or 0) == replicas
            and int(status.get("replicas") or 0) == replicas
            and int(status.get("availableReplicas") or 0) == replicas
            and int(status.get("observedGeneration") or 0) >= int(deploy["metadata"].get("generation", 1)))


def is_progressing(old: View, new: View) -> bool:
    """Pods moved forward since the last status (deploymentutil.DeploymentProgressing)."""
    def count(status: View, field: str) -> int:
        return int(status.get(field) or 0)
    return (count(new, "updatedReplicas") > count(old, "updatedReplicas")
            or count(new, "replicas") - count(new, "updatedReplicas")
            < count(old, "replicas") - count(old, "updatedReplicas")
            or count(new, "readyReplicas") > count(old, "readyReplicas")
            or count(new, "availableReplicas") > count(old, "availableReplicas"))


def is_timed_out(deploy: View, status: View, now: datetime.datetime, time_scale: float = 1.0) -> bool:
    """No progress for progressDeadlineSeconds (times the sandbox's time scale) since the Progressing
    condition last moved."""
    deadline = progress_deadline(deploy)
    progressing = conditions.find_condition(status.get("conditions"), "Progressing")
    if deadline is None or progressing is None or progressing.get("reason") == NEW_RS_AVAILABLE:
        return False
    if progressing.get("reason") == TIMED_OUT:
        return True
    since = timestamps.parse_time(progressing.get("lastUpdateTime"))
    return since is not None and since + datetime.timedelta(seconds=deadline * time_scale) < now


def deployment_status(
    deploy: View,
    replica_sets: Sequence[View],
    new_rs: View | None,
    now: datetime.datetime,
    *,
    created_new_rs: bool = False,
    track_progress: bool = True,
    time_scale: float = 1.0,
) -> dict[str, Any]:
    """The Deployment's status from its ReplicaSets' statuses.

    As calculateStatus, syncRolloutStatus and checkPausedConditions compute it.

    Counts sum the ReplicaSets' statuses; `Available` compares available pods with
    spec.replicas - maxUnavailable; `Progressing` says which ReplicaSet is rolling out and turns
    NewReplicaSetAvailable once complete, or ProgressDeadlineExceeded. `track_progress` is off
    while paused or only scaling. Zero counts are omitted, as the API's omitempty does.
    """
    stamp = timestamps.format_time(now)
    old_status = deploy.get("status") or {}
    found: list[dict[str, Any]] = [dict(c) for c in old_status.get("conditions") or ()]
    has_deadline = progress_deadline(deploy) is not None
    progressing = conditions.find_condition(found, "Progressing")
    if has_deadline and not (progressing and progressing.get("reason") == TIMED_OUT):
        paused = bool((deploy.get("spec") or {}).get("paused"))
        was_paused = progressing is not None and progressing.get("reason") == PAUSED
        if paused and not was_paused:
            found = conditions.set_condition(found, new_condition(
                "Progressing", "Unknown", PAUSED, "Deployment is paused", stamp))
        elif was_paused and not paused:
            found = conditions.set_condition(found, new_condition(
                "Progressing", "Unknown", RESUMED, "Deployment is resumed", stamp))
    if has_deadline and new_rs is not None:
        rs_name = new_rs["metadata"]["name"]
        if created_new_rs:
            found = conditions.set_condition(found, new_condition(
                "Progressing", "True", NEW_RS_CREATED, f'Created new replica set "{rs_name}"', stamp))
        elif conditions.find_condition(found, "Progressing") is None:
            found = conditions.set_condition(found, new_condition(
                "Progressing", "True", FOUND_NEW_RS, f'Found new replica set "{rs_name}"', stamp))

    available = sum(status_count(rs, "availableReplicas") for rs in replica_sets)
    counts = {
        "replicas": sum(status_count(rs, "replicas") for rs in replica_sets),
        "updatedReplicas": status_count(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(status_count(rs, "readyReplicas") for rs in replica_sets),
        "availableReplicas": available,
        "unavailableReplicas": max(0, sum(spec_replicas(rs) for rs in replica_sets) - available),
    }
    status: dict[str, Any] = {"observedGeneration": int(deploy["metadata"].get("generation", 1))}
    status.update({field: value for field, value in counts.items() if value})
    if available >= spec_replicas(deploy) - max_unavailable(deploy):
        availability = new_condition("Available", "True", MIN_AVAILABLE,
                                     "Deployment has minimum availability.", stamp)
    else:
        availability = new_condition("Available", "False", MIN_UNAVAILABLE,
                                     "Deployment does not have minimum availability.", stamp)
    found = conditions.set_condition(found, availability)

    if track_progress:
        if not has_deadline:
            found = conditions.remove_condition(found, "Progressing")
        else:
            found = _rollout_progress(deploy, {**status, "conditions": found}, new_rs, now, time_scale)
    status["conditions"] = found
    if "collisionCount" in old_status:
        status["collisionCount"] = old_status["collisionCount"]
    return status


def _rollout_progress(deploy: View, status: View, new_rs: View | None, now: datetime.datetime,
                      time_scale: float) -> list[dict[str, Any]]:
    # deployment/progress.go syncRolloutStatus: the Progressing condition of a rollout in flight.
    found: list[dict[str, Any]] = list(status["conditions"])
    stamp = timestamps.format_time(now)
    old_status = deploy.get("status") or {}
    current = conditions.find_condition(found, "Progressing")
    settled = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
               and current is not None and current.get("reason") == NEW_RS_AVAILABLE)
    if settled:
        return found
    subject = (f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs is not None
               else f'Deployment "{deploy["metadata"]["name"]}"')
    if is_complete(deploy, status):
        return conditions.set_condition(found, new_condition(
            "Progressing", "True", NEW_RS_AVAILABLE, f"{subject} has successfully progressed.", stamp))
    if is_progressing(old_status, status):
        condition = new_condition("Progressing", "True", RS_UPDATED, f"{subject} is progressing.", stamp)
        # Progress moves lastUpdateTime even with an unchanged reason (the deadline counts from it).
        previous = conditions.find_condition(found, "Progressing")
        if previous is not None and previous.get("status") == "True" and "lastTransitionTime" in previous:
            condition["lastTransitionTime"] = previous["lastTransitionTime"]
        return [*conditions.remove_condition(found, "Progressing"), condition]
    if is_timed_out(deploy, status, now, time_scale):
        return conditions.set_condition(found, new_condition(
            "Progressing", "False", TIMED_OUT, f"{subject} has timed out progressing.", stamp))
    return found


def seconds_until_deadline(deploy: View, status: View, now: datetime.datetime,
                           time_scale: float = 1.0) -> float | None:
    """When to look again for a stalled rollout's deadline (requeueStuckDeployment); None: no need.

    The deadline is scaled; the condition's lastUpdateTime has whole seconds, so a look one second
    after the deadline is sure to find it passed.
    """
    deadline = progress_deadline(deploy)
    progressing = conditions.find_condition(status.get("conditions"), "Progressing")
    if (deadline is None or progressing is None or (deploy.get("spec") or {}).get("paused")
            or progressing.get("reason") == TIMED_OUT or is_complete(deploy, status)):
        return None
    since = timestamps.parse_time(progressing.get("lastUpdateTime"))
    if since is None:
        return None
    return max(0.0, (since + datetime.timedelta(seconds=deadline * time_scale) - now).total_seconds()) + 1.0


# -- the reconcile (store I/O) ------------------------------------------------------------------


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    """Converge one Deployment: its ReplicaSets, revision annotations, scale, and status."""
    deploy = world.find(world.deployments, namespace, name)
    if deploy is None or ownership.is_terminating(deploy):
        return None
    spec = deploy.get("spec") or {}
    if not spec.get("selector") or not spec.get("template"):
        return None
    replica_sets = world.claim(world.replicasets, deploy, spec["selector"])
    new_rs = find_matching_replicaset(spec["template"], replica_sets)
    old_rss = [rs for rs in replica_sets if rs is not new_rs]
    if new_rs is not None:
        new_rs = _sync_current_replicaset(world, deploy, new_rs, old_rss)

    created = False
    track_progress = True
    if spec.get("paused") or is_scaling_event(deploy, replica_sets):
        track_progress = False
        _scale_without_rollout(world, deploy, new_rs, old_rss)
    elif is_rolling_update(deploy):
        if new_rs is None:
            new_rs = _create_current_replicaset(world, deploy, old_rss,
                                                new_replicaset_target(deploy, 0, old_rss))
            if new_rs is None:
                return None
            created = True
        elif not _scale(world, deploy, new_rs, new_replicaset_target(deploy, spec_replicas(new_rs), old_rss)):
            # Old ReplicaSets shrink only in a pass that did not grow the new one, as in rolling.go.
            targets = old_replicaset_targets(deploy, new_rs, old_rss)
            for old in old_rss:
                if old["metadata"]["name"] in targets:
                    _scale(world, deploy, old, targets[old["metadata"]["name"]])
    else:
        scaled_down = [_scale(world, deploy, old, 0) for old in old_rss]
        if not any(scaled_down) and not _old_pods_running(world, old_rss):
            if new_rs is None:
                new_rs = _create_current_replicaset(world, deploy, old_rss, spec_replicas(deploy))
                if new_rs is None:
                    return None
                created = True
            else:
                _scale(world, deploy, new_rs, spec_replicas(deploy))

    if new_rs is not None:
        deploy = _sync_revision_annotation(world, deploy, new_rs)
    replica_sets = world.owned(world.replicasets, deploy)
    new_name = new_rs["metadata"]["name"] if new_rs is not None else None
    new_rs = next((rs for rs in replica_sets if rs["metadata"]["name"] == new_name), None)
    now = world.now()
    status = deployment_status(deploy, replica_sets, new_rs, now, created_new_rs=created,
                               track_progress=track_progress, time_scale=world.time_scale)
    deploy = world.update_status(world.deployments, deploy, status)
    if is_complete(deploy, status) or spec.get("paused"):
        for expired in replicasets_to_delete(deploy, [rs for rs in replica_sets if rs is not new_rs]):
            world.delete(world.replicasets, expired)
    return seconds_until_deadline(deploy, status, now, world.time_scale) if track_progress else None


def _sync_current_replicaset(world: cluster.Cluster, deploy: Object, replica_set: Object,
                             old_rss: Sequence[View]) -> Object:
    annotations = current_replicaset_annotations(deploy, replica_set, next_revision(old_rss))
    min_ready = int((deploy.get("spec") or {}).get("minReadySeconds") or 0)
    if annotations == (replica_set["metadata"].get("annotations") or {}) \
            and int(replica_set["spec"].get("minReadySeconds") or 0) == min_ready:
        return replica_set
    return world.update(world.replicasets, cluster.changed(replica_set, metadata={"annotations": annotations},
                                                           spec={"minReadySeconds": min_ready}))


def _create_current_replicaset(world: cluster.Cluster, deploy: Object, old_rss: Sequence[View],
                               replicas: int) -> Object | None:
    """Create the ReplicaSet for the current template; None after a hash collision (retried)."""
    collisions = (deploy.get("status") or {}).get("collisionCount")
    template_hash = pod_template_hash(deploy["spec"]["template"], collisions)
    body = new_replicaset(deploy, template_hash, next_revision(old_rss), replicas)
    existing = world.find(world.replicasets, deploy["metadata"]["namespace"], body["metadata"]["name"])
    if existing is not None:
        # Another template already has this name: count a collision, which changes the hash.
        status = {**(deploy.get("status") or {}), "collisionCount": int(collisions or 0) + 1}
        world.update_status(world.deployments, deploy, status)
        return None
    created = world.create(world.replicasets, body)
    if replicas > 0:
        world.events.record(deploy, "ScalingReplicaSet",
                            f"Scaled up replica set {created['metadata']['name']} from 0 to {replicas}",
                            component=COMPONENT)
    return created


def _scale(world: cluster.Cluster, deploy: Object, replica_set: Object, replicas: int) -> bool:
    """Scale a ReplicaSet, with replica annotations and a ScalingReplicaSet event; False if already there."""
    current = spec_replicas(replica_set)
    if current == replicas:
        return False
    annotations = {**(replica_set["metadata"].get("annotations") or {}), **replica_annotations(deploy)}
    world.update(world.replicasets, cluster.changed(replica_set, spec={"replicas": replicas},
                                                    metadata={"annotations": annotations}))
    direction = "up" if replicas > current else "down"
    world.events.record(deploy, "ScalingReplicaSet",
                        f"Scaled {direction} replica set {replica_set['metadata']['name']} "
                        f"from {current} to {replicas}", component=COMPONENT)
    return True


def _scale_without_rollout(world: cluster.Cluster, deploy: Object, new_rs: Object | None,
                           old_rss: Sequence[Object]) -> None:
    # deployment/sync.go scale(): one active ReplicaSet takes spec.replicas; with several
    # (mid-rollout) only their replica annotations move, and the rollout rebalances them.
    target = active_or_latest(new_rs, old_rss)
    if target is not None:
        _scale(world, deploy, dict(target), spec_replicas(deploy))
        return
    wanted = replica_annotations(deploy)
    for replica_set in [rs for rs in [new_rs, *old_rss] if rs is not None and spec_replicas(rs) > 0]:
        annotations = replica_set["metadata"].get("annotations") or {}
        if any(annotations.get(k) != v for k, v in wanted.items()):
            world.update(world.replicasets,
                         cluster.changed(replica_set, metadata={"annotations": {**annotations, **wanted}}))


def _old_pods_running(world: cluster.Cluster, old_rss: Sequence[Object]) -> bool:
    return any(pods.phase(pod) not in pods.FINISHED_PHASES
               for rs in old_rss for pod in world.owned(world.pods, rs))


def _sync_revision_annotation(world: cluster.Cluster, deploy: Object, new_rs: View) -> Object:
    # The Deployment's revision annotation follows its current ReplicaSet's (SetDeploymentRevision).
    revision = (new_rs["metadata"].get("annotations") or {}).get(REVISION)
    annotations = deploy["metadata"].get("annotations") or {}
    if revision is None or annotations.get(REVISION) == revision:
        return deploy
    return world.update(world.deployments,
                        cluster.changed(deploy, metadata={"annotations": {**annotations, REVISION: revision}}))
