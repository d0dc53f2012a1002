"""Schedule and time zone strings: their shape only.

The CRD pattern refuses text that cannot be a schedule at all; whether the fields are in
range, the expression ever fires and the time zone exists is engine/schedules.py's check,
so a controller reports it as Ready=False with InvalidSchedule or InvalidTimeZone.
"""

from typing import Annotated

from remediator.api.patterns import Matches

# Five cron fields (minute hour day-of-month month day-of-week) or a @ shorthand.
_CRON_FORMS = (
    r"@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|([-0-9A-Za-z*?,/#]+[ \t]+){4}[-0-9A-Za-z*?,/#]+"
)
CRON = rf"^({_CRON_FORMS})$"
# Also @every <duration>, the duration as in api/durations.py.
SCHEDULE = rf"^({_CRON_FORMS}|@every[ \t]+([0-9]+(ms|s|m|h|d))+)$"
# IANA names: Area/Location, with '_', '-', '+' and digits (Etc/GMT+5, America/Port-au-Prince).
TIME_ZONE = r"^[A-Za-z][-+_A-Za-z0-9]*(/[-+_A-Za-z0-9]+)*$"

CronSchedule = Annotated[
    str, Matches(CRON, "a cron schedule such as '0 3 1 * *' or @monthly", max_length=128)
]
"""Five cron fields or an @ shorthand (maintenance windows)."""
ScheduleExpression = Annotated[
    str, Matches(SCHEDULE, "a cron schedule such as '0 3 1 */3 *', @monthly or '@every 90d'", max_length=128)
]
"""Five cron fields, an @ shorthand, or `@every <duration>` (KeyRotation)."""
TimeZone = Annotated[
    str, Matches(TIME_ZONE, "an IANA time zone name such as UTC or Europe/Berlin", max_length=64)
]
"""An IANA time zone name; whether it exists is checked by the engine."""
