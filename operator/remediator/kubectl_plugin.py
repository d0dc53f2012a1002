"""`kubectl remediator ...`: what an on-call person types, in their own name.

The identity comes from the API server (a SelfSubjectReview: who the kubeconfig's credentials are),
never from a flag, so `requested-by` and `approved-by` say who really asked and approved; the chart's
admission policy checks the same thing on the server.

    kubectl remediator create -f incident.yaml [-n NS]      # create Incidents, requested by you
    kubectl remediator approve NAME [--step STEP] [-n NS]   # approve a step (default: all), as you
    kubectl remediator retry NAME [-n NS]                   # run a failed Incident again from its failed step
    kubectl remediator timeline NAME [-w] [-n NS]           # what happened (-w: follow it until it is over)
    kubectl remediator postmortem NAME [--format F] [-n NS] # the post-incident review
    kubectl remediator whoami
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import yaml
from kubernetes.client.exceptions import ApiException

from remediator import GROUP, VERSION, postmortems
from remediator.engine import guards, incidents


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl remediator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create Incidents from files, requested by you")
    create.add_argument("-f", "--filename", action="append", required=True, type=pathlib.Path)
    approve = commands.add_parser("approve", help="approve an Incident's step (default: every step), as you")
    approve.add_argument("name")
    approve.add_argument("--step", default="all", help="the step to approve, or a comma list (default: all)")
    retry = commands.add_parser("retry", help="run a failed Incident again from its failed step, as you")
    retry.add_argument("name")
    timeline = commands.add_parser("timeline", help="an Incident's timeline")
    timeline.add_argument("name")
    timeline.add_argument("-w", "--watch", action="store_true", help="print new entries until the Incident is over")
    postmortem = commands.add_parser("postmortem", help="the post-incident review of an Incident")
    postmortem.add_argument("name")
    postmortem.add_argument("--format", choices=("markdown", "json"), default="markdown")
    commands.add_parser("whoami", help="the user name the API server knows you by")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    kubernetes.config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
    namespace = args.namespace or _context_namespace(args.kubeconfig, args.context)
    api = kubernetes.client.ApiClient()
    try:
        if args.command == "timeline":
            follow_timeline(api, args.name, namespace, watch=args.watch)
            return 0
        if args.command == "postmortem":
            print(postmortems.render(read_incident(api, args.name, namespace), args.format), end="")
            return 0
        user = whoami(api)
        if args.command == "whoami":
            print(user)
        elif args.command == "create":
            for path in args.filename:
                for document in yaml.safe_load_all(path.read_text()):
                    if document:
                        print(create(api, document, namespace, user))
        elif args.command == "retry":
            print(retry(api, args.name, namespace, user))
        else:
            print(approve(api, args.name, namespace, args.step, user))
    except ApiException as e:
        print(f"Error from server: {_server_message(e)}", file=sys.stderr)
        return 1
    return 0


def whoami(api: kubernetes.client.ApiClient) -> str:
    """The authenticated user's name, as the API server sees the kubeconfig's credentials."""
    body: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review: Any = kubernetes.client.AuthenticationV1Api(api).create_self_subject_review(body, _preload_content=False)
    return str(json.loads(review.data)["status"]["userInfo"]["username"])


def create(api: kubernetes.client.ApiClient, document: dict[str, Any], namespace: str, user: str) -> str:
    """Create one Incident, annotated as requested by `user` (and never approved at creation)."""
    if document.get("kind") != "Incident":
        raise SystemExit(f"error: {document.get('kind')} is not an Incident")
    metadata = document.setdefault("metadata", {})
    annotations = metadata.setdefault("annotations", {})
    for key in (guards.APPROVE_ANNOTATION, guards.APPROVED_BY_ANNOTATION):
        annotations.pop(key, None)
    annotations[guards.REQUESTED_BY_ANNOTATION] = user
    target = metadata.get("namespace") or namespace
    kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, target, "incidents", document, _preload_content=False)
    return f"incident.{GROUP}/{metadata['name']} created (requested by {user})"


def approve(api: kubernetes.client.ApiClient, name: str, namespace: str, steps: str, user: str) -> str:
    """Annotate the Incident approved (`steps`: a step, a comma list or all), signed by `user`."""
    patch = {"metadata": {"annotations": {guards.APPROVE_ANNOTATION: steps, guards.APPROVED_BY_ANNOTATION: user}}}
    kubernetes.client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidents", name, patch, _preload_content=False)
    return f"incident.{GROUP}/{name} approved ({steps}) by {user}"


def retry(api: kubernetes.client.ApiClient, name: str, namespace: str, user: str) -> str:
    """Raise spec.retry of a failed Incident, signed by `user`; the operator runs it again from its failed step.

    Written on condition that the Incident is as read, so two people retrying at once retry once.
    """
    incident = read_incident(api, name, namespace)
    if not incidents.is_failed(incident.get("status") or {}):
        raise SystemExit(f"error: incident.{GROUP}/{name} has not failed: nothing to retry")
    count = int((incident.get("spec") or {}).get("retry") or 0) + 1
    patch = {"metadata": {"resourceVersion": incident["metadata"]["resourceVersion"],
                          "annotations": {guards.RETRIED_BY_ANNOTATION: user}},
             "spec": {"retry": count}}
    kubernetes.client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidents", name, patch, _preload_content=False)
    return f"incident.{GROUP}/{name} retried (retry {count}) by {user}"


def read_incident(api: kubernetes.client.ApiClient, name: str, namespace: str) -> dict[str, Any]:
    response: Any = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidents", name, _preload_content=False)
    found: dict[str, Any] = json.loads(response.data)
    return found


def follow_timeline(api: kubernetes.client.ApiClient, name: str, namespace: str, *, watch: bool) -> None:
    """Print the timeline; with `watch`, print each new entry as it is recorded until the Incident is over."""
    incident = read_incident(api, name, namespace)
    printed = _print_new_entries(incident.get("status") or {}, 0)
    if not watch or incidents.is_over(incident):
        return
    stream = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    custom = kubernetes.client.CustomObjectsApi(api)
    events = stream.stream(  # type: ignore[no-untyped-call]
        custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "incidents",
        field_selector=f"metadata.name={name}", resource_version=incident["metadata"]["resourceVersion"])
    for event in events:
        if event["type"] == "DELETED":
            print(f"incident.{GROUP}/{name} was deleted")
            break
        printed = _print_new_entries(event["object"].get("status") or {}, printed)
        if incidents.is_over(event["object"]):
            break
    stream.stop()  # type: ignore[no-untyped-call]


def _print_new_entries(status: dict[str, Any], printed: int) -> int:
    """Print the entries after the first `printed` (counting folded ones); returns the new count."""
    folded, entries = int(status.get("timelineFolded") or 0), list(status.get("timeline") or [])
    if printed < folded:
        if folded:
            print(f"({folded - printed} earlier entries folded away)")
        printed = folded
    for entry in entries[printed - folded:]:
        step = f" [{entry['step']}]" if entry.get("step") else ""
        print(f"{entry.get('time', '')}  {entry.get('type', ''):7}  {entry.get('reason', '')}{step}: "
              f"{entry.get('message', '')}")
    return folded + len(entries)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    _, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    chosen = active
    if context:
        contexts, _ = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        chosen = next((c for c in contexts if c["name"] == context), active)
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def _server_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
