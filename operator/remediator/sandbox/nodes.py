"""The one Node of the sandbox, `sandbox-node`, Ready: the node every pod is bound to.

Its status is what a healthy kubelet reports (the four node conditions, addresses, capacity),
so `kubectl get nodes`, `kubectl describe node` and clients listing nodes see a working cluster.
https://kubernetes.io/docs/reference/node/node-status/
"""

from __future__ import annotations

from typing import Any

NAME = "sandbox-node"
INTERNAL_IP = "172.18.0.2"
POD_CIDR = "10.244.0.0/24"
CAPACITY = {"cpu": "4", "ephemeral-storage": "104857600Ki", "hugepages-2Mi": "0", "memory": "16384000Ki",
            "pods": "110"}
# type, reason, message: a healthy kubelet's conditions (the pressure ones False, Ready True).
CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "KubeletReady", "kubelet is posting ready status"),
)


def sandbox_node(now: str, kubelet_version: str) -> dict[str, Any]:
    """The Node object as the kubelet registers it, its conditions last heartbeat at `now`."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NAME,
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": NAME, "kubernetes.io/os": "linux",
                       "node-role.kubernetes.io/control-plane": ""},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
        "status": {
            "capacity": dict(CAPACITY),
            "allocatable": dict(CAPACITY),
            "conditions": [{"type": kind, "status": "True" if kind == "Ready" else "False",
                            "lastHeartbeatTime": now, "lastTransitionTime": now, "reason": reason,
                            "message": message} for kind, reason, message in CONDITIONS],
            "addresses": [{"type": "InternalIP", "address": INTERNAL_IP}, {"type": "Hostname", "address": NAME}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "0" * 32, "systemUUID": "00000000-0000-0000-0000-000000000000",
                         "bootID": "00000000-0000-0000-0000-000000000000", "kernelVersion": "6.1.0",
                         "osImage": "remediator sandbox", "containerRuntimeVersion": "containerd://2.0.0",
                         "kubeletVersion": kubelet_version, "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64"},
        },
    }
