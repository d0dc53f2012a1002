"""The scheduler and the kubelet of the sandbox's one node: pods are bound, run, and finish.

A new pod is bound to `sandbox-node`, then runs: Running and Ready with container statuses,
a pod IP and a host IP. A pod that runs to completion (restartPolicy Never or OnFailure, or any
Job pod) then terminates: Succeeded, or Failed when a container fails. What fails is decided by
the sandbox's switches (see `decide_outcome`); a failing container of a long-running pod leaves
it Running but not Ready, in CrashLoopBackOff.
https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

from remediator.sandbox.controllers import cluster, conditions, ownership, pods, timestamps

Object = dict[str, Any]
COMPONENT = "kubelet"
SCHEDULER = "default-scheduler"
OUTCOME_ANNOTATION = "sandbox.remediator.dev/outcome"
MESSAGE_ANNOTATION = "sandbox.remediator.dev/termination-message"
DEFAULT_FAILURE_MESSAGE = "exit status 1"
_FAIL_WORD = re.compile(r"\bfail\b")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the pod's containers do: which of them fail, and the failing ones' termination message."""

    failing: frozenset[str]
    message: str = DEFAULT_FAILURE_MESSAGE

    @property
    def fails(self) -> bool:
        return bool(self.failing)


def container_fails(container: Mapping[str, Any]) -> bool:
    """A container fails when its command and args contain the word `fail` (the sandbox's switch)."""
    parts = [*(container.get("command") or ()), *(container.get("args") or ())]
    words = " ".join(str(part) for part in parts)
    return _FAIL_WORD.search(words) is not None


def decide_outcome(pod: Mapping[str, Any], owner_annotations: Mapping[str, str] | None = None) -> Outcome:
    """Which containers fail: all of them when the pod (or the Job owning it) is annotated
    `sandbox.remediator.dev/outcome: Failed`, else those whose command says `fail`.

    The message is the annotation `sandbox.remediator.dev/termination-message`, else "exit status 1".
    """
    annotations = {**(owner_annotations or {}), **(pod["metadata"].get("annotations") or {})}
    containers = (pod.get("spec") or {}).get("containers") or ()
    if annotations.get(OUTCOME_ANNOTATION) == "Failed":
        failing = frozenset(c.get("name", "") for c in containers)
    else:
        failing = frozenset(c.get("name", "") for c in containers if container_fails(c))
    return Outcome(failing, annotations.get(MESSAGE_ANNOTATION) or DEFAULT_FAILURE_MESSAGE)


def runs_to_completion(pod: Mapping[str, Any], owned_by_job: bool = False) -> bool:
    """Containers that exit are not restarted: the pod finishes (Succeeded or Failed)."""
    return owned_by_job or (pod.get("spec") or {}).get("restartPolicy", "Always") in ("Never", "OnFailure")


def qos_class(pod: Mapping[str, Any]) -> str:
    """Guaranteed (requests equal limits everywhere), BestEffort (none set), else Burstable."""
    containers = [*((pod.get("spec") or {}).get("containers") or ()),
                  *((pod.get("spec") or {}).get("initContainers") or ())]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        set(r.get("limits") or {}) >= {"cpu", "memory"}
        and all((r.get("requests") or {}).get(k, v) == v for k, v in (r.get("limits") or {}).items())
        for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def _image_id(image: str) -> str:
    repository = image.split("@")[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _container_id(pod: Mapping[str, Any], name: str, restarts: int) -> str:
    seed = f"{pod['metadata'].get('uid', '')}/{name}/{restarts}"
    return f"containerd://{hashlib.sha256(seed.encode()).hexdigest()}"


def _condition(kind: str, status: str, stamp: str, reason: str | None = None,
               message: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None,
                                 "lastTransitionTime": stamp}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _keep_transition_times(previous: Mapping[str, Any] | None,
                           new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A condition whose status did not change keeps the moment it last changed.
    for condition in new:
        before = conditions.find_condition((previous or {}).get("conditions"), condition["type"])
        if before is not None and before.get("status") == condition["status"] \
                and before.get("lastTransitionTime"):
            condition["lastTransitionTime"] = before["lastTransitionTime"]
    return new


def _init_container_statuses(pod: Mapping[str, Any], stamp: str) -> list[dict[str, Any]]:
    # Init containers ran to completion before the app containers started.
    statuses = []
    for container in (pod.get("spec") or {}).get("initContainers") or ():
        name, image = container.get("name", ""), container.get("image", "")
        container_id = _container_id(pod, name, 0)
        statuses.append({
            "name": name, "image": image, "imageID": _image_id(image), "containerID": container_id,
            "ready": True, "started": False, "restartCount": 0, "lastState": {},
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": stamp,
                                     "finishedAt": stamp, "containerID": container_id}},
        })
    return statuses


def running_status(pod: Mapping[str, Any], stamp: str, pod_ip: str, outcome: Outcome, *,
                   owned_by_job: bool = False, host_ip: str = cluster.HOST_IP) -> dict[str, Any]:
    """The status a kubelet reports once the pod's containers started.

    A failing container of a restartPolicy Always pod is in CrashLoopBackOff (restarted once,
    last terminated with exit code 1), so the pod is Running but not Ready.
    """
    crash_loops = not runs_to_completion(pod, owned_by_job)
    container_statuses = []
    unready = []
    for container in (pod.get("spec") or {}).get("containers") or ():
        name, image = container.get("name", ""), container.get("image", "")
        entry: dict[str, Any] = {
            "name": name, "image": image, "imageID": _image_id(image),
            "containerID": _container_id(pod, name, 0), "ready": True, "started": True,
            "restartCount": 0, "lastState": {}, "state": {"running": {"startedAt": stamp}},
        }
        if crash_loops and name in outcome.failing:
            unready.append(name)
            entry.update({
                "ready": False, "started": False, "restartCount": 1,
                "containerID": _container_id(pod, name, 1),
                "state": {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 10s restarting failed container={name} "
                               f"pod={pod['metadata']['name']}_{pod['metadata'].get('namespace', '')}"
                               f"({pod['metadata'].get('uid', '')})"}},
                "lastState": {"terminated": {
                    "exitCode": 1, "reason": "Error", "message": outcome.message, "startedAt": stamp,
                    "finishedAt": stamp, "containerID": _container_id(pod, name, 0)}},
            })
        container_statuses.append(entry)
    if unready:
        not_ready = f"containers with unready status: [{' '.join(unready)}]"
        ready = [_condition("Ready", "False", stamp, "ContainersNotReady", not_ready),
                 _condition("ContainersReady", "False", stamp, "ContainersNotReady", not_ready)]
    else:
        ready = [_condition("Ready", "True", stamp), _condition("ContainersReady", "True", stamp)]
    status: dict[str, Any] = {
        "phase": "Running",
        "conditions": _keep_transition_times(pod.get("status"), [
            _condition("PodReadyToStartContainers", "True", stamp),
            _condition("Initialized", "True", stamp),
            *ready,
            _condition("PodScheduled", "True", stamp),
        ]),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": stamp,
        "qosClass": qos_class(pod),
        "containerStatuses": container_statuses,
    }
    init_statuses = _init_container_statuses(pod, stamp)
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    return status


def terminated_status(pod: Mapping[str, Any], stamp: str, outcome: Outcome) -> dict[str, Any]:
    """The status of a run-to-completion pod whose containers exited: Succeeded, or Failed."""
    previous = pod.get("status") or {}
    started = {s.get("name"): ((s.get("state") or {}).get("running") or {}).get("startedAt", stamp)
               for s in previous.get("containerStatuses") or ()}
    container_statuses = []
    for container in (pod.get("spec") or {}).get("containers") or ():
        name = container.get("name", "")
        terminated: dict[str, Any] = {"exitCode": 0, "reason": "Completed"}
        if name in outcome.failing:
            terminated = {"exitCode": 1, "reason": "Error", "message": outcome.message}
        terminated.update({"startedAt": started.get(name, stamp), "finishedAt": stamp,
                           "containerID": _container_id(pod, name, 0)})
        container_statuses.append({
            "name": name, "image": container.get("image", ""),
            "imageID": _image_id(container.get("image", "")),
            "containerID": _container_id(pod, name, 0), "ready": False, "started": False,
            "restartCount": 0, "lastState": {}, "state": {"terminated": terminated},
        })
    phase = "Failed" if outcome.fails else "Succeeded"
    reason = "PodFailed" if outcome.fails else "PodCompleted"
    status = {
        **copy.deepcopy(dict(previous)),
        "phase": phase,
        "conditions": _keep_transition_times(previous, [
            _condition("PodReadyToStartContainers", "False", stamp),
            _condition("Initialized", "True", stamp),
            _condition("Ready", "False", stamp, reason),
            _condition("ContainersReady", "False", stamp, reason),
            _condition("PodScheduled", "True", stamp),
        ]),
        "containerStatuses": container_statuses,
    }
    return status


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    """Move one pod a step along its life: bind it, start it, let it finish, or stop it when deleted."""
    pod = world.find(world.pods, namespace, name)
    if pod is not None and ownership.is_terminating(pod):
        return _terminate(world, pod)
    if pod is None or pods.phase(pod) in pods.FINISHED_PHASES:
        return None
    if not (pod.get("spec") or {}).get("nodeName"):
        bound = copy.deepcopy(pod)
        bound.setdefault("spec", {})["nodeName"] = cluster.NODE_NAME
        # pods/binding is not an update: it leaves metadata.generation alone.
        bound = world.store.replace(world.pods, namespace, name, bound, bump_generation=False)
        world.events.record(bound, "Scheduled",
                            f"Successfully assigned {namespace}/{name} to {cluster.NODE_NAME}",
                            component=SCHEDULER)
        return None
    job = _owning_job(world, pod)
    outcome = decide_outcome(pod, (job or {}).get("metadata", {}).get("annotations"))
    stamp = timestamps.format_time(world.now())
    if pods.phase(pod) != "Running":
        started = world.update_status(world.pods, pod, running_status(
            pod, stamp, world.allocate_pod_ip(), outcome, owned_by_job=job is not None))
        _record_start(world, started, outcome, crash_loops=not runs_to_completion(pod, job is not None))
        return None
    if runs_to_completion(pod, owned_by_job=job is not None):
        world.update_status(world.pods, pod, terminated_status(pod, stamp, outcome))
    return None


def _terminate(world: cluster.Cluster, pod: Mapping[str, Any]) -> float | None:
    """Stop a gracefully deleted pod: its containers get the grace period (scaled), then the kubelet
    deletes the pod for good. Returns how long until then.

    The sandbox's containers never exit on SIGTERM by themselves, so each takes its full grace period.
    """
    meta = pod["metadata"]
    grace = meta.get("deletionGracePeriodSeconds")
    if not grace:
        return None  # deleted at once, or held only by finalizers: nothing left for the kubelet to stop
    uid = str(meta.get("uid", ""))
    now = time.monotonic()
    if uid not in world.termination_starts:
        world.termination_starts[uid] = now
        _record_killing(world, pod)
    # From when the kubelet saw the deletion; a later DELETE with a shorter period brings the end forward.
    deadline = world.termination_starts[uid] + float(grace) * world.time_scale
    if deadline > now:
        return deadline - now
    world.termination_starts.pop(uid, None)
    world.store.delete(world.pods, meta.get("namespace"), meta["name"], grace_period=0,
                       preconditions={"uid": uid})
    return None


def _record_killing(world: cluster.Cluster, pod: Mapping[str, Any]) -> None:
    for container in (pod.get("spec") or {}).get("containers") or ():
        name = container.get("name", "")
        world.events.record(pod, "Killing", f"Stopping container {name}", component=COMPONENT,
                            host=cluster.NODE_NAME, field_path=f"spec.containers{{{name}}}")


def _owning_job(world: cluster.Cluster, pod: Mapping[str, Any]) -> Object | None:
    ref = ownership.controller_ref(pod)
    if ref is None or ref.get("kind") != "Job":
        return None
    return world.by_uid(str(ref.get("uid", "")))


def _record_start(world: cluster.Cluster, pod: Mapping[str, Any], outcome: Outcome, *,
                  crash_loops: bool) -> None:
    for container in (pod.get("spec") or {}).get("containers") or ():
        name, image = container.get("name", ""), container.get("image", "")
        where = f"spec.containers{{{name}}}"
        for reason, message in (("Pulled", f'Container image "{image}" already present on machine'),
                                ("Created", f"Created container: {name}"),
                                ("Started", f"Started container {name}")):
            world.events.record(pod, reason, message, component=COMPONENT, host=cluster.NODE_NAME,
                                field_path=where)
        if crash_loops and name in outcome.failing:
            world.events.record(pod, "BackOff", f"Back-off restarting failed container {name} in pod "
                                f"{pod['metadata']['name']}_{pod['metadata'].get('namespace', '')}"
                                f"({pod['metadata'].get('uid', '')})",
                                component=COMPONENT, event_type="Warning", host=cluster.NODE_NAME,
                                field_path=where)
