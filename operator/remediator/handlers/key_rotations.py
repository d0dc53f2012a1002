"""Kopf handlers for KeyRotations: the raw watch starts (or wakes) each one's loop; handle_key_rotation
decides and acts. Kopf adds no finalizer and writes no annotations of its own to them: a rotation's
state lives in its status, and deleting one is never blocked (its staging Secret goes with it)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import kopf

from remediator import GROUP, VERSION
from remediator.handlers import handle_key_rotation, key_rotation_loops
from remediator.typedefs import Logger


@kopf.on.startup(id="keyrotation-loops")
async def start_loops(memo: kopf.Memo, **_: Any) -> None:
    reconcile = functools.partial(_reconcile, config=memo.config, action_log=memo.action_log,
                                  logger=logging.getLogger("remediator.keyrotations"))
    memo.key_rotations = key_rotation_loops.KeyRotationLoops(reconcile)


async def _reconcile(namespace: str, name: str, config: Any, action_log: Any, logger: Logger) -> float | None:
    return await handle_key_rotation.reconcile(namespace, name, config, action_log, logger)


@kopf.on.event(GROUP, VERSION, "keyrotations", id="keyrotation-watch")
async def key_rotation_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    body: Any = event["object"]
    meta = body["metadata"]
    if not memo.config.scope.owns(meta["namespace"]):
        return  # another shard's: nothing is kept or written for it here
    if event["type"] == "DELETED":
        memo.key_rotations.forget(meta["uid"])
        return
    memo.key_rotations.kick(meta["uid"], meta["namespace"], meta["name"])


@kopf.on.cleanup(id="keyrotation-loops-stop")
async def stop_loops(memo: kopf.Memo, **_: Any) -> None:
    loops = getattr(memo, "key_rotations", None)
    if loops is not None:
        loops.cancel_all()
