"""When Events expire: kube-apiserver's `--event-ttl` (default 1 h).

kube-apiserver stores each Event under an etcd lease of `--event-ttl`, renewed by every write of it
(a repeat counted into it too); when the lease runs out etcd deletes the Event and watchers see it
DELETED. Without this the sandbox kept every Event it ever recorded: the largest part of its memory
through a long churn of Incidents (each Incident's pods, scaling and remediation leave about a dozen).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

EVENT_TTL_SECONDS = 3600.0  # kube-apiserver's default --event-ttl

ObjectKey = tuple[str, str]  # (namespace, name)


class Leases:
    """The Events' leases, in the order they run out (one TTL for all, so the order they were written)."""

    def __init__(self, ttl: float = EVENT_TTL_SECONDS) -> None:
        """`ttl` in seconds; 0 keeps Events for ever."""
        if ttl < 0:
            raise ValueError(f"an event TTL cannot be negative: {ttl}")
        self.ttl = ttl
        # (when it runs out, the Event, the resourceVersion the lease was granted to)
        self._granted: collections.deque[tuple[float, ObjectKey, int]] = collections.deque()

    @property
    def granted(self) -> bool:
        """Whether any lease is held (none: nothing can expire, and the clock need not be read)."""
        return bool(self._granted)

    def grant(self, key: ObjectKey, resource_version: int, now: float) -> None:
        """A write of the Event at `resource_version`: it lives `ttl` from now (an earlier lease lapses)."""
        if self.ttl:
            self._granted.append((now + self.ttl, key, resource_version))

    def expired(self, now: float) -> Iterator[tuple[ObjectKey, int]]:
        """The Events whose lease ran out by `now`, each with the version it was granted to: the Event is
        gone only if that is still its version (a later write renewed it, under a lease of its own)."""
        while self._granted and self._granted[0][0] <= now:
            _, key, resource_version = self._granted.popleft()
            yield key, resource_version
