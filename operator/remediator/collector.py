"""The garbage collector's settings for a long-running process: the operator (`remediator run`) and the
sandbox (`remediator sandbox`).

A storm allocates millions of short-lived containers (watch events' bodies, requests and answers, status
drafts) that reference counting frees at once. With CPython's defaults the cyclic collector still ran a
young collection every 700 allocations and a full one whenever the long-lived objects grew by a quarter,
walking every module, class and stored object each time: in a burst of 1,000 Incidents that was about a
sixth of the operator's CPU and of the sandbox's (docs/benchmarks.md, "The garbage collector").
"""

from __future__ import annotations

import gc

# Allocations between young collections (CPython's default is 700). Measured in the 1,000 burst: 10,000
# took most of the collector's time away at no cost in memory; 50,000 took a little more but raised the
# operator's peak by 5-8 MB.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Call once the process has imported what it runs (its modules and classes live as long as it does):
    collect the start-up's garbage, then move every object still alive out of the collector's way, so
    that a full collection walks only what was made since; and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
