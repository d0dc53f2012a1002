"""Controller simulations: what kube-controller-manager, the scheduler and the kubelets would do.

The sandbox has no nodes and runs no containers, so these controllers converge objects to the
state a healthy cluster would reach, through the same store writes a real controller makes:

- Deployments get ReplicaSets named `<deployment>-<pod-template-hash>` with revision annotations
  (rollout, `rollout restart`, `rollout undo`, pause, revisionHistoryLimit) and status conditions
  that `kubectl rollout status` reads.
- ReplicaSets keep `spec.replicas` pods `<replicaset>-<5 chars>`; a deleted pod is replaced.
- StatefulSets keep pods `<name>-0..N-1` and roll them over on a template change.
- DaemonSets only get a status (one node, one ready pod), and no pods.
- The scheduler and kubelet bind every new pod to the node `sandbox-node` and run it as the
  sandbox's image registry says (`remediator.sandbox.images`): a missing image fails to pull
  (ErrImagePull, ImagePullBackOff), an existing one is pulled in its time and its containers run,
  crash (CrashLoopBackOff, restartCount, lastState), are OOM-killed, or fail their probes
  (readiness, liveness, startup). Init containers run first, one at a time, each to a successful
  exit; a private image pulls only with the pod's imagePullSecrets. Job pods then terminate:
  Succeeded with exit code 0, or Failed.
- Jobs run one pod at a time (up to `parallelism`) until `completions` succeed or more than
  `backoffLimit` pods fail (a failed pod is replaced after the Job controller's back-off, 10 s
  doubling to 10 minutes, scaled), and then get Complete or Failed conditions.
- Services with a selector get an EndpointSlice and an Endpoints object of the pods they select,
  whose conditions follow the pods' readiness and termination (endpoint_slices, legacy_endpoints).
- The controllers record the Events a real cluster shows (ScalingReplicaSet, SuccessfulCreate...).

What fails, besides the registry's behaviours, by the sandbox's older switches:

- A container whose `command` + `args` contain the word `fail` crashes at once, as does every
  container of a pod annotated `sandbox.remediator.dev/outcome: Failed`, or of a pod created by a Job
  with that annotation. It exits with code 1; the termination message is the annotation
  `sandbox.remediator.dev/termination-message` (of the pod, else of its Job), or "exit status 1".
  A failing container of a Job pod makes the pod Failed; one of a long-running pod (restartPolicy
  Always, as in Deployments) is restarted with kubelet's back-off and is never ready, so a bad
  rollout stalls and hits its progress deadline as it would in a cluster.

Docs: https://kubernetes.io/docs/concepts/workloads/controllers/
"""

from remediator.sandbox.controllers.manager import Controllers, Simulations

__all__ = ["Controllers", "Simulations"]
