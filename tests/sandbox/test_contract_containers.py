"""Containers on the sandbox's node behave as their image says, with kubelet's states, back-offs and events.

The tests' sandbox runs with tests/images.yaml: `*doesnotexist*` images do not exist, `*:crash` exits 2
after 5 s, `*:oom` is OOM-killed after 3 s, `*:not-ready` never passes its readiness probe,
`*:slow-start` passes its probes 40 s after it starts, `*:degrades` fails its readiness probe from 30 s
after it starts on, `*:slow-pull` takes 30 s to pull. Times run at
TIME_SCALE. https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
"""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.conftest import TIME_SCALE
from tests.scenarios.support import wait_for

from remediator import cli
from remediator.sandbox import images
from remediator.sandbox.controllers import containers, job_backoff

PODS = "/api/v1/namespaces/default/pods"
EVENTS = "/api/v1/namespaces/default/events"


def pod(name: str, image: str, restart_policy: str = "Always", **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart_policy,
                     "containers": [{"name": "app", "image": image, **container}]}}


async def until(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll until `check` returns something truthy (returned); fail with the last value after `within` s."""
    return await wait_for(check, timeout=within, interval=0.01)


async def status_of(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await api.get(f"{PODS}/{name}")
    assert response.status_code == 200, response.text
    return dict(response.json().get("status") or {})


def container(status: dict[str, Any]) -> dict[str, Any]:
    return dict((status.get("containerStatuses") or [{}])[0])


def waiting(status: dict[str, Any]) -> dict[str, Any]:
    return dict((container(status).get("state") or {}).get("waiting") or {})


def ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or ())


async def events_of(api: httpx.AsyncClient, name: str) -> list[tuple[str, str, str, int]]:
    """(type, reason, message, count) of the pod's events, oldest first."""
    response = await api.get(EVENTS, params={"fieldSelector": f"involvedObject.name={name}"})
    items = sorted(response.json()["items"], key=lambda e: e["metadata"]["name"])
    return [(e["type"], e["reason"], e["message"], e["count"]) for e in items]


async def statuses_until(api: httpx.AsyncClient, body: dict[str, Any], done: Callable[[dict[str, Any]], bool],
                         within: float = 10.0) -> list[dict[str, Any]]:
    """Create the pod and collect every status a watch delivers, up to the first for which `done` holds:
    short-lived states (a pull error, a run of a few milliseconds) are seen that polling could miss."""
    seen: list[dict[str, Any]] = []
    name = body["metadata"]["name"]
    async with api.stream("GET", PODS, params={"watch": "true", "fieldSelector": f"metadata.name={name}"}) as stream:
        await api.post(PODS, json=body)
        async with asyncio.timeout(within):
            async for line in stream.aiter_lines():
                seen.append(json.loads(line)["object"].get("status") or {})
                if done(seen[-1]):
                    return seen
    raise AssertionError("unreachable")


async def test_an_image_that_does_not_exist_fails_to_pull_and_backs_off_as_kubelet_does(
        api: httpx.AsyncClient) -> None:
    """ErrImagePull with containerd's message, then ImagePullBackOff, and kubelet's events; the pod stays
    Pending, and the kubelet pulls again after the back-off (10 s, doubling)."""
    ref = "docker.io/library/doesnotexist:0"
    error = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
             f'failed to resolve reference "{ref}": {ref}: not found')
    seen = await statuses_until(api, pod("bad", "doesnotexist:0"),
                                lambda status: waiting(status).get("reason") == "ImagePullBackOff")
    [first] = [status for status in seen if waiting(status).get("reason") == "ErrImagePull"][:1]
    assert waiting(first) == {"reason": "ErrImagePull", "message": error}
    assert first["phase"] == "Pending" and not ready(first)
    backing_off = seen[-1]
    assert waiting(backing_off)["message"] == f'Back-off pulling image "doesnotexist:0": ErrImagePull: {error}'
    assert container(backing_off)["restartCount"] == 0 and "containerID" not in container(backing_off)
    assert backing_off["phase"] == "Pending"

    async def pulled_again() -> list[tuple[str, str, str, int]] | None:
        found = await events_of(api, "bad")
        return found if any(e[1] == "Pulling" and e[3] >= 2 for e in found) else None
    events = await until(pulled_again, within=60 * TIME_SCALE + 5)
    kinds = {(kind, reason, message) for kind, reason, message, _ in events}
    assert {("Normal", "Pulling", 'Pulling image "doesnotexist:0"'),
            ("Warning", "Failed", f'Failed to pull image "doesnotexist:0": {error}'),
            ("Warning", "Failed", "Error: ErrImagePull"),
            ("Normal", "BackOff", 'Back-off pulling image "doesnotexist:0"'),
            ("Warning", "Failed", "Error: ImagePullBackOff")} <= kinds


async def _pull_failed(api: httpx.AsyncClient, name: str) -> bool:
    return waiting(await status_of(api, name)).get("reason") in ("ErrImagePull", "ImagePullBackOff")


async def test_a_crashing_container_is_restarted_with_kubelets_back_off_in_crash_loop_back_off(
        api: httpx.AsyncClient) -> None:
    """restartCount counts the restarts, lastState holds the last exit (code, reason, message, times),
    and between restarts the container waits in CrashLoopBackOff, 10 s doubling."""
    seen = await statuses_until(api, pod("crashy", "shop:crash"),
                                lambda status: container(status).get("restartCount", 0) >= 2 and bool(waiting(status)),
                                within=60 * TIME_SCALE + 5)
    running = [s for s in seen if "running" in (container(s).get("state") or {})]
    assert running and running[0]["phase"] == "Running" and ready(running[0]), "it runs, and is ready, until it crashes"
    status = seen[-1]
    entry = container(status)
    terminated = entry["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
        2, "Error", "panic: assignment to entry in nil map")
    assert terminated["startedAt"] <= terminated["finishedAt"] and terminated["containerID"].startswith("containerd://")
    back_off = waiting(status)
    assert back_off["reason"] == "CrashLoopBackOff"
    uid = (await api.get(f"{PODS}/crashy")).json()["metadata"]["uid"]
    assert back_off["message"] == (f"back-off {10 * 2 ** (entry['restartCount'] - 1)}s restarting failed "
                                   f"container=app pod=crashy_default({uid})")
    assert status["phase"] == "Running" and not ready(status) and not entry["ready"]
    events = await events_of(api, "crashy")
    assert ("Warning", "BackOff", f"Back-off restarting failed container app in pod crashy_default({uid})") \
        in [e[:3] for e in events]
    [started] = [e for e in events if e[1] == "Started"]
    assert started[3] >= entry["restartCount"], "one Started event, counted once per start"


async def _running(api: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    status = await status_of(api, name)
    return status if "running" in (container(status).get("state") or {}) else None


async def test_an_oom_killed_container_reports_oom_killed_and_exit_code_137(api: httpx.AsyncClient) -> None:
    await api.post(PODS, json=pod("hungry", "shop:oom"))

    async def killed() -> dict[str, Any] | None:
        terminated = (container(await status_of(api, "hungry")).get("lastState") or {}).get("terminated")
        return terminated
    terminated = await until(killed)
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled")


async def test_run_to_completion_pods_end_succeeded_or_failed_by_their_images_exit(api: httpx.AsyncClient) -> None:
    """restartPolicy Never: an image that exits 0 leaves the pod Succeeded (Completed), one that crashes
    leaves it Failed (Error, its exit code); neither is restarted."""
    await api.post(PODS, json=pod("done", "tool:exit", "Never"))
    await api.post(PODS, json=pod("broken", "tool:crash", "Never"))

    async def finished(name: str) -> dict[str, Any] | None:
        status = await status_of(api, name)
        return status if status.get("phase") in ("Succeeded", "Failed") else None
    done = await until(lambda: finished("done"))
    broken = await until(lambda: finished("broken"))
    assert done["phase"] == "Succeeded"
    assert container(done)["state"]["terminated"]["reason"] == "Completed"
    assert broken["phase"] == "Failed"
    assert (container(broken)["state"]["terminated"]["exitCode"], container(broken)["restartCount"]) == (2, 0)


READINESS = {"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 5, "periodSeconds": 10}


async def test_a_container_whose_readiness_probe_fails_runs_but_is_never_ready(api: httpx.AsyncClient) -> None:
    """notReady: Running, the Ready and ContainersReady conditions False with kubelet's reason, and an
    Unhealthy event with the probe's failure; without a probe the same image is ready."""
    await api.post(PODS, json=pod("sulky", "web:not-ready", readinessProbe=READINESS))
    await api.post(PODS, json=pod("unprobed", "web:not-ready"))
    await until(lambda: _running(api, "sulky"))
    unprobed = await until(lambda: _running(api, "unprobed"))
    assert ready(unprobed)

    async def unhealthy() -> list[tuple[str, str, str, int]]:
        return [e for e in await events_of(api, "sulky") if e[1] == "Unhealthy"]
    [event] = await until(unhealthy)
    assert event[:3] == ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
    status = await status_of(api, "sulky")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "ContainersNotReady")
    assert conditions["ContainersReady"]["message"] == "containers with unready status: [app]"
    assert status["phase"] == "Running" and container(status)["started"] is True


async def test_a_slow_starter_becomes_ready_at_the_first_probe_after_it_is_up(api: httpx.AsyncClient) -> None:
    """slowStart (40 s) with a probe at 5 s, then every 10 s: the probes at 5..35 s fail, the one at 45 s
    passes, so the pod turns Ready 45 s (scaled) after its container started, not before."""
    seen = await statuses_until(api, pod("slow", "web:slow-start", readinessProbe=READINESS), ready,
                                within=45 * TIME_SCALE + 5)
    started = next(s for s in seen if "running" in (container(s).get("state") or {}))
    assert not ready(started) and started["phase"] == "Running"
    # The timing itself, without the machine's load in it:
    plan = containers.plan_run(images.Image("*", behaviour="slowStart", after_seconds=40),
                               {"name": "app", "readinessProbe": READINESS}, completes=False, pod_ip="10.244.0.9")
    assert plan.ready_after == 45 and plan.ends_after is None
    assert plan.events == ((5, ("Warning", "Unhealthy",
                                "Readiness probe failed: HTTP probe failed with statuscode: 503")),)


async def test_a_liveness_probe_that_fails_failure_threshold_times_restarts_the_container(
        api: httpx.AsyncClient) -> None:
    """A slow starter whose liveness probe gives up before it is up (3 failures 10 s apart, from 0 s) is
    killed at 20 s and restarted, as kubelet does: Unhealthy, then Killing."""
    liveness = {"tcpSocket": {"port": 8080}, "periodSeconds": 10, "failureThreshold": 3}
    await api.post(PODS, json=pod("impatient", "web:slow-start", livenessProbe=liveness))

    async def restarted() -> dict[str, Any] | None:
        status = await status_of(api, "impatient")
        return status if container(status)["restartCount"] >= 1 else None
    status = await until(restarted, within=20 * TIME_SCALE + 5)
    assert container(status)["lastState"]["terminated"]["exitCode"] == 137
    events = [e[:3] for e in await events_of(api, "impatient")]
    assert ("Normal", "Killing", "Container app failed liveness probe, will be restarted") in events
    assert any(e[1] == "Unhealthy" and e[2].startswith("Liveness probe failed: dial tcp 10.244.")
               and e[2].endswith(":8080: connect: connection refused") for e in events)


async def test_an_image_pull_takes_its_time_once_and_is_then_present_on_the_node(api: httpx.AsyncClient) -> None:
    """The first pod waits in ContainerCreating (Pending) while the image is pulled; kubelet's Pulled
    event gives the time; the next pod finds the image already present."""
    seen = await statuses_until(api, pod("first", "big:slow-pull"),
                                lambda status: "running" in (container(status).get("state") or {}),
                                within=30 * TIME_SCALE + 5)
    creating = [s for s in seen if waiting(s).get("reason") == "ContainerCreating"]
    assert creating and creating[0]["phase"] == "Pending"
    await api.post(PODS, json=pod("second", "big:slow-pull"))
    await until(lambda: _running(api, "second"))
    first = {e[1]: e[2] for e in await events_of(api, "first")}
    assert first["Pulling"] == 'Pulling image "big:slow-pull"'
    assert first["Pulled"] == ('Successfully pulled image "big:slow-pull" in 30s (30s including waiting). '
                               f"Image size: {52_428_800} bytes.")
    second = {e[1]: e[2] for e in await events_of(api, "second")}
    assert second["Pulled"] == 'Container image "big:slow-pull" already present on machine'
    assert "Pulling" not in second


async def test_image_pull_policies_never_uses_only_the_node_and_always_pulls_again(api: httpx.AsyncClient) -> None:
    """imagePullPolicy Never: an image not on the node is ErrImageNeverPull (kubelet's event and
    message), one that is runs; Always pulls an image the node already has once more."""
    await api.post(PODS, json=pod("never", "huge:slow-pull", imagePullPolicy="Never"))
    await api.post(PODS, json=pod("cached", "nginx:1.27", imagePullPolicy="Never"))

    async def never_pulled() -> dict[str, Any] | None:
        status = await status_of(api, "never")
        return status if waiting(status).get("reason") == "ErrImageNeverPull" else None
    status = await until(never_pulled)
    message = 'Container image "huge:slow-pull" is not present with pull policy of Never'
    assert waiting(status)["message"] == message and status["phase"] == "Pending"
    assert ("Warning", "ErrImageNeverPull", message) in [e[:3] for e in await events_of(api, "never")]
    await until(lambda: _running(api, "cached"))

    await api.post(PODS, json=pod("first-pull", "huge:slow-pull"))
    await until(lambda: _running(api, "first-pull"), within=30 * TIME_SCALE + 5)
    await api.post(PODS, json=pod("pull-again", "huge:slow-pull", imagePullPolicy="Always"))
    await until(lambda: _running(api, "pull-again"), within=30 * TIME_SCALE + 5)
    assert "Pulling" in [e[1] for e in await events_of(api, "pull-again")]


async def test_the_configmap_in_kube_system_changes_the_registry_of_a_running_sandbox(
        api: httpx.AsyncClient) -> None:
    """Entries of kube-system/sandbox-images come before the startup file's: here an image the tests'
    registry lets run is declared missing; a ConfigMap that does not parse is ignored."""
    await api.post("/api/v1/namespaces/kube-system/configmaps", json={
        "metadata": {"name": "sandbox-images"},
        "data": {"images.yaml": "images:\n- image: shop:9.9\n  exists: false\n"}})
    await api.post(PODS, json=pod("gone", "shop:9.9"))
    await until(lambda: _pull_failed(api, "gone"))
    await api.put("/api/v1/namespaces/kube-system/configmaps/sandbox-images", json={
        "metadata": {"name": "sandbox-images"}, "data": {"images.yaml": "images: [{behaviour: sulk}]"}})
    await api.post(PODS, json=pod("back", "shop:9.9"))
    await until(lambda: _running(api, "back"))


async def test_a_pod_whose_image_never_pulled_is_removed_at_once_when_deleted(api: httpx.AsyncClient) -> None:
    """No container runs, so there is nothing to stop: the grace period (here 3000 s) is not waited for,
    and no Killing event is recorded."""
    await api.post(PODS, json={**pod("stuck", "doesnotexist:1"), "spec": {
        **pod("stuck", "doesnotexist:1")["spec"], "terminationGracePeriodSeconds": 3000}})
    await until(lambda: _pull_failed(api, "stuck"))
    await api.delete(f"{PODS}/stuck")

    async def gone() -> bool:
        return (await api.get(f"{PODS}/stuck")).status_code == 404
    await until(gone, within=3000 * TIME_SCALE / 10)
    assert "Killing" not in [e[1] for e in await events_of(api, "stuck")]


JOBS = "/apis/batch/v1/namespaces/default/jobs"


def job(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, **spec, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "work", "image": image}]}}}}


async def test_a_jobs_pod_runs_for_its_images_time_and_active_deadline_seconds_cuts_it_short(
        api: httpx.AsyncClient) -> None:
    """A Job's container runs its image's time (slow-start: 40 s) and exits 0: Complete. With
    activeDeadlineSeconds 10 (scaled) the Job fails first: DeadlineExceeded, as the Job controller says."""
    await api.post(JOBS, json=job("long", "tool:slow-start"))
    await api.post(JOBS, json=job("cut", "tool:slow-start", activeDeadlineSeconds=10))

    async def finished(name: str) -> dict[str, str] | None:
        status = (await api.get(f"{JOBS}/{name}")).json().get("status") or {}
        found = {c["type"]: c.get("reason", "") for c in status.get("conditions") or () if c["status"] == "True"}
        return found if {"Complete", "Failed"} & set(found) else None
    cut = await until(lambda: finished("cut"), within=10 * TIME_SCALE + 5)
    long = await until(lambda: finished("long"), within=40 * TIME_SCALE + 5)
    assert cut == {"FailureTarget": "DeadlineExceeded", "Failed": "DeadlineExceeded"}
    assert long == {"SuccessCriteriaMet": "CompletionsReached", "Complete": "CompletionsReached"}


async def test_a_failed_jobs_pod_is_replaced_after_the_job_controllers_back_off(api: httpx.AsyncClient) -> None:
    """backoffLimit 2 and an image that exits 2 after 5 s: each replacement pod is created only after
    the Job controller's back-off since the last failure, 10 s and then 20 s (scaled); the third
    failure fails the Job (BackoffLimitExceeded). pkg/controller/job/backoff_utils.go"""
    loop = asyncio.get_running_loop()
    created: dict[str, float] = {}
    failed: dict[str, float] = {}
    selector = {"watch": "true", "labelSelector": "job-name=retry"}
    async with api.stream("GET", PODS, params=selector) as stream:
        await api.post(JOBS, json=job("retry", "tool:crash", backoffLimit=2))
        async with asyncio.timeout(50 * TIME_SCALE + 10):
            async for line in stream.aiter_lines():
                found = json.loads(line)["object"]
                name = found["metadata"]["name"]
                created.setdefault(name, loop.time())
                if (found.get("status") or {}).get("phase") == "Failed":
                    failed.setdefault(name, loop.time())
                if len(failed) == 3:
                    break

    first, second, third = sorted(created, key=created.__getitem__)
    assert created[second] - failed[first] >= 10 * TIME_SCALE * 0.9
    assert created[third] - failed[second] >= 20 * TIME_SCALE * 0.9
    assert created[third] - failed[second] > created[second] - failed[first], "the back-off doubles"

    async def job_failed() -> dict[str, Any] | None:
        status = (await api.get(f"{JOBS}/retry")).json().get("status") or {}
        return status if any(c["type"] == "Failed" for c in status.get("conditions") or ()) else None
    status = await until(job_failed)
    assert status["failed"] == 3 and "active" not in status
    assert [c["reason"] for c in status["conditions"]] == ["BackoffLimitExceeded"] * 2


def test_the_job_controllers_back_off_doubles_from_10_seconds_to_10_minutes() -> None:
    """DefaultJobPodFailureBackOff 10 s, MaxJobPodFailureBackOff 10 min (the docs round it to 6 min: 320 s,
    then the cap); a success in between starts again at 10 s."""
    assert [job_backoff.delay(failures) for failures in range(0, 9)] == [0, 10, 20, 40, 80, 160, 320, 600, 600]

    def finished(uid: str, phase: str, at: str) -> dict[str, Any]:
        return {"metadata": {"uid": uid}, "status": {"phase": phase, "containerStatuses": [
            {"state": {"terminated": {"finishedAt": at}}}]}}
    record = job_backoff.observe(None, [finished("a", "Failed", "2026-01-01T00:00:01Z"),
                                        finished("b", "Failed", "2026-01-01T00:00:02Z")], now=100.0)
    assert (record.failures_after_success, job_backoff.remaining(record, 105.0, 1.0)) == (2, 15.0)
    record = job_backoff.observe(record, [finished("c", "Succeeded", "2026-01-01T00:00:03Z")], now=110.0)
    assert (record.failures_after_success, job_backoff.remaining(record, 110.0, 1.0)) == (0, 0.0)


def test_kubelets_back_offs_double_from_10_seconds_to_5_minutes() -> None:
    assert [containers.crash_backoff(exits) for exits in range(1, 9)] == [0, 10, 20, 40, 80, 160, 300, 300]
    assert [containers.pull_backoff(failures) for failures in range(1, 7)] == [10, 20, 40, 80, 160, 300]


def test_a_liveness_probe_kills_a_slow_starter_at_its_failure_threshold_unless_it_is_up_by_then() -> None:
    """Probes at initialDelaySeconds, then every periodSeconds: the failureThreshold-th failure in a row
    kills the container; one that passes before then lives, as does every other behaviour."""
    def liveness(delay: int, period: int, threshold: int) -> dict[str, Any]:
        return {"name": "app", "livenessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": delay,
                                                 "periodSeconds": period, "failureThreshold": threshold}}
    slow = images.Image("*", behaviour="slowStart", after_seconds=40)
    killed = containers.plan_run(slow, liveness(5, 10, 3), completes=False, pod_ip="10.244.0.9")
    assert (killed.ends_after, killed.exit_code) == (25, 137)
    assert [reason for _, (_, reason, _) in killed.events] == ["Unhealthy", "Killing"]
    patient = containers.plan_run(slow, liveness(30, 10, 3), completes=False, pod_ip="10.244.0.9")
    assert patient.ends_after is None and patient.events == ()
    assert containers.plan_run(images.Image("*"), liveness(0, 1, 1), completes=False, pod_ip="").ends_after is None


def test_registry_documents_are_checked_field_by_field() -> None:
    registry = images.from_text("images:\n- image: 'a:*'\n  behaviour: crash\n- image: '*'\n  exists: false\n", "f")
    entry = registry.lookup("a:1")
    assert entry is not None and (entry.behaviour, entry.exit_code) == ("crash", 1)
    assert registry.lookup("b:1") is None
    for text, message in (
            ("images: [{image: x, behaviour: sulk}]", "f: images[0].behaviour: 'sulk' is not one of ok, crash"),
            ("images: [{image: x, pullSecond: 3}]", "f: images[0]: unknown field 'pullSecond'"),
            ("images: [{image: x, afterSeconds: -1}]", "f: images[0].afterSeconds: must be a number"),
            ("images: [{image: x, exitCode: 256}]", "f: images[0].exitCode: must be an integer 0-255"),
            ("images: [{behaviour: ok}]", "f: images[0].image: required"),
            ("image: x", "f: must be a mapping with one key, images")):
        with pytest.raises(images.RegistryError) as raised:
            images.from_text(text, "f")
        assert str(raised.value).startswith(message), str(raised.value)


def test_remediator_sandbox_refuses_a_registry_file_that_does_not_parse(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "images.yaml"
    bad.write_text("images: [{image: x, behaviour: sulk}]\n")
    assert cli.main(["sandbox", "--images", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"remediator sandbox: --images: {bad}: images[0].behaviour:")


@pytest.mark.parametrize(("runs_for", "next_state", "back_off"), [
    (5, "crashBackOff", 80.0), (599, "crashBackOff", 80.0), (601, "running", 0.0)])
def test_a_container_that_ran_for_10_minutes_before_it_crashed_starts_its_back_off_afresh(
        runs_for: float, next_state: str, back_off: float) -> None:
    """After four crashes in a row the fifth waits 80 s; a run longer than 10 minutes (twice
    MaxContainerBackOff) resets the back-off: restarted at once, and a crash after that waits 10 s."""
    crasher = images.Image("*", behaviour="crash", exit_code=2, after_seconds=runs_for)
    ctx = containers.Context(crasher, {"name": "app", "image": "shop:crash"}, "web_default(uid)", "10.244.0.9",
                             scale=1.0, completes=False, restarts_on=lambda code: True,
                             stamp=lambda moment: f"{moment}", present=set())
    run = containers.ContainerRun("app", "shop:crash", since=0.0, exits=4, restarts=4)
    containers.advance(run, ctx, now=0.0)
    assert run.state == "running"

    containers.advance(run, ctx, now=runs_for + 0.5)

    assert (run.state, run.restarts) == (next_state, 4 if next_state == "crashBackOff" else 5)
    assert containers.crash_backoff(run.exits) == back_off
    assert containers.crash_backoff(run.exits + 1) == (160.0 if back_off else 10.0), "the crash after the next"


async def test_a_ready_container_whose_readiness_probe_starts_failing_becomes_unready_but_keeps_running(
        api: httpx.AsyncClient) -> None:
    """degrades: ready at the probe's first pass (5 s), its probe fails from the first tick after 30 s
    (35 s), and after failureThreshold (3) failures in a row (55 s) Ready and ContainersReady turn False
    with kubelet's reason; the container is not restarted."""
    probe = {"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 5, "periodSeconds": 10,
             "failureThreshold": 3}
    loop = asyncio.get_running_loop()
    moments: dict[bool, float] = {}

    def unready_again(status: dict[str, Any]) -> bool:
        moments.setdefault(ready(status), loop.time())
        return True in moments and not ready(status) and moments[False] < moments[True]

    created = loop.time()
    seen = await statuses_until(api, pod("flaky", "web:degrades", readinessProbe=probe), unready_again,
                                within=60 * TIME_SCALE + 10)
    moments[False] = loop.time()

    # Timed from the create (seen late on a loaded machine, the ready moment would shorten the gap): not
    # unready before the third failure at 55 s.
    assert moments[False] - created >= 55 * TIME_SCALE * 0.9
    final = seen[-1]
    assert (container(final)["restartCount"], "running" in container(final)["state"]) == (0, True)
    reasons = {c["type"]: (c["status"], c.get("reason")) for c in final["conditions"]}
    assert reasons["Ready"] == reasons["ContainersReady"] == ("False", "ContainersNotReady")
    assert ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503") in [
        e[:3] for e in await events_of(api, "flaky")]


async def test_a_startup_probe_holds_the_liveness_probe_back_until_a_slow_starter_is_up_or_kills_it(
        api: httpx.AsyncClient) -> None:
    """slow-start is up 40 s after it starts. A startup probe that allows 6 x 10 s lets it start:
    `started` and Ready stay false until then, and its liveness probe (which alone would kill it at
    10 s) never fails. One that allows only 3 x 10 s kills it at 20 s, with kubelet's events.
    https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/"""
    check = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
    liveness = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5, "failureThreshold": 3}
    patient = pod("patient", "web:slow-start", startupProbe={**check, "failureThreshold": 6},
                  livenessProbe=liveness)
    await api.post(PODS, json=pod("impatient", "web:slow-start", startupProbe={**check, "failureThreshold": 3}))

    seen = await statuses_until(api, patient, lambda status: bool(container(status).get("started")),
                                within=40 * TIME_SCALE + 10)

    running = [s for s in seen if "running" in (container(s).get("state") or {})]
    assert len(running) >= 2 and not any(container(s)["started"] or ready(s) for s in running[:-1])
    assert ready(seen[-1]) and container(seen[-1])["restartCount"] == 0

    async def killed() -> dict[str, Any] | None:
        found = container(await status_of(api, "impatient"))
        return found if found.get("restartCount") else None
    restarted = await until(killed, within=40 * TIME_SCALE + 10)
    assert restarted["lastState"]["terminated"]["exitCode"] == 137
    events = [e[:3] for e in await events_of(api, "impatient")]
    assert ("Warning", "Unhealthy", "Startup probe failed: HTTP probe failed with statuscode: 503") in events
    assert ("Normal", "Killing", "Container app failed startup probe, will be restarted") in events
    assert "Unhealthy" not in [e[1] for e in await events_of(api, "patient") if "Liveness" in e[2]]


@pytest.mark.parametrize(("policy", "pulls"), [("Always", "every start"), ("IfNotPresent", "once")])
async def test_a_restarted_container_pulls_its_image_again_only_under_pull_policy_always(
        api: httpx.AsyncClient, policy: str, pulls: str) -> None:
    """crash-pulled takes 3 s to pull and exits 2 after 5 s. Under Always every restart pulls the image
    again (one Pulling event, its count growing, as the event recorder folds repeats); under
    IfNotPresent the restarts find it "already present on machine"."""
    name = f"pull-{policy.lower()}"
    await api.post(PODS, json=pod(name, f"{name}:crash-pulled", imagePullPolicy=policy))

    async def restarted_twice() -> dict[str, Any] | None:
        found = container(await status_of(api, name))
        return found if found.get("restartCount", 0) >= 2 else None
    await until(restarted_twice, within=60 * TIME_SCALE + 10)

    events = {(e[1], e[2]): e[3] for e in await events_of(api, name)}
    pulling = events[("Pulling", f'Pulling image "{name}:crash-pulled"')]
    present = events.get(("Pulled", f'Container image "{name}:crash-pulled" already present on machine'), 0)
    if pulls == "every start":
        assert pulling >= 3 and present == 0
    else:
        assert pulling == 1 and present >= 2


async def test_a_private_image_is_pulled_only_with_an_existing_pull_secret_for_its_registry(
        api: httpx.AsyncClient) -> None:
    """vault.example.com's images are private. Without imagePullSecrets the registry answers 401
    (ErrImagePull with containerd's message); a pull secret that does not exist adds kubelet's
    FailedToRetrieveImagePullSecret warning; a dockerconfigjson Secret with the registry's credentials
    lets the image pull and run. https://kubernetes.io/docs/concepts/containers/images/#using-a-private-registry"""
    config = {"auths": {"https://vault.example.com": {"auth": base64.b64encode(b"ci:hunter2").decode()}}}
    await api.post("/api/v1/namespaces/default/secrets", json={
        "metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}})
    image = "vault.example.com/payments:2.1"
    await api.post(PODS, json=pod("anonymous", image))
    await api.post(PODS, json={**pod("misnamed", image), "spec": {
        **pod("misnamed", image)["spec"], "imagePullSecrets": [{"name": "regcerd"}]}})

    refused = ('rpc error: code = Unknown desc = failed to pull and unpack image "vault.example.com/payments:2.1": '
               'failed to resolve reference "vault.example.com/payments:2.1": unexpected status from HEAD request '
               "to https://vault.example.com/v2/payments/manifests/2.1: 401 Unauthorized")
    for name in ("anonymous", "misnamed"):
        await until(lambda name=name: _pull_failed(api, name))
        assert waiting(await status_of(api, name)) in ({"reason": "ErrImagePull", "message": refused}, {
            "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}": ErrImagePull: {refused}'})
        assert ("Warning", "Failed", f'Failed to pull image "{image}": {refused}') in [
            e[:3] for e in await events_of(api, name)]
    warning = ("Warning", "FailedToRetrieveImagePullSecret",
               "Unable to retrieve some image pull secrets (regcerd); attempting to pull the image may not succeed.")
    assert warning in [e[:3] for e in await events_of(api, "misnamed")]
    assert warning[1] not in [e[1] for e in await events_of(api, "anonymous")]
    # Last: once on the node, an IfNotPresent pod would run the image without credentials (as on a kubelet
    # without the alpha KubeletEnsureSecretPulledImages feature).
    await api.post(PODS, json={**pod("entitled", image), "spec": {
        **pod("entitled", image)["spec"], "imagePullSecrets": [{"name": "regcred"}]}})
    await until(lambda: _running(api, "entitled"), within=2 * TIME_SCALE + 5)
    for name in ("anonymous", "misnamed", "entitled"):
        assert all("hunter2" not in e[2] and "Y2k6aHVudGVyMg" not in e[2] for e in await events_of(api, name))


async def test_repeated_events_fold_per_container_as_the_event_recorder_does(api: httpx.AsyncClient) -> None:
    """Two containers of one image crash-loop: each container's repeated Pulled ("already present")
    event is one Event with a growing count and a later lastTimestamp, kept apart per container (the
    correlator's key includes the involved object's fieldPath)."""
    body = pod("twins", "shop:crash")
    body["spec"]["containers"].append({"name": "twin", "image": "shop:crash"})
    await api.post(PODS, json=body)

    async def restarted_twice() -> bool:
        statuses = (await status_of(api, "twins")).get("containerStatuses") or ()
        return len(statuses) == 2 and all(s.get("restartCount", 0) >= 2 for s in statuses)
    await until(restarted_twice, within=60 * TIME_SCALE + 10)

    response = await api.get(EVENTS, params={"fieldSelector": "involvedObject.name=twins"})
    pulled = [e for e in response.json()["items"] if e["reason"] == "Pulled"]
    assert sorted(e["involvedObject"]["fieldPath"] for e in pulled) == ["spec.containers{app}", "spec.containers{twin}"]
    assert all(e["count"] >= 3 and e["lastTimestamp"] >= e["firstTimestamp"] for e in pulled)
    assert len({e["metadata"]["name"] for e in pulled}) == 2
