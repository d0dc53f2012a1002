"""The sandbox's HTTP surface: Kubernetes REST verbs over the object store.

`Sandbox.handle` is a plain aiohttp low-level handler (no router), so it can be served
directly or behind kmock's handler, which adds a request log and injected faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp.web

from remediator.sandbox import discovery, errors, patches, paths, resources, selectors, store, tables

JSON = "application/json"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(body=_dumps(obj), status=status, content_type=JSON)


class Sandbox:
    """An embedded Kubernetes API server: store, discovery, and the REST verbs."""

    def __init__(self, object_store: store.ObjectStore | None = None) -> None:
        self.store = object_store or store.ObjectStore()
        self._watch_tasks: set[asyncio.Task[Any]] = set()
        self.closing = False

    # -- entry point --------------------------------------------------------------------------

    async def handle(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        try:
            document = discovery.serve(self.store.registry, request.path, request.headers.get("Accept", ""))
            if document is not None:
                return json_response(document)
            try:
                api = paths.parse(request.path)
            except ValueError:
                raise errors.ApiError(404, "the server could not find the requested resource") from None
            if api is None:
                raise errors.ApiError(404, "the server could not find the requested resource")
            if api.plural is None:
                document = discovery.resource_list(self.store.registry, api.group, api.version)
                if document is None:
                    raise errors.ApiError(404, "the server could not find the requested resource")
                return json_response(document)
            resource = self.store.resource_type(api.group, api.version, api.plural)
            if resource.namespaced and api.namespace is None and api.name is not None:
                raise errors.ApiError(404, "the server could not find the requested resource")
            if api.subresource is not None and api.subresource not in resource.subresources:
                raise errors.ApiError(404, "the server could not find the requested resource")
            return await self._dispatch(request, resource, api)
        except errors.ApiError as e:
            return json_response(e.status(), status=e.code)

    async def _dispatch(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
                        api: paths.ApiPath) -> aiohttp.web.StreamResponse:
        method = request.method
        query = request.query
        namespace = api.namespace if resource.namespaced else None
        if method == "GET":
            if api.name is None:
                if query.get("watch") in ("true", "1"):
                    return await self._watch(request, resource, namespace)
                return self._list(request, resource, namespace)
            obj = self.store.get(resource, namespace, api.name)
            if api.subresource == "scale":
                return json_response(_scale_of(obj))
            if tables.wants_table(request.headers.get("Accept", "")):
                return json_response(tables.table(resource, [obj], self.store.clock()))
            return json_response(obj)
        body = await _read_json(request) if method in ("POST", "PUT", "PATCH") else None
        if method == "POST" and api.name is None:
            if not isinstance(body, dict):
                raise errors.bad_request("the request body must be a JSON object")
            return json_response(self.store.create(resource, body, namespace), status=201)
        if method == "POST" and api.subresource == "eviction" and api.name is not None:
            return self._evict(resource, namespace or "", api.name)
        if api.name is None:
            if method == "DELETE":
                return self._delete_collection(request, resource, namespace)
            raise errors.method_not_allowed()
        if method == "PUT":
            if not isinstance(body, dict):
                raise errors.bad_request("the request body must be a JSON object")
            if api.subresource == "scale":
                return json_response(self._update_scale(resource, namespace, api.name, body))
            updated = self.store.replace(resource, namespace, api.name, body, subresource=api.subresource,
                                         require_resource_version=resource.custom)
            return json_response(updated)
        if method == "PATCH":
            return json_response(self._patch(request, resource, namespace, api, body))
        if method == "DELETE":
            options = body if isinstance(body, dict) else {}
            propagation = query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
            obj, gone = self.store.delete(resource, namespace, api.name, propagation=propagation,
                                          preconditions=options.get("preconditions"))
            return json_response(obj, status=200 if gone else 202 if not resource.custom else 200)
        raise errors.method_not_allowed()

    # -- verbs --------------------------------------------------------------------------------

    def _selectors(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType
                   ) -> tuple[selectors.LabelSelector | None, selectors.FieldSelector | None]:
        try:
            label_text = request.query.get("labelSelector", "")
            field_text = request.query.get("fieldSelector", "")
            label = selectors.parse_label_selector(label_text) if label_text else None
            field = selectors.parse_field_selector(field_text) if field_text else None
            if field is not None:
                selectors.check_field_selector(resource.kind, field)
        except selectors.SelectorError as e:
            raise errors.bad_request(str(e)) from None
        return label, field

    def _list(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
              namespace: str | None) -> aiohttp.web.Response:
        label, field = self._selectors(request, resource)
        items = self.store.list(resource, namespace, label, field)
        list_meta: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        limit = int(request.query.get("limit") or 0)
        start = int(request.query.get("continue") or 0)
        if start:
            items = items[start:]
        if limit and len(items) > limit:
            items = items[:limit]
            list_meta["continue"] = str(start + limit)
            list_meta["remainingItemCount"] = len(items) - limit
        if tables.wants_table(request.headers.get("Accept", "")):
            table = tables.table(resource, items, self.store.clock())
            table["metadata"] = list_meta
            return json_response(table)
        # Typed built-in lists carry no kind/apiVersion per item; custom resource lists do.
        if not resource.custom:
            items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in items]
        return json_response({"kind": resource.list_kind, "apiVersion": resource.api_version,
                              "metadata": list_meta, "items": items})

    async def _watch(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
                     namespace: str | None) -> aiohttp.web.StreamResponse:
        label, field = self._selectors(request, resource)
        since_text = request.query.get("resourceVersion", "")
        since = int(since_text) if since_text not in ("", "0") else None
        watch = store.Watch(resource.key, namespace, label, field)
        timeout = float(request.query.get("timeoutSeconds") or 0) or None
        response = aiohttp.web.StreamResponse(status=200)
        response.content_type = JSON
        response.enable_chunked_encoding()
        try:
            backlog = list(self.store.watch(watch, since))
        except errors.ApiError as e:
            # A watch that starts too far back is answered with a 200 stream holding one ERROR event.
            await response.prepare(request)
            await response.write(_dumps({"type": "ERROR", "object": e.status()}) + b"\n")
            return response
        task = asyncio.current_task()
        if task is not None:
            self._watch_tasks.add(task)
        try:
            await response.prepare(request)
            for missed in backlog:
                await response.write(_event_line(missed))
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self.closing:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    event: store.WatchEvent | None = await asyncio.wait_for(watch.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                await response.write(_event_line(event))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watch)
            if task is not None:
                self._watch_tasks.discard(task)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    def _patch(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
               namespace: str | None, api: paths.ApiPath, body: Any) -> dict[str, Any]:
        assert api.name is not None
        content_type = request.headers.get("Content-Type", "")
        current = self.store.get(resource, namespace, api.name)
        if api.subresource == "scale":
            scale = _scale_of(current)
            kind = "Scale"
            if content_type.startswith("application/strategic-merge-patch+json"):
                content_type = "application/merge-patch+json"  # a Scale has no lists to merge by key
            try:
                patched = patches.apply_patch(scale, body, content_type, kind)
            except patches.PatchError as e:
                raise _patch_error(e) from None
            return self._update_scale(resource, namespace, api.name, patched)
        if resource.custom and content_type.startswith("application/strategic-merge-patch+json"):
            raise errors.ApiError(415, "the body of the request was in an unknown format - accepted "
                                  "media types include: application/json-patch+json, "
                                  "application/merge-patch+json, application/apply-patch+yaml")
        try:
            patched = patches.apply_patch(current, body, content_type, resource.kind)
        except patches.PatchError as e:
            raise _patch_error(e) from None
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce an object")
        # The stored version is the base: a patch that sets another version is a stale write.
        patched.setdefault("metadata", {})
        return self.store.replace(resource, namespace, api.name, patched, subresource=api.subresource)

    def _update_scale(self, resource: resources.ResourceType, namespace: str | None, name: str,
                      scale: Mapping[str, Any]) -> dict[str, Any]:
        current = self.store.get(resource, namespace, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale.autoscaling", name, [(
                "spec.replicas", "FieldValueInvalid",
                f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0")],
                kind="Scale", group="autoscaling")
        updated = copy.deepcopy(current)
        updated["spec"]["replicas"] = replicas
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        updated["metadata"]["resourceVersion"] = rv or current["metadata"]["resourceVersion"]
        return _scale_of(self.store.replace(resource, namespace, name, updated))

    def _evict(self, resource: resources.ResourceType, namespace: str, name: str) -> aiohttp.web.Response:
        pod = self.store.get(resource, namespace, name)
        pdb_type = self.store.resource_type("policy", "v1", "poddisruptionbudgets")
        pod_labels = pod["metadata"].get("labels") or {}
        for pdb in self.store.list(pdb_type, namespace):
            selector = selectors.label_selector_from_object((pdb.get("spec") or {}).get("selector") or {})
            if not selector.matches(pod_labels):
                continue
            if _disruptions_allowed(self.store, pdb) < 1:
                raise errors.ApiError(
                    429, "Cannot evict pod as it would violate the pod's disruption budget.",
                    details={"causes": [{"reason": "DisruptionBudget", "message":
                             f"The disruption budget {pdb['metadata']['name']} needs "
                             f"{_desired_healthy(self.store, pdb)} healthy pods and has "
                             f"{_healthy_pods(self.store, pdb)} currently"}]})
        self.store.delete(resource, namespace, name)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, status=201)

    def _delete_collection(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
                           namespace: str | None) -> aiohttp.web.Response:
        label, field = self._selectors(request, resource)
        deleted = []
        for obj in self.store.list(resource, namespace, label, field):
            meta = obj["metadata"]
            deleted.append(self.store.delete(resource, meta.get("namespace"), meta["name"])[0])
        return json_response({"kind": resource.list_kind, "apiVersion": resource.api_version,
                              "metadata": {"resourceVersion": str(self.store.resource_version)},
                              "items": deleted})

    async def close(self) -> None:
        """End open watches so that servers can shut down promptly."""
        self.closing = True
        self.store.close_watches()
        for task in list(self._watch_tasks):
            task.cancel()


def _event_line(event: store.WatchEvent) -> bytes:
    return _dumps({"type": event.type, "object": event.object}) + b"\n"


async def _read_json(request: aiohttp.web.BaseRequest) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        content_type = request.headers.get("Content-Type", "")
        if "yaml" in content_type:
            raise errors.ApiError(415, "the body of the request was in an unknown format") from None
        raise errors.bad_request("the request body is not valid JSON") from None


def _patch_error(error: patches.PatchError) -> errors.ApiError:
    if isinstance(error, patches.StrategicMergeUnsupported | patches.UnsupportedPatchType):
        return errors.ApiError(415, str(error))
    return errors.ApiError(422, str(error))


def _scale_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": selectors.format_label_selector(selector)},
    }


def _healthy_pods(object_store: store.ObjectStore, pdb: Mapping[str, Any]) -> int:
    pod_type = object_store.resource_type("", "v1", "pods")
    selector = selectors.label_selector_from_object((pdb.get("spec") or {}).get("selector") or {})
    healthy = 0
    for pod in object_store.list(pod_type, pdb["metadata"]["namespace"], selector):
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions) \
                and not pod["metadata"].get("deletionTimestamp"):
            healthy += 1
    return healthy


def _expected_pods(object_store: store.ObjectStore, pdb: Mapping[str, Any]) -> int:
    pod_type = object_store.resource_type("", "v1", "pods")
    selector = selectors.label_selector_from_object((pdb.get("spec") or {}).get("selector") or {})
    return len(object_store.list(pod_type, pdb["metadata"]["namespace"], selector))


def _scaled(value: int | str, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    scaled, remainder = divmod(percent * total, 100)
    return scaled + (1 if round_up and remainder else 0)


def _desired_healthy(object_store: store.ObjectStore, pdb: Mapping[str, Any]) -> int:
    spec = pdb.get("spec") or {}
    expected = _expected_pods(object_store, pdb)
    if "minAvailable" in spec:
        return _scaled(spec["minAvailable"], expected, round_up=True)
    if "maxUnavailable" in spec:
        return max(0, expected - _scaled(spec["maxUnavailable"], expected, round_up=True))
    return 0


def _disruptions_allowed(object_store: store.ObjectStore, pdb: Mapping[str, Any]) -> int:
    return max(0, _healthy_pods(object_store, pdb) - _desired_healthy(object_store, pdb))
