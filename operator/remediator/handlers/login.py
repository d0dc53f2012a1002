"""Kopf login: the same credentials for Kopf and for the kubernetes client used by actions."""

from __future__ import annotations

from typing import Any

import kopf

from remediator import kube
from remediator.actions import fences


@kopf.on.login(id="remediator-login")
async def login(memo: kopf.Memo, settings: kopf.OperatorSettings,
                **_: Any) -> kopf.ConnectionInfo | kopf.AiohttpSession:
    kube.configure(memo.config.kubeconfig)
    # The actions' asyncio client made now, not for the first Incident: its TLS context alone takes 20-50 ms.
    kube.hot_path_client(kube.api_client())
    info = kube.connection_info(settings)
    # A lease epoch is held only with leader election: then Kopf's requests pass the fence as well.
    return info if fences.epoch() is None else kube.fenced_session(info)
