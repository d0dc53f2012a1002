"""The operator's Kubernetes connection: loading credentials and the shared client."""

from __future__ import annotations

import functools
import os
import pathlib

import kopf
import kubernetes.client
import kubernetes.config


def configure(kubeconfig: pathlib.Path | None) -> None:
    """Load credentials into the kubernetes client's default configuration.

    An explicit kubeconfig wins; otherwise in-cluster (service account), then $KUBECONFIG or
    ~/.kube/config. Raises kubernetes.config.ConfigException when none works.
    """
    if kubeconfig is not None:
        kubernetes.config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        return
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # The client reads $KUBECONFIG at import time; read it now so a later export counts.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]


def connection_info(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """Kopf's credentials, taken from the kubernetes client's configuration (as Kopf's own login does)."""
    config = kubernetes.client.Configuration.get_default_copy()
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme,
        token=token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        trust_env=settings.networking.trust_env,
    )


@functools.cache
def api_client() -> kubernetes.client.ApiClient:
    """One ApiClient for the process, using the configuration loaded by `configure`."""
    return kubernetes.client.ApiClient()
