"""What kube-apiserver's registries do for some built-in kinds besides defaulting and schema checks.

- Services get a cluster IP from the service CIDR (and node ports for NodePort and LoadBalancer
  types), keep them across updates that leave them out, and start with `status.loadBalancer: {}`.
- core/v1 Events are validated as `legacyValidateEvent` does (the namespace must match the
  involved object's; reporting fields are required on events that carry an eventTime).
- The namespaces a cluster cannot do without may not be deleted (the NamespaceLifecycle plugin).

Functions here are pure: the store passes in what they need and raises what they return.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from remediator.sandbox import field_errors, go_format, label_syntax

Object = dict[str, Any]

SERVICE_CIDR = ipaddress.IPv4Network("10.96.0.0/12")
# ServiceIPStaticSubrange: dynamic allocation starts above the lower band, kept for static IPs.
DYNAMIC_START = SERVICE_CIDR.network_address + 256
NODE_PORTS = range(30000, 32768)
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
REPORTING_INSTANCE_LIMIT = ACTION_LIMIT = REASON_LIMIT = 128
NOTE_LIMIT = 1024


# -- Services ---------------------------------------------------------------------------------------


def prepare_service_for_create(service: Object, stored: Iterable[Mapping[str, Any]]) -> list[field_errors.FieldError]:
    """Allocate the new Service's cluster IP and node ports (in place); the errors of a taken or
    out-of-range IP or port. Its status starts empty (`loadBalancer: {}`), whatever the client sent."""
    service["status"] = {"loadBalancer": {}}
    spec = service.get("spec")
    if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
        return []
    stored = list(stored)
    problems = _allocate_cluster_ip(spec, {str((s.get("spec") or {}).get("clusterIP")) for s in stored})
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        taken = {port.get("nodePort") for s in stored for port in (s.get("spec") or {}).get("ports") or ()
                 if isinstance(port, dict)}
        problems += _allocate_node_ports(spec, taken)
    return problems


def prepare_service_for_update(new: Object, old: Mapping[str, Any]) -> None:
    """Keep the allocated cluster IPs and node ports an update leaves out (kubectl replace of a file)."""
    new_spec, old_spec = new.get("spec"), old.get("spec") or {}
    if not isinstance(new_spec, dict) or new_spec.get("type", "ClusterIP") != old_spec.get("type", "ClusterIP"):
        return
    for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if not new_spec.get(field) and old_spec.get(field):
            new_spec[field] = old_spec[field]
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or ()
                 if isinstance(p, dict)}
    for port in new_spec.get("ports") or ():
        if isinstance(port, dict) and not port.get("nodePort"):
            node_port = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if node_port:
                port["nodePort"] = node_port


def _allocate_cluster_ip(spec: Object, taken: set[str]) -> list[field_errors.FieldError]:
    wanted = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
    if wanted == "None":  # headless
        spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
    elif wanted:
        reason = _ip_unavailable(str(wanted), taken)
        if reason is not None:
            shown = "[]string{" + ", ".join(go_format.quote(str(ip)) for ip in spec.get("clusterIPs") or [wanted]) + "}"
            return [field_errors.FieldError("spec.clusterIPs", "FieldValueInvalid",
                                            f"Invalid value: {shown}: failed to allocate IP {wanted}: {reason}")]
        spec["clusterIP"], spec["clusterIPs"] = str(wanted), [str(wanted)]
    else:
        address = next(str(ip) for ip in _candidates() if str(ip) not in taken)
        spec["clusterIP"], spec["clusterIPs"] = address, [address]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    return []


def _candidates() -> Iterable[ipaddress.IPv4Address]:
    last = SERVICE_CIDR.broadcast_address
    address = DYNAMIC_START
    while address < last:
        yield address
        address += 1


def _ip_unavailable(wanted: str, taken: set[str]) -> str | None:
    try:
        address = ipaddress.ip_address(wanted)
    except ValueError:
        address = None
    if address is None or address not in SERVICE_CIDR or address in (SERVICE_CIDR.network_address,
                                                                      SERVICE_CIDR.broadcast_address):
        return f"the provided IP ({wanted}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
    if wanted in taken:
        return "provided IP is already allocated"
    return None


def _allocate_node_ports(spec: Object, taken: set[Any]) -> list[field_errors.FieldError]:
    problems = []
    for position, port in enumerate(spec.get("ports") or ()):
        if not isinstance(port, dict):
            continue
        wanted = port.get("nodePort")
        field = f"spec.ports[{position}].nodePort"
        if not wanted:
            port["nodePort"] = next(p for p in NODE_PORTS if p not in taken)
        elif wanted not in NODE_PORTS:
            problems.append(field_errors.invalid(field, wanted, "provided port is not in the valid range. "
                                                 f"The range of valid ports is {NODE_PORTS[0]}-{NODE_PORTS[-1]}"))
        elif wanted in taken:
            problems.append(field_errors.invalid(field, wanted, "provided port is already allocated"))
        taken.add(port["nodePort"])
    return problems


# -- Events -----------------------------------------------------------------------------------------


def event_problems(event: Mapping[str, Any]) -> list[field_errors.FieldError]:
    """What legacyValidateEvent finds wrong with a core/v1 Event (on create and update)."""
    namespace = (event.get("metadata") or {}).get("namespace") or ""
    involved_namespace = (event.get("involvedObject") or {}).get("namespace") or ""
    mismatch = field_errors.invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace")
    problems = []
    if not event.get("eventTime"):
        # Without an involved namespace, "default" is accepted too, for old clients.
        if (involved_namespace and namespace != involved_namespace) \
                or (not involved_namespace and namespace not in ("", "default")):
            problems.append(mismatch)
        return problems
    if not involved_namespace and namespace not in ("default", "kube-system"):
        problems.append(mismatch)
    controller = str(event.get("reportingComponent") or "")
    if not controller:
        problems.append(field_errors.required("reportingController"))
    problems += [field_errors.invalid("reportingController", controller, message)
                 for message in label_syntax.qualified_name_errors(controller)]
    for field, json_field, limit in (("reportingInstance", "reportingInstance", REPORTING_INSTANCE_LIMIT),
                                     ("action", "action", ACTION_LIMIT), ("reason", "reason", REASON_LIMIT)):
        value = str(event.get(json_field) or "")
        if not value:
            problems.append(field_errors.required(field))
        if len(value) > limit:
            problems.append(field_errors.invalid(field, "", f"can have at most {limit} characters"))
    if len(str(event.get("message") or "")) > NOTE_LIMIT:
        problems.append(field_errors.invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    return problems


# -- Namespaces -------------------------------------------------------------------------------------


def namespace_deletion_forbidden(name: str) -> str | None:
    """Why a namespace may not be deleted (the NamespaceLifecycle admission plugin), or None."""
    return "this namespace may not be deleted" if name in IMMORTAL_NAMESPACES else None
