"""Kopf login: the same credentials for Kopf and for the kubernetes client used by actions."""

from __future__ import annotations

from typing import Any

import kopf

from remediator import kube


@kopf.on.login(id="remediator-login")
def login(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    kube.configure(memo.config.kubeconfig)
    return kube.connection_info(settings)
