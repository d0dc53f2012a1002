"""The client side of one API request: the synchronous client in a thread pool against kubernetes.aio.

The operator's hot path (reads and patches of a workload, status writes, Events) went through the
synchronous client in a pool of 32 threads (actions/retries.py). This measures what one request costs
the client process, in CPU and wall time, for each way of sending it, so the choice rests on a number:

- `threads`: the synchronous client, `_preload_content=False` (plain JSON), 32 threads, as before;
- `aio`: kubernetes.aio's generated `*_without_preload_content` methods, on the event loop;
- `aio-raw`: kubernetes.aio's ApiClient (`call_api`: its credentials, configuration and aiohttp pool)
  with the request built by hand, skipping the generated methods' per-call pydantic validation;
- `paths`: what the operator does now, `actions/retries.request_json`: the request built by path without
  the API classes, sent on the event loop through kubernetes.aio's pool with the synchronous client's
  credentials (until 2026-11-30 it was sent in the 32 threads).

The sandbox runs in this process; each variant runs in a child process that sends `--count` GETs and as
many merge PATCHes (an annotation) of one ConfigMap, `--concurrency` at a time, and reports the CPU it
used for them (startup excluded). Variants alternate, `--rounds` times.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import json
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

VARIANTS = ("threads", "paths", "aio", "aio-raw")
PATH = "/api/v1/namespaces/default/configmaps/bench"


async def _drive(send: Callable[[int], Awaitable[None]], count: int, concurrency: int) -> tuple[float, float]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with semaphore:
            await send(index)

    await send(-1)  # warm: the connection and the client's lazy imports
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.process_time() - cpu, time.perf_counter() - wall


def _patch(index: int) -> dict[str, Any]:
    return {"metadata": {"annotations": {"bench/index": str(index)}}}


async def _threads(kubeconfig: str, count: int, concurrency: int) -> tuple[float, float]:
    import kubernetes.client
    import kubernetes.config

    kubernetes.config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    configuration = kubernetes.client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = concurrency
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(configuration))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
    loop = asyncio.get_running_loop()

    async def send(index: int) -> None:
        read = await loop.run_in_executor(pool, functools.partial(
            core.read_namespaced_config_map, "bench", "default", _preload_content=False))
        json.loads(read.data)
        patched = await loop.run_in_executor(pool, functools.partial(
            core.patch_namespaced_config_map, "bench", "default", _patch(index), _preload_content=False))
        json.loads(patched.data)

    return await _drive(send, count, concurrency)


async def _paths(kubeconfig: str, count: int, concurrency: int) -> tuple[float, float]:
    from remediator import api_requests, kube
    from remediator.actions import retries

    kube.configure(pathlib.Path(kubeconfig))
    api = kube.api_client()

    async def send(index: int) -> None:
        await retries.request_json(api, "GET", PATH)
        await retries.request_json(api, "PATCH", PATH, _patch(index), content_type=api_requests.MERGE_PATCH)

    try:
        return await _drive(send, count, concurrency)
    finally:
        await kube.close_hot_path_clients()


async def _aio(kubeconfig: str, count: int, concurrency: int, raw: bool) -> tuple[float, float]:
    from kubernetes.aio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = concurrency
    api = client.ApiClient(configuration)
    core = client.CoreV1Api(api)
    url = configuration.host + PATH
    headers = {"Accept": "application/json", "User-Agent": "bench"}

    async def send_generated(index: int) -> None:
        read = await core.read_namespaced_config_map_without_preload_content("bench", "default")
        json.loads(await read.read())
        patched = await core.patch_namespaced_config_map_without_preload_content(
            "bench", "default", _patch(index), _content_type="application/merge-patch+json")
        json.loads(await patched.read())

    async def send_raw(index: int) -> None:
        read = await api.call_api("GET", url, header_params=dict(headers))
        json.loads(await read.read())
        patched = await api.call_api("PATCH", url, body=_patch(index),
                                     header_params={**headers, "Content-Type": "application/merge-patch+json"})
        json.loads(await patched.read())

    try:
        return await _drive(send_raw if raw else send_generated, count, concurrency)
    finally:
        await api.close()


def child(variant: str, kubeconfig: str, count: int, concurrency: int) -> None:
    if variant == "threads":
        cpu, wall = asyncio.run(_threads(kubeconfig, count, concurrency))
    elif variant == "paths":
        cpu, wall = asyncio.run(_paths(kubeconfig, count, concurrency))
    else:
        cpu, wall = asyncio.run(_aio(kubeconfig, count, concurrency, raw=variant == "aio-raw"))
    print(json.dumps({"cpu_s": cpu, "wall_s": wall}))


async def parent(count: int, concurrency: int, rounds: int) -> None:
    from remediator.sandbox import runner

    async with runner.running() as sandbox:
        with tempfile.TemporaryDirectory() as folder:
            kubeconfig = pathlib.Path(folder) / "kubeconfig"
            kubeconfig.write_text(json.dumps(runner.kubeconfig_for(sandbox.url)))
            import aiohttp

            async with aiohttp.ClientSession(sandbox.url) as http:
                async with http.post("/api/v1/namespaces/default/configmaps", json={
                        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench"}}) as response:
                    assert response.status == 201, await response.text()
            print(f"{count} GET + {count} PATCH per run, {concurrency} in flight; client process CPU per request")
            for round_ in range(rounds):
                for variant in VARIANTS:
                    process = await asyncio.create_subprocess_exec(
                        sys.executable, __file__, "--child", variant, "--kubeconfig", str(kubeconfig),
                        "--count", str(count), "--concurrency", str(concurrency), stdout=subprocess.PIPE)
                    out, _ = await process.communicate()
                    result = json.loads(out.decode().strip().splitlines()[-1])
                    requests = 2 * count
                    print(f"  round {round_ + 1} {variant:8} CPU {result['cpu_s']:.2f} s "
                          f"({1000 * result['cpu_s'] / requests:.3f} ms/request), wall {result['wall_s']:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--kubeconfig")
    options = parser.parse_args()
    if options.child:
        child(options.child, options.kubeconfig, options.count, options.concurrency)
    else:
        asyncio.run(parent(options.count, options.concurrency, options.rounds))


if __name__ == "__main__":
    main()
