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


def _owned(body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
    """Another shard's RollbackRequests match no handler here, so Kopf stays blind to them: it writes
    no annotation, finalizer or diff-base on them."""
    return bool(memo.config.scope.owns(body.metadata.namespace or ""))


@kopf.on.resume(GROUP, VERSION, "rollbackrequests", id="rollback-reconcile", backoff=5, when=_owned)
@kopf.on.create(GROUP, VERSION, "rollbackrequests", id="rollback-reconcile", backoff=5, when=_owned)
@kopf.on.update(GROUP, VERSION, "rollbackrequests", id="rollback-reconcile", field="spec", backoff=5,
                when=_owned)
async def reconcile_rollback_request(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    await handle_rollback.reconcile(body, memo.config, logger)
