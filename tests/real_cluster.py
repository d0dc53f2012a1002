"""The scenarios against a real cluster (`pytest --kube-config PATH`): how to reach the cluster a kubeconfig
names, the CRDs it needs, and one throwaway namespace per test standing in for the sandbox's `default`."""

from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
import pathlib
import secrets
import ssl
import time
from typing import Any

import httpx
import yaml

from remediator import manifests

# Every namespace a run creates carries this label, so a leftover one is easy to find (and to delete).
CREATED_BY = {"app.kubernetes.io/created-by": "remediator-tests"}
CRD_GROUP_VERSION = "remediator.dev/v1alpha1"


@dataclasses.dataclass
class RealCluster:
    """The cluster of a kubeconfig's current context, as the test client and the operator reach it."""

    kubeconfig: dict[str, Any]  # with every file it names made absolute
    url: str
    token: str | None
    verify: ssl.SSLContext | bool
    run_id: str = dataclasses.field(default_factory=lambda: secrets.token_hex(3))
    _numbers: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, verify=self.verify, timeout=30)

    def client(self, namespace: str) -> NamespacedClient:
        return NamespacedClient(namespace, self.url, token=self.token, verify=self.verify)

    def write_kubeconfig(self, path: pathlib.Path, namespace: str) -> pathlib.Path:
        """The user's kubeconfig, its current context defaulting to `namespace` (what the operator is given)."""
        config = copy.deepcopy(self.kubeconfig)
        _named(config["contexts"], config["current-context"])["context"]["namespace"] = namespace
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def ensure_crds(self, paths: list[pathlib.Path]) -> list[str]:
        """Create the project's CRDs the cluster does not have yet (an installed chart's are kept as they
        are); waits until the API serves their kinds. Returns the names it created."""
        created = []
        with self.http() as http:
            for path in paths:
                for crd in (d for d in yaml.safe_load_all(path.read_text()) if d):
                    url = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
                    if http.get(url).status_code == 404:
                        http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                  json=crd).raise_for_status()
                        created.append(crd["metadata"]["name"])
            _wait_until(lambda: http.get(f"/apis/{CRD_GROUP_VERSION}").status_code == 200,
                        "the API server serves remediator.dev/v1alpha1")
        return created

    def create_namespace(self) -> str:
        name = f"remediator-e2e-{self.run_id}-{next(self._numbers)}"
        with self.http() as http:
            http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": name, "labels": CREATED_BY}}
                      ).raise_for_status()
            # The ServiceAccount controller creates `default` shortly after; Jobs' pods need it.
            _wait_until(lambda: http.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code == 200,
                        f"namespace {name} has its default ServiceAccount", timeout=30)
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete the namespace with everything in it (the API server finishes in the background)."""
        with self.http() as http:
            response = http.delete(f"/api/v1/namespaces/{name}")
            if response.status_code != 404:
                response.raise_for_status()


class NamespacedClient(manifests.Client):
    """The scenarios' client on a real cluster: their manifests say `namespace: default` (as in examples/);
    here every read and write of `default` goes to the test's own namespace instead."""

    def __init__(self, namespace: str, base_url: str, token: str | None = None,
                 verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(base_url, token=token, verify=verify)
        self.namespace = namespace

    def _mapped(self, namespace: str | None) -> str | None:
        return self.namespace if namespace in (None, "default") else namespace

    async def url(self, api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
        return await super().url(api_version, kind, self._mapped(namespace), name)

    async def apply(self, document: dict[str, Any]) -> str:
        if (await self.resource(document["apiVersion"], document["kind"])).namespaced:
            document = {**document, "metadata": {**document.get("metadata", {}),
                                                 "namespace": self._mapped(document["metadata"].get("namespace"))}}
        return await super().apply(document)


def load(path: pathlib.Path, certificates: pathlib.Path) -> RealCluster:
    """The cluster of the kubeconfig's current context. Client certificates and keys given inline are
    written under `certificates` (Python's TLS loads them from files only)."""
    config = yaml.safe_load(path.read_text())
    context = _named(config["contexts"], config["current-context"])["context"]
    cluster = _named(config["clusters"], context["cluster"])["cluster"]
    user = _named(config.get("users") or [], context.get("user"))["user"] if context.get("user") else {}
    for entry, key in ((cluster, "certificate-authority"), (user, "client-certificate"), (user, "client-key"),
                       (user, "tokenFile")):
        if key in entry:
            entry[key] = str((path.parent / entry[key]).resolve())
    verify: ssl.SSLContext | bool = not cluster.get("insecure-skip-tls-verify", False)
    if cluster["server"].startswith("https") and verify:
        verify = ssl.create_default_context(
            cafile=cluster.get("certificate-authority"),
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            if "certificate-authority-data" in cluster else None)
    client_cert = _pem_file(user, "client-certificate", certificates / "client.crt")
    client_key = _pem_file(user, "client-key", certificates / "client.key")
    if client_cert and client_key:
        if not isinstance(verify, ssl.SSLContext):
            verify = ssl.create_default_context()
            verify.check_hostname, verify.verify_mode = False, ssl.CERT_NONE
        verify.load_cert_chain(client_cert, client_key)
    token = user.get("token") or (pathlib.Path(user["tokenFile"]).read_text().strip() if "tokenFile" in user else None)
    return RealCluster(kubeconfig=config, url=cluster["server"], token=token, verify=verify)


def _pem_file(user: dict[str, Any], key: str, written: pathlib.Path) -> str | None:
    if f"{key}-data" in user:
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_bytes(base64.b64decode(user[f"{key}-data"]))
        written.chmod(0o600)
        return str(written)
    return user.get(key)


def _named(entries: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [found] = [entry for entry in entries if entry["name"] == name]
    return found


def _wait_until(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)
