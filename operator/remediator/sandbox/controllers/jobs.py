"""The Job controller: runs pods until enough succeed, or more than backoffLimit fail.

https://kubernetes.io/docs/concepts/workloads/controllers/job/
A failed pod is replaced after the controller's back-off (10 s doubling to 10 minutes, scaled;
`job_backoff.py`).

Whether a pod succeeds, and how long it runs, is the kubelet's decision: its image's behaviour in
the sandbox's image registry, or the older switches (`kubelet.decide_outcome`): a container whose
`command` + `args` contain the word `fail`, or any of a Job annotated
`sandbox.remediator.dev/outcome: Failed`, exits with code 1 and the message of the Job's
`sandbox.remediator.dev/termination-message` annotation (default "exit status 1").
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox.controllers import cluster, conditions, job_backoff, ownership, pods, replicasets, timestamps

Object = dict[str, Any]
COMPONENT = "job-controller"
DEFAULT_BACKOFF_LIMIT = 6
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")


@dataclasses.dataclass(frozen=True)
class PodCounts:
    """The Job's pods by state."""

    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The Job controller's conclusion: finished ("Complete"/"Failed", with why), or how many pods to run."""

    finished: str | None = None
    reason: str = ""
    message: str = ""
    wanted_active: int = 0


def count_pods(job_pods: Sequence[Mapping[str, Any]]) -> PodCounts:
    active = [pod for pod in job_pods if pods.is_active(pod)]
    return PodCounts(
        active=len(active),
        ready=sum(1 for pod in active if pods.is_ready(pod)),
        succeeded=sum(1 for pod in job_pods if pods.phase(pod) == "Succeeded"),
        failed=sum(1 for pod in job_pods if pods.phase(pod) == "Failed"),
    )


def is_finished(job: Mapping[str, Any]) -> bool:
    found = (job.get("status") or {}).get("conditions")
    return conditions.is_true(found, "Complete") or conditions.is_true(found, "Failed")


def job_verdict(job: Mapping[str, Any], counts: PodCounts, started: datetime.datetime | None,
                now: datetime.datetime, time_scale: float = 1.0) -> Verdict:
    """Whether the Job is done and how many pods should run.

    More failed pods than spec.backoffLimit (default 6): Failed, BackoffLimitExceeded. Running
    past spec.activeDeadlineSeconds (times the sandbox's time scale): Failed, DeadlineExceeded.
    spec.completions (default 1) succeeded pods: Complete; without completions (a work queue), one
    success once none is active.
    """
    spec = job.get("spec") or {}
    backoff_limit = spec.get("backoffLimit")
    backoff_limit = DEFAULT_BACKOFF_LIMIT if backoff_limit is None else int(backoff_limit)
    if counts.failed > backoff_limit:
        return Verdict("Failed", *BACKOFF_LIMIT_EXCEEDED)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and started is not None \
            and started + datetime.timedelta(seconds=int(deadline) * time_scale) <= now:
        return Verdict("Failed", *DEADLINE_EXCEEDED)
    parallelism = spec.get("parallelism")
    parallelism = 1 if parallelism is None else int(parallelism)
    completions = spec.get("completions")
    if completions is None and "parallelism" not in spec:
        completions = 1
    if completions is None:
        if counts.succeeded and not counts.active:
            return Verdict("Complete", *COMPLETIONS_REACHED)
        wanted = 0 if counts.succeeded else parallelism
    else:
        if counts.succeeded >= int(completions):
            return Verdict("Complete", *COMPLETIONS_REACHED)
        wanted = min(parallelism, int(completions) - counts.succeeded)
    return Verdict(wanted_active=0 if spec.get("suspend") else wanted)


def job_status(job: Mapping[str, Any], counts: PodCounts, verdict: Verdict, start_time: str | None,
               stamp: str) -> dict[str, Any]:
    """The Job's status; a finished Job gets FailureTarget+Failed or SuccessCriteriaMet+Complete."""
    old = job.get("status") or {}
    found = [dict(c) for c in old.get("conditions") or ()]

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {"type": kind, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
                "reason": reason, "message": message}

    suspended = bool((job.get("spec") or {}).get("suspend"))
    was_suspended = conditions.is_true(found, "Suspended")
    if suspended and not was_suspended:
        found = conditions.set_condition(found, condition("Suspended", "True", "JobSuspended",
                                                          "Job suspended"))
    elif was_suspended and not suspended:
        found = conditions.set_condition(found, condition("Suspended", "False", "JobResumed",
                                                          "Job resumed"))
    if verdict.finished == "Failed":
        found += [condition("FailureTarget", "True", verdict.reason, verdict.message),
                  condition("Failed", "True", verdict.reason, verdict.message)]
    elif verdict.finished == "Complete":
        found += [condition("SuccessCriteriaMet", "True", verdict.reason, verdict.message),
                  condition("Complete", "True", verdict.reason, verdict.message)]
    status: dict[str, Any] = {}
    if found:
        status["conditions"] = found
    if start_time:
        status["startTime"] = start_time
    if verdict.finished == "Complete":
        status["completionTime"] = stamp
    tallies = (("active", counts.active), ("succeeded", counts.succeeded), ("failed", counts.failed))
    status.update({field: value for field, value in tallies if value})
    status.update({"terminating": 0, "uncountedTerminatedPods": {}, "ready": counts.ready})
    return status


def job_pod(job: Mapping[str, Any]) -> Object:
    """A pod of the Job: its template, plus the labels the Job controller selects its pods by."""
    body = replicasets.pod_from_template(job, (job.get("spec") or {}).get("template") or {})
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    body["metadata"]["labels"].update({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    })
    return body


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    """Run the Job's pods and record how it went; a finished Job is left alone (and keeps its pods)."""
    job = world.find(world.jobs, namespace, name)
    if job is None or ownership.is_terminating(job) or is_finished(job):
        if job is not None:
            world.job_backoffs.pop(str(job["metadata"].get("uid")), None)
        return None
    now = world.now()
    stamp = timestamps.format_time(now)
    suspended = bool((job.get("spec") or {}).get("suspend"))
    start_time = (job.get("status") or {}).get("startTime") or (None if suspended else stamp)
    owned = world.owned(world.pods, job)
    verdict = job_verdict(job, count_pods(owned), timestamps.parse_time(start_time), now, world.time_scale)
    active = [pod for pod in owned if pods.is_active(pod)]
    wanted = 0 if verdict.finished else verdict.wanted_active
    uid, moment = str(job["metadata"].get("uid")), time.monotonic()
    backoff = world.job_backoffs[uid] = job_backoff.observe(world.job_backoffs.get(uid), owned, moment)
    backing_off = job_backoff.remaining(backoff, moment, world.time_scale)
    for _ in range(wanted - len(active) if not backing_off else 0):
        pod = world.create_with_random_name(world.pods, job_pod(job), f"{name}-")
        world.events.record(job, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                            component=COMPONENT)
    for doomed in pods.deletion_order(active)[:max(0, len(active) - wanted)]:
        world.delete(world.pods, doomed)
        world.events.record(job, "SuccessfulDelete", f"Deleted pod: {doomed['metadata']['name']}",
                            component=COMPONENT)
    counts = count_pods(world.owned(world.pods, job))
    job = world.update_status(world.jobs, job, job_status(job, counts, verdict, start_time, stamp))
    if verdict.finished == "Complete":
        world.events.record(job, "Completed", "Job completed", component=COMPONENT)
    elif verdict.finished == "Failed":
        world.events.record(job, verdict.reason, verdict.message, component=COMPONENT, event_type="Warning")
    if verdict.finished:
        world.job_backoffs.pop(uid, None)
        return None
    # Look again at the active deadline, or when the back-off lets a replacement be created.
    waits = [w for w in (_seconds_until_deadline(job, start_time, now, world.time_scale),
                         backing_off if backing_off and wanted > len(active) else None) if w is not None]
    return min(waits, default=None)


def _seconds_until_deadline(job: Mapping[str, Any], start_time: str | None,
                            now: datetime.datetime, time_scale: float) -> float | None:
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    started = timestamps.parse_time(start_time)
    if deadline is None or started is None:
        return None
    return max(0.0, (started + datetime.timedelta(seconds=int(deadline) * time_scale) - now).total_seconds())
