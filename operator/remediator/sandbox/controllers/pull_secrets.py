"""Which registries a pod's `imagePullSecrets` hold credentials for, as the kubelet's keyring reads them.

A Secret of type kubernetes.io/dockerconfigjson (`.dockerconfigjson`: `{"auths": {host: ...}}`) or
kubernetes.io/dockercfg (`.dockercfg`: `{host: ...}`) covers the hosts it names; a key may be a URL
(`https://index.docker.io/v1/`), and Docker Hub's names all mean docker.io. Secrets the pod names that
do not exist are reported by name (kubelet's FailedToRetrieveImagePullSecret event).
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

_DOCKER_HUB = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
# Secret type -> the data key holding the config, and where its hosts are in the decoded JSON.
_CONFIG_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson", lambda config: config.get("auths")),
    "kubernetes.io/dockercfg": (".dockercfg", lambda config: config),
}


def _host(key: str) -> str:
    host = urllib.parse.urlsplit(key if "//" in key else f"//{key}").netloc or key
    return "docker.io" if host in _DOCKER_HUB else host


def registries(secret: Mapping[str, Any]) -> frozenset[str]:
    """The registry hosts a pull secret holds credentials for; none when it is not a valid one."""
    found = _CONFIG_KEYS.get(str(secret.get("type", "")))
    if found is None:
        return frozenset()
    key, hosts_of = found
    try:
        config = json.loads(base64.b64decode((secret.get("data") or {}).get(key) or "", validate=True))
        hosts = hosts_of(config) if isinstance(config, dict) else None
    except (binascii.Error, ValueError):
        return frozenset()
    return frozenset(_host(str(host)) for host in hosts) if isinstance(hosts, dict) else frozenset()


def pod_credentials(pod: Mapping[str, Any],
                    find_secret: Callable[[str], Mapping[str, Any] | None]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The registries the pod's imagePullSecrets cover, and the names of those that do not exist."""
    covered: set[str] = set()
    missing: list[str] = []
    for reference in (pod.get("spec") or {}).get("imagePullSecrets") or ():
        name = str((reference or {}).get("name") or "")
        secret = find_secret(name) if name else None
        if secret is None:
            missing.append(name)
        else:
            covered |= registries(secret)
    return frozenset(covered), tuple(missing)
