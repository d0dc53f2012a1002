"""The chart as Helm renders and lints it (Helm v4, in-process through helm-python-sdk)."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest

from .rendering import lint, manifests, notes, render, values


def test_helm_lint_strict_finds_nothing_with_the_default_values() -> None:
    assert lint() == []


def test_a_template_error_fails_the_render_instead_of_printing_half_a_chart() -> None:
    with pytest.raises(helm_python.HelmError):
        manifests("remediator", "remediator", values(image="not-a-mapping"))


def kinds(chart: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in chart if document["kind"] == kind]


def test_two_replicas_elect_a_leader_spread_across_nodes_and_roll_without_recreate() -> None:
    (deployment,) = kinds(manifests("remediator", "ops", values()), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2 and "strategy" not in deployment["spec"]
    assert {"--leader-elect", "--leader-elect-name=remediator", "--all-namespaces"} <= set(pod["containers"][0]["args"])
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    env = {variable["name"]: variable["valueFrom"]["fieldRef"]["fieldPath"] for variable in pod["containers"][0]["env"]}
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}


def test_one_replica_is_recreated_so_two_never_act_at_once() -> None:
    (deployment,) = kinds(manifests("remediator", "ops", values(replicas=1)), "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "topologySpreadConstraints" not in deployment["spec"]["template"]["spec"]


def test_the_pod_runs_non_root_read_only_without_capabilities_and_only_its_own_account_mounts_a_token() -> None:
    chart = manifests("remediator", "ops", values())
    (deployment,) = kinds(chart, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    (account,) = kinds(chart, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "remediator" and pod["automountServiceAccountToken"] is True
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]


def test_the_service_serves_the_receiver_of_every_replica_with_its_token_mounted_not_granted() -> None:
    chart = manifests("remediator", "ops", values())
    (service,) = kinds(chart, "Service")
    assert {(port["name"], port["port"]) for port in service["spec"]["ports"]} == {("receiver", 9095),
                                                                                   ("metrics", 8080)}
    (deployment,) = kinds(chart, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert "--receiver-token-file=/var/run/secrets/remediator/receiver/token" in pod["containers"][0]["args"]
    (token,) = [volume for volume in pod["volumes"] if volume["name"] == "receiver-token"]
    assert token["secret"]["secretName"] == "remediator-receiver-token"
    secrets_rules = [rule for role in kinds(chart, "ClusterRole") + kinds(chart, "Role") for rule in role["rules"]
                     if "secrets" in rule["resources"]]
    assert all("list" not in rule["verbs"] and "watch" not in rule["verbs"] and "*" not in rule["verbs"]
               for rule in secrets_rules)


def test_namespaces_scope_grants_a_role_per_namespace_and_only_discovery_cluster_wide() -> None:
    chart = manifests("remediator", "ops", values(namespaces=["shop", "payments"],
                                                  rbac={"create": True, "scope": "namespaces"}))
    roles = {(role["metadata"]["namespace"], role["metadata"]["name"]) for role in kinds(chart, "Role")}
    assert roles == {("shop", "remediator"), ("payments", "remediator"), ("ops", "remediator-leader-election")}
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in kinds(chart, "RoleBinding")}
    assert bindings == roles
    (cluster_role,) = kinds(chart, "ClusterRole")
    assert {(group, resource) for rule in cluster_role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"]} == {
        ("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
    (deployment,) = kinds(chart, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=shop" in args and "--namespace=payments" in args and "--all-namespaces" not in args


@pytest.mark.parametrize(("overrides", "message"), [
    ({"rbac": {"create": True, "scope": "namespaces"}}, "needs the served namespaces listed"),
    ({"rbac": {"create": True, "scope": "namespaces"}, "namespaces": ["team-*"]}, "RBAC has no globs"),
    ({"rbac": {"create": True, "scope": "everywhere"}}, "at '/rbac/scope': value must be one of 'cluster'"),
    ({"replicas": -1}, "at '/replicas': minimum: got -1, want 0"),
    ({"serviceMonitor": {"enabled": True, "interval": "half a minute", "labels": {}}},
     "at '/serviceMonitor/interval': 'half a minute' does not match pattern"),
    ({"namespaces": ["Not_A_Namespace"]}, "at '/namespaces/0'"),
    ({"replica": 2}, "additional properties 'replica' not allowed"),
    ({"shards": 0}, "at '/shards': minimum: got 0, want 1"),
    ({"shards": "three"}, "at '/shards'"),
    ({"maxConcurrentReconciles": -1}, "at '/maxConcurrentReconciles': minimum: got -1, want 0"),
])
def test_bad_values_are_refused_with_the_reason_before_anything_renders(overrides: dict[str, Any], message: str
                                                                         ) -> None:
    with pytest.raises(helm_python.HelmError, match=message):
        manifests("remediator", "ops", values(**overrides))


def test_the_prometheus_rule_is_rendered_only_when_asked_for_with_the_labels_prometheus_selects() -> None:
    assert kinds(manifests("remediator", "ops", values()), "PrometheusRule") == []
    chart = manifests("remediator", "ops", values(prometheusRule={"enabled": True, "labels": {"release": "kps"}}))
    (rule,) = kinds(chart, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    alerts = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    # The list: escalated or failed incidents, remediation loops, rejected alerts, the leader lost.
    assert set(alerts) == {"RemediatorDown", "RemediatorRestarting", "RemediatorNoLeader", "RemediatorWatchDown",
                           "RemediatorIncidentsEscalated", "RemediatorRemediationLoop", "RemediatorAlertsRejected",
                           "RemediatorWebhookRefused"}
    assert 'deployment="remediator"' in alerts["RemediatorDown"] and 'namespace="ops"' in alerts["RemediatorDown"]


def test_helm_lint_strict_finds_nothing_in_either_rbac_scope_with_every_option_on() -> None:
    assert lint(values(prometheusRule={"enabled": True, "labels": {}}, replicas=1,
                       serviceMonitor={"enabled": True, "interval": "30s", "labels": {}})) == []
    assert lint(values(namespaces=["shop"], rbac={"create": True, "scope": "namespaces"})) == []


def test_the_service_monitor_scrapes_the_metrics_port_of_every_replica() -> None:
    assert kinds(manifests("remediator", "ops", values()), "ServiceMonitor") == []
    chart = manifests("remediator", "ops", values(serviceMonitor={"enabled": True, "interval": "15s",
                                                                  "labels": {"release": "kps"}}))
    (monitor,) = kinds(chart, "ServiceMonitor")
    (service,) = kinds(chart, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert monitor["metadata"]["labels"]["release"] == "kps"


def test_the_install_notes_give_the_alertmanager_receiver_and_its_token_secret_and_the_approve_command() -> None:
    printed = notes("remediator", "ops", values())
    assert "url: http://remediator.ops.svc:9095/alertmanager" in printed
    assert "kubectl -n ops create secret generic remediator-receiver-token" in printed
    assert "credentials_file: /etc/alertmanager/secrets/remediator-receiver-token/token" in printed
    assert "kubectl remediator -n NAMESPACE approve INCIDENT --step STEP" in printed
    assert "alertmanager" not in notes("remediator", "ops", values(receiver={"enabled": False, "port": 9095}))


def test_the_grafana_dashboard_is_a_configmap_the_sidecar_loads_only_when_asked_for() -> None:
    assert render("dashboard.yaml", "remediator", "ops", values()) == []
    (config_map,) = render("dashboard.yaml", "remediator", "ops", values(
        dashboard={"enabled": True, "namespace": "monitoring", "labels": {"team": "sre"}}))
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["labels"]["team"] == "sre"
    dashboard = json.loads(config_map["data"]["remediator.json"])
    assert dashboard["uid"] == "remediator" and dashboard["panels"]


def test_the_probes_ask_readiness_of_the_api_and_liveness_of_the_process_on_the_metrics_port() -> None:
    (deployment,) = kinds(manifests("remediator", "ops", values()), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--metrics-address=0.0.0.0:8080" in container["args"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert {"name": "metrics", "containerPort": 8080} in container["ports"]


def test_shards_render_one_deployment_per_shard_with_its_own_lease_and_pods_that_never_overlap() -> None:
    chart = manifests("remediator", "ops", values(shards=3))
    deployments = {d["metadata"]["name"]: d for d in kinds(chart, "Deployment")}
    assert set(deployments) == {"remediator-shard-0", "remediator-shard-1", "remediator-shard-2"}
    selectors = []
    for index in range(3):
        deployment = deployments[f"remediator-shard-{index}"]
        pod = deployment["spec"]["template"]
        args = pod["spec"]["containers"][0]["args"]
        assert {f"--shard={index}/3", f"--leader-elect-name=remediator-shard-{index}", "--leader-elect"} <= set(args)
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["remediator.dev/shard"] == str(index)
        assert selector.items() <= pod["metadata"]["labels"].items()
        (spread,) = pod["spec"]["topologySpreadConstraints"]
        assert spread["labelSelector"]["matchLabels"] == selector, "a shard's replicas spread among themselves"
        selectors.append(selector)
    # No pod of one shard matches another's selector; the Service (the receiver) selects them all.
    assert all(a == b or a["remediator.dev/shard"] != b["remediator.dev/shard"] for a in selectors for b in selectors)
    (service,) = kinds(chart, "Service")
    assert all(service["spec"]["selector"].items() <= s.items() for s in selectors)
    (election,) = [r for r in kinds(chart, "Role") if r["metadata"]["name"] == "remediator-leader-election"]
    (named,) = [rule for rule in election["rules"] if rule.get("resourceNames")]
    assert named["resourceNames"] == ["remediator-shard-0", "remediator-shard-1", "remediator-shard-2"]
    (rule,) = kinds(manifests("remediator", "ops", values(shards=3, prometheusRule={"enabled": True, "labels": {}})),
                    "PrometheusRule")
    down = next(r["expr"] for group in rule["spec"]["groups"] for r in group["rules"] if r["alert"] == "RemediatorDown")
    assert 'deployment=~"remediator-shard-[0-9]+"' in down, "any shard with no replica available"


def test_one_shard_is_the_one_deployment_with_no_shard_flag() -> None:
    (deployment,) = kinds(manifests("remediator", "ops", values(shards=1)), "Deployment")
    assert deployment["metadata"]["name"] == "remediator"
    assert "remediator.dev/shard" not in deployment["spec"]["selector"]["matchLabels"]
    assert not [arg for arg in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
                if arg.startswith(("--shard", "--namespace-selector"))]


def namespace_rights(chart: list[dict[str, Any]]) -> list[list[str]]:
    return [rule["verbs"] for role in kinds(chart, "ClusterRole") for rule in role["rules"]
            if rule["resources"] == ["namespaces"]]


def test_a_namespace_selector_is_passed_on_and_only_then_grants_list_and_watch_on_namespaces() -> None:
    assert namespace_rights(manifests("remediator", "ops", values())) == []
    chart = manifests("remediator", "ops", values(shards=2, namespaceSelector="remediator.dev/team=payments"))
    assert namespace_rights(chart) == [["list", "watch"]]
    for deployment in kinds(chart, "Deployment"):
        assert "--namespace-selector=remediator.dev/team=payments" in deployment["spec"]["template"]["spec"][
            "containers"][0]["args"]


def test_helm_lint_strict_finds_nothing_with_shards_and_a_namespace_selector() -> None:
    assert lint(values(shards=4, namespaceSelector="team in (a,b)", replicas=1)) == []


def operator_args(chart: list[dict[str, Any]]) -> list[str]:
    (deployment,) = kinds(chart, "Deployment")
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_the_operator_reconciles_64_incidents_at_once_unless_the_values_say_otherwise() -> None:
    assert "--max-concurrent-reconciles=64" in operator_args(manifests("remediator", "ops", values()))
    assert "--max-concurrent-reconciles=8" in operator_args(
        manifests("remediator", "ops", values(maxConcurrentReconciles=8)))
    assert "--max-concurrent-reconciles=0" in operator_args(
        manifests("remediator", "ops", values(maxConcurrentReconciles=0))), "0: no limit"
