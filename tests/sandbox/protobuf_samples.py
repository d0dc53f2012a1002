"""One object of each built-in kind the sandbox serves, in the JSON form Go prints for it.

Each uses the protobuf special types where its kind has them (Quantity, IntOrString, Time,
MicroTime, RawExtension/FieldsV1, bytes, maps, inlined structs), and explicit zeros in pointer
fields. Fields Go prints although empty (`"resources": {}`, `"ready": false`) are written out.
"""

from __future__ import annotations

from typing import Any

META = {"name": "web", "namespace": "default", "labels": {"app": "web"}, "annotations": {"note": ""}}
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "volumes": [{"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
        "containers": [{
            "name": "web", "image": "nginx:1.27", "command": ["nginx", "-g", "daemon off;"],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "MODE", "value": "fast"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": True}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 3},
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False},
        }],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 0,
        "nodeSelector": {"disk": "ssd"},
        "automountServiceAccountToken": False,
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule",
                         "tolerationSeconds": 30}],
    },
}
TIME = "2026-07-01T12:30:00Z"
MICRO_TIME = "2026-07-01T12:30:00.123456Z"
CONDITION = {"type": "Available", "status": "True", "lastUpdateTime": TIME, "lastTransitionTime": TIME,
             "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."}

SAMPLES: dict[str, dict[str, Any]] = {
    "Namespace": {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "shop"},
                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
    "Pod": {"kind": "Pod", "apiVersion": "v1", "metadata": {
        **META, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u-1",
                                     "controller": True, "blockOwnerDeletion": True}],
        "finalizers": ["example.com/keep"], "deletionGracePeriodSeconds": 0,
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": TIME,
                           "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]},
        "spec": {**TEMPLATE["spec"], "nodeName": "sandbox-node"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True",
                                                       "lastProbeTime": None, "lastTransitionTime": TIME}],
                   "podIP": "10.244.0.7", "startTime": TIME,
                   "containerStatuses": [{"name": "web", "state": {"running": {"startedAt": TIME}}, "lastState": {},
                                          "ready": True, "restartCount": 0, "image": "nginx:1.27",
                                          "imageID": "", "started": True}]}},
    "Event": {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "web.1", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web",
                                 "fieldPath": "spec.containers{web}"},
              "reason": "Pulled", "message": "Pulled image", "source": {"component": "kubelet"},
              "firstTimestamp": TIME, "lastTimestamp": TIME, "count": 2, "type": "Normal", "eventTime": None,
              "reportingComponent": "", "reportingInstance": ""},
    "EventsV1Event": {"kind": "Event", "apiVersion": "events.k8s.io/v1",
                      "metadata": {"name": "web.2", "namespace": "default"}, "eventTime": MICRO_TIME,
                      "reportingController": "example.com/ctl", "reportingInstance": "ctl-1", "action": "Scale",
                      "reason": "Scaled", "regarding": {"kind": "Deployment", "namespace": "default", "name": "web"},
                      "note": "scaled to 3", "type": "Normal", "deprecatedSource": {},
                      "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None},
    "Secret": {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "keys", "namespace": "default"},
               "immutable": False, "data": {"token": "czNjcjN0", "binary": "AP+AfwE=", "empty": ""},
               "type": "Opaque"},
    "ConfigMap": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "config", "namespace": "default"},
                  "data": {"mode": "fast", "blank": ""}, "binaryData": {"blob": "AAEC"}},
    "Service": {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "default"},
                "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"},
                                   {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090}],
                         "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                         "type": "ClusterIP", "sessionAffinity": "None", "ipFamilies": ["IPv4"]},
                "status": {"loadBalancer": {}}},
    "ServiceAccount": {"kind": "ServiceAccount", "apiVersion": "v1",
                       "metadata": {"name": "runner", "namespace": "default"},
                       "imagePullSecrets": [{"name": "registry"}], "automountServiceAccountToken": False},
    "Deployment": {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": META,
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE,
                            "strategy": {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                            "revisionHistoryLimit": 0, "progressDeadlineSeconds": 600},
                   "status": {"observedGeneration": 3, "replicas": 2, "readyReplicas": 2,
                              "conditions": [CONDITION]}},
    "ReplicaSet": {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": META,
                   "spec": {"replicas": 2, "selector": {"matchExpressions": [
                       {"key": "app", "operator": "In", "values": ["web"]}]}, "template": TEMPLATE},
                   "status": {"replicas": 2, "fullyLabeledReplicas": 2}},
    "StatefulSet": {"kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": META,
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE,
                             "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                                 "accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}, "status": {}}],
                             "serviceName": "web", "updateStrategy": {"type": "RollingUpdate",
                                                                      "rollingUpdate": {"partition": 0}}},
                    "status": {"replicas": 0, "availableReplicas": 0}},
    "DaemonSet": {"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": META,
                  "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE,
                           "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
                  "status": {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1,
                             "numberReady": 1}},
    "Job": {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "migrate", "namespace": "default"},
            "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 0, "ttlSecondsAfterFinished": 0,
                     "template": {"metadata": {}, "spec": {
                         "containers": [{"name": "migrate", "image": "shop:1.0", "args": ["--to=3"],
                                         "resources": {}}],
                         "restartPolicy": "Never"}}},
            "status": {"startTime": TIME, "completionTime": TIME, "succeeded": 1, "ready": 0,
                       "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": TIME,
                                       "lastTransitionTime": TIME}]}},
    "PodDisruptionBudget": {"kind": "PodDisruptionBudget", "apiVersion": "policy/v1",
                            "metadata": {"name": "web", "namespace": "default"},
                            "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
                            "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0,
                                       "expectedPods": 0}},
    "Lease": {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
              "metadata": {"name": "remediator", "namespace": "default"},
              "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15, "acquireTime": MICRO_TIME,
                       "renewTime": MICRO_TIME, "leaseTransitions": 0}},
    "DeleteOptions": {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "gracePeriodSeconds": 0,
                      "preconditions": {"uid": "u-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]},
}
