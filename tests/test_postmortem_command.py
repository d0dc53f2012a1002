"""`remediator postmortem`: the post-incident review, from a saved Incident (golden files) or a live one."""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import sys
from typing import Any

import yaml

from remediator import manifests
from remediator.sandbox import runner

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
INCIDENT = GOLDEN / "checkout-500.incident.yaml"


def postmortem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediator", "postmortem", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_review_of_a_saved_incident_matches_the_golden_markdown_and_json() -> None:
    markdown = postmortem("-f", str(INCIDENT))
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout == (GOLDEN / "checkout-500.postmortem.md").read_text()
    as_json = postmortem("-f", str(INCIDENT), "--format", "json")
    assert json.loads(as_json.stdout) == json.loads((GOLDEN / "checkout-500.postmortem.json").read_text())


def test_the_golden_review_says_what_the_runbooks_template_asks_for() -> None:
    """Read as a person would: the phases' durations, who approved, the placeholders to fill in."""
    review = (GOLDEN / "checkout-500.postmortem.md").read_text()
    assert "- detected → acknowledged: 1m 31s" in review and "- **Total:** 8m 10s" in review
    assert "| rollback | Succeeded | 1 | rolled back deployment/checkout from revision 3 to 2 | bob |" in review
    assert "## Root cause\n\ncheckout 1.2 read a config key" in review
    assert "## Resolution\n\n_To be written._" in review


def test_a_pending_incident_has_placeholders_and_unreached_milestones(tmp_path: pathlib.Path) -> None:
    pending = yaml.safe_load(INCIDENT.read_text())
    pending["status"] = {}
    pending["metadata"]["annotations"] = {}
    path = tmp_path / "pending.yaml"
    path.write_text(yaml.safe_dump(pending))
    review = postmortem("-f", str(path)).stdout
    assert "- **Outcome:** Pending" in review and "- Mitigated: not reached" in review
    assert "**Total:**" not in review and review.count("_To be written._") == 4


async def test_the_review_of_a_live_incident_is_read_from_the_cluster(
        client: manifests.Client, sandbox: runner.RunningSandbox, tmp_path: pathlib.Path) -> None:
    saved: dict[str, Any] = yaml.safe_load(INCIDENT.read_text())
    live = {**saved, "metadata": {**saved["metadata"], "namespace": "default"}}
    live.pop("status")
    await client.apply(live)
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    run = await asyncio.to_thread(postmortem, "checkout-500", "-n", "default", "--kubeconfig", str(kubeconfig))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("# Post-incident review: default/checkout-500\n")
    assert "- **What happened:** checkout returns 500 after the 1.2 deploy" in run.stdout
