"""The `remediator` command: run the operator, the sandbox, the CRD generator, or the demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import pathlib
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from remediator import log_formats

if TYPE_CHECKING:
    from remediator import health
    from remediator.api.windows import MaintenanceWindow
    from remediator.config import OperatorConfig
    from remediator.engine.shards import Shard
    from remediator.leadership import Election
    from remediator.receiver.server import ReceiverOptions
    from remediator.sandbox import images as sandbox_images

REPO_CRDS = pathlib.Path(__file__).resolve().parents[2] / "crds"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                       help="serve this namespace (repeatable; globs allowed)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="serve every namespace")
    run.add_argument("--kubeconfig", type=pathlib.Path, help="kubeconfig file (default: in-cluster or ~/.kube)")
    run.add_argument("--dry-run", action="store_true", help="plan and record every step, change nothing")
    run.add_argument("--allow-namespace", action="append", default=None, metavar="NS",
                     help="act only on targets in these namespaces (repeatable; default: any served namespace)")
    run.add_argument("--allow-kind", action="append", default=None, metavar="KIND",
                     help="act only on targets of these kinds, e.g. Deployment (repeatable; default: all)")
    run.add_argument("--allow-http-host", action="append", default=None, metavar="GLOB",
                     help="hosts httpCheck and notify may reach, e.g. '*.example.com' (repeatable; default: any). "
                          "Link-local and metadata addresses only when named exactly")
    run.add_argument("--allow-database-host", action="append", default=None, metavar="GLOB",
                     help="database hosts the database step may connect to (repeatable; default: any)")
    run.add_argument("--allow-job-image", action="append", default=None, metavar="GLOB",
                     help="images a job (or a migration rollback job) may run, e.g. 'ghcr.io/acme/*' "
                          "(repeatable; default: any)")
    run.add_argument("--allow-job-service-account", action="append", default=None, metavar="NAME",
                     help="ServiceAccounts a job may run as (repeatable; default: only 'default')")
    run.add_argument("--allow-unrestricted-jobs", action="store_true",
                     help="let a job ask to run without the restricted security context (default: never)")
    run.add_argument("--approval-severities", default="P0,P1,P2,P3", metavar="LIST",
                     help="severities at which destructive steps (rollback, job, database terminate, scale to 0) "
                          "wait for approval; 'none' to switch off (default: all)")
    run.add_argument("--allow-self-approval", action="store_true",
                     help="let the requester of an incident (remediator.dev/requested-by) approve it too")
    run.add_argument("--cooldown", default="10m", metavar="DURATION",
                     help="default cooldown per target and action kind (default: 10m)")
    run.add_argument("--max-cooldown", default="1h", metavar="DURATION",
                     help="no cooldown lasts longer, whatever an Incident or a stamp on a target says (default: 1h)")
    run.add_argument("--restart-coalesce", default="30s", metavar="DURATION",
                     help="a KeyRotation restarts its consumers no earlier than this after promoting new values "
                          "(not in an emergency), so rotations within it share one restart per workload "
                          "(default: 30s)")
    run.add_argument("--max-replicas", type=int, default=1000, metavar="N",
                     help="a scale step that plans more replicas than this fails (default: 1000)")
    run.add_argument("--api-timeout", type=float, default=30.0, metavar="SECONDS",
                     help="read timeout of every Kubernetes API call; watches end server-side before it "
                          "(default: 30)")
    run.add_argument("--max-concurrent-reconciles", type=_concurrency, default=None, metavar="N",
                     help="reconcile at most N Incidents at once, the others wait their turn, the most "
                          "severe first: bounds the operator's memory in a storm; 0: no limit (default: 64)")
    run.add_argument("--rate-limit", type=_rate_limit, default=None, metavar="N[/DURATION]",
                     help="at most N workload actions per minute (or per DURATION: 10/30s) across all incidents "
                          "(default: unlimited)")
    run.add_argument("--metrics-address", metavar="HOST:PORT",
                     help="serve GET /metrics, /readyz (the Kubernetes API answers) and /healthz (liveness) here, "
                          "on every replica, e.g. 0.0.0.0:8080")
    run.add_argument("--liveness", metavar="URL",
                     help="also answer liveness at this URL's path, e.g. http://0.0.0.0:8080/healthz (the same "
                          "server as --metrics-address: /metrics and /readyz are served there too)")
    run.add_argument("--watch-down-grace", default="30s", metavar="DURATION",
                     help="the leader's liveness probe fails once its watch of the API has been down this long "
                          "(default: 30s)")
    run.add_argument("--peering", metavar="NAME",
                     help="coordinate with other replicas through this KopfPeering (default: standalone)")
    run.add_argument("--receiver-address", metavar="HOST:PORT",
                     help="serve the Alertmanager webhook (POST /alertmanager) here, e.g. 0.0.0.0:9095 "
                          "(default: off)")
    run.add_argument("--receiver-token-file", type=pathlib.Path, metavar="PATH",
                     help="the bearer token Alertmanager must send, read from this file")
    run.add_argument("--receiver-token-secret", metavar="NAMESPACE/NAME[/KEY]",
                     help="the bearer token Alertmanager must send, read from this Secret's key (default key: token)")
    run.add_argument("--receiver-no-auth", action="store_true",
                     help="accept webhook requests without a token (only behind something that authenticates)")
    run.add_argument("--maintenance-window", action="append", default=[], type=_maintenance_window,
                     metavar="CRON|DURATION or START/END",
                     help="while open, Incidents from alerts are created but their steps wait for it to close, "
                          "e.g. '0 2 * * 6|4h' (UTC) or '2026-12-24T00:00:00Z/2026-12-27T00:00:00Z' (repeatable)")
    run.add_argument("--alertmanager-url", metavar="URL",
                     help="Alertmanager's URL, to fetch the alerts a truncated notification (max_alerts) left out")
    run.add_argument("--max-remediations", type=_remediations, default=None, metavar="N[/DURATION]",
                     help="loop guard for Incidents from alerts: after N for one target within DURATION, the next "
                          "is Escalated (RemediationLoop) and waits for approval (default: 3/1h; a Runbook may "
                          "set its own)")
    run.add_argument("--max-consecutive-failures", type=int, default=2, metavar="N",
                     help="after N Failed Incidents in a row for one target, new ones from alerts wait for "
                          "approval (default: 2)")
    run.add_argument("--receiver-tls-cert", type=pathlib.Path, metavar="PATH", help="serve the webhook over TLS")
    run.add_argument("--receiver-tls-key", type=pathlib.Path, metavar="PATH", help="the TLS certificate's key")
    run.add_argument("--shard", type=_shard, default=None, metavar="N/M",
                     help="act only on the namespaces of shard N of M (0 <= N < M), by a stable hash of each "
                          "namespace's name; run M operators, one per shard (default: every namespace)")
    run.add_argument("--namespace-selector", default=None, metavar="SELECTOR",
                     help="act only in namespaces whose labels match this label selector, e.g. "
                          "'remediator.dev/shard=a' (with --shard: both must hold; needs list/watch on namespaces)")
    run.add_argument("--leader-elect", action="store_true",
                     help="act only while holding a coordination.k8s.io Lease, so that of several replicas one "
                          "acts (default: off, one process)")
    run.add_argument("--leader-elect-namespace", metavar="NS",
                     help="namespace of the Lease (default: the operator's own, from POD_NAMESPACE or its "
                          "ServiceAccount, else 'default')")
    run.add_argument("--leader-elect-name", default=None, metavar="NAME",
                     help="name of the Lease (default: remediator, or remediator-shard-N with --shard N/M)")
    run.add_argument("--leader-elect-lease-duration", default="15s", metavar="DURATION",
                     help="how long followers wait after the last renewal before taking over (default: 15s)")
    run.add_argument("--leader-elect-renew-deadline", default="10s", metavar="DURATION",
                     help="how long the leader tries to renew before it stops acting and exits (default: 10s)")
    run.add_argument("--leader-elect-retry-period", default="2s", metavar="DURATION",
                     help="how often candidates try to take, and the leader to renew, the Lease (default: 2s)")
    run.add_argument("--verbose", "-v", action="store_true")
    run.add_argument("--log-format", choices=log_formats.FORMATS, default="text",
                     help="text: one escaped line per record; json: one JSON object per line (default: text)")

    sandbox = commands.add_parser("sandbox", help="run the embedded Kubernetes API server")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    sandbox.add_argument("--kubeconfig", type=pathlib.Path, default=pathlib.Path("sandbox.kubeconfig"),
                         help="where to write a kubeconfig for kubectl and the operator")
    sandbox.add_argument("--crds", type=pathlib.Path, default=None,
                         help="register the CRDs in this directory at start (default: none)")
    sandbox.add_argument("--auth", action="store_true",
                         help="require bearer tokens and authorise requests by RBAC (the kubeconfig gets "
                              "the admin's token)")
    sandbox.add_argument("--time-scale", type=_time_scale, default=1.0, metavar="F",
                         help="simulated delays (pod termination grace periods) last F times as long as "
                              "in Kubernetes (default: 1.0; e.g. 0.05 for fast tests)")
    sandbox.add_argument("--images", type=pathlib.Path, default=None, metavar="FILE",
                         help="the image registry: which images exist, their pull time and how their "
                              "containers behave (docs/sandbox.md); without it every image exists and runs")
    sandbox.add_argument("--event-ttl", type=_event_ttl, default="1h", metavar="DURATION",
                         help="how long an Event is kept after its last write, as kube-apiserver's "
                              "--event-ttl (default: 1h; 0s keeps Events for ever)")

    crds = commands.add_parser("crds", help="write the CRD manifests (and docs/api/) generated from the API models")
    crds.add_argument("--output", type=pathlib.Path, default=None,
                      help="directory (default: crds/ and charts/remediator/crds/ of the repository)")

    validate = commands.add_parser("validate", help="check manifests offline (CRD schema and model rules)")
    validate.add_argument("files", nargs="+", type=pathlib.Path, metavar="FILE")

    postmortem = commands.add_parser("postmortem", help="the post-incident review of an Incident")
    postmortem.add_argument("name", nargs="?", help="the Incident (read live from the cluster)")
    postmortem.add_argument("-n", "--namespace", default="default")
    postmortem.add_argument("--kubeconfig", type=pathlib.Path, help="kubeconfig file (default: $KUBECONFIG)")
    postmortem.add_argument("-f", "--file", type=pathlib.Path, help="an Incident saved as YAML or JSON instead")
    postmortem.add_argument("--format", choices=("markdown", "json"), default="markdown")

    demo = commands.add_parser("demo", help="run the operator against the sandbox and remediate an incident")
    demo.add_argument("--timeout", type=float, default=120.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "crds":
        return _crds(args.output)
    if args.command == "postmortem":
        return _postmortem(args)
    if args.command == "validate":
        from remediator import validation

        return validation.validate(args.files)
    if args.command == "sandbox":
        crd_paths = sorted(args.crds.glob("*.yaml")) if args.crds else []
        from remediator.sandbox import images

        try:
            registry = images.load(args.images) if args.images else images.EVERY_IMAGE
        except (OSError, images.RegistryError) as error:
            print(f"remediator sandbox: --images: {error}", file=sys.stderr)
            return 2
        from remediator import collector
        from remediator.sandbox import runner  # noqa: F401  (imported before the collector settles)

        collector.settle()
        return _run_until_signal(_sandbox(args.host, args.port, args.kubeconfig, crd_paths, auth=args.auth,
                                          time_scale=args.time_scale, image_registry=registry,
                                          event_ttl=args.event_ttl))
    if args.command == "run":
        from remediator import collector, handlers, operator_main  # noqa: F401  (handlers: before it settles)

        log_formats.configure(args.log_format, verbose=args.verbose)
        settings = operator_main.OperatorOptions(
            namespaces=tuple(args.namespace),
            all_namespaces=args.all_namespaces or not args.namespace,
            kubeconfig=args.kubeconfig,
            liveness=args.liveness,
            metrics_address=_metrics_address(parser, args.metrics_address),
            watch_down_grace=_positive_duration(parser, "--watch-down-grace", args.watch_down_grace),
            peering=args.peering,
            leader_election=_election(parser, args) if args.leader_elect else None,
            config=_operator_config(args),
            receiver=_receiver_options(parser, args),
            namespace_selector=args.namespace_selector,
        )
        collector.settle()
        return _run_until_signal(operator_main.run(settings))
    if args.command == "demo":
        from remediator import demo as demo_module

        return asyncio.run(demo_module.main(timeout=args.timeout))
    return 2


def _operator_config(args: argparse.Namespace) -> OperatorConfig:
    from remediator.api.durations import parse_duration
    from remediator.api.severities import normalise_severity
    from remediator.config import OperatorConfig
    from remediator.engine import allow_lists, shards

    severities = args.approval_severities.strip()
    # Given on the command line, or the OperatorConfig's default; 0 means no limit.
    concurrency = {} if args.max_concurrent_reconciles is None else {
        "max_concurrent_reconciles": args.max_concurrent_reconciles or None}
    return OperatorConfig(
        **concurrency,
        dry_run=args.dry_run,
        allowed_namespaces=frozenset(args.allow_namespace) if args.allow_namespace else None,
        allowed_kinds=frozenset(args.allow_kind) if args.allow_kind else None,
        approval_severities=frozenset() if severities.lower() == "none" else frozenset(
            normalise_severity(s.strip()) for s in severities.split(",") if s.strip()),
        self_approval=args.allow_self_approval,
        cooldown=parse_duration(args.cooldown),
        max_cooldown=parse_duration(args.max_cooldown),
        max_replicas=args.max_replicas,
        restart_coalesce=parse_duration(args.restart_coalesce),
        api_timeout_seconds=args.api_timeout,
        allowed_http_hosts=frozenset(h.lower() for h in args.allow_http_host) if args.allow_http_host else None,
        allowed_database_hosts=frozenset(h.lower() for h in args.allow_database_host)
        if args.allow_database_host else None,
        jobs=allow_lists.JobPolicy(
            images=frozenset(args.allow_job_image or ["*"]),
            service_accounts=frozenset(args.allow_job_service_account or ["default"]),
            unrestricted=args.allow_unrestricted_jobs),
        rate_limit_actions=args.rate_limit[0] if args.rate_limit else None,
        rate_limit_window=args.rate_limit[1] if args.rate_limit else datetime.timedelta(minutes=1),
        max_remediations=args.max_remediations[0] if args.max_remediations else 3,
        remediation_window=args.max_remediations[1] if args.max_remediations else datetime.timedelta(hours=1),
        max_consecutive_failures=max(1, args.max_consecutive_failures),
        maintenance_windows=tuple(args.maintenance_window),
        scope=shards.Scope(shard=args.shard),
    )


def _host_port(parser: argparse.ArgumentParser, flag: str, address: str, example: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"{flag}: expected HOST:PORT such as {example}, got {address!r}")
    return host.strip("[]"), int(port)


def _metrics_address(parser: argparse.ArgumentParser, address: str | None) -> health.Address | None:
    if address is None:
        return None
    from remediator import health

    return health.Address(*_host_port(parser, "--metrics-address", address, "0.0.0.0:8080"))


def _positive_duration(parser: argparse.ArgumentParser, flag: str, text: str) -> datetime.timedelta:
    from remediator.api.durations import parse_duration

    try:
        duration = parse_duration(text)
    except ValueError as e:
        parser.error(f"{flag}: {e}")
    if duration.total_seconds() <= 0:
        parser.error(f"{flag}: expected a positive duration such as 30s, got {text!r}")
    return duration


def _receiver_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ReceiverOptions | None:
    from remediator.receiver.server import ReceiverOptions

    if args.receiver_address is None:
        return None
    host, port = _host_port(parser, "--receiver-address", args.receiver_address, "0.0.0.0:9095")
    secret = None
    if args.receiver_token_secret:
        parts = args.receiver_token_secret.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            parser.error("--receiver-token-secret: expected NAMESPACE/NAME or NAMESPACE/NAME/KEY")
        secret = (parts[0], parts[1], parts[2] if len(parts) == 3 else "token")
    if args.receiver_token_file is None and secret is None and not args.receiver_no_auth:
        parser.error("--receiver-address needs --receiver-token-file or --receiver-token-secret "
                     "(or --receiver-no-auth)")
    if (args.receiver_tls_cert is None) != (args.receiver_tls_key is None):
        parser.error("--receiver-tls-cert and --receiver-tls-key go together")
    return ReceiverOptions(host=host, port=port, token_file=args.receiver_token_file,
                           token_secret=secret, anonymous=args.receiver_no_auth, tls_cert=args.receiver_tls_cert,
                           tls_key=args.receiver_tls_key, alertmanager_url=args.alertmanager_url)


def _election(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Election:
    """The Lease to take; a usage error when the timings cannot work."""
    from remediator import leadership
    from remediator.api.durations import parse_duration
    from remediator.engine import leases

    try:
        timings = leases.Timings(*(parse_duration(text).total_seconds() for text in (
            args.leader_elect_lease_duration, args.leader_elect_renew_deadline, args.leader_elect_retry_period)))
    except ValueError as e:
        parser.error(f"--leader-elect-*: {e}")
    problem = timings.problem()
    if problem is not None:
        parser.error(f"--leader-elect-*: {problem}")
    # Each shard is its own Deployment with its own Lease.
    default_name = "remediator" if args.shard is None else f"remediator-shard-{args.shard.index}"
    return leadership.Election(namespace=args.leader_elect_namespace or leadership.default_namespace(),
                               name=args.leader_elect_name or default_name, identity=leadership.identity(),
                               timings=timings)


def _shard(text: str) -> Shard:
    from remediator.engine import shards

    try:
        return shards.parse_shard(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _event_ttl(text: str) -> float:
    from remediator.api.durations import parse_duration

    try:
        return parse_duration(text).total_seconds()
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _time_scale(text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.05, got {text!r}") from None
    if not 0 < scale <= 100:
        raise argparse.ArgumentTypeError(f"expected a factor above 0 and at most 100, got {text!r}")
    return scale


def _postmortem(args: argparse.Namespace) -> int:
    import yaml

    from remediator import GROUP, VERSION, postmortems

    if args.file is not None:
        incident = yaml.safe_load(args.file.read_text())
    elif args.name:
        import kubernetes.client
        import kubernetes.config

        kubernetes.config.load_kube_config(config_file=str(args.kubeconfig) if args.kubeconfig else None)  # type: ignore[no-untyped-call]
        custom = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient())
        incident = custom.get_namespaced_custom_object(GROUP, VERSION, args.namespace, "incidents", args.name)
    else:
        print("error: name an Incident, or give --file", file=sys.stderr)
        return 2
    sys.stdout.write(postmortems.render(incident, args.format))
    return 0


def _concurrency(text: str) -> int:
    """A count of at least 0 (0: no limit)."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number such as 64 (0: no limit), got {text!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or more, got {text!r}")
    return count


def _maintenance_window(text: str) -> MaintenanceWindow:
    from remediator.engine import windows

    try:
        return windows.parse_window_flag(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _rate_limit(text: str) -> tuple[int, datetime.timedelta]:
    """`N` (actions per minute) or `N/DURATION`, e.g. 10/30s."""
    return _count_per(text, datetime.timedelta(minutes=1))


def _remediations(text: str) -> tuple[int, datetime.timedelta]:
    """`N` (Incidents per hour) or `N/DURATION`, e.g. 3/2h."""
    return _count_per(text, datetime.timedelta(hours=1))


def _count_per(text: str, default_window: datetime.timedelta) -> tuple[int, datetime.timedelta]:
    from remediator.api.durations import parse_duration

    count, _, window = text.partition("/")
    try:
        actions, per = int(count), parse_duration(window) if window else default_window
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected N or N/DURATION such as 10/30s, got {text!r}") from e
    if actions < 1 or per <= datetime.timedelta():
        raise argparse.ArgumentTypeError(f"expected at least 1 action in a positive window, got {text!r}")
    return actions, per


def _crds(output: pathlib.Path | None) -> int:
    from remediator.api import crdgen, reference_docs

    targets = [output] if output else [REPO_CRDS, REPO_CRDS.parent / "charts" / "remediator" / "crds"]
    for target in targets:
        for path in crdgen.write_crds(target):
            print(path)
    if output is None:  # the repository's own copies: the API reference pages come from the same models
        for path in reference_docs.write_pages(REPO_CRDS.parent / "docs" / "api"):
            print(path)
    return 0


async def _sandbox(host: str, port: int, kubeconfig: pathlib.Path, crd_paths: list[pathlib.Path], *,
                   auth: bool = False, time_scale: float = 1.0,
                   image_registry: sandbox_images.Registry | None = None, event_ttl: float) -> None:
    from remediator.sandbox import images, runner

    async with runner.running(host=host, port=port, crd_paths=crd_paths, auth=auth, time_scale=time_scale,
                              image_registry=image_registry or images.EVERY_IMAGE, event_ttl=event_ttl) as sandbox:
        sandbox.write_kubeconfig(kubeconfig)
        print(f"sandbox listening on {sandbox.url}; kubeconfig written to {kubeconfig}", flush=True)
        await asyncio.Event().wait()


def _run_until_signal(coroutine: Coroutine[Any, Any, None]) -> int:
    async def supervised() -> None:
        task = asyncio.ensure_future(coroutine)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(supervised())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
