"""What `helm install` prints (NOTES.txt, rendered by the real Helm) can be copied and run as printed."""

from __future__ import annotations

import shlex

import yaml

from remediator import kubectl_plugin

from . import rendering


def printed_lines(prefix: str) -> list[str]:
    printed = rendering.notes("remediator", "ops", rendering.values())
    return [line.strip() for line in printed.splitlines() if line.strip().startswith(prefix)]


def test_the_approve_command_it_prints_is_one_the_kubectl_plugin_accepts() -> None:
    """kubectl hands the plugin everything after `kubectl remediator`; its options come before the command."""
    [command] = printed_lines("kubectl remediator ")
    args = kubectl_plugin.build_parser().parse_args(shlex.split(command)[2:])
    assert (args.command, args.name, args.step, args.namespace) == ("approve", "INCIDENT", "STEP", "NAMESPACE")


def test_the_receiver_snippet_it_prints_is_valid_alertmanager_yaml_for_the_releases_service() -> None:
    printed = rendering.notes("remediator", "ops", rendering.values())
    snippet = yaml.safe_load(printed.split("this receiver in alertmanager.yml", 1)[1].split("\n\n", 2)[1])
    [receiver] = snippet["receivers"]
    [webhook] = receiver["webhook_configs"]
    [service] = [d for d in rendering.manifests("remediator", "ops", rendering.values()) if d["kind"] == "Service"]
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "receiver")
    assert webhook["url"] == f"http://{service['metadata']['name']}.ops.svc:{port}/alertmanager"
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["credentials_file"].endswith("/remediator-receiver-token/token")
