"""The sandbox's image registry: which images exist, how long they take to pull, how their containers behave.

A registry is an ordered list of entries, each naming images by a glob (`registry.example.com/shop:*`);
the first entry that matches an image decides. An image no entry matches does not exist: the
kubelet's pull fails (ErrImagePull, then ImagePullBackOff). An entry with `exists: false` declares
an image missing on purpose, so a later catch-all (`*`) does not cover it.

The entries come from the sandbox's startup file (`remediator sandbox --images FILE`) and from the
ConfigMap `kube-system/sandbox-images` (key `images.yaml`), whose entries are read first, so a test
or a user can change the registry of a running sandbox with kubectl.

    images:
    - image: registry.example.com/checkout:1.3
      behaviour: crash        # ok | crash | exitImmediately | notReady | slowStart | oom | readyThenNotReady
      exitCode: 2             # crash and exitImmediately (default 1 and 0)
      afterSeconds: 5         # crash/oom: run this long first; slowStart: ready this long after start;
                              # readyThenNotReady: the readiness probe fails from then on
      message: "panic: nil map"
      pullSeconds: 3          # default 0: the image is already on the node
      stopSeconds: 2          # stops this long after SIGTERM (default: only when the grace period ends)
      private: true           # pulled only by pods whose imagePullSecrets hold credentials for its registry
    - image: "*:doesnotexist"
      exists: false
"""

from __future__ import annotations

import dataclasses
import fnmatch
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

BEHAVIOURS = ("ok", "crash", "exitImmediately", "notReady", "slowStart", "oom", "readyThenNotReady")
CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "sandbox-images"
CONFIGMAP_KEY = "images.yaml"
# Exit codes when an entry names none: a crash exits 1, an OOM kill is SIGKILL (128 + 9).
DEFAULT_EXIT_CODES = {"crash": 1, "exitImmediately": 0, "oom": 137}
_FIELDS = {"image", "exists", "pullSeconds", "behaviour", "exitCode", "afterSeconds", "message", "stopSeconds",
           "private"}


class RegistryError(ValueError):
    """A registry document that cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class Image:
    """One registry entry: the images its glob matches, and what their containers do."""

    pattern: str
    exists: bool = True
    pull_seconds: float = 0.0
    behaviour: str = "ok"
    exit_code: int = 0
    after_seconds: float = 0.0
    message: str = ""
    stop_seconds: float | None = None  # None: ignores SIGTERM, killed when the grace period ends
    private: bool = False  # pulled only with credentials for its registry (a pod's imagePullSecrets)

    def matches(self, image: str) -> bool:
        return fnmatch.fnmatchcase(image, self.pattern)


@dataclasses.dataclass(frozen=True)
class Registry:
    """Registry entries in the order they are consulted."""

    entries: tuple[Image, ...] = ()

    def lookup(self, image: str) -> Image | None:
        """The entry for an image, or None when the image does not exist (no entry, or `exists: false`)."""
        for entry in self.entries:
            if entry.matches(image):
                return entry if entry.exists else None
        return None

    def __add__(self, later: Registry) -> Registry:
        return Registry(self.entries + later.entries)


# Embedding the sandbox without a registry (runner.running's default): every image exists and runs.
EVERY_IMAGE = Registry((Image("*"),))


def _number(entry: Mapping[str, Any], field: str, where: str, default: float) -> float:
    value = entry.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RegistryError(f"{where}.{field}: must be a number of seconds >= 0, not {value!r}")
    return float(value)


def parse_entry(entry: object, where: str) -> Image:
    """One entry of a registry document; RegistryError names the field that is wrong."""
    if not isinstance(entry, Mapping):
        raise RegistryError(f"{where}: must be a mapping")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise RegistryError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    pattern = entry.get("image")
    if not isinstance(pattern, str) or not pattern:
        raise RegistryError(f"{where}.image: required, an image name or glob")
    behaviour = entry.get("behaviour", "ok")
    if behaviour not in BEHAVIOURS:
        raise RegistryError(f"{where}.behaviour: {behaviour!r} is not one of {', '.join(BEHAVIOURS)}")
    exit_code = entry.get("exitCode", DEFAULT_EXIT_CODES.get(str(behaviour), 0))
    if isinstance(exit_code, bool) or not isinstance(exit_code, int) or not 0 <= exit_code <= 255:
        raise RegistryError(f"{where}.exitCode: must be an integer 0-255, not {exit_code!r}")
    exists, private = entry.get("exists", True), entry.get("private", False)
    for field, flag in (("exists", exists), ("private", private)):
        if not isinstance(flag, bool):
            raise RegistryError(f"{where}.{field}: must be true or false")
    message = entry.get("message", "")
    if not isinstance(message, str):
        raise RegistryError(f"{where}.message: must be a string")
    stop = _number(entry, "stopSeconds", where, 0.0) if "stopSeconds" in entry else None
    return Image(pattern, exists, _number(entry, "pullSeconds", where, 0.0), str(behaviour), exit_code,
                 _number(entry, "afterSeconds", where, 0.0), message, stop, private)


def parse(document: object, source: str) -> Registry:
    """A registry from a parsed document `{images: [...]}`; RegistryError says what is wrong where."""
    if document is None:
        return Registry()
    if not isinstance(document, Mapping) or set(document) - {"images"}:
        raise RegistryError(f"{source}: must be a mapping with one key, images")
    entries = document.get("images") or []
    if not isinstance(entries, list):
        raise RegistryError(f"{source}: images must be a list")
    return Registry(tuple(parse_entry(entry, f"{source}: images[{index}]") for index, entry in enumerate(entries)))


def from_text(text: str, source: str) -> Registry:
    """A registry from YAML text (a file's or a ConfigMap's)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RegistryError(f"{source}: not YAML: {error}") from None
    return parse(document, source)


def load(path: pathlib.Path) -> Registry:
    """A registry from a YAML file (the sandbox's startup file)."""
    return from_text(path.read_text(), str(path))
