"""CustomResourceDefinitions generated from the models: the YAML in crds/ and the chart.

Run `python -m remediator.api.crdgen DIR...` (or `remediator crds`) after changing
a model; a test fails while the committed files differ from what this renders.
"""

import sys
from pathlib import Path
from typing import Any

import yaml

from remediator import GROUP, VERSION
from remediator.api.resources import CATEGORY, RESOURCE_KINDS, ResourceKind
from remediator.api.schemas import structural_schema

HEADER = "# Generated from the remediator.api models by `remediator crds`; do not edit.\n"


def crd_file_name(resource: ResourceKind) -> str:
    """Return the file name of the kind's CRD (remediator.dev_incidents.yaml)."""
    return f"{GROUP}_{resource.plural}.yaml"


def build_crd(resource: ResourceKind) -> dict[str, Any]:
    """Return the apiextensions.k8s.io/v1 CustomResourceDefinition of `resource` as a dict.

    Raises ValueError when a model uses something a structural schema cannot express.
    """
    schema = {
        "type": "object",
        "description": resource.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": structural_schema(resource.spec_model, with_defaults=True),
            "status": structural_schema(resource.status_model, with_defaults=False),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.crd_name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [column.as_crd() for column in resource.printer_columns],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """A YAML dumper that writes shared objects out in full, never as &anchors and *aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crd(resource: ResourceKind) -> str:
    """Return the YAML text of the kind's CRD: deterministic, keys sorted, with a header line."""
    body = yaml.dump(build_crd(resource), Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)
    return HEADER + body


def render_crds() -> dict[str, str]:
    """Return file name -> YAML text of the CRD of every kind."""
    return {crd_file_name(resource): render_crd(resource) for resource in RESOURCE_KINDS}


def write_crds(directory: Path) -> list[Path]:
    """Write every CRD into `directory` (created if missing); return the paths written, sorted.

    Files of other names in the directory are left alone. Raises OSError when the
    directory cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(render_crds().items()):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """Write the CRDs into each directory named in `argv`; return the exit status."""
    if not argv:
        print("usage: python -m remediator.api.crdgen DIRECTORY...", file=sys.stderr)
        return 2
    for directory in argv:
        for path in write_crds(Path(directory)):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
