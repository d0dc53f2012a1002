"""kubectl's `auth` commands against a sandbox started with authentication and RBAC (`--auth`).

https://kubernetes.io/docs/reference/kubectl/generated/kubectl_auth/
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

from remediator.sandbox import runner

from .test_kubectl import Kubectl

POLICY = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": "default"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "deployer", "namespace": "default"},
         "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]},
                   {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"],
                    "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "deployer", "namespace": "default"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
         "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "default"}]},
]


@pytest.fixture()
async def admin_kubectl(secured: runner.RunningSandbox, tmp_path: pathlib.Path) -> Kubectl:
    """kubectl with the kubeconfig `remediator sandbox --auth` writes (the admin's token)."""
    kubectl = Kubectl(secured.write_kubeconfig(tmp_path / "admin.kubeconfig"), tmp_path / "admin")
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump_all(POLICY))
    await kubectl("apply", "-f", str(policy))
    return kubectl


async def test_whoami_shows_the_admin(admin_kubectl: Kubectl) -> None:
    run = await admin_kubectl("auth", "whoami")
    assert run.stdout.split() == ["ATTRIBUTE", "VALUE", "Username", "sandbox-admin",
                                  "Groups", "[system:masters", "system:authenticated]"]


async def test_can_i_list_as_a_service_account_with_its_token(secured: runner.RunningSandbox, admin_kubectl: Kubectl,
                                                              tmp_path: pathlib.Path) -> None:
    """`kubectl create token` (TokenRequest), then kubectl with that token: whoami and `can-i --list`."""
    token = (await admin_kubectl("create", "token", "deployer")).stdout.strip()
    deployer = Kubectl(secured.write_kubeconfig(tmp_path / "sa.kubeconfig", token=token), tmp_path / "sa")
    whoami = await deployer("auth", "whoami")
    assert "system:serviceaccount:default:deployer" in whoami.stdout
    listed = await deployer("auth", "can-i", "--list")
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["deployments.apps", "[]", "[]", "[get", "list", "patch]"] in rows
    assert ["configmaps", "[]", "[settings]", "[get]"] in rows
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["[/api/*]", "[]", "[get]"] in rows  # a non-resource rule: the Resources column is empty
    assert (await deployer("get", "deployments")).code == 0
    denied = await deployer("get", "pods", check=False)
    assert denied.code == 1
    assert denied.stderr.strip() == ('Error from server (Forbidden): pods is forbidden: User '
                                     '"system:serviceaccount:default:deployer" cannot list resource "pods" in API '
                                     'group "" in the namespace "default"')


async def test_can_i_answers_yes_or_no_with_impersonation(admin_kubectl: Kubectl) -> None:
    """`kubectl auth can-i --as` impersonates (the admin may), then asks SelfSubjectAccessReview."""
    sa = "system:serviceaccount:default:deployer"
    assert (await admin_kubectl("auth", "can-i", "patch", "deployments", "--as", sa)).stdout.strip() == "yes"
    refused = await admin_kubectl("auth", "can-i", "delete", "deployments", "--as", sa, check=False)
    assert (refused.code, refused.stdout.strip()) == (1, "no")
    assert (await admin_kubectl("auth", "can-i", "get", "configmaps/settings", "--as", sa)).stdout.strip() == "yes"
    other = await admin_kubectl("auth", "can-i", "get", "configmaps/other", "--as", sa, check=False)
    assert other.stdout.strip() == "no"
