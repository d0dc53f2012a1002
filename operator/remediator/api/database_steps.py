"""The `database` step: PostgreSQL first aid, one operation per step."""

from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from remediator.api.bases import INT32_MAX, SpecModel, one_of_required, require_exactly_one
from remediator.api.durations import PositiveDuration
from remediator.api.patterns import SqlName
from remediator.api.references import ConnectionSecretRef

DATABASE_OPERATIONS = (
    "terminate_long_running",
    "cancel_long_running",
    "terminate_idle",
    "kill_blockers",
    "vacuum_analyze",
    "analyze",
    "reindex",
    "report",
    "health_check",
)
# A user or application name as pg_stat_activity shows it (compared, never spliced into SQL).
SessionName = Annotated[str, Field(min_length=1, max_length=63)]


class BackendState(StrEnum):
    """pg_stat_activity.state of a backend."""

    ACTIVE = "active"
    IDLE = "idle"
    IDLE_IN_TRANSACTION = "idle in transaction"
    IDLE_IN_TRANSACTION_ABORTED = "idle in transaction (aborted)"
    FASTPATH_FUNCTION_CALL = "fastpath function call"
    DISABLED = "disabled"


class LongRunningQueries(SpecModel):
    """Backends whose current query (or transaction, when idle in one) is older than a threshold."""

    older_than: PositiveDuration
    """Only queries running longer than this."""
    states: list[BackendState] = Field(default_factory=lambda: [BackendState.ACTIVE], min_length=1)
    """Only backends in these states."""
    usernames: list[SessionName] = Field(default_factory=list)
    """Only backends of these users; any user when empty."""
    application_names: list[SessionName] = Field(default_factory=list)
    """Only backends with these application_name values; any when empty."""


class IdleSessions(SpecModel):
    """Sessions idle for longer than a threshold."""

    idle_for: PositiveDuration
    """Only sessions idle for longer than this."""
    include_idle_in_transaction: bool = False
    """Also sessions idle inside an open transaction (they hold locks and block VACUUM)."""


class Blockers(SpecModel):
    """Backends holding locks that others have waited on for longer than a threshold."""

    blocked_for: PositiveDuration
    """Only blockers whose victims have waited longer than this."""


class VacuumAnalyze(SpecModel):
    """VACUUM (ANALYZE) the listed tables."""

    tables: list[SqlName] = Field(min_length=1)
    """Tables, optionally schema-qualified (public.orders)."""


class Analyze(SpecModel):
    """ANALYZE the listed tables, or the whole database when none are listed."""

    tables: list[SqlName] = Field(default_factory=list)
    """Tables, optionally schema-qualified; the whole database when empty."""


class Reindex(SpecModel):
    """REINDEX one table or one index."""

    model_config = ConfigDict(json_schema_extra=one_of_required(["table", "index"]))

    table: SqlName | None = None
    """Rebuild every index of this table."""
    index: SqlName | None = None
    """Rebuild this index."""
    concurrently: bool = True
    """Rebuild without blocking writes (slower; PostgreSQL 12 or later)."""

    @model_validator(mode="after")
    def _one_object(self) -> Self:
        require_exactly_one(self, ("table", "index"))
        return self


class Report(SpecModel):
    """Record the longest-running queries, blockers and connection counts in the step result."""

    top_n: int = Field(default=10, ge=1, le=100)
    """How many of the longest-running queries to record."""


class HealthCheck(SpecModel):
    """Check that the database answers, and optionally that replicas keep up."""

    max_replication_lag: PositiveDuration | None = None
    """Fail when a replica lags further behind than this."""


class DatabaseStep(SpecModel):
    """Run one first-aid operation against a PostgreSQL database."""

    model_config = ConfigDict(json_schema_extra=one_of_required(DATABASE_OPERATIONS))

    connection_secret_ref: ConnectionSecretRef
    """The Secret saying how to connect."""
    statement_timeout: PositiveDuration = "30s"
    """statement_timeout of the operator's own session."""
    lock_timeout: PositiveDuration = "5s"
    """lock_timeout of the operator's own session, so first aid never queues behind the problem."""
    max_terminations: int = Field(default=50, ge=1, le=INT32_MAX)
    """At most this many backends are cancelled or terminated by one run."""
    terminate_long_running: LongRunningQueries | None = None
    """pg_terminate_backend the backends of long-running queries."""
    cancel_long_running: LongRunningQueries | None = None
    """pg_cancel_backend long-running queries (the session survives)."""
    terminate_idle: IdleSessions | None = None
    """pg_terminate_backend idle sessions."""
    kill_blockers: Blockers | None = None
    """pg_terminate_backend the backends that block others."""
    vacuum_analyze: VacuumAnalyze | None = None
    """VACUUM (ANALYZE) tables."""
    analyze: Analyze | None = None
    """ANALYZE tables."""
    reindex: Reindex | None = None
    """REINDEX a table or an index."""
    report: Report | None = None
    """Record what the database is busy with."""
    health_check: HealthCheck | None = None
    """Check that the database answers."""

    @model_validator(mode="after")
    def _one_operation(self) -> Self:
        require_exactly_one(self, DATABASE_OPERATIONS)
        return self

    @property
    def operation(self) -> str:
        """The (snake_case) name of the operation this step runs, e.g. "terminate_idle"."""
        return require_exactly_one(self, DATABASE_OPERATIONS)
