"""The sandbox behind kmock's handler: kmock's request log and fault reactions, sandbox semantics.

Requests matching a reaction declared on the handler (e.g. ``kmock['get /api/v1/pods'] << 500``)
get that reaction; every other request falls through to the sandbox.
"""

from __future__ import annotations

from typing import Any

import aiohttp.web
import attrs
import kmock

from remediator.sandbox import server


@attrs.define(kw_only=True)
class SandboxMock(kmock.RawHandler):
    """kmock's RawHandler whose unmatched requests are served by a Sandbox."""

    sandbox: server.Sandbox

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.path.rstrip("/").endswith("/namespaces"):
            # kmock 0.8 fails to parse the Namespace collection path; such requests skip its log.
            return await self.sandbox.handle(raw_request)
        response: aiohttp.web.StreamResponse = await super().__call__(raw_request)
        return response

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        if self._payloads:
            try:
                response: aiohttp.web.StreamResponse = await super()._handle(request)
                return response
            except NotImplementedError:
                pass
        raw = request._raw_request
        assert raw is not None
        return await self.sandbox.handle(raw)
