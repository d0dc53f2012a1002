"""Hypothesis-generated webhook bodies, schema-valid and not, against the receiver and the sandbox: never
a 5xx (no faults are injected), and a refused body creates nothing, Incident or Event.

A few hundred examples run in the normal suite; REMEDIATOR_FUZZ_EXAMPLES=10000 runs the issue's 10,000.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import threading
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kubernetes.aio import client as aio
from tests.conftest import CRDS, TIME_SCALE
from tests.local_servers import serving

from remediator.receiver import incident_writes, server, tokens
from remediator.receiver.payloads import Notification
from remediator.sandbox import runner

from .alerts import alert, notification, runbook_manifest

EXAMPLES = int(os.environ.get("REMEDIATOR_FUZZ_EXAMPLES", "300"))
TOKEN = "fuzz-token"
API = "/apis/remediator.dev/v1alpha1"

HOSTILE = ["{{ labels.namespace }}", "../../etc/passwd", "a" * 300, "wéb-ü", "", "web", "api", "WEB", "x\ny",
           "{{ alertname }}", "default", "kube-system", "critical", "SEV1", "\x00"]
values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30))
labels = st.dictionaries(st.sampled_from(["alertname", "namespace", "deployment", "severity", "pod", "le", "x-y"]),
                         values, max_size=6).map(lambda d: {"alertname": "KubePodCrashLooping", **d}
                                                 if len(d) % 2 else d)
# Alerts the Runbook matches, with any deployment label: these reach the create path.
matching = st.fixed_dictionaries(
    {"alertname": st.just("KubePodCrashLooping"), "severity": st.just("critical"),
     "deployment": st.one_of(st.sampled_from(["web", "api", "checkout"]), values)},
    optional={"namespace": st.just("default"), "pod": values})
moments = st.one_of(st.sampled_from(["2026-11-29T10:00:00Z", "2026-11-29T10:00:00.123456789Z",
                                     "0001-01-01T00:00:00Z", "2026-11-29T11:00:00+01:00"]),
                    st.sampled_from(["2026-11-29T10:00:00", "yesterday"]),
                    st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(lambda d: d.isoformat()))
alerts = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "firing", "resolved", "pending"]), "labels": st.one_of(labels, matching),
     "startsAt": moments},
    optional={"annotations": st.dictionaries(st.text(max_size=10), values, max_size=3), "endsAt": moments,
              "fingerprint": st.one_of(st.text(max_size=16), st.text(min_size=60, max_size=70)),
              "generatorURL": st.text(max_size=20), "extra": st.integers()})
notifications = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", "4", "4", "3", 4]),
     "status": st.sampled_from(["firing", "resolved", "firing", "x"]),
     "alerts": st.lists(alerts, max_size=3)},
    optional={"groupKey": st.text(max_size=20), "truncatedAlerts": st.integers(min_value=-2, max_value=5),
              "receiver": st.text(max_size=10),
              "groupLabels": st.dictionaries(st.text(max_size=5), st.text(max_size=5)),
              "commonLabels": st.just({}), "externalURL": st.text(max_size=10), "unknown": st.none()})
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=10)
bodies = st.one_of(notifications.map(lambda n: json.dumps(n).encode()),
                   notifications.map(lambda n: json.dumps(n).encode()),
                   json_values.map(lambda v: json.dumps(v).encode()),
                   st.binary(max_size=64))


class Background:
    """The sandbox and the receiver on an event loop of their own, for hypothesis' synchronous tests."""

    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.sandbox_url = self.receiver_url = ""
        self.tmp_path = tmp_path
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.serve(),), daemon=True)

    async def serve(self) -> None:
        self.stop = asyncio.Event()
        token = self.tmp_path / "token"
        token.write_text(TOKEN)
        async with runner.running(crd_paths=CRDS, time_scale=TIME_SCALE) as sandbox, \
                aio.ApiClient(aio.Configuration(host=sandbox.url)) as api:
            handler = server.Receiver(incident_writes.IncidentWrites(api, timeout=5.0), tokens.FileToken(token), None)
            async with serving(server.build_app(handler)) as url:
                self.sandbox_url, self.receiver_url = sandbox.url, url
                self.ready.set()
                await self.stop.wait()


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    running = Background(tmp_path_factory.mktemp("fuzz"))
    running.thread.start()
    assert running.ready.wait(30), "the sandbox and receiver did not start"
    with httpx.Client(base_url=running.sandbox_url) as sandbox:
        manifest = runbook_manifest()
        assert sandbox.post(f"{API}/namespaces/default/runbooks", json=manifest).status_code == 201
    yield running
    assert running.stop is not None
    running.loop.call_soon_threadsafe(running.stop.set)
    running.thread.join(30)


def objects(sandbox: httpx.Client) -> tuple[int, int]:
    incidents = sandbox.get(f"{API}/incidents").json()["items"]
    events = sandbox.get("/api/v1/events").json()["items"]
    return len(incidents), len(events)


def is_valid(body: bytes) -> bool:
    try:
        Notification.model_validate(json.loads(body))
    except (ValueError, RecursionError):
        return False
    return True


@pytest.mark.timeout(max(120, EXAMPLES // 5))
def test_no_body_gets_a_5xx_and_a_refused_one_creates_nothing(background: Background) -> None:
    with httpx.Client(base_url=background.sandbox_url, timeout=30) as sandbox, \
            httpx.Client(base_url=background.receiver_url, timeout=30,
                         headers={"Authorization": f"Bearer {TOKEN}"}) as http:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(body=bodies)
        @example(body=json.dumps(notification(alert())).encode())  # the create path, whatever is drawn
        @example(body=json.dumps(notification(alert(deployment="../x"))).encode())
        def post(body: bytes) -> None:
            before = objects(sandbox)
            response = http.post("/alertmanager", content=body)
            assert response.status_code < 500, response.text
            if is_valid(body):
                assert response.status_code == 200, response.text
            else:
                assert response.status_code == 400, response.text
                assert objects(sandbox) == before, "a refused body created something"

        post()
        assert objects(sandbox)[0] > 0, "no generated body reached the create path"


