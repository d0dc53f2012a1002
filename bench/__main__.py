"""Run every benchmark and print its report: `python -m bench` (or `make bench`)."""

import asyncio

from bench import alert_first_action, alert_storm, database_terminations, incidents, key_rotation, sandbox_api

print(sandbox_api.report(asyncio.run(sandbox_api.main())))
print(incidents.report(asyncio.run(incidents.main())))
print(database_terminations.report(asyncio.run(database_terminations.main())))
print(key_rotation.report(asyncio.run(key_rotation.main())))
print(alert_storm.report(asyncio.run(alert_storm.main())))
print(alert_first_action.report(asyncio.run(alert_first_action.main())))
