"""Run every benchmark and print its report: `python -m bench` (or `make bench`)."""

import asyncio

from bench import sandbox_api

print(sandbox_api.report(asyncio.run(sandbox_api.main())))
