"""Kopf handlers for RollbackRequests: thin decorators that hand over to handle_rollback.

The same reconcile runs on create, on resume (operator restart) and on spec updates; the engine
decides what a spec update means for a one-shot request (see engine/rollbacks.py).
"""

from __future__ import annotations

from typing import Any

import kopf

from remediator import GROUP, VERSION
from remediator.handlers import handle_rollback
from remediator.typedefs import Logger


@kopf.on.resume(GROUP, VERSION, "rollbackrequests", id="rollback-reconcile", backoff=5)
@kopf.on.create(GROUP, VERSION, "rollbackrequests", id="rollback-reconcile", backoff=5)
@kopf.on.update(GROUP, VERSION, "rollbackrequests", id="rollback-reconcile", field="spec", backoff=5)
async def reconcile_rollback_request(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    await handle_rollback.reconcile(body, memo.config, logger)
