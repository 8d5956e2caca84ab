"""Queue and schedule shapes, the single source for the CDK app and for the local LocalStack setup."""

from __future__ import annotations

from dataclasses import dataclass

DELIVER_FUNCTION_TIMEOUT_SECONDS = 60
DELIVERIES_VISIBILITY_TIMEOUT_SECONDS = 6 * DELIVER_FUNCTION_TIMEOUT_SECONDS
DELIVERIES_MAX_RECEIVE_COUNT = 5
DELIVERIES_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
MAX_SQS_DELAY_SECONDS = 15 * 60
DELIVER_BATCH_SIZE = 10


@dataclass(frozen=True)
class Schedule:
    """An EventBridge rule that invokes one function on a rate."""

    name: str
    function: str
    rate_minutes: int

    @property
    def expression(self) -> str:
        unit = "minute" if self.rate_minutes == 1 else "minutes"
        return f"rate({self.rate_minutes} {unit})"


CLEANUP_SCHEDULE = Schedule(name="wagw-cleanup", function="cleanup", rate_minutes=15)
RETRY_SCHEDULER_SCHEDULE = Schedule(name="wagw-retry-scheduler", function="retry_scheduler", rate_minutes=1)
SCHEDULES: tuple[Schedule, ...] = (CLEANUP_SCHEDULE, RETRY_SCHEDULER_SCHEDULE)
