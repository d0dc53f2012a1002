"""`kubectl remediator ...`: what an on-call person types, in their own name.

The identity comes from the API server (a SelfSubjectReview: who the kubeconfig's credentials are),
never from a flag, so `requested-by` and `approved-by` say who really asked and approved; the chart's
admission policy checks the same thing on the server.

    kubectl remediator create -f incident.yaml [-n NS]      # create Incidents, requested by you
    kubectl remediator approve NAME [--step STEP] [-n NS]   # approve a step (default: all), as you
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
import yaml
from kubernetes.client.exceptions import ApiException

from remediator import GROUP, VERSION
from remediator.engine import guards


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
    commands.add_parser("whoami", help="the user name the API server knows you by")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    kubernetes.config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
    namespace = args.namespace or _context_namespace(args.kubeconfig, args.context)
    api = kubernetes.client.ApiClient()
    try:
        user = whoami(api)
        if args.command == "whoami":
            print(user)
        elif args.command == "create":
            for path in args.filename:
                for document in yaml.safe_load_all(path.read_text()):
                    if document:
                        print(create(api, document, namespace, user))
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
