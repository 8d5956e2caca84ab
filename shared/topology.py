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


# The console's conversation view uploads a file with the presigned PUT of POST /v1/media and previews media with
# presigned GETs, from the API's own origin: the media bucket must allow that origin (CORS), or the browser
# refuses the upload. The CDK media bucket should carry the same rule with the API's public origin.
MEDIA_CORS_METHODS = ("PUT", "GET", "HEAD")
MEDIA_CORS_MAX_AGE_SECONDS = 3600


def media_cors_rules(origins: list[str]) -> list[dict[str, object]]:
    """S3 CORS rules (put_bucket_cors's `CORSRules`) for the media bucket."""
    return [
        {
            "AllowedOrigins": origins,
            "AllowedMethods": list(MEDIA_CORS_METHODS),
            "AllowedHeaders": ["content-type"],
            "MaxAgeSeconds": MEDIA_CORS_MAX_AGE_SECONDS,
        }
    ]
