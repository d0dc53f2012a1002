"""Built-in kinds' table columns, as kube-apiserver's printers (pkg/printers/internalversion) fill them.

The server always prints the wide form; kubectl hides columns of priority 1 unless `-o wide`.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remediator.sandbox import selectors

Row = Mapping[str, Any]
NONE = "<none>"


@dataclasses.dataclass(frozen=True)
class Column:
    """One column: its definition in the Table and how a row's cell is computed."""

    name: str
    cell: Callable[[Row, datetime.datetime], Any]
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description or self.name, "priority": self.priority}


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: "45s", "3m20s", "5h", "3d4h", "2y"."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m" if whole % 60 == 0 else f"{minutes}m{whole % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d" if hours % 24 == 0 else f"{days}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        years, rest = divmod(days, 365)
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{days // 365}y"


def parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(text: Any, now: datetime.datetime) -> str:
    """The age of an RFC 3339 timestamp as kubectl shows it; "<unknown>" when there is none."""
    moment = parse_time(text)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def _spec(obj: Row) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Row) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _count(obj: Row, field: str) -> int:
    return int(_status(obj).get(field) or 0)


def _replicas(obj: Row) -> int:
    value = _spec(obj).get("replicas")
    return 1 if value is None else int(value)


def _pod_spec(obj: Row) -> Mapping[str, Any]:
    return (_spec(obj).get("template") or {}).get("spec") or {}


def _containers(obj: Row) -> str:
    return ",".join(c.get("name", "") for c in _pod_spec(obj).get("containers") or [])


def _images(obj: Row) -> str:
    return ",".join(c.get("image", "") for c in _pod_spec(obj).get("containers") or [])


def _selector(obj: Row) -> str:
    selector = _spec(obj).get("selector")
    if not selector:
        return NONE
    try:
        return selectors.format_label_selector(selector) or NONE
    except selectors.SelectorError:
        return NONE


def _name(obj: Row, now: datetime.datetime) -> Any:
    return obj["metadata"].get("name")


def _age(obj: Row, now: datetime.datetime) -> str:
    return age(obj["metadata"].get("creationTimestamp"), now)


NAME = Column("Name", _name, format="name", description="Name must be unique within a namespace.")
AGE = Column("Age", _age, description="CreationTimestamp is a timestamp representing the server time "
             "when this object was created.")
CONTAINERS = Column("Containers", lambda o, n: _containers(o), priority=1)
IMAGES = Column("Images", lambda o, n: _images(o), priority=1)
SELECTOR = Column("Selector", lambda o, n: _selector(o), priority=1)


def pod_status(pod: Row) -> str:
    """The STATUS of a pod: its phase or reason, a waiting/terminated container's reason, Terminating."""
    status = _status(pod)
    reason = status.get("reason") or status.get("phase") or "Pending"
    # printPod's order: the first init container that has not succeeded names the pod's state.
    for index, init in enumerate(status.get("initContainerStatuses") or []):
        state = init.get("state") or {}
        terminated, waiting = state.get("terminated"), (state.get("waiting") or {}).get("reason")
        if (terminated or {}).get("exitCode") == 0:
            continue
        if terminated:
            signal = terminated.get("signal")
            failed = terminated.get("reason") or (f"Signal:{signal}" if signal
                                                  else f"ExitCode:{terminated.get('exitCode', 0)}")
            reason = f"Init:{failed}"
        elif waiting and waiting != "PodInitializing":
            reason = f"Init:{waiting}"
        else:
            reason = f"Init:{index}/{len(_spec(pod).get('initContainers') or [])}"
        break
    else:
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                signal = terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return str(reason)


def _pod_ready(pod: Row) -> str:
    statuses = _status(pod).get("containerStatuses") or []
    containers = _spec(pod).get("containers") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"


def _pod_restarts(pod: Row, now: datetime.datetime) -> str:
    statuses = [*(_status(pod).get("initContainerStatuses") or []), *(_status(pod).get("containerStatuses") or [])]
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    finished = [parse_time(((s.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
                for s in statuses]
    last = max((f for f in finished if f is not None), default=None)
    if restarts and last is not None:
        return f"{restarts} ({human_duration((now - last).total_seconds())} ago)"
    return str(restarts)


def _readiness_gates(pod: Row) -> str:
    gates = [g.get("conditionType") for g in _spec(pod).get("readinessGates") or []]
    if not gates:
        return NONE
    true = {c.get("type") for c in _status(pod).get("conditions") or [] if c.get("status") == "True"}
    return f"{sum(1 for g in gates if g in true)}/{len(gates)}"


def _job_status(job: Row) -> str:
    conditions = {c.get("type") for c in _status(job).get("conditions") or [] if c.get("status") == "True"}
    for condition in ("Failed", "Complete", "FailureTarget", "SuccessCriteriaMet", "Suspended"):
        if condition in conditions:
            return condition
    return "Running"


def _job_completions(job: Row) -> str:
    spec = _spec(job)
    succeeded = _count(job, "succeeded")
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism", 1)
    return f"{succeeded}/1 of {parallelism}" if parallelism and parallelism > 1 else f"{succeeded}/1"


def _job_duration(job: Row, now: datetime.datetime) -> str:
    start = parse_time(_status(job).get("startTime"))
    if start is None:
        return ""
    end = parse_time(_status(job).get("completionTime")) or now
    return human_duration((end - start).total_seconds())


def _involved(event: Row) -> Mapping[str, Any]:
    return event.get("involvedObject") or {}


def _event_object(event: Row) -> str:
    involved = _involved(event)
    kind = str(involved.get("kind", "")).lower()
    return f"{kind}/{involved['name']}" if involved.get("name") else kind


def _event_last_seen(event: Row, now: datetime.datetime) -> str:
    series = event.get("series") or {}
    moment = series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime") \
        or event["metadata"].get("creationTimestamp")
    return age(moment, now)


def _event_first_seen(event: Row, now: datetime.datetime) -> str:
    return age(event.get("firstTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp"),
               now)


def _event_source(event: Row) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if component and host else component or host


def _service_ports(service: Row) -> str:
    ports = []
    for port in _spec(service).get("ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or NONE


def _service_external_ip(service: Row) -> str:
    spec = _spec(service)
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    ips = list(spec.get("externalIPs") or [])
    if kind == "LoadBalancer":
        ingress = (_status(service).get("loadBalancer") or {}).get("ingress") or []
        ips = [i.get("ip") or i.get("hostname") for i in ingress] + ips
        return ",".join(ips) if ips else "<pending>"
    return ",".join(ips) or NONE


def _at_most_three(items: list[str], count: int) -> str:
    """kubectl's lists of endpoints and ports: three, then `+ N more...`."""
    text = ",".join(items[:3])
    return f"{text} + {count - 3} more..." if count > 3 else text


def _endpoints_list(endpoints: Row) -> str:
    """`ip:port` of every ready address and port (formatEndpoints); bare IPs for a headless Service's
    portless subset."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return NONE
    shown: list[str] = []
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        shown += addresses if not ports else [f"{ip}:{p.get('port')}" for p in ports for ip in addresses]
    return _at_most_three(shown, len(shown))


def _slice_ports(endpoint_slice: Row) -> str:
    ports = endpoint_slice.get("ports") or []
    if not ports:
        return "<unset>"
    return _at_most_three([str(p.get("port", "<unset>")) for p in ports], len(ports))


def _slice_endpoints(endpoint_slice: Row) -> str:
    addresses = [a for e in endpoint_slice.get("endpoints") or [] for a in e.get("addresses") or []]
    return _at_most_three(addresses, len(addresses)) if addresses else "<unset>"


def _pdb_value(pdb: Row, field: str) -> str:
    value = _spec(pdb).get(field)
    return "N/A" if value is None else str(value)


def _node_status(node: Row) -> str:
    """Ready / NotReady / Unknown from the Ready condition, then SchedulingDisabled when cordoned."""
    ready = next((c for c in _status(node).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = "Unknown" if ready is None else {"True": "Ready"}.get(ready.get("status"), "NotReady")
    return status + (",SchedulingDisabled" if _spec(node).get("unschedulable") else "")


def _node_roles(node: Row) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(key[len(prefix):] for key in node["metadata"].get("labels") or {} if key.startswith(prefix))
    return ",".join(roles) or NONE


def _node_address(node: Row, kind: str) -> str:
    return next((a.get("address", "") for a in _status(node).get("addresses") or [] if a.get("type") == kind), NONE)


def _mapped(fn: Callable[[Row], Any]) -> Callable[[Row, datetime.datetime], Any]:
    return lambda obj, now: fn(obj)


BUILTIN_COLUMNS: dict[str, Sequence[Column]] = {
    "Pod": (
        NAME,
        Column("Ready", _mapped(_pod_ready), description="The aggregate readiness state of this pod for "
               "accepting traffic."),
        Column("Status", _mapped(pod_status), description="The aggregate status of the containers in this pod."),
        Column("Restarts", _pod_restarts, description="The number of times the containers in this pod have "
               "been restarted and when the last container in this pod has restarted."),
        AGE,
        Column("IP", _mapped(lambda o: _status(o).get("podIP") or NONE), priority=1),
        Column("Node", _mapped(lambda o: _spec(o).get("nodeName") or NONE), priority=1),
        Column("Nominated Node", _mapped(lambda o: _status(o).get("nominatedNodeName") or NONE), priority=1),
        Column("Readiness Gates", _mapped(_readiness_gates), priority=1),
    ),
    "Deployment": (
        NAME,
        Column("Ready", _mapped(lambda o: f"{_count(o, 'readyReplicas')}/{_replicas(o)}")),
        Column("Up-to-date", _mapped(lambda o: _count(o, "updatedReplicas")), type="integer"),
        Column("Available", _mapped(lambda o: _count(o, "availableReplicas")), type="integer"),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ),
    "ReplicaSet": (
        NAME,
        Column("Desired", _mapped(_replicas), type="integer"),
        Column("Current", _mapped(lambda o: _count(o, "replicas")), type="integer"),
        Column("Ready", _mapped(lambda o: _count(o, "readyReplicas")), type="integer"),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ),
    "StatefulSet": (
        NAME,
        Column("Ready", _mapped(lambda o: f"{_count(o, 'readyReplicas')}/{_replicas(o)}")),
        AGE, CONTAINERS, IMAGES,
    ),
    "DaemonSet": (
        NAME,
        Column("Desired", _mapped(lambda o: _count(o, "desiredNumberScheduled")), type="integer"),
        Column("Current", _mapped(lambda o: _count(o, "currentNumberScheduled")), type="integer"),
        Column("Ready", _mapped(lambda o: _count(o, "numberReady")), type="integer"),
        Column("Up-to-date", _mapped(lambda o: _count(o, "updatedNumberScheduled")), type="integer"),
        Column("Available", _mapped(lambda o: _count(o, "numberAvailable")), type="integer"),
        Column("Node Selector", _mapped(lambda o: ",".join(
            f"{k}={v}" for k, v in sorted((_pod_spec(o).get("nodeSelector") or {}).items())) or NONE)),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ),
    "Job": (
        NAME,
        Column("Status", _mapped(_job_status)),
        Column("Completions", _mapped(_job_completions)),
        Column("Duration", _job_duration),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ),
    "Event": (
        Column("Last Seen", _event_last_seen),
        Column("Type", _mapped(lambda o: o.get("type", ""))),
        Column("Reason", _mapped(lambda o: o.get("reason", ""))),
        Column("Object", _mapped(_event_object)),
        Column("Subobject", _mapped(lambda o: _involved(o).get("fieldPath", "")), priority=1),
        Column("Source", _mapped(_event_source), priority=1),
        Column("Message", _mapped(lambda o: str(o.get("message", "")).strip())),
        Column("First Seen", _event_first_seen, priority=1),
        Column("Count", _mapped(lambda o: int(o.get("count") or 1)), priority=1),
        Column("Name", _name, priority=1),
    ),
    "Service": (
        NAME,
        Column("Type", _mapped(lambda o: _spec(o).get("type", "ClusterIP"))),
        Column("Cluster-IP", _mapped(lambda o: _spec(o).get("clusterIP") or NONE)),
        Column("External-IP", _mapped(_service_external_ip)),
        Column("Port(s)", _mapped(_service_ports)),
        AGE,
        Column("Selector", _mapped(lambda o: ",".join(
            f"{k}={v}" for k, v in sorted((_spec(o).get("selector") or {}).items())) or NONE), priority=1),
    ),
    "Endpoints": (NAME, Column("Endpoints", _mapped(_endpoints_list)), AGE),
    "EndpointSlice": (
        NAME,
        Column("AddressType", _mapped(lambda o: o.get("addressType", ""))),
        Column("Ports", _mapped(_slice_ports)),
        Column("Endpoints", _mapped(_slice_endpoints)),
        AGE,
    ),
    "Secret": (
        NAME,
        Column("Type", _mapped(lambda o: o.get("type", "Opaque"))),
        Column("Data", _mapped(lambda o: len(o.get("data") or {})), type="integer"),
        AGE,
    ),
    "ConfigMap": (
        NAME,
        Column("Data", _mapped(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
               type="integer"),
        AGE,
    ),
    "ServiceAccount": (NAME, Column("Secrets", _mapped(lambda o: len(o.get("secrets") or [])),
                                    type="integer"), AGE),
    "Namespace": (NAME, Column("Status", _mapped(lambda o: _status(o).get("phase", "Active"))), AGE),
    "PodDisruptionBudget": (
        NAME,
        Column("Min Available", _mapped(lambda o: _pdb_value(o, "minAvailable"))),
        Column("Max Unavailable", _mapped(lambda o: _pdb_value(o, "maxUnavailable"))),
        Column("Allowed Disruptions", _mapped(lambda o: _count(o, "disruptionsAllowed")), type="integer"),
        AGE,
    ),
    "Node": (
        NAME,
        Column("Status", _mapped(_node_status)),
        Column("Roles", _mapped(_node_roles)),
        AGE,
        Column("Version", _mapped(lambda o: (_status(o).get("nodeInfo") or {}).get("kubeletVersion", ""))),
        Column("Internal-IP", _mapped(lambda o: _node_address(o, "InternalIP")), priority=1),
        Column("External-IP", _mapped(lambda o: _node_address(o, "ExternalIP")), priority=1),
        Column("OS-Image", _mapped(lambda o: (_status(o).get("nodeInfo") or {}).get("osImage", "")), priority=1),
        Column("Kernel-Version", _mapped(lambda o: (_status(o).get("nodeInfo") or {}).get("kernelVersion", "")),
               priority=1),
        Column("Container-Runtime", _mapped(
            lambda o: (_status(o).get("nodeInfo") or {}).get("containerRuntimeVersion", "")), priority=1),
    ),
    "Lease": (NAME, Column("Holder", _mapped(lambda o: _spec(o).get("holderIdentity", ""))), AGE),
}
# Kinds printed by the generic convertor (CRDs and anything without a printer): Name and Created At.
DEFAULT_COLUMNS: Sequence[Column] = (
    NAME,
    Column("Created At", _mapped(lambda o: o["metadata"].get("creationTimestamp")), type="date",
           description="CreationTimestamp is a timestamp representing the server time when this object "
           "was created."),
)


def columns(kind: str) -> Sequence[Column]:
    """The columns kube-apiserver prints for a built-in kind."""
    return BUILTIN_COLUMNS.get(kind, DEFAULT_COLUMNS)
