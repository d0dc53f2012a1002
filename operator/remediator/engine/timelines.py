"""The bounded timeline: append entries, fold the oldest away into a count."""

from __future__ import annotations

from collections.abc import Sequence

from remediator.api.timelines import TimelineEntry

MAX_TIMELINE_ENTRIES = 100


def append(
    timeline: Sequence[TimelineEntry],
    folded: int,
    entries: Sequence[TimelineEntry],
    limit: int = MAX_TIMELINE_ENTRIES,
) -> tuple[list[TimelineEntry], int]:
    """The timeline with `entries` appended and the new folded count.

    Entries beyond `limit` are removed from the front and counted in the folded
    count, so `len(timeline) + folded` always equals the number of entries ever added.
    """
    combined = [*timeline, *entries]
    overflow = max(0, len(combined) - limit)
    return combined[overflow:], folded + overflow
