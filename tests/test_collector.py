"""The operator's and the sandbox's processes set their garbage collector for a long run: what they
imported at start-up is out of the collector's way, and young collections come less often."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from remediator import collector

# The command's process up to the point where it would start serving: `_run_until_signal` is where it
# hands over to the event loop, so the process reports its collector's state there instead.
PROBE = """
import gc, json, sys
from remediator import cli
def report(coroutine):
    coroutine.close()
    print(json.dumps({"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}))
    return 0
cli._run_until_signal = report
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["run", "--kubeconfig", "/nonexistent"], ["sandbox"]])
def test_a_service_command_freezes_what_it_imported_and_collects_the_young_less_often(command: list[str]) -> None:
    process = subprocess.run([sys.executable, "-c", PROBE, *command], capture_output=True, text=True, timeout=120,
                             check=False)
    assert process.returncode == 0, process.stderr
    state = json.loads(process.stdout.strip().splitlines()[-1])
    assert state["threshold"][0] == collector.YOUNG_THRESHOLD
    # The modules, classes and registries loaded at start-up: tens of thousands of objects.
    assert state["frozen"] > 20_000, state
