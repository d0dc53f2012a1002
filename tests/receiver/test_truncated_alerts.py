"""A truncated notification (truncatedAlerts) with --alertmanager-url: the left-out alerts are fetched from
Alertmanager, but only this group's and this receiver's, whatever the notification's group labels say."""

from __future__ import annotations

from typing import Any

import aiohttp.web
from tests.local_servers import serving

from remediator.receiver import alertmanager_api, payloads

from .alerts import alert, notification


def truncated(**group_labels: str) -> payloads.Notification:
    body = {**notification(alert(fingerprint="f1")), "groupLabels": group_labels, "receiver": "remediator (prod)"}
    return payloads.Notification.model_validate(body)


def test_only_listed_alerts_carrying_the_groups_labels_join_the_notification() -> None:
    listed = [{**alert(fingerprint="f2"), "status": {"state": "active"}},
              {**alert(fingerprint="f3", deployment="other"), "status": {"state": "active"}},
              {**alert(fingerprint="f1"), "status": {"state": "active"}}]
    joined = payloads.with_missing_alerts(truncated(deployment="web"), listed)
    assert [a.fingerprint for a in joined.alerts] == ["f1", "f2"]


async def test_alertmanager_is_asked_for_this_group_and_receiver_only() -> None:
    asked: list[list[tuple[str, str]]] = []

    async def alerts(request: aiohttp.web.Request) -> aiohttp.web.Response:
        asked.append(list(request.query.items()))
        listed: list[dict[str, Any]] = [alert(fingerprint="f2")]
        return aiohttp.web.json_response(listed)

    app = aiohttp.web.Application()
    app.router.add_get("/api/v2/alerts", alerts)
    async with serving(app) as url:
        hostile = {'deployment=~".+",x': "web"}  # a name that would widen the matcher
        assert await alertmanager_api.group_alerts(url, hostile, "remediator") == []
        assert asked == []
        assert len(await alertmanager_api.group_alerts(url, {"deployment": "web"}, "remediator (prod)")) == 1
    assert asked == [[("active", "true"), ("silenced", "false"), ("inhibited", "false"),
                      ("filter", 'deployment="web"'), ("receiver", r"remediator\ \(prod\)")]]
