"""Which shard owns a namespace: `--shard N/M` splits the namespaces among M operators, by name.

The hash is stable across processes, versions and languages (Python's own hash() of a str is
randomized per process): the first 8 bytes of the SHA-256 of the namespace's name in UTF-8, read as a
big-endian unsigned integer, modulo M. In a shell: `printf %s NAMESPACE | sha256sum | cut -c1-16`,
then that hexadecimal number modulo M.
"""

from __future__ import annotations

import dataclasses
import hashlib


def shard_of(namespace: str, count: int) -> int:
    """The shard (0 to count-1) that owns this namespace among `count` shards."""
    digest = hashlib.sha256(namespace.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the namespaces whose hash falls on it."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"expected N/M with 0 <= N < M, got {self}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, namespace: str) -> bool:
        return shard_of(namespace, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """`N/M` as given to --shard; ValueError saying what is expected otherwise."""
    index, slash, count = text.partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"expected N/M such as 0/3 (shard N of M), got {text!r}")
    try:
        return Shard(int(index), int(count))
    except ValueError:
        raise ValueError(f"expected N/M with 0 <= N < M (shard N of M), got {text!r}") from None


@dataclasses.dataclass(frozen=True)
class Scope:
    """The namespaces this operator acts in: its shard's (if sharded), among the selected ones (if a
    --namespace-selector is given: the names that matched when this run of the operator started)."""

    shard: Shard | None = None
    selected: frozenset[str] | None = None

    def owns(self, namespace: str) -> bool:
        """Whether this operator acts on Incidents, RollbackRequests and KeyRotations in `namespace`."""
        return ((self.shard is None or self.shard.owns(namespace))
                and (self.selected is None or namespace in self.selected))
