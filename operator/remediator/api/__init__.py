"""The remediator.dev API: pydantic models of every spec and status, the one definition of each field.

Import the modules themselves (`from remediator.api import incidents`):

- `incidents`, `runbooks`, `rollbacks`, `keyrotations`: each kind's spec and status;
- `steps` (and `workload_steps`, `database_steps`, `http_steps`, `jobs`): what a step can do;
- `conditions`, `timelines`: status parts shared by every kind, with pure update helpers;
- `durations`, `severities`, `targets`, `references`, `selectors`, `patterns`, `intorstrings`:
  shared field types;
- `errors`: `validation_messages`, rendering errors as `spec.steps[1].scale.minReplicas: ...`;
- `resources`, `schemas`, `crdgen`: the kinds' names and the CRDs generated from the models.

Nothing here does I/O (pyyaml in `crdgen` aside): no Kubernetes, database or HTTP clients.
"""
