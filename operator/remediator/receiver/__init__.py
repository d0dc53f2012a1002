"""The Alertmanager webhook receiver: alerts in, Incidents out, through the Runbooks' triggers.

Pure parts (no I/O): `payloads` (the webhook body), `matching` (triggers), `keys` (the incident key
and the deterministic Incident name), `plans` (which Incidents a payload needs), `alert_lists` (the
Incident's status.alerts[]). I/O: `incident_writes` (the Kubernetes API) and `server` (the aiohttp app).
"""
