"""The post-incident review of an Incident, from what its status recorded: `remediator postmortem`.

Follows the runbooks' "Post-Incident" template: summary and impact, how long each phase took
(detected → acknowledged → mitigated → resolved), the timeline, each step and its result, then root
cause, resolution and action items. Those three come from the Incident's annotations
(remediator.dev/root-cause, /resolution, /action-items) where a person wrote them, and are left as
placeholders otherwise. Pure: an Incident object in, text out.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Mapping
from typing import Any

from remediator import GROUP

PLACEHOLDER = "_To be written._"
WRITTEN_BY_PEOPLE = {"impact": f"{GROUP}/impact", "rootCause": f"{GROUP}/root-cause",
                     "resolution": f"{GROUP}/resolution", "actionItems": f"{GROUP}/action-items"}
MILESTONES = (("detected", "detectedAt"), ("acknowledged", "acknowledgedAt"), ("mitigated", "mitigatedAt"),
              ("resolved", "resolvedAt"))


def review(incident: Mapping[str, Any]) -> dict[str, Any]:
    """The review's content as plain data (what `--format json` prints)."""
    meta, spec, status = incident.get("metadata") or {}, incident.get("spec") or {}, incident.get("status") or {}
    annotations = meta.get("annotations") or {}
    times = {name: _time(status.get(field)) for name, field in MILESTONES}
    phases = []
    reached = [(name, moment) for name, moment in times.items() if moment is not None]
    for (start, begun), (end, ended) in itertools.pairwise(reached):
        phases.append({"from": start, "to": end, "seconds": int((ended - begun).total_seconds())})
    first, last = (reached[0][1], reached[-1][1]) if reached else (None, None)
    return {
        "incident": f"{meta.get('namespace', '')}/{meta.get('name', '')}",
        "summary": spec.get("summary", ""),
        "severity": spec.get("severity", ""),
        "phase": status.get("phase") or "Pending",
        "conditions": {c["type"]: c["status"] for c in status.get("conditions") or []},
        "milestones": {name: _text(moment) for name, moment in times.items()},
        "phases": phases,
        "durationSeconds": int((last - first).total_seconds()) if first and last else None,
        "timeline": [{k: entry.get(k) for k in ("time", "type", "reason", "step", "message")}
                     for entry in status.get("timeline") or []],
        "timelineFolded": int(status.get("timelineFolded") or 0),
        "steps": [{k: step.get(k) for k in ("name", "state", "attempts", "message", "approvedBy")}
                  for step in status.get("steps") or []],
        **{key: annotations.get(annotation) for key, annotation in WRITTEN_BY_PEOPLE.items()},
    }


def render(incident: Mapping[str, Any], output: str = "markdown") -> str:
    """The review as Markdown (or JSON with `output="json"`)."""
    data = review(incident)
    if output == "json":
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    lines = [f"# Post-incident review: {data['incident']}", "",
             "## Summary", "",
             f"- **What happened:** {data['summary']}",
             f"- **Severity:** {data['severity']}",
             f"- **Outcome:** {data['phase']}",
             f"- **Impact:** {data['impact'] or PLACEHOLDER}", "",
             "## Duration", ""]
    for name, moment in data["milestones"].items():
        lines.append(f"- {name.capitalize()}: {moment or 'not reached'}")
    for phase in data["phases"]:
        lines.append(f"- {phase['from']} → {phase['to']}: {_duration(phase['seconds'])}")
    if data["durationSeconds"] is not None:
        lines.append(f"- **Total:** {_duration(data['durationSeconds'])}")
    lines += ["", "## Timeline", ""]
    if data["timelineFolded"]:
        lines += [f"_{data['timelineFolded']} earlier entries were folded away._", ""]
    lines += ["| time | type | what | step | message |", "|---|---|---|---|---|"]
    lines += [f"| {e['time']} | {e['type']} | {e['reason']} | {e['step'] or ''} | {_cell(e['message'])} |"
              for e in data["timeline"]]
    lines += ["", "## Steps", "", "| step | state | attempts | result | approved by |", "|---|---|---|---|---|"]
    lines += [f"| {s['name']} | {s['state']} | {s['attempts'] or 0} | {_cell(s['message'])} | "
              f"{s['approvedBy'] or ''} |" for s in data["steps"]]
    for title, key in (("Root cause", "rootCause"), ("Resolution", "resolution"), ("Action items", "actionItems")):
        lines += ["", f"## {title}", "", data[key] or PLACEHOLDER]
    return "\n".join(lines) + "\n"


def _time(text: Any) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _text(moment: datetime.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _duration(seconds: int) -> str:
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours}h" if hours else "", f"{minute}m" if minute else "",
                                      f"{second}s" if second or not (hours or minute) else "") if part)


def _cell(text: Any) -> str:
    """A Markdown table cell: one line, no pipes breaking the table."""
    return " ".join(str(text or "").split()).replace("|", "\\|")
