"""remediator: incident runbooks carried out by a Kubernetes operator."""

GROUP = "remediator.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
