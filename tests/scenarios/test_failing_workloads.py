"""The runbooks' rollback and restart paths against workloads that fail and take time as real ones do.

The sandbox's kubelet runs images as tests/images.yaml says: `shop:doesnotexist` cannot be pulled,
`shop:crash` exits 2 five seconds after it starts, every other `shop:` image serves. Deployments
have a readiness probe (ready 10 s after start) and a progress deadline of 60 s; the sandbox runs
at TIME_SCALE, so a rollout that stalls is declared failed (ProgressDeadlineExceeded) within a
second or two. The health endpoint the Incidents check answers 200 only while every pod of web is
ready, as a Service with no ready endpoint behind some of its traffic would not.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import pytest
from tests.conftest import TIME_SCALE, duration, simulated
from tests.local_servers import serving

from remediator import manifests
from remediator.sandbox import runner

from .support import deployment, example_object, image_of, roll_out, wait_for, web

pytestmark = pytest.mark.sandbox_only("the images registry: made-up images that crash, stall or fail to pull")

API = "remediator.dev/v1alpha1"
WEB = {"kind": "Deployment", "name": "web"}
PROBE = {"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 10, "periodSeconds": 5}
# A rollback's rollout: three new pods one after another (maxSurge 1), each ready 10 s after it starts.
ROLLOUT_BUDGET = duration(simulated(60, 60))
# A Recreate restart of pods with a 600 s grace period: they stop, then the new ones start and get ready.
SLOW_STOP_SECONDS = 700


def web_running(image: str, **spec: Any) -> dict[str, Any]:
    """web (3 replicas) with a readiness probe and a 60 s progress deadline, running `image`."""
    manifest = deployment(image)
    manifest["spec"].update(progressDeadlineSeconds=60, **spec)
    manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = PROBE
    return manifest


def incident(name: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Incident", "metadata": {"name": name, "namespace": "default"},
            "spec": {"severity": "P1", "summary": "web fails since its last deploy", "steps": list(steps)}}


def rolled_out_within(timeout: str, **step: Any) -> dict[str, Any]:
    return {"name": "rolled-out", "waitForRollout": {"target": WEB}, "timeout": timeout, **step}


def verify(url: str) -> dict[str, Any]:
    return {"name": "verify", "httpCheck": {"url": url, "successThreshold": 2, "interval": "1s"}, "timeout": "30s"}


def pods_of_web(sandbox: runner.RunningSandbox) -> list[dict[str, Any]]:
    pods = sandbox.store.resource_type("", "v1", "pods")
    return [p for p in sandbox.store.list(pods, "default")
            if p["metadata"].get("labels", {}).get("app") == "web" and not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def waiting_reasons(sandbox: runner.RunningSandbox) -> set[str]:
    return {((s.get("state") or {}).get("waiting") or {}).get("reason", "")
            for p in pods_of_web(sandbox) for s in p.get("status", {}).get("containerStatuses", [])} - {""}


@pytest.fixture()
async def health_url(sandbox: runner.RunningSandbox) -> AsyncIterator[str]:
    async def health(request: aiohttp.web.Request) -> aiohttp.web.Response:
        pods = pods_of_web(sandbox)
        healthy = bool(pods) and all(is_ready(p) for p in pods)
        return aiohttp.web.Response(status=200 if healthy else 500, text="ok" if healthy else "error")

    app = aiohttp.web.Application()
    app.router.add_get("/healthz", health)
    async with serving(app) as url:
        yield f"{url}/healthz"


async def incident_status(client: manifests.Client, name: str) -> dict[str, Any]:
    return ((await client.get(API, "Incident", "default", name)) or {}).get("status") or {}


async def phase_is(client: manifests.Client, name: str, phase: str) -> bool:
    return (await incident_status(client, name)).get("phase") == phase


async def progressing(client: manifests.Client) -> tuple[str, str]:
    conditions = (await web(client)).get("status", {}).get("conditions", [])
    found = next((c for c in conditions if c["type"] == "Progressing"), {})
    return found.get("status", ""), found.get("reason", "")


async def deadline_exceeded(client: manifests.Client) -> bool:
    return await progressing(client) == ("False", "ProgressDeadlineExceeded")


async def a_bad_rollout_of(client: manifests.Client, image: str) -> None:
    """web rolled out with shop:1.0 and shop:1.1, then switched to `image` (what `kubectl set image` does)."""
    for good in ("shop:1.0", "shop:1.1"):
        await roll_out(client, web_running(good))
    await client.apply(web_running(image))


async def test_a_bad_image_stalls_the_rollout_past_its_deadline_until_an_incident_rolls_it_back(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, health_url: str) -> None:
    """Bad image: the new pods sit in ErrImagePull/ImagePullBackOff while the old ReplicaSet keeps
    serving (maxUnavailable), the rollout exceeds its progress deadline, and an Incident rolls back,
    waits for the rollout and verifies the health endpoint."""
    await a_bad_rollout_of(client, "shop:doesnotexist")

    await wait_for(lambda: deadline_exceeded(client), timeout=simulated(60))
    assert waiting_reasons(sandbox) <= {"ErrImagePull", "ImagePullBackOff"} and waiting_reasons(sandbox)
    serving_pods = [p for p in pods_of_web(sandbox) if is_ready(p)]
    assert [p["spec"]["containers"][0]["image"] for p in serving_pods] == ["shop:1.1"] * 3, \
        "maxUnavailable is 0 (25 % of 3, rounded down): every old pod keeps serving"
    await start_operator("--approval-severities", "none")
    await client.apply(incident("web-bad-image", {"name": "rollback", "rollback": {"target": WEB}},
                                rolled_out_within(ROLLOUT_BUDGET), verify(health_url)))

    await wait_for(lambda: phase_is(client, "web-bad-image", "Resolved"), timeout=simulated(60, 40))

    assert image_of(await web(client)) == "shop:1.1"
    assert await progressing(client) == ("True", "NewReplicaSetAvailable")
    status = await incident_status(client, "web-bad-image")
    assert [(s["name"], s["state"]) for s in status["steps"]] == [
        ("rollback", "Succeeded"), ("rolled-out", "Succeeded"), ("verify", "Succeeded")]
    assert status["steps"][1]["message"] == "deployment/web successfully rolled out"

    async def stuck_pods_gone() -> bool:
        return not waiting_reasons(sandbox)
    await wait_for(stuck_pods_gone)


async def test_a_crash_loop_restarted_as_the_runbook_says_is_seen_by_wait_for_rollout_and_escalated(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """Crash loop: the new version exits 2 five seconds after it starts, before its readiness probe
    ever passes; kubelet restarts it with its back-off (CrashLoopBackOff). The steps of
    examples/runbooks/crash-looping.yaml (restart, then wait for the rollout) cannot fix a bad
    version: the restarted rollout exceeds its deadline too, the wait times out and escalates."""
    await a_bad_rollout_of(client, "shop:crash")

    async def crash_looping() -> bool:
        restarted = [s for p in pods_of_web(sandbox) for s in p.get("status", {}).get("containerStatuses", [])
                     if s["restartCount"] >= 1 and s["lastState"]["terminated"]["exitCode"] == 2]
        return bool(restarted) and "CrashLoopBackOff" in waiting_reasons(sandbox)
    await wait_for(crash_looping, timeout=simulated(20))
    await wait_for(lambda: deadline_exceeded(client), timeout=simulated(60))
    runbook = example_object("runbooks/crash-looping.yaml", "Runbook")
    restart, wait = runbook["spec"]["incident"]["steps"]
    restart["restart"]["target"]["name"] = wait["waitForRollout"]["target"]["name"] = "web"
    # The runbook waits 5 minutes; the restarted rollout exceeds its 60 s deadline well before this.
    wait.update(timeout=duration(simulated(60)), onFailure="escalate")
    await start_operator("--approval-severities", "none")
    await client.apply(incident("web-crash-loop", restart, wait))

    await wait_for(lambda: phase_is(client, "web-crash-loop", "Failed"), timeout=simulated(60, 30))

    status = await incident_status(client, "web-crash-loop")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Escalated"] == "True"
    assert [(s["name"], s["state"]) for s in status["steps"]] == [("restart", "Succeeded"), ("wait", "Failed")]
    assert status["steps"][1]["message"] == \
        f"attempt 1 timed out after {wait['timeout']}: deployment/web exceeded its progress deadline"
    assert image_of(await web(client)) == "shop:crash", "a restart changes no version"


async def test_a_crash_loop_is_rolled_back_by_the_same_incident_with_a_rollback_step(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, health_url: str) -> None:
    """The same crash loop, and the Incident of the "rollback deployment" runbook: roll back, wait for the
    rollout, verify. The crashing pods go and the previous version serves again."""
    await a_bad_rollout_of(client, "shop:crash")
    await wait_for(lambda: deadline_exceeded(client), timeout=simulated(60))
    await start_operator("--approval-severities", "none")
    await client.apply(incident("web-crash-loop", {"name": "rollback", "rollback": {"target": WEB}},
                                rolled_out_within(ROLLOUT_BUDGET, onFailure="escalate"), verify(health_url)))

    await wait_for(lambda: phase_is(client, "web-crash-loop", "Resolved"), timeout=simulated(60, 40))

    assert image_of(await web(client)) == "shop:1.1"
    pods = pods_of_web(sandbox)
    assert len(pods) == 3 and all(is_ready(p) for p in pods)
    assert all(s["restartCount"] == 0 for p in pods for s in p["status"]["containerStatuses"])


@pytest.mark.timeout(simulated(SLOW_STOP_SECONDS, 120))
async def test_a_restart_whose_pods_take_their_full_grace_period_to_stop_is_awaited_to_the_end(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """Slow termination: a Recreate Deployment whose pods take their 600 s grace period to stop. The
    restart step's rollout restart returns at once; waitForRollout waits while the old pods terminate
    and the new ones start, and succeeds within its timeout, after the last old pod is gone. No new
    pod runs beside an old one."""
    manifest = web_running("shop:1.1", strategy={"type": "Recreate"})
    manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 600
    await roll_out(client, manifest)
    pods_type = sandbox.store.resource_type("", "v1", "pods")
    old = {p["metadata"]["uid"] for p in pods_of_web(sandbox)}
    stopping: dict[str, float] = {}  # old pod uid -> when it began terminating
    took: list[float] = []  # how long each old pod terminated
    gone_at: list[float] = []  # wall-clock time each old pod was removed
    template_hashes: list[int] = []  # distinct templates among web's pods, after every pod write

    def sample(resource: Any, event: Any) -> None:
        if resource.kind != "Pod":
            return
        meta = event.object["metadata"]
        if meta["uid"] in old and meta.get("deletionTimestamp"):
            stopping.setdefault(meta["uid"], time.monotonic())
        if meta["uid"] in old and event.type == "DELETED":
            took.append(time.monotonic() - stopping.get(meta["uid"], time.monotonic()))
            gone_at.append(time.time())
        every = [p for p in sandbox.store.list(pods_type, "default") if p["metadata"]["labels"].get("app") == "web"]
        template_hashes.append(len({p["metadata"]["labels"].get("pod-template-hash") for p in every}))
    sandbox.store.listeners.append(sample)
    await start_operator("--approval-severities", "none")
    await client.apply(incident("web-slow-stop", {"name": "restart", "restart": {"target": WEB}},
                                rolled_out_within(duration(simulated(SLOW_STOP_SECONDS, 60)))))

    await wait_for(lambda: phase_is(client, "web-slow-stop", "Resolved"), timeout=simulated(SLOW_STOP_SECONDS, 90))

    assert len(took) == 3 and min(took) >= 600 * TIME_SCALE * 0.9, "each old pod took its grace period"
    steps = {s["name"]: s for s in (await incident_status(client, "web-slow-stop"))["steps"]}
    assert steps["rolled-out"]["state"] == "Succeeded"
    finished = datetime.datetime.fromisoformat(steps["rolled-out"]["finishedAt"].replace("Z", "+00:00"))
    assert finished.timestamp() >= int(max(gone_at)), "the wait ended only after the last old pod was gone"
    assert max(template_hashes) == 1, "Recreate: the new pods start only once the old ones are gone"
