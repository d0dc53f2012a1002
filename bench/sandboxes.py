"""What the end-to-end benchmarks share: the sandbox they run the operator against, in the benchmark's own
process, with the objects they need, and the command line that runs one of them and prints its report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import pathlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp

from remediator import collector
from remediator.sandbox import runner, server

REPO = pathlib.Path(__file__).resolve().parents[1]
CRDS = sorted((REPO / "crds").glob("*.yaml"))
# The benchmark's own requests carry this User-Agent, so that a recorder can tell them from the operator's.
BENCH_AGENT = "remediator-bench"
# Objects created at once while a sandbox is set up (not part of any measurement).
CREATE_CONCURRENCY = 16


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A running sandbox with the benchmark's objects, and a directory for the operator's files."""

    url: str
    workdir: pathlib.Path
    kubeconfig: pathlib.Path


@contextlib.asynccontextmanager
async def prepared(objects: Iterable[tuple[str, dict[str, Any]]], sandbox: server.Sandbox | None = None,
                   handler: Any = None) -> AsyncIterator[Prepared]:
    """Serve a sandbox with the project's CRDs (`handler` in front of `sandbox` when given) and create
    `objects`, each a (collection path, body), before yielding. This process's collector is set as
    `remediator sandbox` sets its own."""
    collector.settle()
    async with runner.running(sandbox=sandbox, handler=handler, crd_paths=CRDS) as running:
        with tempfile.TemporaryDirectory() as workdir:
            kubeconfig = running.write_kubeconfig(pathlib.Path(workdir) / "kubeconfig")
            async with aiohttp.ClientSession(running.url, headers={"User-Agent": BENCH_AGENT}) as session:
                await create_all(session, objects)
            yield Prepared(running.url, pathlib.Path(workdir), kubeconfig)


async def create_all(session: aiohttp.ClientSession, objects: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """POST each body to its path, a few at a time (the set-up of a large burst took minutes one by one)."""
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(path: str, body: dict[str, Any]) -> None:
        async with gate, session.post(path, json=body) as response:
            assert response.status == 201, await response.text()

    await asyncio.gather(*(create(path, body) for path, body in objects))


def command_line(doc: str, main: Callable[..., Awaitable[dict[str, Any]]], report: Callable[[dict[str, Any]], str],
                 options: Mapping[str, tuple[type, Any, str | None]]) -> None:
    """Run `main` with the command line's options (name: type, default, help), each passed by its name, and
    print its report."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, (kind, default, explanation) in options.items():
        parser.add_argument(f"--{name}", type=kind, default=default, help=explanation)
    print(report(asyncio.run(main(**vars(parser.parse_args())))))
