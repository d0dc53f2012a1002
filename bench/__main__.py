"""Run every benchmark and print its report: `python -m bench` (or `make bench`)."""

import asyncio

from bench import incidents, sandbox_api

print(sandbox_api.report(asyncio.run(sandbox_api.main())))
print(incidents.report(asyncio.run(incidents.main())))
