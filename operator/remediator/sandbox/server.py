"""The sandbox's HTTP surface: Kubernetes REST verbs over the object store.

`Sandbox.handle` is a plain aiohttp low-level handler (no router), so it can be served
directly or behind kmock's handler, which adds a request log and injected faults.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp.web

from remediator.sandbox import (
    access,
    admission,
    authn,
    builtin_validation,
    discovery,
    errors,
    eviction,
    field_validation,
    health,
    managed_fields,
    patches,
    paths,
    resources,
    selectors,
    server_side_apply,
    store,
    tables,
)
from remediator.sandbox.protobuf import messages as protobuf_messages

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
BOOKMARK_INTERVAL_SECONDS = 5.0
# Subresources that take a server-side apply, each owning its fields as that subresource's.
APPLY_SUBRESOURCES = ("status", "scale")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> aiohttp.web.Response:
    # kube-apiserver's JSON serializer ends every body with a newline (encoding/json's Encoder).
    return aiohttp.web.Response(body=_dumps(obj) + b"\n", status=status, content_type=JSON)


class Sandbox:
    """An embedded Kubernetes API server: store, discovery, and the REST verbs."""

    def __init__(self, object_store: store.ObjectStore | None = None, *,
                 authenticator: authn.Authenticator | None = None) -> None:
        self.store = object_store or store.ObjectStore()
        # Who sends each request and whether it may proceed; with no authenticator, everyone is the admin.
        self.access = access.AccessControl(self.store, authenticator)
        self.admission = admission.ValidatingAdmission(self.store)
        self._watch_tasks: set[asyncio.Task[Any]] = set()
        self._event_lines = EventLines()
        self.closing = False
        # How often a watch with allowWatchBookmarks gets a BOOKMARK (kube-apiserver: about a minute).
        self.bookmark_interval = BOOKMARK_INTERVAL_SECONDS

    # -- entry point --------------------------------------------------------------------------

    async def handle(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        try:
            user, attributes = self.access.identify(request)
        except errors.ApiError as e:
            self.access.record(request, None).code = e.code
            return json_response(e.status(), status=e.code)
        logged = self.access.record(request, attributes)
        try:
            self.access.check(attributes)
        except errors.ApiError as e:
            logged.code = e.code
            return json_response(e.status(), status=e.code)
        request[access.USER] = user
        context = access.RequestContext(attributes, annotations=logged.annotations)
        access.CURRENT.set(context)
        response = await self._serve(request)
        if not response.prepared:  # admission's warnings (a watch has sent its headers already)
            for warning in context.warnings:
                response.headers.add("Warning", field_validation.warning_header(warning))
        logged.code = response.status
        return response

    async def _serve(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        try:
            checked = health.serve(request.path, request.query, lambda: self.closing)
            if checked is not None:
                return checked
            document = discovery.serve(self.store.registry, request.path, request.headers.get("Accept", ""))
            if document is not None:
                served = json_response(document)
                served.headers["Content-Type"] = discovery.media_type(document)
                return served
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
            if (resource.namespaced and api.namespace is None and api.name is not None) \
                    or (not resource.namespaced and api.namespace is not None):
                raise errors.ApiError(404, "the server could not find the requested resource")
            if api.subresource is not None and api.subresource not in resource.subresources:
                raise errors.ApiError(404, "the server could not find the requested resource")
            response = await self._dispatch(request, resource, api)
            for warning in request.get(field_validation.WARNINGS, ()):
                response.headers.add("Warning", field_validation.warning_header(warning))
            return response
        except errors.ApiError as e:
            return json_response(e.status(), status=e.code)

    async def _dispatch(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
                        api: paths.ApiPath) -> aiohttp.web.StreamResponse:
        method = request.method
        query = request.query
        namespace = api.namespace if resource.namespaced else None
        if resource.verbs == ("create",) and method != "POST":
            raise errors.method_not_allowed()  # a review is only ever created
        if method == "GET":
            if api.name is None:
                if query.get("watch") in ("true", "1"):
                    return await self._watch(request, resource, namespace)
                return self._list(request, resource, namespace)
            obj = self.store.get(resource, namespace, api.name)
            if api.subresource == "scale":
                return json_response(_scale_of(obj))
            if tables.wants_table(request.headers.get("Accept", "")):
                return json_response(tables.object_table(resource, obj, self.store.clock(),
                                                         include=tables.include_object(query)))
            return json_response(obj)
        if method == "PATCH" and server_side_apply.is_apply(request.headers.get("Content-Type", "")):
            return await self._apply(request, resource, namespace, api)
        body = await _read_json(request, resource) if method in ("POST", "PUT", "PATCH") else None
        dry_run = _dry_run(request)
        if method == "POST":
            answer = self.access.serve(resource, api, body, request[access.USER])
            if answer is not None:
                return json_response(answer, status=201)
        if method == "POST" and api.name is None:
            if not isinstance(body, dict):
                raise errors.bad_request("the request body must be a JSON object")
            field_validation.check_body(request, resource, body, "CreateOptions")
            return json_response(self.store.create(resource, body, namespace, dry_run=dry_run,
                                                   field_manager=_field_manager(request)), status=201)
        if method == "POST" and api.subresource == "eviction" and api.name is not None:
            return self._evict(resource, namespace or "", api.name, body)
        if method == "DELETE":
            options = await _read_json(request, resource) or {}
            if not isinstance(options, dict):
                raise errors.bad_request("the request body must be a DeleteOptions object")
            dry_run = dry_run or "All" in (options.get("dryRun") or ())
            propagation = _propagation(resource, query, options)
        if api.name is None:
            if method == "DELETE":
                return self._delete_collection(request, resource, namespace, propagation or "Orphan", dry_run,
                                               _grace_period(query, options))
            raise errors.method_not_allowed()
        if method == "PUT":
            if not isinstance(body, dict):
                raise errors.bad_request("the request body must be a JSON object")
            if api.subresource == "scale":
                return json_response(self._update_scale(resource, namespace, api.name, body, dry_run=dry_run,
                                                        field_manager=_field_manager(request)))
            field_validation.check_body(request, resource, body, "UpdateOptions")
            updated = self.store.replace(resource, namespace, api.name, body, subresource=api.subresource,
                                         require_resource_version=resource.custom, dry_run=dry_run,
                                         field_manager=_field_manager(request))
            return json_response(updated)
        if method == "PATCH":
            return json_response(self._patch(request, resource, namespace, api, body, dry_run=dry_run))
        if method == "DELETE":
            obj, gone = self.store.delete(resource, namespace, api.name, propagation=propagation or "Orphan",
                                          preconditions=options.get("preconditions"), dry_run=dry_run,
                                          grace_period=_grace_period(query, options))
            # 202 only when cascading deletion was asked for the old way (orphanDependents: false).
            orphan = query.get("orphanDependents", options.get("orphanDependents"))
            response = json_response(obj, status=202 if not gone and str(orphan).lower() == "false" else 200)
            if propagation is None:
                response.headers["Warning"] = JOB_ORPHAN_WARNING
            return response
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
                selectors.check_field_selector(
                    resource.kind, field, custom_api_version=resource.api_version if resource.custom else None,
                    cluster_scoped=not resource.namespaced)
        except selectors.SelectorError as e:
            raise errors.bad_request(str(e)) from None
        return label, field

    def _list(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
              namespace: str | None) -> aiohttp.web.Response:
        label, field = self._selectors(request, resource)
        items = self.store.list(resource, namespace, label, field)
        list_meta: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        items, list_meta = _page(items, list_meta, request.query)
        if tables.wants_table(request.headers.get("Accept", "")):
            table = tables.table(resource, items, self.store.clock(),
                                 include=tables.include_object(request.query))
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
        # A watch-list (sendInitialEvents) starts from the current objects, whatever version it names.
        initial_events = request.query.get("sendInitialEvents") == "true"
        bookmarks = request.query.get("allowWatchBookmarks") == "true"
        if since_text and not since_text.isdigit():
            # The watch cache names the resource where a kind would be (GroupKind{Kind: resource}).
            parse_error = f'strconv.ParseUint: parsing "{since_text}": invalid syntax'
            raise errors.invalid(resource.group_resource, "", [(
                "resourceVersion", "FieldValueInvalid", f'Invalid value: "{since_text}": {parse_error}')],
                kind=resource.plural, group=resource.group)
        since = int(since_text) if since_text not in ("", "0") and not initial_events else None
        watch = store.Watch(resource.key, namespace, label, field)
        tabulate = tables.WatchTables(resource, self.store.clock, tables.include_object(request.query)) \
            if tables.wants_table(request.headers.get("Accept", "")) else None
        timeout = float(request.query.get("timeoutSeconds") or 0) or None
        response = aiohttp.web.StreamResponse(status=200)
        response.content_type = JSON
        response.enable_chunked_encoding()
        try:
            backlog = list(self.store.watch(watch, since))
            listed_version = self.store.resource_version
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
                await response.write(self._event_lines.line(missed, tabulate))
            if initial_events:
                await response.write(_dumps({"type": "BOOKMARK",
                                             "object": _initial_events_end(resource, listed_version)}) + b"\n")
            deadline = None if timeout is None else time.monotonic() + timeout
            # With allowWatchBookmarks a BOOKMARK follows the backlog, then comes every bookmark_interval.
            next_bookmark = time.monotonic() if bookmarks and not initial_events else None
            if initial_events and bookmarks:
                next_bookmark = time.monotonic() + self.bookmark_interval
            while not self.closing:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                event: store.WatchEvent | None
                if not watch.queue.empty():
                    event = watch.queue.get_nowait()
                elif next_bookmark is not None and now >= next_bookmark:
                    # The queue is empty, so every event up to the store's version has been sent.
                    await response.write(_bookmark_line(resource, self.store.resource_version))
                    next_bookmark = now + self.bookmark_interval
                    continue
                else:
                    waits = [t - now for t in (deadline, next_bookmark) if t is not None]
                    try:
                        event = await asyncio.wait_for(watch.queue.get(), min(waits) if waits else None)
                    except TimeoutError:
                        continue
                if event is None:
                    break
                await response.write(self._event_lines.line(event, tabulate))
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
               namespace: str | None, api: paths.ApiPath, body: Any, *, dry_run: bool = False) -> dict[str, Any]:
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
                raise _patch_error(e, content_type) from None
            return self._update_scale(resource, namespace, api.name, patched, dry_run=dry_run,
                                      field_manager=_field_manager(request))
        if resource.custom and content_type.startswith("application/strategic-merge-patch+json"):
            raise errors.ApiError(415, "the body of the request was in an unknown format - accepted "
                                  "media types include: application/json-patch+json, "
                                  "application/merge-patch+json, application/apply-patch+yaml")
        try:
            # Patched without the managedFields, which the write records afresh (and copying them costs).
            patched = patches.apply_patch(managed_fields.without_managed_fields(current), body, content_type,
                                          resource.kind)
        except patches.PatchError as e:
            raise _patch_error(e, content_type) from None
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce an object")
        field_validation.check_patched(request, resource, patched, current)
        # The stored version is the base: a patch that sets another version is a stale write.
        patched.setdefault("metadata", {})
        return self.store.replace(resource, namespace, api.name, patched, subresource=api.subresource,
                                  dry_run=dry_run, field_manager=_field_manager(request))

    async def _apply(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
                     namespace: str | None, api: paths.ApiPath) -> aiohttp.web.Response:
        """Server-side apply of the body to the named object, which it creates when absent (201)."""
        assert api.name is not None
        if request.headers.get("Content-Type", "").startswith(server_side_apply.APPLY_CBOR):
            raise errors.ApiError(415, "the body of the request was in an unknown format - accepted media types "
                                  f"include: {_patch_media_types(resource)}")
        if api.subresource not in (None, *APPLY_SUBRESOURCES):
            raise errors.method_not_allowed()
        manager = request.query.get("fieldManager", "")
        if not manager:
            raise errors.invalid("PatchOptions.meta.k8s.io", "", [
                ("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")],
                kind="PatchOptions", group="meta.k8s.io")
        dry_run = _dry_run(request)
        config = server_side_apply.parse_config(await request.read())
        config.setdefault("metadata", {}).setdefault("name", api.name)
        force = request.query.get("force") in ("true", "1")
        now = store.format_time(self.store.clock())
        if api.subresource == "scale":
            parent = self.store.get(resource, namespace, api.name)
            replicas = {"spec": {"replicas": (config.get("spec") or {}).get("replicas")}} \
                if "replicas" in (config.get("spec") or {}) else {}
            scaled = server_side_apply.apply(parent, replicas, resource=resource, manager=manager, force=force,
                                             now=now, subresource="scale")
            return json_response(self._update_scale(resource, namespace, api.name, scaled, dry_run=dry_run,
                                                    managed_fields=scaled["metadata"].pop("managedFields")))
        live = self.store.get(resource, namespace, api.name) if api.subresource else \
            self.store.find(resource, namespace, api.name)
        applied = server_side_apply.apply(live, config, resource=resource, manager=manager, force=force, now=now,
                                          subresource=api.subresource)
        managed = applied["metadata"].pop("managedFields")
        if api.subresource == "status":
            return json_response(self.store.replace(resource, namespace, api.name, applied, subresource="status",
                                                    dry_run=dry_run, managed_fields=managed))
        if live is None:
            created = self.store.create(resource, applied, namespace, dry_run=dry_run, managed_fields=managed)
            return json_response(created, status=201)
        return json_response(self.store.replace(resource, namespace, api.name, applied, dry_run=dry_run,
                                                managed_fields=managed))

    def _update_scale(self, resource: resources.ResourceType, namespace: str | None, name: str,
                      scale: Mapping[str, Any], *, dry_run: bool = False, field_manager: str | None = None,
                      managed_fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Write a Scale's replicas to its object, recorded as field_manager's through /scale (or with the
        managedFields an apply to /scale computed)."""
        current = self.store.get(resource, namespace, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        not_int32 = builtin_validation.decode_problem(replicas, "ScaleSpec", "spec.replicas")
        if not_int32 is not None:
            raise errors.bad_request(f'Scale in version "v1" cannot be handled as a Scale: {not_int32}')
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale.autoscaling", name, [(
                "spec.replicas", "FieldValueInvalid",
                f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0")],
                kind="Scale", group="autoscaling")
        rv = (scale.get("metadata") or {}).get("resourceVersion") or current["metadata"]["resourceVersion"]
        # Only the two changed sections are copied, shallowly: the store deep-copies what it keeps.
        updated = {**current, "spec": {**current["spec"], "replicas": replicas},
                   "metadata": {**current["metadata"], "resourceVersion": rv}}
        return _scale_of(self.store.replace(resource, namespace, name, updated, subresource="scale", dry_run=dry_run,
                                            field_manager=field_manager, managed_fields=managed_fields))

    def _evict(self, resource: resources.ResourceType, namespace: str, name: str,
               body: Any) -> aiohttp.web.Response:
        """POST pods/<name>/eviction: delete the pod gracefully if its disruption budget allows it."""
        options = (body.get("deleteOptions") if isinstance(body, dict) else None) or {}
        pod = self.store.get(resource, namespace, name)
        pdb_type = self.store.resource_type("policy", "v1", "poddisruptionbudgets")
        verdict = eviction.decide(pod, self.store.list(pdb_type, namespace), store.format_time(self.store.clock()))
        if verdict.budget is not None:
            self.store.replace(pdb_type, namespace, verdict.budget["metadata"]["name"], verdict.budget,
                               subresource="status")
        preconditions = {**(options.get("preconditions") or {})}
        if verdict.guard:
            preconditions.setdefault("resourceVersion", pod["metadata"]["resourceVersion"])
        self.store.delete(resource, namespace, name, grace_period=_grace_period({}, options),
                          preconditions=preconditions)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, status=201)

    def _delete_collection(self, request: aiohttp.web.BaseRequest, resource: resources.ResourceType,
                           namespace: str | None, propagation: str, dry_run: bool,
                           grace_period: int | None) -> aiohttp.web.Response:
        label, field = self._selectors(request, resource)
        deleted = []
        for obj in self.store.list(resource, namespace, label, field):
            meta = obj["metadata"]
            if self.store.find(resource, meta.get("namespace"), meta["name"]) is None:
                continue  # collected as a dependent of an earlier item
            deleted.append(self.store.delete(resource, meta.get("namespace"), meta["name"],
                                             propagation=propagation, dry_run=dry_run, grace_period=grace_period)[0])
        return json_response({"kind": resource.list_kind, "apiVersion": resource.api_version,
                              "metadata": {"resourceVersion": str(self.store.resource_version)},
                              "items": deleted})

    async def close(self) -> None:
        """End open watches so that servers can shut down promptly."""
        self.closing = True
        self.store.close_watches()
        for task in list(self._watch_tasks):
            task.cancel()


def _field_manager(request: aiohttp.web.BaseRequest) -> str:
    """The fieldManager of a write, or kube-apiserver's default: the User-Agent up to its first `/`."""
    named = request.query.get("fieldManager")
    if named:
        return named
    agent = request.headers.get("User-Agent", "").split("/", 1)[0]
    return "".join(ch for ch in agent if ch.isprintable())[:128]


def _patch_media_types(resource: resources.ResourceType) -> str:
    types = ["application/json-patch+json", "application/merge-patch+json"]
    if not resource.custom:
        types.append("application/strategic-merge-patch+json")
    return ", ".join([*types, server_side_apply.APPLY_YAML])


def _dry_run(request: aiohttp.web.BaseRequest) -> bool:
    """Whether a write is a server-side dry run (`?dryRun=All`): admitted and answered, not stored."""
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f'Invalid dry run value "{value}": supported values are "All"')
    return bool(values)


def _grace_period(query: Mapping[str, str], options: Mapping[str, Any]) -> int | None:
    """The gracePeriodSeconds of a DELETE (query or DeleteOptions), or None when it gives none."""
    value = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f'invalid gracePeriodSeconds "{value}"') from None


PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
JOB_ORPHAN_WARNING = ('299 - "child pods are preserved by default when jobs are deleted; set '
                      'propagationPolicy=Background to remove them or set propagationPolicy=Orphan to '
                      'suppress this warning"')


def _propagation(resource: resources.ResourceType, query: Mapping[str, str],
                 options: Mapping[str, Any]) -> str | None:
    """The propagationPolicy of a DELETE (query or DeleteOptions body, or orphanDependents).

    None means a Job deleted without one: its pods are orphaned (batch/v1's default GC policy),
    which the server answers with a warning. 422 for an unknown policy.
    """
    policy = query.get("propagationPolicy") or options.get("propagationPolicy")
    if policy is None:
        orphan = query.get("orphanDependents", options.get("orphanDependents"))
        if orphan is not None:
            return "Orphan" if str(orphan).lower() == "true" else "Background"
        return None if resource.key == ("batch", "jobs") else "Background"
    if policy not in PROPAGATION_POLICIES:
        raise errors.invalid("DeleteOptions.meta.k8s.io", "", [(
            "propagationPolicy", "FieldValueNotSupported",
            f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"')],
            kind="DeleteOptions", group="meta.k8s.io")
    return str(policy)


def _initial_events_end(resource: resources.ResourceType, resource_version: int) -> dict[str, Any]:
    """The BOOKMARK that tells a watch-list client its initial events are complete."""
    return {"kind": resource.kind, "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(resource_version), "creationTimestamp": None,
                         "annotations": {"k8s.io/initial-events-end": "true"}}}


def _page(items: list[dict[str, Any]], list_meta: dict[str, Any], query: Mapping[str, str]
          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of a list under `limit`/`continue`, and the list metadata that leads to the next.

    The continue token is opaque to clients; like etcd's it names the key the next page starts
    after, so objects deleted between pages shift nothing. remainingItemCount counts what is left
    after this page, and only for lists without selectors (the server cannot count those cheaply).
    """
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        raise errors.bad_request(f'invalid limit: {query.get("limit")!r}') from None
    token = query.get("continue")
    if token:
        start = _continue_start(token)
        items = [item for item in items if _list_key(item) > start]
    if limit <= 0 or len(items) <= limit:
        return items, list_meta
    page = items[:limit]
    last = page[-1]["metadata"]
    start_key = f'{last["namespace"]}/{last["name"]}' if last.get("namespace") else last["name"]
    continued = {"v": "meta.k8s.io/v1", "rv": int(list_meta["resourceVersion"]), "start": start_key + "\x00"}
    list_meta = {**list_meta, "continue": base64.urlsafe_b64encode(_dumps(continued)).decode().rstrip("=")}
    if not query.get("labelSelector") and not query.get("fieldSelector"):
        list_meta["remainingItemCount"] = len(items) - limit
    return page, list_meta


def _list_key(item: Mapping[str, Any]) -> tuple[str, str]:
    meta = item["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def _continue_start(token: str) -> tuple[str, str]:
    """The (namespace, name) a continue token says the previous page ended at; 400 when malformed."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = decoded["start"]
        if decoded.get("v") != "meta.k8s.io/v1" or not isinstance(start, str) or not start.endswith("\x00"):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)") from None
    namespace, _, name = start[:-1].rpartition("/")
    return (namespace, name)


def _bookmark_line(resource: resources.ResourceType, resource_version: int) -> bytes:
    """A BOOKMARK event: an object of the watched kind carrying only the resourceVersion reached."""
    return _dumps({"type": "BOOKMARK", "object": {"kind": resource.kind, "apiVersion": resource.api_version,
                                                  "metadata": {"resourceVersion": str(resource_version)}}}) + b"\n"


class EventLines:
    """Watch event lines encoded once for all the watchers an event reaches (kube-apiserver's
    cachingObject does the same): the store hands every watcher of a resource the same event."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        # By the event's id, with the event itself, which keeps that id from being reused meanwhile.
        self._lines: collections.OrderedDict[int, tuple[store.WatchEvent, bytes]] = collections.OrderedDict()

    def line(self, event: store.WatchEvent, tabulate: tables.WatchTables | None = None) -> bytes:
        if tabulate is not None:
            return _event_line(event, tabulate)  # a table row depends on the watch's own columns
        cached = self._lines.get(id(event))
        if cached is not None and cached[0] is event:
            return cached[1]
        encoded = _event_line(event)
        self._lines[id(event)] = (event, encoded)
        if len(self._lines) > self.size:
            self._lines.popitem(last=False)
        return encoded


def _event_line(event: store.WatchEvent, tabulate: tables.WatchTables | None = None) -> bytes:
    obj = event.object if tabulate is None else tabulate(event.object)
    return _dumps({"type": event.type, "object": obj}) + b"\n"


async def _read_json(request: aiohttp.web.BaseRequest, resource: resources.ResourceType) -> Any:
    """The request body as JSON values; kubectl sends built-in kinds as protobuf, decoded to the same."""
    raw = await request.read()
    if not raw:
        return None
    if request.headers.get("Content-Type", "").startswith(PROTOBUF):
        if resource.custom:  # custom resources have no protobuf form
            raise errors.ApiError(415, "the body of the request was in an unknown format - accepted media types "
                                  "include: application/json, application/yaml")
        try:
            return protobuf_messages.decode_body(raw)
        except protobuf_messages.DecodeError as e:
            raise errors.bad_request(str(e)) from None
    try:
        return json.loads(raw)
    except ValueError:
        content_type = request.headers.get("Content-Type", "")
        if "yaml" in content_type:
            raise errors.ApiError(415, "the body of the request was in an unknown format") from None
        raise errors.bad_request("the request body is not valid JSON") from None


def _patch_error(error: patches.PatchError, content_type: str) -> errors.ApiError:
    """The Status kube-apiserver answers for a patch that does not apply.

    An RFC 6902 patch failing on the object (a `test` that does not hold included) is a generic
    422 whose cause carries the json-patch error: Kopf reads any 422 there as a lost race.
    """
    if error.status_code == 422 and content_type.startswith("application/json-patch+json"):
        return errors.ApiError(422, "the server rejected our request due to an error in our request",
                               details={"causes": [{"reason": "UnexpectedServerResponse",
                                                    "message": str(error)}]})
    return errors.ApiError(error.status_code, str(error))


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
