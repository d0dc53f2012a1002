"""The scheduler and the kubelet of the sandbox's one node: pods are bound, their containers pulled,
run, probed, restarted, and finished.

A new pod is bound to `sandbox-node`; then each container's image is looked up in the sandbox's
image registry (`sandbox/images.py`): a missing image fails to pull (ErrImagePull, then
ImagePullBackOff with kubelet's back-off), an existing one is pulled (its `pullSeconds`, scaled) and
its container behaves as the registry says (`sandbox/controllers/containers.py`): runs, crashes,
is OOM-killed, fails its probes. Containers that exit are restarted as the pod's restartPolicy says
(CrashLoopBackOff between restarts); Job pods finish: Succeeded, or Failed when a container fails.
The sandbox's older switches (see `decide_outcome`) still make a container crash at once.
https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remediator.sandbox import images
from remediator.sandbox.controllers import cluster, conditions, containers, ownership, pods, pull_secrets, timestamps

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


def initialized(run: containers.ContainerRun) -> bool:
    """An init container is done once it exited with code 0."""
    return run.state == "exited" and not (run.last_terminated or {}).get("exitCode")


def not_started_status(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container that waits for the pod's init containers (kubelet's PodInitializing)."""
    return {"name": container.get("name", ""), "image": container.get("image", ""), "imageID": "", "ready": False,
            "started": False, "restartCount": 0, "lastState": {}, "state": {"waiting": {"reason": "PodInitializing"}}}


def _entry(registry: images.Registry, container: Mapping[str, Any], outcome: Outcome) -> images.Image | None:
    """The registry's entry for the container's image; the sandbox's failure switches make it crash."""
    image = str(container.get("image", ""))
    entry = registry.lookup(image)
    if entry is not None and container.get("name", "") in outcome.failing:
        entry = dataclasses.replace(entry, behaviour="crash", exit_code=1, after_seconds=0.0,
                                    message=outcome.message)
    return entry


def _init_restarts_on(pod: Mapping[str, Any]) -> Callable[[int], bool]:
    # A failed init container runs again unless the pod never restarts; one that succeeded is done.
    never = (pod.get("spec") or {}).get("restartPolicy", "Always") == "Never"
    return lambda code: code != 0 and not never


def _restarts_on(pod: Mapping[str, Any]) -> Callable[[int], bool]:
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    if policy == "Never":
        return lambda code: False
    if policy == "OnFailure":
        return lambda code: code != 0
    return lambda code: True


def container_status(pod: Mapping[str, Any], run: containers.ContainerRun, ctx: containers.Context,
                     now: float, scale: float) -> dict[str, Any]:
    """One entry of status.containerStatuses for a container's run on the node."""
    ran = run.state in ("running", "crashBackOff", "exited") or run.restarts > 0
    entry: dict[str, Any] = {"name": run.name, "image": ctx.image, "imageID": _image_id(ctx.image) if ran else ""}
    if ran:
        entry["containerID"] = _container_id(pod, run.name, run.restarts)
    last: dict[str, Any] = {}
    if run.last_terminated is not None and run.state != "exited":
        previous = run.restarts if run.state == "crashBackOff" else run.restarts - 1
        last = {"terminated": {**run.last_terminated, "containerID": _container_id(pod, run.name, previous)}}
    state = containers.state_of(run, ctx, now)
    if "terminated" in state:
        state["terminated"]["containerID"] = entry["containerID"]
    ready = initialized(run) if ctx.init else containers.is_ready(run, scale, now)
    entry.update({"ready": ready, "started": containers.is_started(run, scale, now),
                  "restartCount": run.restarts, "lastState": last, "state": state})
    return entry


def pod_phase(pod: Mapping[str, Any], runs: Sequence[containers.ContainerRun],
              init_runs: Sequence[containers.ContainerRun] = ()) -> str:
    """kubelet's getPhase: Pending while initializing or a container never started, Failed when an init
    container failed for good, Succeeded/Failed once all exited for good, else Running."""
    if any(run.state == "exited" and not initialized(run) for run in init_runs):
        return "Failed"
    if len(init_runs) < len((pod.get("spec") or {}).get("initContainers") or ()) \
            or not all(initialized(run) for run in init_runs):
        return "Pending"
    if runs and all(run.state == "exited" for run in runs):
        failed = any((run.last_terminated or {}).get("exitCode") for run in runs)
        return "Failed" if failed else "Succeeded"
    if any(run.last_terminated is None and run.state in ("pulling", "pullError", "pullBackOff", "neverPull")
           for run in runs):
        return "Pending"
    return "Running"


def _initialized_condition(init_statuses: Sequence[Mapping[str, Any]], stamp: str) -> dict[str, Any]:
    incomplete = [entry["name"] for entry in init_statuses if not entry["ready"]]
    if not incomplete:
        return _condition("Initialized", "True", stamp)
    return _condition("Initialized", "False", stamp, "ContainersNotInitialized",
                      f"containers with incomplete status: [{' '.join(incomplete)}]")


def pod_status(pod: Mapping[str, Any], statuses: list[dict[str, Any]], phase: str, stamp: str,
               pod_ip: str, start_stamp: str, host_ip: str = cluster.HOST_IP,
               init_statuses: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The status a kubelet reports for its pod's containers: phase, conditions, IPs, containerStatuses
    (and initContainerStatuses); Initialized is False while an init container has not succeeded."""
    if phase in pods.FINISHED_PHASES:
        reason = "PodFailed" if phase == "Failed" else "PodCompleted"
        ready = [_condition("PodReadyToStartContainers", "False", stamp),
                 _initialized_condition(init_statuses, stamp),
                 _condition("Ready", "False", stamp, reason),
                 _condition("ContainersReady", "False", stamp, reason)]
    else:
        unready = [entry["name"] for entry in statuses if not entry["ready"]]
        ready = [_condition("PodReadyToStartContainers", "True", stamp), _initialized_condition(init_statuses, stamp)]
        if unready:
            not_ready = f"containers with unready status: [{' '.join(unready)}]"
            ready += [_condition("Ready", "False", stamp, "ContainersNotReady", not_ready),
                      _condition("ContainersReady", "False", stamp, "ContainersNotReady", not_ready)]
        else:
            ready += [_condition("Ready", "True", stamp), _condition("ContainersReady", "True", stamp)]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": _keep_transition_times(pod.get("status"), [*ready, _condition("PodScheduled", "True", stamp)]),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_stamp,
        "qosClass": qos_class(pod),
        "containerStatuses": statuses,
    }
    if init_statuses:
        status["initContainerStatuses"] = list(init_statuses)
    return status


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    """Move one pod a step along its life: bind it, pull and run its containers (restarting them as its
    restartPolicy says), let it finish, or stop it when deleted. Returns when to look again."""
    pod = world.find(world.pods, namespace, name)
    if pod is not None and ownership.is_terminating(pod):
        world.pod_runs.pop((namespace, name), None)
        return _terminate(world, pod)
    if pod is None or pods.phase(pod) in pods.FINISHED_PHASES:
        world.pod_runs.pop((namespace, name), None)
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
    return _run(world, pod)


def _run(world: cluster.Cluster, pod: Object) -> float | None:
    meta = pod["metadata"]
    key = (str(meta.get("namespace", "")), str(meta["name"]))
    uid = str(meta.get("uid", ""))
    now = time.monotonic()
    known = world.pod_runs.get(key)
    if known is None or known[0] != uid:
        known = (uid, {})
        world.pod_runs[key] = known
    runs = known[1]
    status = pod.get("status") or {}
    pod_ip = status.get("podIP") or world.allocate_pod_ip()
    start_stamp = status.get("startTime") or timestamps.format_time(world.now())
    job = _owning_job(world, pod)
    outcome = decide_outcome(pod, (job or {}).get("metadata", {}).get("annotations"))
    registry = world.images()
    wall = world.now()

    def stamp(moment: float) -> str:
        return timestamps.format_time(wall - datetime.timedelta(seconds=now - moment))

    pod_label = f"{key[1]}_{key[0]}({uid})"
    completes = job is not None
    credentials, missing_secrets = pull_secrets.pod_credentials(
        pod, lambda secret: world.find(world.secrets, key[0], secret))
    recorded: list[tuple[str, containers.Event]] = []  # (the container's fieldPath, event)

    def advanced(container: Mapping[str, Any], init: bool) -> tuple[containers.ContainerRun, containers.Context]:
        name = str(container.get("name", ""))
        run = runs.setdefault(name, containers.ContainerRun(name, str(container.get("image", "")), since=now))
        ctx = containers.Context(_entry(registry, container, outcome), container, pod_label, pod_ip,
                                 world.time_scale, completes and not init,
                                 _init_restarts_on(pod) if init else _restarts_on(pod), stamp,
                                 world.present_images, init=init, credentials=credentials,
                                 missing_secrets=missing_secrets)
        field_path = f"spec.{'initContainers' if init else 'containers'}{{{name}}}"
        recorded.extend((field_path, event) for event in containers.advance(run, ctx, now))
        return run, ctx

    spec = pod.get("spec") or {}
    # Init containers run one at a time, in order, each to a successful exit, before any app container.
    init_specs, app_specs = spec.get("initContainers") or (), spec.get("containers") or ()
    init_pairs: list[tuple[containers.ContainerRun, containers.Context]] = []
    for container in init_specs:
        init_pairs.append(advanced(container, init=True))
        if not initialized(init_pairs[-1][0]):
            break
    init_runs = [run for run, _ in init_pairs]
    ready_to_start = len(init_runs) == len(init_specs) and all(initialized(run) for run in init_runs)
    pairs = [advanced(container, init=False) for container in app_specs] if ready_to_start else []
    ordered = [run for run, _ in pairs]
    statuses = [container_status(pod, run, ctx, now, world.time_scale) for run, ctx in pairs] \
        or [not_started_status(container) for container in app_specs]
    init_statuses = [container_status(pod, run, ctx, now, world.time_scale) for run, ctx in init_pairs]
    init_statuses += [not_started_status(container) for container in init_specs[len(init_pairs):]]
    phase = pod_phase(pod, ordered, init_runs)
    written = world.update_status(world.pods, pod, pod_status(
        pod, statuses, phase, timestamps.format_time(wall), pod_ip, start_stamp, init_statuses=init_statuses))
    for field_path, (event_type, reason, message) in recorded:
        world.events.record(written, reason, message, component=COMPONENT, event_type=event_type,
                            host=cluster.NODE_NAME, field_path=field_path)
    if phase in pods.FINISHED_PHASES:
        world.pod_runs.pop(key, None)
        return None
    moments = [m for m in (containers.next_change(run, world.time_scale, now) for run in [*init_runs, *ordered])
               if m is not None]
    return max(0.0, min(moments) - now) if moments else None


def _terminate(world: cluster.Cluster, pod: Mapping[str, Any]) -> float | None:
    """Stop a gracefully deleted pod: its containers get the grace period (scaled), then the kubelet
    deletes the pod for good. Returns how long until then.

    A running container stops after its image's `stopSeconds` (the registry), else it ignores
    SIGTERM and takes the full grace period; a pod with no running container (its image still
    pulling or backing off, its containers crash-looping or exited) goes at once.
    """
    meta = pod["metadata"]
    grace = meta.get("deletionGracePeriodSeconds")
    if not grace:
        return None  # deleted at once, or held only by finalizers: nothing left for the kubelet to stop
    running = _runs_a_container(pod)
    # The pod goes when its last running container has stopped, at the latest when the grace period ends.
    grace = min(float(grace), _seconds_to_stop(world, pod)) if running else 0.0
    uid = str(meta.get("uid", ""))
    now = time.monotonic()
    if uid not in world.termination_starts:
        world.termination_starts[uid] = now
        if running:
            _record_killing(world, pod)
    # From when the kubelet saw the deletion; a later DELETE with a shorter period brings the end forward.
    deadline = world.termination_starts[uid] + float(grace) * world.time_scale
    if deadline > now:
        return deadline - now
    world.termination_starts.pop(uid, None)
    world.store.delete(world.pods, meta.get("namespace"), meta["name"], grace_period=0,
                       preconditions={"uid": uid})
    return None


def _seconds_to_stop(world: cluster.Cluster, pod: Mapping[str, Any]) -> float:
    """How long the pod's running containers take to stop on SIGTERM (inf: one ignores it)."""
    registry = world.images()
    running = {status.get("name") for status in (pod.get("status") or {}).get("containerStatuses") or ()
               if "running" in (status.get("state") or {})}
    stops = [((registry.lookup(str(c.get("image", ""))) or images.Image("")).stop_seconds)
             for c in (pod.get("spec") or {}).get("containers") or () if c.get("name") in running]
    return max((math.inf if stop is None else stop for stop in stops), default=math.inf)


def _runs_a_container(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    statuses = [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]
    return not statuses or any("running" in (status.get("state") or {}) for status in statuses)


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
