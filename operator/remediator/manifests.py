"""A small async client that applies YAML manifests through any Kubernetes API (used by the demo and tests)."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import ssl
from types import TracebackType
from typing import Any, Self

import httpx
import yaml


@dataclasses.dataclass(frozen=True)
class ResourceInfo:
    plural: str
    namespaced: bool


class Client:
    """Create-or-merge-patch of manifests, and reads, over plain HTTP(S) with resource discovery."""

    def __init__(self, base_url: str, token: str | None = None, verify: ssl.SSLContext | bool = True) -> None:
        """`verify`: the server's CA (an SSLContext) when it is not in the system's trust store."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, verify=verify)
        self._discovered: dict[str, dict[str, ResourceInfo]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._http.aclose()

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """The plural and scope of a kind, from discovery. Raises LookupError for unknown kinds."""
        if api_version not in self._discovered:
            prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            response = await self._http.get(prefix)
            response.raise_for_status()
            self._discovered[api_version] = {
                r["kind"]: ResourceInfo(r["name"], r["namespaced"])
                for r in response.json()["resources"] if "/" not in r["name"]}
        try:
            return self._discovered[api_version][kind]
        except KeyError:
            raise LookupError(f"the server does not serve {kind} in {api_version}") from None

    async def url(self, api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
        info = await self.resource(api_version, kind)
        prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        parts = [prefix]
        if info.namespaced:
            parts.append(f"namespaces/{namespace or 'default'}")
        parts.append(info.plural)
        if name:
            parts.append(name)
        return "/".join(parts)

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        response = await self._http.get(await self.url(api_version, kind, namespace, name))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def apply(self, document: dict[str, Any]) -> str:
        """Create the object, or merge-patch it when it exists; returns "kind/name".

        Raises httpx.HTTPStatusError with the server's Status message on refusal (e.g. 422).
        """
        meta = document.get("metadata") or {}
        api_version, kind, name = document["apiVersion"], document["kind"], meta["name"]
        namespace = meta.get("namespace")
        existing = await self.get(api_version, kind, namespace, name)
        if existing is None:
            response = await self._http.post(await self.url(api_version, kind, namespace), json=document)
        else:
            response = await self._http.patch(
                await self.url(api_version, kind, namespace, name), json=document,
                headers={"Content-Type": "application/merge-patch+json"})
        if response.is_error:
            message = response.json().get("message", response.text)
            raise httpx.HTTPStatusError(f"{kind}/{name}: {message}", request=response.request,
                                        response=response)
        return f"{kind.lower()}/{name}"

    async def apply_file(self, path: pathlib.Path) -> list[str]:
        text = await asyncio.to_thread(path.read_text)
        return [await self.apply(doc) for doc in yaml.safe_load_all(text) if doc]
