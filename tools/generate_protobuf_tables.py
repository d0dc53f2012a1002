"""Generate the sandbox's protobuf decoding tables from Kubernetes' published API definitions.

    python tools/generate_protobuf_tables.py PROTO_DIR GO_DIR [--origin TEXT] [-o OUT]

PROTO_DIR holds the `generated.proto` files laid out by import path (k8s.io/api/apps/v1/...,
k8s.io/apimachinery/pkg/apis/meta/v1/...): they give each message's field numbers and wire types.
GO_DIR holds the Go API types of the same commits, laid out the same way: their struct tags give
what the .proto files do not say, namely each field's JSON name, `omitempty`/`omitzero`, `,inline`,
and whether it is a pointer (so an explicit zero is kept and an absent one omitted). The output is
a JSON document (operator/remediator/sandbox/protobuf/kubernetes.json by default) that
`remediator.sandbox.protobuf.messages` reads.

The Go types come from the k8s.io/api and k8s.io/apimachinery repositories at the commits the .proto
files were taken from, e.g. (for the committed tables):

    git -C api archive 10b39a39b core/v1 apps/v1 batch/v1 ... | tar -x -C GO_DIR/k8s.io/api
    git -C apimachinery archive eed236ce pkg/apis/meta/v1 pkg/runtime pkg/util/intstr pkg/api/resource \
        | tar -x -C GO_DIR/k8s.io/apimachinery
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from typing import Any

OUT = pathlib.Path(__file__).resolve().parents[1] / "operator/remediator/sandbox/protobuf/kubernetes.json"

# Messages whose JSON form is not their fields: apimachinery's types with their own (un)marshalling.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "fieldsv1",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "rawextension",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
}

PROTO_FIELD = re.compile(r"^\s*(optional|repeated)\s+(\S+)\s+(\w+)\s*=\s*(\d+)\s*;")
PROTO_MAP = re.compile(r"^\s*map\s*<\s*(\S+?)\s*,\s*(\S+?)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")
GO_STRUCT = re.compile(r"^type (\w+) struct ?\{(\})?")
GO_ALIAS = re.compile(r"^type (\w+) \w+\.(\w+)$", re.M)
GO_SLICE_OF_STRINGS = re.compile(r"^type (\w+) \[\]string\b", re.M)
GO_FIELD = re.compile(r"^\s+(?:(\w+)\s+)?(\S+)\s+`([^`]*)`")
GO_GROUP = re.compile(r'^const GroupName = "([^"]*)"', re.M)
SCALARS = {"string", "int32", "int64", "uint32", "uint64", "bool", "bytes", "double", "float", "sint32",
           "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}


def parse_proto(path: pathlib.Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """The package and messages of one generated.proto: message name → its fields, in file order."""
    package = ""
    messages: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for line in path.read_text().splitlines():
        if line.startswith("package "):
            package = line.split()[1].rstrip(";")
        elif line.startswith("message "):
            current = messages.setdefault(line.split()[1], [])
        elif line.startswith("}"):
            current = None
        elif current is not None and (m := PROTO_MAP.match(line)):
            current.append({"name": m[3], "number": int(m[4]), "map": (m[1], m[2]), "repeated": True})
        elif current is not None and (m := PROTO_FIELD.match(line)):
            current.append({"name": m[3], "number": int(m[4]), "type": m[2], "repeated": m[1] == "repeated"})
    return package, messages


GoStructs = dict[str, dict[str, dict[str, Any]]]  # struct → protobuf field name → its JSON facts


def parse_go(directory: pathlib.Path, go_structs_elsewhere: GoStructs) -> tuple[GoStructs, set[str], str | None]:
    """Go struct fields by type and protobuf name, the `[]string` types, and the API group."""
    structs: GoStructs = {}
    string_lists: set[str] = set()
    group = None
    aliases: dict[str, str] = {}
    for path in sorted(directory.glob("*.go")):
        if path.name.endswith("_test.go") or path.name.startswith("zz_generated") or path.name.endswith(".pb.go"):
            continue
        text = path.read_text()
        string_lists.update(GO_SLICE_OF_STRINGS.findall(text))
        aliases.update(GO_ALIAS.findall(text))
        if (g := GO_GROUP.search(text)) is not None:
            group = g[1]
        current: dict[str, dict[str, Any]] | None = None
        for line in text.splitlines():
            if (s := GO_STRUCT.match(line)) is not None:
                current = structs.setdefault(s[1], {})
                if s[2] is not None:
                    current = None  # struct{}: no fields
                continue
            if line.startswith("}"):
                current = None
                continue
            if current is None or (f := GO_FIELD.match(line)) is None:
                continue
            go_type, tags = f[2], dict(re.findall(r'(\w+):"([^"]*)"', f[3]))
            if "protobuf" not in tags:
                if f[1] is None and go_type.rpartition(".")[2] == "TypeMeta":
                    current["\x00kind"] = {}  # a top-level kind: TypeMeta is inlined
                continue
            if tags["protobuf"] == "-":
                continue
            bare_type = go_type.lstrip("*").rpartition(".")[2]
            # Without name=, go-to-protobuf names the field after its (embedded) type.
            proto_name = dict(p.split("=", 1) for p in tags["protobuf"].split(",") if "=" in p).get(
                "name", bare_type[:1].lower() + bare_type[1:])
            json_name, *options = tags.get("json", "").split(",")
            if f[1] is None and not json_name:
                options.append("inline")  # an embedded struct without a JSON name is inlined by encoding/json
            current[proto_name] = {"json": json_name, "options": set(options), "pointer": go_type.startswith("*")}
    for name, other in aliases.items():
        if name not in structs:
            structs[name] = go_structs_elsewhere.get(other, {})  # e.g. core/v1's List is metav1.List
    return structs, string_lists, group


def qualify(type_name: str, package: str) -> str:
    return type_name.lstrip(".") if type_name.startswith(".") else f"{package}.{type_name}"


def generate(proto_dir: pathlib.Path, go_dir: pathlib.Path, origin: str) -> dict[str, Any]:
    messages: dict[str, list[list[Any]]] = {}
    special = dict(SPECIAL)
    kinds: dict[str, str] = {}
    problems: list[str] = []
    meta_structs = parse_go(go_dir / "k8s.io/apimachinery/pkg/apis/meta/v1", {})[0]
    for proto in sorted(proto_dir.rglob("generated.proto")):
        relative = proto.parent.relative_to(proto_dir)
        package, parsed = parse_proto(proto)
        structs, string_lists, group = parse_go(go_dir / relative, meta_structs)
        version = relative.name
        for name, fields in parsed.items():
            full = f"{package}.{name}"
            if full in special:
                continue
            if name in string_lists:
                special[full] = "strings"  # a Go []string carried as {repeated string items = 1}
                continue
            go_fields = structs.get(name)
            if go_fields is None:
                problems.append(f"{full}: no Go struct {name} in {go_dir / relative}")
                continue
            if "\x00kind" in go_fields and group is not None:
                kinds[f"{group}/{version}/{name}" if group else f"{version}/{name}"] = full
            table: list[list[Any]] = []
            for field in fields:
                go = go_fields.get(field["name"])
                if go is None:
                    problems.append(f"{full}.{field['name']}: no Go field with protobuf name={field['name']}")
                    continue
                if go["json"] == "-":
                    continue
                flags = "".join(flag for flag, on in (
                    ("r", field["repeated"]), ("p", go["pointer"]), ("o", "omitempty" in go["options"]),
                    ("z", "omitzero" in go["options"]), ("i", "inline" in go["options"])) if on)
                kind: str | list[str]
                if "map" in field:
                    key, value = field["map"]
                    kind = ["map", key, value if value in SCALARS else qualify(value, package)]
                else:
                    kind = field["type"] if field["type"] in SCALARS else qualify(field["type"], package)
                table.append([field["number"], go["json"], kind, flags])
            messages[full] = table
    if problems:
        raise SystemExit("cannot generate the tables:\n" + "\n".join(problems))
    # A field of a type from a package not given (an alpha API) cannot be decoded: it is listed, and skipped.
    unresolved: list[str] = []
    for full, table in messages.items():
        for _, json_name, kind, _ in table:
            for ref in kind[1:] if isinstance(kind, list) else [kind]:
                if ref not in SCALARS and ref not in messages and ref not in special:
                    unresolved.append(f"{full}.{json_name}: {ref}")
    for line in unresolved:
        print(f"skipped (type not given): {line}", file=sys.stderr)
    return {"origin": origin, "unresolved": unresolved, "kinds": dict(sorted(kinds.items())),
            "special": dict(sorted(special.items())), "messages": dict(sorted(messages.items()))}


def render(tables: dict[str, Any]) -> str:
    """JSON with one line per message, so that a regeneration's diff reads field by field."""
    lines = ["{", f'"origin": {json.dumps(tables["origin"])},', f'"unresolved": {json.dumps(tables["unresolved"])},']
    for section in ("kinds", "special", "messages"):
        entries = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in tables[section].items()]
        lines.append(f'"{section}": {{\n' + ",\n".join(entries) + "\n}" + ("," if section != "messages" else ""))
    return "\n".join(lines) + "\n}\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("proto_dir", type=pathlib.Path)
    parser.add_argument("go_dir", type=pathlib.Path)
    parser.add_argument("--origin", default="", help="where the definitions come from (kept in the output)")
    parser.add_argument("-o", "--output", type=pathlib.Path, default=OUT)
    args = parser.parse_args(argv)
    args.output.write_text(render(generate(args.proto_dir, args.go_dir, args.origin)))


if __name__ == "__main__":
    main(sys.argv[1:])
