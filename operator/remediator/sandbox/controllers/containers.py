"""A container's life on the sandbox's node as the kubelet lives it: pull, run, probe, exit, back off, restart.

Pure: the kubelet keeps one `ContainerRun` per container in memory and calls `advance` with the
current time (time.monotonic); what the container does comes from its image's registry entry
(`sandbox/images.py`). Kubernetes durations (pull time, back-off, probe periods) are multiplied by
the sandbox's time scale; the texts are kubelet's (pkg/kubelet/images/image_manager.go,
kuberuntime_container.go, prober/).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, MutableSet
from typing import Any

from remediator.sandbox import images

BACKOFF_START = 10.0  # kubelet's back-off: 10 s, doubling,
BACKOFF_MAX = 300.0  # to 5 minutes (MaxContainerBackOff), for crashed containers and failed pulls alike
# A container that ran this long before it exited starts its back-off afresh (flowcontrol's hasExpired:
# twice MaxContainerBackOff, "executed for 10 minutes without any problems" in the docs).
BACKOFF_RESET = 2 * BACKOFF_MAX
SYNC_SECONDS = 1.0  # how soon after a failed pull the kubelet's next pod sync reports the back-off
DEFAULT_PERIOD = 10.0
DEFAULT_FAILURE_THRESHOLD = 3
IMAGE_SIZE = 52_428_800  # bytes, for the Pulled event's text
Event = tuple[str, str, str]  # type, reason, message


def crash_backoff(exits: int) -> float:
    """Seconds before restarting a container after its `exits`-th exit in a row: the first restart is
    at once (no back-off entry yet), then 10 s doubling to 5 minutes."""
    if exits <= 1:
        return 0.0
    return min(BACKOFF_START * 2.0 ** (exits - 2), BACKOFF_MAX)


def pull_backoff(failures: int) -> float:
    """Seconds before pulling an image again after `failures` failed pulls in a row (10 s doubling to 5 min)."""
    return min(BACKOFF_START * 2.0 ** max(failures - 1, 0), BACKOFF_MAX)


def normalized(image: str) -> str:
    """The reference containerd resolves: docker.io/library/ for short names, :latest when untagged."""
    first, _, rest = image.partition("/")
    if not rest:
        image = f"docker.io/library/{image}"
    elif "." not in first and ":" not in first and first != "localhost":
        image = f"docker.io/{image}"
    last = image.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        image += ":latest"
    return image


def registry_of(image: str) -> str:
    """The registry host an image is pulled from (docker.io for short names)."""
    return normalized(image).split("/", 1)[0]


def pull_error(image: str) -> str:
    """What containerd answers for an image the registry does not have."""
    ref = normalized(image)
    return (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {ref}: not found')


def auth_error(image: str) -> str:
    """What containerd answers when the registry refuses to serve an image without credentials."""
    ref = normalized(image)
    host, _, path = ref.partition("/")
    if host == "docker.io":
        refused = ("pull access denied, repository does not exist or may require authorization: "
                   "server message: insufficient_scope: authorization failed")
    else:
        repository, _, tag = path.rpartition(":")
        refused = (f"unexpected status from HEAD request to https://{host}/v2/{repository}/manifests/{tag}: "
                   "401 Unauthorized")
    return (f'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {refused}')


def _seconds_text(seconds: float) -> str:
    # Go's time.Duration text for whole or fractional seconds ("10s", "1.5s", "5m0s").
    if seconds >= 60:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}m{rest}s"
    return f"{seconds:g}s"


# -- probes ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Probe:
    """A readiness or liveness probe's timing, and what its failure reads like."""

    initial_delay: float
    period: float
    failure_threshold: int
    failure: str

    def first_pass(self, passes_from: float | None) -> float | None:
        """Seconds after start of the first probe that succeeds, for a container that would pass from
        `passes_from` seconds on (None: never)."""
        if passes_from is None:
            return None
        waited = max(0.0, passes_from - self.initial_delay)
        return self.initial_delay + math.ceil(waited / self.period) * self.period

    def give_up(self) -> float:
        """Seconds after start of the failureThreshold-th failure in a row of a probe that never passes."""
        return self.initial_delay + (self.failure_threshold - 1) * self.period


def probe_of(container: Mapping[str, Any], kind: str, pod_ip: str) -> Probe | None:
    """The container's `readinessProbe`/`livenessProbe` with Kubernetes' defaults, or None."""
    spec = container.get(kind)
    if not isinstance(spec, Mapping):
        return None
    return Probe(float(spec.get("initialDelaySeconds") or 0), float(spec.get("periodSeconds") or DEFAULT_PERIOD),
                 int(spec.get("failureThreshold") or DEFAULT_FAILURE_THRESHOLD), _failure_text(spec, pod_ip))


def _failure_text(spec: Mapping[str, Any], pod_ip: str) -> str:
    if "httpGet" in spec:
        return "HTTP probe failed with statuscode: 503"
    if "tcpSocket" in spec:
        port = (spec.get("tcpSocket") or {}).get("port", "")
        return f"dial tcp {pod_ip}:{port}: connect: connection refused"
    if "grpc" in spec:
        return "service unhealthy (responded with \"NOT_SERVING\")"
    return "command failed: exit status 1"


# -- one run of a container -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What one run of a container will do, in seconds after it started (Kubernetes' seconds)."""

    ends_after: float | None  # None: runs until stopped
    exit_code: int = 0
    reason: str = "Completed"
    message: str = ""
    ready_after: float | None = 0.0  # None: never ready
    unready_after: float | None = None  # None: stays ready once ready
    started_after: float | None = 0.0  # when its startup probe passed (None: never)
    events: tuple[tuple[float, Event], ...] = ()  # probe failures and kills, in time order


def plan_run(entry: images.Image, container: Mapping[str, Any], *, completes: bool, pod_ip: str) -> RunPlan:
    """The run a registry entry makes of a container; `completes` for run-to-completion pods (Jobs).

    notReady fails the readiness probe for ever, slowStart fails readiness, liveness and startup probes
    for `afterSeconds`, readyThenNotReady passes its readiness probe until `afterSeconds` and fails it
    from then on (unready after failureThreshold failures). A startup probe holds the other probes back
    until it passes, and kills the container at its failureThreshold; a liveness probe failing
    `failureThreshold` times in a row kills it too. Without a readiness probe a running container is
    ready, as in Kubernetes.
    """
    behaviour, after = entry.behaviour, entry.after_seconds
    ready_from: float | None = None if behaviour == "notReady" else (after if behaviour == "slowStart" else 0.0)
    live_from = after if behaviour == "slowStart" else 0.0
    ends: float | None = None
    code, reason = 0, "Completed"
    if behaviour in ("crash", "oom", "exitImmediately"):
        ends = 0.0 if behaviour == "exitImmediately" else after
        code = entry.exit_code
        reason = "OOMKilled" if behaviour == "oom" else ("Error" if code else "Completed")
    elif completes:
        ends = after
    events: list[tuple[float, Event]] = []
    name = container.get("name", "")
    started: float | None = 0.0
    startup = probe_of(container, "startupProbe", pod_ip)
    if startup is not None:
        started = startup.first_pass(live_from)
        kill_at = startup.give_up()
        if live_from > startup.initial_delay:
            events.append((startup.initial_delay, ("Warning", "Unhealthy", f"Startup probe failed: {startup.failure}")))
        if started is None or started > kill_at:
            started = None
            if ends is None or kill_at < ends:
                ends, code, reason = kill_at, 137, "Error"
                events.append((kill_at, ("Normal", "Killing",
                                         f"Container {name} failed startup probe, will be restarted")))
    readiness = probe_of(container, "readinessProbe", pod_ip)
    if ready_from is not None and started is not None:
        ready_from = max(ready_from, started)
    ready_after: float | None = started
    if readiness is not None and started is not None:
        ready_after = readiness.first_pass(ready_from)
    if readiness is not None and started is not None and (ready_from is None or ready_from > readiness.initial_delay):
        events.append((max(readiness.initial_delay, started),
                       ("Warning", "Unhealthy", f"Readiness probe failed: {readiness.failure}")))
    unready_after: float | None = None
    if behaviour == "readyThenNotReady" and readiness is not None and ready_after is not None:
        failing_from = readiness.first_pass(max(after, ready_after + readiness.period))
        assert failing_from is not None
        unready_after = failing_from + (readiness.failure_threshold - 1) * readiness.period
        events.append((failing_from, ("Warning", "Unhealthy", f"Readiness probe failed: {readiness.failure}")))
    liveness = probe_of(container, "livenessProbe", pod_ip)
    if liveness is not None and started is not None:
        kill_at = started + liveness.give_up()
        if live_from > kill_at and (ends is None or kill_at < ends):
            ends, code, reason = kill_at, 137, "Error"
            events.append((kill_at, ("Warning", "Unhealthy", f"Liveness probe failed: {liveness.failure}")))
            events.append((kill_at, ("Normal", "Killing",
                                     f"Container {name} failed liveness probe, will be restarted")))
    message = entry.message if ends is not None and reason != "Completed" else ""
    kept = tuple(sorted(((t, e) for t, e in events if ends is None or t <= ends), key=lambda item: item[0]))
    return RunPlan(ends, code, reason, message, ready_after, unready_after, started, kept)


# -- the container's state machine ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Context:
    """What the kubelet knows about a container when it advances it."""

    entry: images.Image | None  # None: the image does not exist
    container: Mapping[str, Any]
    pod_label: str  # "<name>_<namespace>(<uid>)", as kubelet names a pod in messages
    pod_ip: str
    scale: float
    completes: bool  # a run-to-completion pod: an exit is final
    restarts_on: Callable[[int], bool]  # whether an exit with this code restarts the container
    stamp: Callable[[float], str]  # the timestamp of a monotonic moment
    present: MutableSet[str]  # images already on the node
    init: bool = False  # an init container: it runs to its exit (restarts_on says whether it runs again)
    credentials: frozenset[str] = frozenset()  # registry hosts the pod's imagePullSecrets cover
    missing_secrets: tuple[str, ...] = ()  # imagePullSecrets the pod names that do not exist

    def may_pull(self) -> bool:
        """Whether the registry serves the image to this pod: public, or private with credentials for it."""
        return self.entry is not None and (not self.entry.private or registry_of(self.image) in self.credentials)

    @property
    def image(self) -> str:
        return str(self.container.get("image", ""))


@dataclasses.dataclass
class ContainerRun:
    """One container's state on the node; times are time.monotonic() values."""

    name: str
    image: str
    state: str = "pulling"  # pulling, pullError, pullBackOff, neverPull, running, crashBackOff, exited
    since: float = 0.0
    until: float | None = None  # when the state ends by itself
    pull_failures: int = 0
    exits: int = 0  # exits in a row, for the crash back-off
    restarts: int = 0
    plan: RunPlan | None = None
    started_stamp: str = ""
    events_done: int = 0
    last_terminated: dict[str, Any] | None = None
    announced: bool = False  # the Pulling event of the current pull was recorded
    pull_message: str = ""  # why the last pull failed


def advance(run: ContainerRun, ctx: Context, now: float) -> list[Event]:
    """Move a container through every transition due by `now`; returns the kubelet's events.

    A container that (re)starts stops the walk, so its Running status is written before it exits.
    """
    events: list[Event] = []
    while True:
        if run.state in ("pulling", "neverPull"):
            if not _pull(run, ctx, now, events):
                return events
            _start(run, ctx, run.since, events)
            return events
        if run.state in ("pullError", "pullBackOff", "crashBackOff"):
            if run.until is None or run.until > now:
                return events
            if run.state == "pullError":
                run.state, run.until = "pullBackOff", run.since + pull_backoff(run.pull_failures) * ctx.scale
                events.append(("Normal", "BackOff", f'Back-off pulling image "{ctx.image}"'))
                events.append(("Warning", "Failed", "Error: ImagePullBackOff"))
            elif run.state == "pullBackOff":
                run.state, run.since, run.until, run.announced = "pulling", run.until, None, False
            elif _restart(run, ctx, run.until, events):
                return events
            continue
        if run.state == "running" and run.plan is not None:
            plan = run.plan
            while run.events_done < len(plan.events) \
                    and run.since + plan.events[run.events_done][0] * ctx.scale <= now:
                events.append(plan.events[run.events_done][1])
                run.events_done += 1
            if plan.ends_after is None or run.since + plan.ends_after * ctx.scale > now:
                return events
            _exit(run, ctx, run.since + plan.ends_after * ctx.scale, events)
            if run.state == "running":  # restarted at once
                return events
            if run.state == "pulling":  # restarted at once, pulling its image again first
                continue
            continue
        return events


def _pull(run: ContainerRun, ctx: Context, now: float, events: list[Event]) -> bool:
    """Pull the image (or find it present); False while the pull is still going or after it failed.

    imagePullPolicy Never uses only an image on the node (ErrImageNeverPull otherwise); Always pulls
    even then; IfNotPresent (and an image with no pull time) pulls only what is not there.
    """
    policy = _pull_policy(ctx)
    # An image with no pull time is on the node from the start, unless it is private (it needs a pull).
    on_node = ctx.entry is not None and (ctx.image in ctx.present
                                         or (ctx.entry.pull_seconds <= 0 and not ctx.entry.private))
    if policy == "Never" and not on_node:
        if run.state != "neverPull":
            message = f'Container image "{ctx.image}" is not present with pull policy of Never'
            events.append(("Warning", "ErrImageNeverPull", message))
            events.append(("Warning", "Failed", "Error: ErrImageNeverPull"))
        run.state, run.until = "neverPull", None
        return False
    if ctx.missing_secrets and not on_node:
        events.append(("Warning", "FailedToRetrieveImagePullSecret",
                       f"Unable to retrieve some image pull secrets ({', '.join(ctx.missing_secrets)}); "
                       "attempting to pull the image may not succeed."))
    if ctx.entry is None or (not on_node and not ctx.may_pull()):
        error = run.pull_message = pull_error(ctx.image) if ctx.entry is None else auth_error(ctx.image)
        events.append(("Normal", "Pulling", f'Pulling image "{ctx.image}"'))
        events.append(("Warning", "Failed", f'Failed to pull image "{ctx.image}": {error}'))
        events.append(("Warning", "Failed", "Error: ErrImagePull"))
        run.pull_failures += 1
        run.state, run.until = "pullError", run.since + min(SYNC_SECONDS, pull_backoff(run.pull_failures)) * ctx.scale
        return False
    if on_node and (policy != "Always" or ctx.entry.pull_seconds <= 0):
        events.append(("Normal", "Pulled", f'Container image "{ctx.image}" already present on machine'))
        return True
    if not run.announced:
        events.append(("Normal", "Pulling", f'Pulling image "{ctx.image}"'))
        run.announced = True
    done = run.since + ctx.entry.pull_seconds * ctx.scale
    if done > now:
        run.until = done
        return False
    took = _seconds_text(ctx.entry.pull_seconds)
    events.append(("Normal", "Pulled", f'Successfully pulled image "{ctx.image}" in {took} ({took} including '
                                       f"waiting). Image size: {IMAGE_SIZE} bytes."))
    ctx.present.add(ctx.image)
    run.since = done
    return True


def _start(run: ContainerRun, ctx: Context, at: float, events: list[Event]) -> None:
    assert ctx.entry is not None
    run.state, run.since, run.until, run.events_done = "running", at, None, 0
    run.started_stamp = ctx.stamp(at)
    run.plan = plan_run(ctx.entry, ctx.container, completes=ctx.completes or ctx.init, pod_ip=ctx.pod_ip)
    if run.restarts and _pull_policy(ctx) != "Always":
        events.append(("Normal", "Pulled", f'Container image "{ctx.image}" already present on machine'))
    events.append(("Normal", "Created", f"Created container: {run.name}"))
    events.append(("Normal", "Started", f"Started container {run.name}"))


def _pull_policy(ctx: Context) -> str:
    return str(ctx.container.get("imagePullPolicy") or "IfNotPresent")


def _restart(run: ContainerRun, ctx: Context, at: float, events: list[Event]) -> bool:
    """Start the container again; under imagePullPolicy Always its image is pulled again first (False:
    the container is pulling, not started yet)."""
    run.restarts += 1
    if _pull_policy(ctx) == "Always":
        run.state, run.since, run.until, run.announced = "pulling", at, None, False
        return False
    _start(run, ctx, at, events)
    return True


def _exit(run: ContainerRun, ctx: Context, at: float, events: list[Event]) -> None:
    plan = run.plan
    assert plan is not None
    terminated: dict[str, Any] = {"exitCode": plan.exit_code, "reason": plan.reason}
    if plan.message:
        terminated["message"] = plan.message
    terminated.update({"startedAt": run.started_stamp, "finishedAt": ctx.stamp(at)})
    run.last_terminated = terminated
    run.exits = 1 if at - run.since > BACKOFF_RESET * ctx.scale else run.exits + 1
    if ctx.completes or not ctx.restarts_on(plan.exit_code):
        run.state, run.since, run.until = "exited", at, None
        return
    wait = crash_backoff(run.exits)
    if wait <= 0:
        _restart(run, ctx, at, events)
        return
    run.state, run.since, run.until = "crashBackOff", at, at + wait * ctx.scale
    events.append(("Warning", "BackOff", f"Back-off restarting failed container {run.name} in pod {ctx.pod_label}"))


def next_change(run: ContainerRun, scale: float, now: float) -> float | None:
    """When the container's state or readiness changes next by itself (time.monotonic), or None.

    A moment already past is one `advance` left for the next pass (it stops at a start).
    """
    if run.state in ("pullError", "pullBackOff", "crashBackOff", "pulling"):
        return run.until if run.state != "pulling" or run.until is not None else run.since
    if run.state != "running" or run.plan is None:
        return None
    plan = run.plan
    moments = [run.since + t * scale for t, _ in plan.events[run.events_done:]]
    if plan.ends_after is not None:
        moments.append(run.since + plan.ends_after * scale)
    for change in (plan.ready_after, plan.unready_after, plan.started_after):
        if change is not None and run.since + change * scale > now:
            moments.append(run.since + change * scale)
    return min(moments, default=None)


def is_ready(run: ContainerRun, scale: float, now: float) -> bool:
    plan = run.plan
    return (run.state == "running" and plan is not None and plan.ready_after is not None
            and run.since + plan.ready_after * scale <= now
            and (plan.unready_after is None or now < run.since + plan.unready_after * scale))


def is_started(run: ContainerRun, scale: float, now: float) -> bool:
    """Running, and past its startup probe if it has one (containerStatuses' `started`)."""
    plan = run.plan
    return (run.state == "running" and plan is not None and plan.started_after is not None
            and run.since + plan.started_after * scale <= now)


def state_of(run: ContainerRun, ctx: Context, now: float) -> dict[str, Any]:
    """The container's `state` as the kubelet reports it."""
    if run.state == "pulling":
        return {"waiting": {"reason": "ContainerCreating"}}
    if run.state == "pullError":
        return {"waiting": {"reason": "ErrImagePull", "message": run.pull_message or pull_error(ctx.image)}}
    if run.state == "neverPull":
        return {"waiting": {"reason": "ErrImageNeverPull",
                            "message": f'Container image "{ctx.image}" is not present with pull policy of Never'}}
    if run.state == "pullBackOff":
        error = run.pull_message or pull_error(ctx.image)
        return {"waiting": {"reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{ctx.image}": ErrImagePull: {error}'}}
    if run.state == "crashBackOff":
        wait = _seconds_text(crash_backoff(run.exits))
        return {"waiting": {"reason": "CrashLoopBackOff",
                            "message": f"back-off {wait} restarting failed container={run.name} pod={ctx.pod_label}"}}
    if run.state == "exited" and run.last_terminated is not None:
        return {"terminated": dict(run.last_terminated)}
    return {"running": {"startedAt": run.started_stamp}}
